// Domain values to upstream's JSON (CONTAINARIUM-API.md §1): proto field order, every field
// present, int64 as strings, int32 as numbers. The only place the daemon writes that format.

import type {
  WireContainer,
  WireMetrics,
  WireNetwork,
  WireResources,
  WireSystemInfo,
} from '../shared/wire.ts';
import type { CreateResult } from './backend.ts';

const int64 = (value: unknown): string => {
  if (typeof value === 'string' && /^-?\d+$/.test(value)) return value;
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number' && Number.isFinite(value))
    return BigInt(Math.trunc(value)).toString();
  return '0';
};
const int32 = (value: unknown): number => {
  const n = Number(value);
  return Number.isFinite(n) ? Math.trunc(n) : 0;
};
const text = (value: unknown): string => (typeof value === 'string' ? value : '');

function emitResources(r: WireResources | null | undefined): WireResources | null {
  return r ? { cpu: text(r.cpu), memory: text(r.memory), disk: text(r.disk) } : null;
}

function emitNetwork(n: WireNetwork | null | undefined): WireNetwork | null {
  if (!n) return null;
  return {
    ipAddress: text(n.ipAddress),
    macAddress: text(n.macAddress),
    interface: text(n.interface),
    bridge: text(n.bridge),
  };
}

export function emitContainer(c: WireContainer): WireContainer {
  return {
    name: text(c.name),
    username: text(c.username),
    state: c.state || 'CONTAINER_STATE_UNSPECIFIED',
    resources: emitResources(c.resources),
    sshKeys: Array.isArray(c.sshKeys) ? c.sshKeys.map(text) : [],
    network: emitNetwork(c.network),
    createdAt: int64(c.createdAt),
    updatedAt: int64(c.updatedAt),
    labels: { ...(c.labels ?? {}) },
    image: text(c.image),
    dockerEnabled: c.dockerEnabled === true,
  };
}

export function emitCreated(r: CreateResult) {
  return {
    container: r.container ? emitContainer(r.container) : null,
    message: text(r.message),
    sshCommand: text(r.sshCommand),
  };
}

export function emitMetrics(m: WireMetrics): WireMetrics {
  return {
    name: text(m.name),
    cpuUsageSeconds: int64(m.cpuUsageSeconds),
    memoryUsageBytes: int64(m.memoryUsageBytes),
    memoryPeakBytes: int64(m.memoryPeakBytes),
    diskUsageBytes: int64(m.diskUsageBytes),
    networkRxBytes: int64(m.networkRxBytes),
    networkTxBytes: int64(m.networkTxBytes),
    processCount: int32(m.processCount),
  };
}

export function emitSystemInfo(i: WireSystemInfo): WireSystemInfo {
  return {
    incusVersion: text(i.incusVersion),
    os: text(i.os),
    kernelVersion: text(i.kernelVersion),
    totalCpus: int32(i.totalCpus),
    totalMemoryBytes: int64(i.totalMemoryBytes),
    availableMemoryBytes: int64(i.availableMemoryBytes),
    totalDiskBytes: int64(i.totalDiskBytes),
    availableDiskBytes: int64(i.availableDiskBytes),
    containersRunning: int32(i.containersRunning),
    containersStopped: int32(i.containersStopped),
    containersTotal: int32(i.containersTotal),
    hostname: text(i.hostname),
    uptimeSeconds: int64(i.uptimeSeconds),
  };
}
