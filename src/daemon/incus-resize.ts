// Resizing a container over Incus: its CPU and memory limits and its root disk size in one Incus
// change, live on a running container. A disk is never made smaller than what the container
// holds: on btrfs, Incus sets such a quota half-way and leaves the container unable to stop.
import { clip } from '../shared/clip.ts';
import { formatBytes, parseSize } from '../shared/sizes.ts';
import type { ResizeRequest } from './backend.ts';
import { DaemonError } from './errors.ts';
import type { IncusClient } from './incus.ts';
import { hostCapacity } from './incus-instances.ts';
import type { Instance } from './incus-wire.ts';
import { isDiskTooSmall, limitProblems } from './limits.ts';

/**
 * The least a disk may shrink to: what `du` counts plus a tenth, and at least 8 MiB more. btrfs
 * counts a little more than du sees (metadata), and a full disk stops the container's writes.
 */
export const diskFloor = (usedBytes: number): number =>
  usedBytes + Math.max(Math.ceil(usedBytes / 10), 8 * 2 ** 20);

/** "12MiB": a size at least `bytes`, in whole MiB, as users type it back. */
const sizeAtLeast = (bytes: number) => `${Math.ceil(bytes / 2 ** 20)}MiB`;

/** The root disk device (mounted at /) under its device name, from these devices. */
export const rootOf = (
  devices: Instance['devices'],
): [string, Record<string, string>] | undefined =>
  Object.entries(devices).find(([, device]) => device.type === 'disk' && device.path === '/');

/** The root disk device from the instance's full view (its profiles' devices too). */
const rootDevice = (instance: Instance) => rootOf(instance.expanded_devices);

/** The bytes the container's root filesystem holds, as du counts them inside it (running only). */
async function diskUse(client: IncusClient, instance: Instance, username: string) {
  if (instance.status !== 'Running') {
    throw new DaemonError(
      'invalid',
      `invalid disk: the container for user ${username} is ${instance.status.toLowerCase()}, so the daemon cannot measure what its disk holds; start it to shrink the disk (a larger disk can be given while it is stopped)`,
    );
  }
  const { exitCode, stdout, stderr } = await client.exec(instance.name, ['du', '-skx', '/'], {
    timeout: 300,
  });
  // du exits 1 when some files cannot be read but still prints the total of the rest.
  const kib = /^(\d+)\s/.exec(stdout)?.[1];
  if (kib === undefined) {
    throw new DaemonError(
      'internal',
      `could not measure the disk use of ${instance.name} (du exited ${exitCode}: ${clip(stderr.trim(), 200)})`,
    );
  }
  return Number(kib) * 1024;
}

/**
 * Applies `change` to the instance: host limits and create's rules first, then the disk floor for
 * a smaller disk, then one Incus PATCH.
 */
export async function resizeInstance(
  client: IncusClient,
  instance: Instance,
  change: ResizeRequest,
  options: { pool: string; username: string },
): Promise<void> {
  const { username } = options;
  const root = rootDevice(instance);
  const pool = root?.[1].pool || options.pool;
  const problems = limitProblems(change, await hostCapacity(client, pool), '');
  if (problems.length > 0) throw new DaemonError('invalid', problems.join('; '));

  const config: Record<string, string> = {};
  if (change.cpu !== undefined) config['limits.cpu'] = String(change.cpu);
  if (change.memory !== undefined) config['limits.memory'] = change.memory;
  let devices: Record<string, Record<string, string>> | undefined;
  if (change.disk !== undefined) {
    if (!root) {
      throw new DaemonError(
        'invalid',
        `invalid disk: the container for user ${username} has no root disk device to resize`,
      );
    }
    const [key, device] = root;
    const asked = parseSize(change.disk)?.bytes ?? 0;
    const now = parseSize(device.size ?? '')?.bytes;
    // No size is no limit at all, so any size is smaller.
    if (now === undefined || asked < now) {
      const used = await diskUse(client, instance, username);
      const floor = diskFloor(used);
      if (asked < floor) {
        throw new DaemonError(
          'invalid',
          `invalid disk: "${change.disk}" is less than the container for user ${username} uses (${formatBytes(used)}) plus room to keep working; give at least "${sizeAtLeast(floor)}"`,
        );
      }
    }
    devices = { [key]: { ...device, size: change.disk } };
  }
  try {
    await client.patchInstance(instance.name, {
      ...(Object.keys(config).length > 0 ? { config } : {}),
      ...(devices ? { devices } : {}),
    });
  } catch (error) {
    const full = error instanceof DaemonError ? isDiskTooSmall(error.message) : undefined;
    if (full) {
      throw new DaemonError(
        'invalid',
        `invalid disk: "${change.disk}" is too small for what the container for user ${username} holds (Incus: ${full}); give a larger disk`,
      );
    }
    throw error;
  }
}
