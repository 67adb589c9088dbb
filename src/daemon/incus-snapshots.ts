// A container's snapshots over Incus: list, take, delete, roll back. The backend hands in how it
// finds the user's own container and its per-user lock, so a change to one container's snapshots
// never interleaves with another change to it.
import type { Backend, Rollback, Snapshot } from './backend.ts';
import { DaemonError } from './errors.ts';
import type { IncusClient } from './incus.ts';
import { stillCreating } from './incus-instances.ts';
import { rootOf } from './incus-resize.ts';
import { type Instance, toSnapshot } from './incus-wire.ts';

export type SnapshotDeps = {
  client: IncusClient;
  /** The user's container if this daemon made it; throws not_found otherwise. */
  mustFind(username: string): Promise<Instance>;
  /** Runs one user's changes one at a time. */
  serial<T>(username: string, work: () => Promise<T>): Promise<T>;
  /** True while a create of the user's container runs in this process. */
  creating(username: string): boolean;
};

type SnapshotMethods = Pick<
  Backend,
  'listSnapshots' | 'createSnapshot' | 'deleteSnapshot' | 'rollbackSnapshot'
>;

export const snapshotNotFound = (username: string, name: string) =>
  new DaemonError(
    'not_found',
    `snapshot "${name}" not found in the container for user ${username}`,
  );

/**
 * Incus's words when a storage driver (ZFS, LVM, Ceph) can restore only the newest snapshot.
 * btrfs and dir restore any of them.
 */
const NEWEST_ONLY =
  /subsequent snapshot|not the (latest|newest|most recent)|only the (latest|newest)/i;

/** The limits a restore must not bring back from a snapshot. */
const LIMIT_KEYS = ['limits.cpu', 'limits.memory'];

/**
 * After a restore (Incus brings back the snapshot's config and devices too): puts the limits
 * `before` had back, CPU, memory and the root disk size, so they never come from a snapshot.
 */
async function keepLimits(client: IncusClient, before: Instance, username: string) {
  const after = await client.instance(before.name);
  const config: Record<string, string> = {};
  for (const key of LIMIT_KEYS) {
    const was = before.config[key] ?? '';
    // An empty value removes the key, as it was absent before.
    if ((after.config[key] ?? '') !== was) config[key] = was;
  }
  const devices: Record<string, Record<string, string>> = {};
  const root = rootOf(before.devices);
  if (root) {
    const [key, device] = root;
    const now = after.devices[key];
    if (now && (now.size ?? '') !== (device.size ?? ''))
      devices[key] = { ...now, size: device.size ?? '' };
  }
  if (Object.keys(config).length + Object.keys(devices).length === 0) return;
  await client
    .patchInstance(before.name, {
      ...(Object.keys(config).length > 0 ? { config } : {}),
      ...(Object.keys(devices).length > 0 ? { devices } : {}),
    })
    .catch((error: unknown) => {
      throw new DaemonError(
        'internal',
        `the container for user ${username} was rolled back, but its limits could not be set back to what they were before (${(error as Error).message}); resize it to the limits it should have`,
      );
    });
}

export function snapshotMethods({
  client,
  mustFind,
  serial,
  creating,
}: SnapshotDeps): SnapshotMethods {
  const snapshotsOf = async (instance: Instance): Promise<Snapshot[]> =>
    (await client.snapshots(instance.name))
      .map(toSnapshot)
      .sort((a, b) => a.createdAt - b.createdAt);

  /** A change: one at a time per user, never while its create still runs. */
  const change = <T>(username: string, work: (instance: Instance) => Promise<T>) =>
    serial(username, async () => {
      if (creating(username)) throw stillCreating(username);
      return work(await mustFind(username));
    });

  const named = (snapshots: Snapshot[], username: string, name: string) => {
    const index = snapshots.findIndex((s) => s.name === name);
    if (index < 0) throw snapshotNotFound(username, name);
    return { snapshot: snapshots[index] as Snapshot, newer: snapshots.slice(index + 1) };
  };

  return {
    listSnapshots: async (username) => snapshotsOf(await mustFind(username)),

    createSnapshot: (username, name) =>
      change(username, async (instance) => {
        const taken = new DaemonError(
          'conflict',
          `snapshot "${name}" already exists in the container for user ${username}; choose another name`,
        );
        if ((await snapshotsOf(instance)).some((s) => s.name === name)) throw taken;
        await client.createSnapshot(instance.name, name).catch((error: unknown) => {
          throw error instanceof DaemonError && /already exists/i.test(error.message)
            ? taken
            : error;
        });
        return named(await snapshotsOf(instance), username, name).snapshot;
      }),

    deleteSnapshot: (username, name) =>
      change(username, async (instance) => {
        const { snapshot } = named(await snapshotsOf(instance), username, name);
        await client.deleteSnapshot(instance.name, name);
        return { freedBytes: snapshot.usedBytes };
      }),

    rollbackSnapshot: (username, name, { force, destroyNewer }) =>
      change(username, async (instance): Promise<Rollback> => {
        const { newer } = named(await snapshotsOf(instance), username, name);
        const running = instance.status !== 'Stopped';
        if (running && !force) {
          throw new DaemonError(
            'invalid',
            `the container for user ${username} is ${instance.status.toLowerCase()}; a rollback stops it and starts it again: stop it first, or roll back with force`,
          );
        }
        const destroyed: string[] = [];
        if (destroyNewer) {
          for (const snapshot of [...newer].reverse()) {
            await client.deleteSnapshot(instance.name, snapshot.name);
            destroyed.push(snapshot.name);
          }
        }
        await client.restoreSnapshot(instance.name, name).catch((error: unknown) => {
          if (!(error instanceof DaemonError) || !NEWEST_ONLY.test(error.message)) throw error;
          const names = newer.map((s) => s.name).join(', ');
          throw new DaemonError(
            'invalid',
            `snapshot "${name}" is not the newest of the container for user ${username} (newer: ${names}), and its storage restores only the newest; roll back with destroyNewer to delete the newer snapshots first`,
          );
        });
        await keepLimits(client, instance, username);
        return { containerStopped: running, destroyedSnapshots: destroyed };
      }),
  };
}
