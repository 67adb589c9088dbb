// Domain values (backend.ts) to upstream's JSON (CONTAINARIUM-API.md §1): proto field order,
// every field present, int64 as strings, int32 as numbers, enums by their full names, unset
// messages as null. The shapes several routes share live here (a route's own shape may live in
// its route file, written with these helpers); requests.ts reads the format.
import type { ContainerState, WireContainer, WireMetrics, WireSystemInfo } from '../shared/wire.ts';
import type { Container, CreateResult, Metrics, Reachable, State, SystemInfo } from './backend.ts';

/** Each domain state and its proto enum name; the one table both directions use. */
export const STATE_NAMES: Record<State, ContainerState> = {
  unspecified: 'CONTAINER_STATE_UNSPECIFIED',
  running: 'CONTAINER_STATE_RUNNING',
  stopped: 'CONTAINER_STATE_STOPPED',
  frozen: 'CONTAINER_STATE_FROZEN',
  creating: 'CONTAINER_STATE_CREATING',
  error: 'CONTAINER_STATE_ERROR',
};

/** A proto enum name back to the domain state. */
export const stateOf = (name: ContainerState): State =>
  (Object.keys(STATE_NAMES) as State[]).find((s) => STATE_NAMES[s] === name) ?? 'unspecified';

/** An int64 field: a decimal string ("0" for a value that is not finite). Route files use it too. */
export const int64 = (value: number): string =>
  Number.isFinite(value) ? BigInt(Math.trunc(value)).toString() : '0';
/** A double field: a finite number (0 for one that is not). */
export const number = (value: number): number => (Number.isFinite(value) ? value : 0);
/** An int32 field: a whole number. */
export const int32 = (value: number): number => (Number.isFinite(value) ? Math.trunc(value) : 0);

export function emitContainer(c: Container): WireContainer {
  return {
    name: c.name,
    username: c.username,
    state: STATE_NAMES[c.state] ?? 'CONTAINER_STATE_UNSPECIFIED',
    resources: c.resources
      ? { cpu: c.resources.cpu, memory: c.resources.memory, disk: c.resources.disk }
      : null,
    sshKeys: [...c.sshKeys],
    network: c.network
      ? {
          ipAddress: c.network.ipAddress,
          macAddress: c.network.macAddress,
          interface: c.network.interface,
          bridge: c.network.bridge,
        }
      : null,
    createdAt: int64(c.createdAt),
    updatedAt: int64(c.updatedAt),
    labels: { ...c.labels },
    image: c.image,
    dockerEnabled: c.dockerEnabled,
  };
}

/**
 * A container as GET /v1/containers/{username} and start answer it: upstream's fields plus
 * `sshCommand`, this daemon's one addition to the container JSON ('' when none applies).
 */
export function emitReachable(r: Reachable): WireContainer & { sshCommand: string } {
  return { ...emitContainer(r.container), sshCommand: r.sshCommand };
}

export function emitCreated(r: CreateResult) {
  return { container: emitContainer(r.container), message: r.message, sshCommand: r.sshCommand };
}

export function emitMetrics(m: Metrics): WireMetrics {
  return {
    name: m.name,
    cpuUsageSeconds: int64(m.cpuUsageSeconds),
    cpuUsagePercent: number(m.cpuUsagePercent),
    memoryUsageBytes: int64(m.memoryUsageBytes),
    memoryPeakBytes: int64(m.memoryPeakBytes),
    diskUsageBytes: int64(m.diskUsageBytes),
    networkRxBytes: int64(m.networkRxBytes),
    networkTxBytes: int64(m.networkTxBytes),
    processCount: int32(m.processCount),
  };
}

export function emitSystemInfo(i: SystemInfo): WireSystemInfo {
  return {
    incusVersion: i.incusVersion,
    os: i.os,
    kernelVersion: i.kernelVersion,
    totalCpus: int32(i.totalCpus),
    totalMemoryBytes: int64(i.totalMemoryBytes),
    availableMemoryBytes: int64(i.availableMemoryBytes),
    totalDiskBytes: int64(i.totalDiskBytes),
    availableDiskBytes: int64(i.availableDiskBytes),
    containersRunning: int32(i.containersRunning),
    containersStopped: int32(i.containersStopped),
    containersTotal: int32(i.containersTotal),
    hostname: i.hostname,
    uptimeSeconds: int64(i.uptimeSeconds),
    cpuLoad1min: number(i.cpuLoad1min),
    cpuLoad5min: number(i.cpuLoad5min),
    cpuLoad15min: number(i.cpuLoad15min),
    committedCpus: int32(i.committedCpus),
    committedMemoryBytes: int64(i.committedMemoryBytes),
    committedDiskBytes: int64(i.committedDiskBytes),
  };
}
