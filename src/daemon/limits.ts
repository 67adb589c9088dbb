// What this host can give a container: requests beyond the host's CPUs, memory or storage pool,
// or below what any container needs to start, are refused with the host's own figures.
import { formatBytes, parseSize } from '../shared/sizes.ts';
import type { CreateRequest, ResizeRequest } from './backend.ts';

/**
 * Measured on Incus 6.0 (cgroup v1): with 2 MiB of memory a BusyBox container fails in forkstart,
 * with 4 MiB it starts. 8 MiB leaves room for the runtime's own share of the cgroup.
 */
export const MIN_MEMORY_BYTES = 8 * 2 ** 20;

/** Measured: a Debian 12 container with apt needs 96 MiB to be set up (64 MiB is OOM-killed). */
export const APT_MEMORY_HINT = '128MB';

/** The host's figures; a figure Incus did not report is undefined and not checked. */
export type HostCapacity = {
  cpus?: number | undefined;
  memoryBytes?: number | undefined;
  pool?: { name: string; bytes: number } | undefined;
};

/** A size users can type back, rounded down to whole MiB: "24GiB", "1536MiB". */
export function sizeAtMost(bytes: number): string {
  const mib = Math.floor(bytes / 2 ** 20);
  return mib >= 1024 && mib % 1024 === 0 ? `${mib / 1024}GiB` : `${mib}MiB`;
}

/**
 * Upstream's defaults (4 CPUs, 4GB, 50GB) lowered to what a smaller host has, for the fields the
 * caller left empty; what the caller asked for is never changed. Returns what was lowered.
 */
export function fitDefaults(
  request: CreateRequest,
  host: HostCapacity,
): { request: CreateRequest; lowered: string[] } {
  const defaulted = new Set(request.defaulted ?? []);
  const fitted = { ...request };
  const lowered: string[] = [];
  if (defaulted.has('cpu') && host.cpus && request.cpu > host.cpus) {
    fitted.cpu = host.cpus;
    lowered.push(`cpu ${host.cpus}`);
  }
  const lower = (key: 'memory' | 'disk', most: number | undefined) => {
    if (defaulted.has(key) && most && (parseSize(request[key])?.bytes ?? 0) > most) {
      fitted[key] = sizeAtMost(most);
      lowered.push(`${key} "${fitted[key]}"`);
    }
  };
  lower('memory', host.memoryBytes);
  lower('disk', host.pool?.bytes);
  return { request: fitted, lowered };
}

/**
 * Every way the limits ask for more than the host has, or less than a container needs. Fields are
 * named as the request names them: `resources.cpu` for a create, `cpu` for a resize (prefix '').
 */
export function limitProblems(
  limits: ResizeRequest,
  host: HostCapacity,
  prefix = 'resources.',
): string[] {
  const problems: string[] = [];
  if (limits.cpu !== undefined && host.cpus && limits.cpu > host.cpus) {
    problems.push(
      `${prefix}cpu ${limits.cpu} is more than this host has (${host.cpus} CPUs); ask for at most ${host.cpus}`,
    );
  }
  if (limits.memory !== undefined) {
    const memory = parseSize(limits.memory)?.bytes ?? 0;
    if (host.memoryBytes && memory > host.memoryBytes) {
      problems.push(
        `${prefix}memory "${limits.memory}" is more than this host's memory (${formatBytes(host.memoryBytes)}); ask for at most "${sizeAtMost(host.memoryBytes)}"`,
      );
    }
    if (memory < MIN_MEMORY_BYTES) {
      problems.push(
        `${prefix}memory "${limits.memory}" is too small to start a container (at least ${formatBytes(MIN_MEMORY_BYTES)}); give at least "${sizeAtMost(MIN_MEMORY_BYTES)}", or "${APT_MEMORY_HINT}" for an image set up with apt`,
      );
    }
  }
  if (limits.disk !== undefined) {
    const disk = parseSize(limits.disk)?.bytes ?? 0;
    if (host.pool?.bytes && disk > host.pool.bytes) {
      problems.push(
        `${prefix}disk "${limits.disk}" is larger than storage pool "${host.pool.name}" (${formatBytes(host.pool.bytes)}); ask for at most "${sizeAtMost(host.pool.bytes)}"`,
      );
    }
  }
  return problems;
}

/**
 * Incus's words when a root disk quota is below what the image's files take (btrfs: "Disk quota
 * exceeded"; zfs: "size is less than current used"; full filesystems: "No space left on device").
 */
export const isDiskTooSmall = (incusError: string): string | undefined =>
  /disk quota exceeded|size is less than current used|no space left on device/i.exec(
    incusError,
  )?.[0];

export const diskTooSmall = (
  request: CreateRequest,
  packedBytes: number | undefined,
  cause: string,
) =>
  `resources.disk "${request.disk}" is too small for image "${request.image}"${
    packedBytes ? ` (the image is ${formatBytes(packedBytes)} packed and larger unpacked)` : ''
  }: Incus could not fit its files (${cause}); give a larger disk, like "2GB"`;

/** Peak use at the limit (the kernel keeps it a page or so below): the container ran out. */
export const reachedLimit = (peakBytes: number, limitBytes: number): boolean =>
  limitBytes > 0 && peakBytes >= limitBytes * 0.99;

export const memoryTooSmall = (request: Pick<CreateRequest, 'memory' | 'image'>, failure: string) =>
  `resources.memory "${request.memory}" is too small for image "${request.image}": the container used all of its memory while it was being set up, then failed (${failure}); give it more, like "${APT_MEMORY_HINT}"`;
