// Finding the daemon's instances in Incus: by username (ours or not), and all of ours; plus the
// errors that name a container. Shared by the backend and the create flow.
import { containerName } from '../shared/username.ts';
import { DaemonError } from './errors.ts';
import type { IncusClient } from './incus.ts';
import { type Instance, isOurs, KEY, managedNics, withLeaseAddress } from './incus-wire.ts';
import type { HostCapacity } from './limits.ts';

export const notFound = (username: string) =>
  new DaemonError('not_found', `container for user ${username} not found`);
/** 409 for an existing container of ours; one whose create failed says why. */
export const exists = (username: string, instance?: Instance) => {
  const reason = instance?.config[KEY.status] === 'error' ? instance.config[KEY.error] : '';
  return new DaemonError(
    'conflict',
    `container for user ${username} already exists${reason ? ` (its create failed: ${reason}; delete it to try again)` : ''}`,
  );
};
/** 409 for an instance with our naming that this daemon did not make: never adopted or deleted. */
export const foreign = (name: string) =>
  new DaemonError(
    'conflict',
    `an instance named ${name} already exists in Incus but was not made by this daemon, which does not manage it; choose another username, or rename or remove that instance in Incus`,
  );
export const stillCreating = (username: string) =>
  new DaemonError(
    'conflict',
    `container for user ${username} is still being created; try again when it is ready`,
  );

/**
 * The instance by that name whether ours or not, or undefined when Incus has none. Its live
 * state (addresses, usage) costs Incus a look inside the container, so callers that need only
 * status and config skip it.
 */
export async function lookup(
  client: IncusClient,
  username: string,
  { withState = true }: { withState?: boolean } = {},
): Promise<Instance | undefined> {
  const name = containerName(username);
  const plain = () => client.instance(name);
  try {
    return await (withState
      ? withoutState(() => client.instance(name, { withState: true }), plain)
      : plain());
  } catch (error) {
    if (error instanceof DaemonError && error.kind === 'not_found') return undefined;
    throw error;
  }
}

/** The user's container if this daemon made it; any other instance of that name is invisible. */
export async function find(
  client: IncusClient,
  daemonId: string,
  username: string,
  options: { withState?: boolean } = {},
): Promise<Instance | undefined> {
  const instance = await lookup(client, username, options);
  return instance && isOurs(instance, daemonId) ? instance : undefined;
}

/** Every instance this daemon made; recursion 2 adds live state when Incus can read it. */
export function listInstances(
  client: IncusClient,
  daemonId: string,
  recursion: 1 | 2,
): Promise<Instance[]> {
  return ours(
    daemonId,
    recursion === 2
      ? () =>
          withoutState(
            () => client.instances(2),
            () => client.instances(1),
          )
      : () => client.instances(1),
  );
}

/**
 * Every instance this daemon made, with the one part of live state a list shows: addresses.
 * Gathering full state costs Incus a look at each container's disk usage, so: where Incus can
 * narrow recursion=2 to state.network, that (one call); elsewhere (Incus 6.0) config and status
 * (recursion=1) and the DHCP leases of the managed networks the running ones are on, one call
 * per network. Only when a running container has no lease there (an unmanaged NIC, an address
 * not handed out yet) is full state read instead.
 */
export function listWithAddresses(client: IncusClient, daemonId: string): Promise<Instance[]> {
  return ours(daemonId, async () => {
    const narrowed = await client.narrowedInstances(['state.network']);
    if (narrowed) return narrowed;
    const all = await client.instances(1);
    const running = all.filter((i) => isOurs(i, daemonId) && i.status === 'Running');
    const networks = [...new Set(running.flatMap((i) => Object.values(managedNics(i))))];
    const leases = (await Promise.all(networks.map((n) => client.leases(n)))).flat();
    const addressed = new Map(running.map((i) => [i, withLeaseAddress(i, leases)]));
    if ([...addressed.values()].some((i) => i === undefined)) {
      return withoutState(
        () => client.instances(2),
        () => Promise.resolve(all),
      );
    }
    return all.map((i) => addressed.get(i) ?? i);
  });
}

/**
 * The instances `read` gives that this daemon made. Another user's instance deleted while Incus
 * gathers the list can fail the whole call as "not found"; read again, it is no longer there.
 */
async function ours(daemonId: string, read: () => Promise<Instance[]>): Promise<Instance[]> {
  const all = await read().catch((error: unknown) => {
    if (error instanceof DaemonError && error.kind === 'not_found') return read();
    throw error;
  });
  return all.filter((instance) => isOurs(instance, daemonId));
}

export const NO_STATE = { withState: false };

/**
 * Reading an instance's state can fail on its own (Incus answers "Invalid PID" while a failed
 * start settles); the instance is still there, so read it again without state.
 */
export async function withoutState<T>(
  withState: () => Promise<T>,
  plain: () => Promise<T>,
): Promise<T> {
  try {
    return await withState();
  } catch (error) {
    if (error instanceof DaemonError && error.kind === 'internal') return plain();
    throw error;
  }
}

/** A storage pool's space; zeros when Incus does not say. */
export const poolSpace = (client: IncusClient, pool: string) =>
  client.poolResources(pool).catch(() => ({ space: { used: 0, total: 0 } }));

/** The host's CPUs, memory and pool size; a figure Incus does not give is not checked. */
export async function hostCapacity(client: IncusClient, pool: string): Promise<HostCapacity> {
  const [resources, space] = await Promise.all([
    client.resources().catch(() => undefined),
    poolSpace(client, pool),
  ]);
  return {
    cpus: resources?.cpu.total,
    memoryBytes: resources?.memory.total,
    pool: { name: pool, bytes: space.space.total },
  };
}
