// The daemon's Backend over Incus: containers are `<username>-container` instances and all of
// Containarium's own state (labels, keys, image, create status) lives in their `user.*` keys.
// Reads and changes are here; creating (and resuming creates) is incus-create.ts, what runs
// inside a new container is provision.ts.
import { readFileSync } from 'node:fs';
import { MAX_SSH_KEYS } from '../shared/ssh-key.ts';
import { containerName } from '../shared/username.ts';
import type {
  Backend,
  Container,
  Images,
  ListFilter,
  Metrics,
  Reachable,
  ResizeRequest,
  SystemInfo,
} from './backend.ts';
import { type Clock, systemClock } from './clock.ts';
import { readLogs, runCommand } from './commands.ts';
import { DaemonError } from './errors.ts';
import type { IncusClient } from './incus.ts';
import { createFlow } from './incus-create.ts';
import {
  find,
  listInstances,
  listWithAddresses,
  NO_STATE,
  notFound,
  poolSpace,
  stillCreating,
} from './incus-instances.ts';
import { resizeInstance } from './incus-resize.ts';
import { snapshotMethods } from './incus-snapshots.ts';
import {
  DEFAULT_DAEMON_ID,
  type Instance,
  KEY,
  REMOTES,
  sshKeysOf,
  toContainer,
  toImage,
  toMetrics,
} from './incus-wire.ts';
import { type Logger, silent } from './log.ts';
import { ownerTag } from './owner.ts';
import { installKeys } from './provision.ts';
import { containerAccess } from './ssh-access.ts';
import { CPU_WINDOW_MS, committed, cpuPercent, loadAverages } from './usage.ts';

export type IncusBackendOptions = {
  /** Storage pool for root disks. */
  pool?: string;
  /** How long a new container may take to get an IPv4 address. */
  ipTimeoutSeconds?: number;
  /** The daemon's logger (silent by default). */
  log?: Logger;
  /** Time for every wait (retry pauses, polls, deadlines); the system's by default. */
  clock?: Clock;
  /** Wait before the first retry of a provisioning step after a transient Incus failure; the
   * second retry waits twice as long. */
  retryDelayMs?: number;
  /** How often resume() asks again while Incus does not answer. */
  resumeRetryMs?: number;
  /** The host to reach containers' private addresses through (`ssh -J HOST`), if any. */
  sshJump?: string | undefined;
  /** The image of a create that names none (--default-image); upstream's by default. */
  defaultImage?: string | undefined;
  /**
   * This daemon's id (--daemon-id), stored on every instance it creates: on a shared Incus it
   * manages only instances with its id (default "default", which instances without one have).
   */
  daemonId?: string;
  /**
   * How old a cached provisioned image may be before it is rebuilt (--image-cache-max-age);
   * 0 turns the image cache off, as by default here (the daemon's flag defaults to 7 days).
   */
  imageCacheMaxAgeMs?: number;
};

/** The Backend plus the daemon's own lifecycle: resume on start, drain on stop. */
export type IncusBackend = Backend & {
  /** Finishes the creates an earlier daemon process left marked "creating"; resolves when done. */
  resume(): Promise<void>;
  /** Refuses new creates and resumes from now on (503). */
  close(): void;
  /** Resolves once no create (sync, async or resumed) is in flight in this process. */
  settled(): Promise<void>;
  /** The users whose creates are in flight, for the shutdown log. */
  inFlight(): string[];
  /** Resolves once no image-cache build runs in this process. */
  cacheIdle(): Promise<void>;
};

