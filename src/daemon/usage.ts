// Usage a model can compare: CPU as a share of time from two readings a short window apart, what
// the containers' limits commit of the host, and the host's load. Pure functions over Incus
// shapes, so they are tested without Incus.
import { readFileSync } from 'node:fs';
import { cpuCount, parseSize } from '../shared/sizes.ts';
import { type Instance, rootDiskSize } from './incus-wire.ts';

/** How far apart the two CPU readings are. */
export const CPU_WINDOW_MS = 1000;

/**
 * Percent of one core used between two readings of an instance's CPU time (nanoseconds)
 * `elapsedMs` apart, to one decimal; 0 when the readings cannot tell (the counter went back
 * because the container restarted, or no time passed).
 */
export function cpuPercent(beforeNs: number, afterNs: number, elapsedMs: number): number {
  if (!(elapsedMs > 0) || !(afterNs >= beforeNs)) return 0;
  return Math.round(((afterNs - beforeNs) / (elapsedMs * 1e6)) * 1000) / 10;
}

/** Bytes of a memory limit: a size, or a percentage of the host's memory; undefined when unset. */
export function memoryBytes(limit: string | undefined, hostBytes: number): number | undefined {
  if (!limit) return undefined;
  const percent = /^(\d+(?:\.\d+)?)%$/.exec(limit.trim());
  if (percent) return Math.floor((Number(percent[1]) / 100) * hostBytes);
  return parseSize(limit)?.bytes;
}

export type Host = { cpus: number; memoryBytes: number; diskBytes: number };
export type Committed = { cpus: number; memoryBytes: number; diskBytes: number };

/**
 * What the limits add up to: CPUs and memory of running containers (a stopped one holds
 * neither), root disks of all of them. A container without a limit may use the whole host's
 * share, so it counts as that.
 */
export function committed(instances: Instance[], host: Host): Committed {
  const sum = { cpus: 0, memoryBytes: 0, diskBytes: 0 };
  for (const instance of instances) {
    const config = instance.expanded_config;
    if (instance.status === 'Running') {
      sum.cpus += cpuCount(config['limits.cpu']) ?? host.cpus;
      sum.memoryBytes += memoryBytes(config['limits.memory'], host.memoryBytes) ?? host.memoryBytes;
    }
    sum.diskBytes += parseSize(rootDiskSize(instance.expanded_devices))?.bytes ?? host.diskBytes;
  }
  return sum;
}

/** The load averages from /proc/loadavg ("0.52 0.40 0.31 …"); zeros when it cannot be read. */
export function loadAverages(path = '/proc/loadavg'): [number, number, number] {
  try {
    const [a, b, c] = readFileSync(path, 'utf8').split(' ').map(Number);
    const ok = (n: number | undefined) =>
      Number.isFinite(n) && (n as number) >= 0 ? (n as number) : 0;
    return [ok(a), ok(b), ok(c)];
  } catch {
    return [0, 0, 0];
  }
}