export function createIncusBackend(
  client: IncusClient,
  options: IncusBackendOptions = {},
): IncusBackend {
  const pool = options.pool ?? 'default';
  const { defaultImage } = options;
  const daemonId = options.daemonId ?? DEFAULT_DAEMON_ID;
  const flow = createFlow(client, {
    pool,
    ipTimeoutSeconds: options.ipTimeoutSeconds ?? 60,
    log: options.log ?? silent,
    clock: options.clock ?? systemClock,
    retryDelayMs: options.retryDelayMs ?? 1000,
    resumeRetryMs: options.resumeRetryMs ?? 30_000,
    sshJump: options.sshJump,
    owner: ownerTag(),
    daemonId,
    imageCacheMaxAgeMs: options.imageCacheMaxAgeMs ?? 0,
  });
  const clock = options.clock ?? systemClock;
  const locks = new Map<string, Promise<unknown>>();

  /** Two readings CPU_WINDOW_MS apart, and the time between their answers. */
  async function twoReadings<T>(read: () => Promise<T>) {
    const first = await read();
    const start = clock.now();
    await clock.sleep(CPU_WINDOW_MS);
    const second = await read();
    return { first, second, elapsedMs: clock.now() - start };
  }

  async function mustFind(
    username: string,
    options: { withState?: boolean } = {},
  ): Promise<Instance> {
    const instance = await find(client, daemonId, username, options);
    if (!instance) {
      if (flow.busy(username)) throw stillCreating(username);
      throw notFound(username);
    }
    return instance;
  }

  // ---- Read -----------------------------------------------------------------------------------

  async function list(filter: ListFilter): Promise<Container[]> {
    // Addresses are all of the live state a list shows: only they are gathered.
    const instances = await listWithAddresses(client, daemonId);
    flow.adoptAbandoned(instances);
    const containers = instances.map(toContainer);
    const seen = new Set(containers.map((c) => c.username));
    for (const [username, container] of flow.ghosts()) {
      if (!seen.has(username)) containers.push(container);
      seen.add(username);
    }
    return containers
      .filter((c) => matches(c, filter))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async function get(username: string) {
    const instance = await find(client, daemonId, username);
    const { progress } = flow;
    if (!instance) {
      const container = flow.ghost(username);
      if (!container) throw notFound(username);
      const create = { phase: progress.phase(username), error: progress.failure(username) };
      return { container, metrics: null, sshCommand: '', create: { ...create, message: '' } };
    }
    flow.adoptAbandoned([instance]);
    const container = toContainer(instance);
    // Ready in Incus, but its create is still finishing (SSH access, its message): not done yet.
    if (flow.busy(username) && container.state === 'running') container.state = 'creating';
    return {
      container,
      // Sampling CPU takes a second: not for a create still being followed by polls of get.
      metrics: container.state === 'creating' ? null : await sampledMetrics(instance),
      sshCommand: await sshCommandOf(container),
      create: {
        phase: container.state === 'creating' ? progress.phase(username) : '',
        error: container.state === 'error' ? (instance.config[KEY.error] ?? '') : '',
        message: container.state === 'running' ? progress.message(username) : '',
      },
    };
  }

  /** A running instance's metrics with its CPU share: a second reading of its state a window later. */
  async function sampledMetrics(instance: Instance): Promise<Metrics | null> {
    const first = instance.state;
    if (instance.status !== 'Running' || !first) return null;
    const start = clock.now();
    await clock.sleep(CPU_WINDOW_MS);
    // Stopped or gone since: the one reading there is, with no share to tell.
    const second = await client.instanceState(instance.name).catch(() => undefined);
    if (!second) return toMetrics(instance.name, first);
    const percent = cpuPercent(first.cpu.usage, second.cpu.usage, clock.now() - start);
    return toMetrics(instance.name, second, percent);
  }

  async function metrics(username?: string): Promise<Metrics[]> {
    if (username === undefined) {
      // One Incus call per reading, for every container at once.
      const { first, second, elapsedMs } = await twoReadings(() =>
        listInstances(client, daemonId, 2),
      );
      const before = new Map(first.map((i) => [i.name, i.state?.cpu.usage]));
      return second
        .filter((i) => i.state)
        .map((i) => {
          const state = i.state as NonNullable<Instance['state']>;
          // One that was not there (or not running) at the first reading has no share to tell.
          const usage = before.get(i.name);
          const percent = usage === undefined ? 0 : cpuPercent(usage, state.cpu.usage, elapsedMs);
          return toMetrics(i.name, state, i.status === 'Running' ? percent : 0);
        })
        .sort((a, b) => a.name.localeCompare(b.name));
    }
    const name = containerName(username);
    try {
      if (!(await find(client, daemonId, username, NO_STATE))) throw notFound(username);
      const { first, second, elapsedMs } = await twoReadings(() => client.instanceState(name));
      const running = second.status === 'Running';
      const percent = running ? cpuPercent(first.cpu.usage, second.cpu.usage, elapsedMs) : 0;
      return [toMetrics(name, second, percent)];
    } catch (error) {
      if (!(error instanceof DaemonError && error.kind === 'not_found')) throw error;
      // Being created (or failed before Incus had it): get shows it, so it has no metrics yet.
      if (flow.ghost(username)) return [];
      throw notFound(username);
    }
  }

  async function systemInfo(): Promise<SystemInfo> {
    const [server, resources, space, instances] = await Promise.all([
      client.server(),
      client.resources(),
      poolSpace(client, pool),
      listInstances(client, daemonId, 1),
    ]);
    const running = instances.filter((i) => i.status === 'Running').length;
    const host = {
      cpus: resources.cpu.total,
      memoryBytes: resources.memory.total,
      diskBytes: space.space.total,
    };
    const commit = committed(instances, host);
    // The load is the host's own: only known when Incus runs on this host.
    const [load1, load5, load15] = client.local ? loadAverages() : [0, 0, 0];
    return {
      incusVersion: server.environment.server_version,
      os: server.environment.os_name,
      kernelVersion: server.environment.kernel_version,
      totalCpus: resources.cpu.total,
      totalMemoryBytes: resources.memory.total,
      availableMemoryBytes: Math.max(0, resources.memory.total - resources.memory.used),
      totalDiskBytes: space.space.total,
      availableDiskBytes: Math.max(0, space.space.total - space.space.used),
      containersRunning: running,
      containersStopped: instances.length - running,
      containersTotal: instances.length,
      hostname: server.environment.server_name,
      uptimeSeconds: client.local ? hostUptime() : 0,
      cpuLoad1min: load1,
      cpuLoad5min: load5,
      cpuLoad15min: load15,
      committedCpus: commit.cpus,
      committedMemoryBytes: commit.memoryBytes,
      committedDiskBytes: commit.diskBytes,
    };
  }

  async function listImages(): Promise<Images> {
    const images = (await client.images()).flatMap((image) => toImage(image) ?? []);
    images.sort((a, b) => (a.aliases[0] ?? '').localeCompare(b.aliases[0] ?? ''));
    return { images, remotes: Object.keys(REMOTES) };
  }

  // ---- Change ---------------------------------------------------------------------------------

  async function destroy(username: string, { force }: { force: boolean }) {
    const name = containerName(username);
    if (flow.busy(username)) throw stillCreating(username);
    const instance = await find(client, daemonId, username, NO_STATE);
    if (!instance) {
      if (flow.forget(username)) return { containerName: name };
      throw notFound(username);
    }
    flow.forget(username);
    if (instance.status !== 'Stopped') {
      if (!force) {
        throw new DaemonError(
          'invalid',
          `container ${name} is running; stop it first or delete with force`,
        );
      }
      await client.changeState(name, 'stop', { force: true });
    }
    await client.deleteInstance(name);
    return { containerName: name };
  }

  /** Create's SSH command for a container as it is now; no look inside one without keys. */
  const sshCommandOf = async (container: Container) =>
    container.sshKeys.length === 0
      ? ''
      : (await containerAccess(client.guest(container.name), container, options.sshJump))
          .sshCommand;

  async function start(username: string): Promise<Reachable> {
    const instance = await mustFind(username, NO_STATE);
    if (instance.status !== 'Running') {
      await client.changeState(instance.name, instance.status === 'Frozen' ? 'unfreeze' : 'start');
      // Its SSH command needs the address the container is given once it runs.
      const keys = sshKeysOf(instance.config).length;
      if (keys > 0) await flow.addressAfterStart(instance.name).catch(() => undefined);
    }
    const container = toContainer(await mustFind(username));
    return { container, sshCommand: await sshCommandOf(container) };
  }

  async function stop(username: string, options: { force: boolean; timeout?: number }) {
    const instance = await mustFind(username, NO_STATE);
    if (instance.status !== 'Stopped') {
      await client.changeState(instance.name, 'stop', {
        force: options.force,
        timeout: options.timeout ?? 30,
      });
    }
    return toContainer(await mustFind(username));
  }

  /** The name of the user's container, which must be running for exec and logs. */
  async function runningName(username: string): Promise<string> {
    const instance = await mustFind(username, NO_STATE);
    if (instance.status !== 'Running') {
      throw new DaemonError(
        'invalid',
        `container ${instance.name} is not running (${instance.status.toLowerCase()}); start it first`,
      );
    }
    return instance.name;
  }

  /** Changes to one user's container run one at a time: each is a read-modify-write of it. */
  function serial<T>(username: string, work: () => Promise<T>): Promise<T> {
    const previous = locks.get(username) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(work);
    locks.set(username, next);
    void next
      .finally(() => {
        if (locks.get(username) === next) locks.delete(username);
      })
      .catch(() => undefined);
    return next;
  }

  const changeKeys = (username: string, change: (keys: string[]) => string[]) =>
    serial(username, async () => {
      // Provisioning writes authorized_keys itself; a change now could be overwritten.
      if (flow.busy(username)) throw stillCreating(username);
      const instance = await mustFind(username, NO_STATE);
      const keys = change(sshKeysOf(instance.config));
      await client.setConfig(instance.name, { [KEY.sshKeys]: JSON.stringify(keys) });
      await installKeys(client.guest(instance.name), username, keys);
      return { totalKeys: keys.length };
    });

  const resize = (username: string, change: ResizeRequest) =>
    serial(username, async () => {
      if (flow.busy(username)) throw stillCreating(username);
      const instance = await mustFind(username, NO_STATE);
      // Another process may still be making it: Incus breaks a volume changed while it creates.
      if (instance.config[KEY.status] === 'creating') throw stillCreating(username);
      await resizeInstance(client, instance, change, { pool, username });
      return toContainer(await mustFind(username));
    });

  const backend: IncusBackend = {
    resume: flow.resume,
    close: flow.close,
    settled: flow.settled,
    inFlight: flow.inFlight,
    cacheIdle: flow.cacheIdle,
    create: (request, how) =>
      flow.create(
        defaultImage && request.defaulted?.includes('image')
          ? { ...request, image: defaultImage }
          : request,
        how,
      ),
    list,
    get,
    delete: destroy,
    start,
    stop,
    metrics,
    systemInfo,
    listImages,
    addSshKey: (username, key) =>
      changeKeys(username, (keys) => {
        if (keys.some((k) => sameKey(k, key))) return keys;
        // The same limit as create's sshKeys, so no route grows authorized_keys without bound.
        if (keys.length >= MAX_SSH_KEYS) {
          throw new DaemonError(
            'invalid',
            `invalid sshPublicKey: the container for user ${username} already has ${MAX_SSH_KEYS} SSH keys, the most it takes; remove one first`,
          );
        }
        return [...keys, key];
      }),
    removeSshKey: (username, key) =>
      changeKeys(username, (keys) => {
        const left = keys.filter((k) => !sameKey(k, key));
        if (left.length === keys.length) {
          throw new DaemonError(
            'not_found',
            `SSH key not found in the container for user ${username}`,
          );
        }
        return left;
      }),
    resize,
    exec: async (username, request) =>
      runCommand(client.guest(await runningName(username)), request, clock),
    logs: async (username, request) => readLogs(client.guest(await runningName(username)), request),
    ...snapshotMethods({
      client,
      mustFind: (username) => mustFind(username, NO_STATE),
      serial,
      creating: flow.busy,
    }),
    async ping() {
      try {
        await client.ping();
        return true;
      } catch {
        return false;
      }
    },
  };
  return backend;
}

/** Two keys are the same when type and key material match; comments do not matter. */
function sameKey(a: string, b: string): boolean {
  const material = (key: string) => key.trim().split(/\s+/).slice(0, 2).join(' ');
  return material(a) === material(b);
}

function matches(container: Container, filter: ListFilter): boolean {
  if (filter.username && container.username !== filter.username) return false;
  if (filter.state && filter.state !== 'unspecified' && container.state !== filter.state) {
    return false;
  }
  for (const [key, value] of Object.entries(filter.labels ?? {})) {
    if (container.labels[key] !== value) return false;
  }
  return true;
}

function hostUptime(): number {
  try {
    return Math.floor(Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0])) || 0;
  } catch {
    return 0;
  }
}
