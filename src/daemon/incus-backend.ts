// The daemon's Backend over Incus: containers are `<username>-container` instances and all of
// Containarium's own state (labels, keys, image, create status) lives in their `user.*` keys.
import { readFileSync } from 'node:fs';
import { clip } from '../shared/clip.ts';
import { parseSize } from '../shared/sizes.ts';
import { MAX_SSH_KEYS } from '../shared/ssh-key.ts';
import { containerName, usernameOf } from '../shared/username.ts';
import type {
  Backend,
  Container,
  CreateRequest,
  CreateResult,
  ListFilter,
  Metrics,
  SystemInfo,
} from './backend.ts';
import { DaemonError, type ErrorKind } from './errors.ts';
import type { IncusClient } from './incus.ts';
import {
  type ImageSource,
  type Instance,
  imageSource,
  isOurs,
  KEY,
  primaryAddress,
  REMOTES,
  sshKeysOf,
  toContainer,
  toMetrics,
} from './incus-wire.ts';
import {
  diskTooSmall,
  fitDefaults,
  type HostCapacity,
  isDiskTooSmall,
  limitProblems,
  memoryTooSmall,
  reachedLimit,
} from './limits.ts';
import { ownerAlive, ownerTag } from './owner.ts';
import { sshAccess } from './ssh-access.ts';

export type IncusBackendOptions = {
  /** Storage pool for root disks. */
  pool?: string;
  /** How long a new container may take to get an IPv4 address. */
  ipTimeoutSeconds?: number;
  /** Diagnostics (stderr by default). */
  log?: (line: string) => void;
  /** Wait before the first retry of a provisioning step after a transient Incus failure; the
   * second retry waits twice as long. */
  retryDelayMs?: number;
  /** How often resume() asks again while Incus does not answer. */
  resumeRetryMs?: number;
  /** The host to reach containers' private addresses through (`ssh -J HOST`), if any. */
  sshJump?: string | undefined;
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
};

/** What provisioning needs: all of it is also stored on the instance, so a resume can rebuild it. */
type Provisioning = Pick<CreateRequest, 'username' | 'sshKeys' | 'enableDocker'>;

/** How many abandoned creates are resumed at once. */
const RESUME_PARALLELISM = 2;
const ATTEMPTS = 3;

/** Incus failures that say nothing about the container and pass when tried again (seen under load). */
export const isTransient = (error: unknown): boolean =>
  /Failed to retrieve PID of executing child process|websocket|Operation not found|connection reset|ECONNRESET|socket connection was closed/i.test(
    message(error),
  );

const APT_ENV = { DEBIAN_FRONTEND: 'noninteractive' };

const notFound = (username: string) =>
  new DaemonError('not_found', `container for user ${username} not found`);
/** 409 for an existing container of ours; one whose create failed says why. */
const exists = (username: string, instance?: Instance) => {
  const reason = instance?.config[KEY.status] === 'error' ? instance.config[KEY.error] : '';
  return new DaemonError(
    'conflict',
    `container for user ${username} already exists${reason ? ` (its create failed: ${reason}; delete it to try again)` : ''}`,
  );
};
/** 409 for an instance with our naming that this daemon did not make: never adopted or deleted. */
const foreign = (name: string) =>
  new DaemonError(
    'conflict',
    `an instance named ${name} already exists in Incus but was not made by this daemon, which does not manage it; choose another username, or rename or remove that instance in Incus`,
  );
const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

export function createIncusBackend(
  client: IncusClient,
  options: IncusBackendOptions = {},
): IncusBackend {
  const pool = options.pool ?? 'default';
  const ipTimeout = options.ipTimeoutSeconds ?? 60;
  const log = options.log ?? ((line: string) => process.stderr.write(`containarium: ${line}\n`));
  const retryDelay = options.retryDelayMs ?? 1000;
  const resumeRetry = options.resumeRetryMs ?? 30_000;
  const owner = ownerTag();

  /** Creates in flight in this process (sync, async and resumed), by username. */
  const creating = new Map<string, Container>();
  /** Async creates that failed before their instance existed: nothing in Incus to mark. */
  const failedEarly = new Map<string, Container>();
  const locks = new Map<string, Promise<unknown>>();
  /** Set by close(): the daemon is stopping and takes no new creates. */
  let closed = false;
  /** Resolvers waiting for `creating` to empty. */
  let waiting: Array<() => void> = [];

  const wire = (instance: Instance) => toContainer(instance);

  /** Ends one create's claim; wakes settled() when it was the last. */
  function release(username: string) {
    creating.delete(username);
    if (creating.size > 0) return;
    for (const resolve of waiting) resolve();
    waiting = [];
  }

  /**
   * The instance by that name whether ours or not, or undefined when Incus has none. Its live
   * state (addresses, usage) costs Incus a look inside the container, so callers that need only
   * status and config skip it.
   */
  async function lookup(
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
  async function find(
    username: string,
    options: { withState?: boolean } = {},
  ): Promise<Instance | undefined> {
    const instance = await lookup(username, options);
    return instance && isOurs(instance) ? instance : undefined;
  }

  /** A container that exists only in this process: being created, or failed before Incus had it. */
  const ghost = (username: string) => creating.get(username) ?? failedEarly.get(username);

  async function mustFind(
    username: string,
    options: { withState?: boolean } = {},
  ): Promise<Instance> {
    const instance = await find(username, options);
    if (!instance) {
      if (creating.has(username)) throw stillCreating(username);
      throw notFound(username);
    }
    return instance;
  }

  const stillCreating = (username: string) =>
    new DaemonError(
      'conflict',
      `container for user ${username} is still being created; try again when it is ready`,
    );

  async function listInstances(recursion: 1 | 2): Promise<Instance[]> {
    const all = await (recursion === 2
      ? withoutState(
          () => client.instances(2),
          () => client.instances(1),
        )
      : client.instances(1));
    return all.filter(isOurs);
  }

  const setConfig = client.setConfig;
  const changeState = client.changeState;

  /** Force-stops a failed create's instance. After a failed start Incus reports it Stopped,
   * briefly Running, then Stopped again; so it must read Stopped for a full second. */
  async function forceStop(name: string) {
    let stoppedSince = 0;
    for (let attempt = 1; attempt <= 40; attempt++) {
      const instance = await client.instance(name);
      if (instance.status !== 'Stopped') {
        stoppedSince = 0;
        await changeState(name, 'stop', { force: true }).catch(() => undefined);
      } else if (!stoppedSince) {
        stoppedSince = Date.now();
      } else if (Date.now() - stoppedSince >= 1000) {
        return;
      }
      await Bun.sleep(250);
    }
    throw new DaemonError('internal', `container ${name} could not be stopped`);
  }

  /** Force stop and delete; for cleaning up after a failed create. */
  async function remove(name: string) {
    for (let attempt = 1; ; attempt++) {
      try {
        await forceStop(name);
        await client.deleteInstance(name);
        return;
      } catch (error) {
        if (error instanceof DaemonError && error.kind === 'not_found') return;
        // Delete can still say "Instance is running" just after Incus reported it stopped.
        if (attempt === 10) throw error;
        await Bun.sleep(500);
      }
    }
  }

  /**
   * Runs one idempotent step, again after a transient Incus failure (up to ATTEMPTS in all, with a
   * growing pause); any other failure, or the last one, is thrown.
   */
  async function retrying<T>(what: string, step: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await step();
      } catch (error) {
        if (attempt >= ATTEMPTS || !isTransient(error)) throw error;
        log(`${what}: ${message(error)}; trying again (${attempt}/${ATTEMPTS - 1})`);
        await Bun.sleep(retryDelay * attempt);
      }
    }
  }

  /** Runs a command that must succeed; the error names the command and shows its stderr. */
  async function run(name: string, argv: string[], environment: Record<string, string> = {}) {
    const result = await client.exec(name, argv, { environment, timeout: 600 });
    if (result.exitCode !== 0) {
      const detail = (result.stderr || result.stdout).trim().split('\n').slice(-3).join(' ');
      throw new DaemonError(
        'internal',
        `"${argv.join(' ')}" failed in ${name} (exit ${result.exitCode}): ${detail}`,
      );
    }
    return result.stdout;
  }

  const has = async (name: string, file: string) =>
    (await client.exec(name, ['test', '-x', file])).exitCode === 0;

  // ---- Create ---------------------------------------------------------------------------------

  const localImages = () => client.imageAliases();

  async function resolveImage(image: string): Promise<ImageSource> {
    const aliases = await localImages();
    const local = new Set(aliases.map((a) => a.name));
    const source = imageSource(image, local);
    if (!('server' in source) && !local.has(source.alias)) {
      const colon = image.indexOf(':');
      const reason =
        colon > 0
          ? `"${image.slice(0, colon)}" is not a known image server (known: ${Object.keys(REMOTES).join(', ')})`
          : 'it is not a local image and names no image server';
      throw imageError('invalid', image, reason, local);
    }
    return source;
  }

  /** The packed size of a local image, for messages; undefined when Incus does not say. */
  async function packedSize(alias: string): Promise<number | undefined> {
    const target = (await localImages()).find((a) => a.name === alias)?.target;
    if (!target) return undefined;
    const image = await client.image(target);
    return image.size || undefined;
  }

  const poolSpace = () =>
    client.poolResources(pool).catch(() => ({ space: { used: 0, total: 0 } }));

  /** The host's CPUs, memory and pool size; a figure Incus does not give is not checked. */
  async function hostCapacity(): Promise<HostCapacity> {
    const [resources, space] = await Promise.all([
      client.resources().catch(() => undefined),
      poolSpace(),
    ]);
    return {
      cpus: resources?.cpu.total,
      memoryBytes: resources?.memory.total,
      pool: { name: pool, bytes: space.space.total },
    };
  }

  /** Lowers defaults a small host cannot give, and refuses what the caller asked beyond it. */
  async function fitToHost(asked: CreateRequest) {
    const host = await hostCapacity();
    const { request, lowered } = fitDefaults(asked, host);
    const problems = limitProblems(request, host);
    if (problems.length > 0) throw new DaemonError('invalid', problems.join('; '));
    const note = lowered.length
      ? ` (defaults lowered to what this host has: ${lowered.join(', ')})`
      : '';
    return { request, note };
  }

  function createConfig(request: CreateRequest, image: string): Record<string, string> {
    return {
      'limits.cpu': String(request.cpu),
      'limits.memory': request.memory,
      'boot.autostart': 'true',
      [KEY.username]: request.username,
      [KEY.labels]: JSON.stringify(request.labels),
      [KEY.sshKeys]: JSON.stringify(request.sshKeys),
      [KEY.image]: image,
      [KEY.docker]: String(request.enableDocker),
      [KEY.status]: 'creating',
      [KEY.owner]: owner,
      ...(request.enableDocker
        ? {
            'security.nesting': 'true',
            'security.syscalls.intercept.mknod': 'true',
            'security.syscalls.intercept.setxattr': 'true',
          }
        : {}),
    };
  }

  async function createInstance(request: CreateRequest, image: string, source: ImageSource) {
    const name = containerName(request.username);
    // Marks the instance as this create's own, so a failure never deletes a racing winner's.
    const createId = crypto.randomUUID();
    try {
      await client.createInstance(
        {
          name,
          type: 'container',
          source,
          config: { ...createConfig(request, image), [KEY.createId]: createId },
          devices: { root: { type: 'disk', path: '/', pool, size: request.disk } },
        },
        'server' in source ? 900 : 300,
      );
    } catch (error) {
      if (error instanceof DaemonError && error.kind === 'unavailable') throw error;
      const text = message(error);
      // Another create of the same name got there first: Incus's 409, a failed unique
      // constraint, or "Instance is busy running a create operation", depending on timing.
      if (
        /already exists|UNIQUE constraint|is busy/i.test(text) ||
        (error instanceof DaemonError && (error.kind === 'conflict' || error.kind === 'busy'))
      ) {
        const winner = await lookup(request.username, NO_STATE).catch(() => undefined);
        throw winner && !isOurs(winner) ? foreign(name) : exists(request.username);
      }
      const left = await find(request.username, NO_STATE).catch(() => undefined);
      if (left?.config[KEY.createId] === createId) await remove(name).catch(() => undefined);
      const full = isDiskTooSmall(text);
      if (full) {
        const packed = 'server' in source ? undefined : await packedSize(source.alias);
        throw new DaemonError('invalid', diskTooSmall(request, packed, full));
      }
      if ('server' in source) {
        const local = (await localImages().catch(() => [])).map((a) => a.name);
        const reason = clip(text, 400);
        if (/couldn't be found|not found/i.test(text)) {
          throw imageError(
            'invalid',
            image,
            `${source.server} has no such image (${reason})`,
            local,
          );
        }
        throw imageError(
          'unavailable',
          image,
          `the image server ${source.server} is unreachable (${reason})`,
          local,
        );
      }
      throw new DaemonError('internal', `failed to create container ${name}: ${text}`);
    }
  }

  /** The highest memory use seen while each container started, for blameMemory. */
  const memoryPeaks = new Map<string, number>();

  /**
   * The state of a container coming up, or undefined while Incus cannot read it ("Invalid PID"
   * while its init is replaced or killed); an init that died leaves it stopped, which is final.
   */
  async function startingState(name: string) {
    try {
      const state = await client.instanceState(name);
      const peak = Math.max(memoryPeaks.get(name) ?? 0, state.memory.usage_peak);
      memoryPeaks.set(name, peak);
      return state;
    } catch (error) {
      if (!(error instanceof DaemonError && error.kind === 'internal')) throw error;
      const instance = await client.instance(name);
      if (instance.status === 'Stopped') {
        throw new DaemonError('internal', `container ${name} stopped while starting up`);
      }
      return undefined;
    }
  }

  async function waitForAddress(name: string): Promise<string> {
    const deadline = Date.now() + ipTimeout * 1000;
    for (;;) {
      const state = await startingState(name);
      const found = state && primaryAddress(state.network);
      if (found) return found.address;
      if (Date.now() > deadline) {
        throw new DaemonError(
          'internal',
          `container ${name} got no IPv4 address within ${ipTimeout} s`,
        );
      }
      await Bun.sleep(300);
    }
  }

  /** The user's uid and gid from /etc/passwd, through the file API: one call, running or not. */
  async function accountIds(name: string, username: string) {
    const passwd = await client.readFile(name, '/etc/passwd').catch(() => undefined);
    const line = passwd?.content.split('\n').find((l) => l.startsWith(`${username}:`));
    const [, , uid, gid] = line?.split(':') ?? [];
    return uid && gid ? { uid: Number(uid), gid: Number(gid) } : undefined;
  }

  /** Rewrites ~/.ssh/authorized_keys; false when the image has no such user account. */
  async function installKeys(name: string, username: string, keys: string[]) {
    const ids = await accountIds(name, username);
    if (!ids) return false;
    const home = `/home/${username}`;
    await client.makeDirectory(name, `${home}/.ssh`, { ...ids, mode: 0o700 });
    const content = keys.map((key) => `${key}\n`).join('');
    await client.writeFile(name, `${home}/.ssh/authorized_keys`, content, { ...ids, mode: 0o600 });
    return true;
  }

  /**
   * Packages, account, sudo and keys. Returns a note for the message when steps were skipped.
   * Every step is idempotent (apt, an account made only when missing, files written whole), so a
   * step is retried after a transient failure and a resumed create simply runs them all again.
   */
  async function provision(name: string, request: Provisioning): Promise<string> {
    const { username } = request;
    const step = <T>(what: string, work: () => Promise<T>) => retrying(`${what} in ${name}`, work);
    if (await step('looking for apt-get', () => has(name, '/usr/bin/apt-get'))) {
      await step('apt-get update', () => run(name, ['apt-get', 'update'], APT_ENV));
      const packages = ['openssh-server', 'sudo', ...(request.enableDocker ? ['docker.io'] : [])];
      await step('apt-get install', () =>
        run(name, ['apt-get', 'install', '-y', '--no-install-recommends', ...packages], APT_ENV),
      );
      await step('enabling ssh', async () => {
        if (await has(name, '/usr/bin/systemctl')) {
          await run(name, ['systemctl', 'enable', '--now', 'ssh']);
        }
      });
    }
    if (!(await step('looking for useradd', () => has(name, '/usr/sbin/useradd')))) {
      return ' (the image has no useradd, so no user account was made and no SSH keys were installed)';
    }
    await step('creating the account', async () => {
      if (!(await accountIds(name, username))) {
        await run(name, ['useradd', '-m', '-s', '/bin/bash', username]);
      }
    });
    await step('writing sudoers', async () => {
      if (!(await has(name, '/usr/bin/sudo'))) return;
      const sudoers = `${username} ALL=(ALL) NOPASSWD:ALL\n`;
      await client.writeFile(name, `/etc/sudoers.d/${username}`, sudoers, {
        uid: 0,
        gid: 0,
        mode: 0o440,
      });
    });
    if (request.enableDocker) {
      await step('joining the docker group', async () => {
        if (await has(name, '/usr/bin/docker')) {
          await run(name, ['usermod', '-aG', 'docker', username]);
        }
      });
    }
    await step('installing SSH keys', () => installKeys(name, username, request.sshKeys));
    return '';
  }

  /** Starts the instance unless it runs already (a resumed create may find it either way). */
  async function ensureRunning(name: string) {
    const instance = await client.instance(name);
    if (instance.status === 'Running') return;
    await changeState(name, instance.status === 'Frozen' ? 'unfreeze' : 'start');
  }

  /** Everything after the instance exists; a failure from too little memory is the limit's fault. */
  async function build(request: Provisioning) {
    try {
      return await setUp(request);
    } catch (error) {
      throw await blameMemory(request.username, error);
    } finally {
      memoryPeaks.delete(containerName(request.username));
    }
  }

  /** A failure after the container used all of its memory becomes a 400 that says so. */
  async function blameMemory(username: string, error: unknown): Promise<unknown> {
    if (error instanceof DaemonError && error.kind !== 'internal') return error;
    // Incus's own figures, no exec: a container at its limit can take a minute to run anything.
    // Its init may have been killed, so the peak seen while it started counts too.
    const name = containerName(username);
    const [instance, state] = await Promise.all([
      client.instance(name).catch(() => undefined),
      client.instanceState(name).catch(() => undefined),
    ]);
    const memory = instance?.expanded_config['limits.memory'] ?? '';
    const peak = Math.max(state?.memory.usage_peak ?? 0, memoryPeaks.get(name) ?? 0);
    if (!reachedLimit(peak, parseSize(memory)?.bytes ?? 0)) return error;
    const image = instance?.config[KEY.image] ?? '';
    return new DaemonError('invalid', memoryTooSmall({ memory, image }, clip(message(error), 300)));
  }

  /** Start, address, provisioning, status ready. */
  async function setUp(request: Provisioning): Promise<{ container: Container; note: string }> {
    const name = containerName(request.username);
    await retrying(`starting ${name}`, () => ensureRunning(name)).catch((error) => {
      throw new DaemonError('internal', `failed to start container ${name}: ${message(error)}`);
    });
    await waitForAddress(name);
    const note = await provision(name, request);
    await setConfig(name, { [KEY.status]: 'ready' });
    const instance = await find(request.username);
    if (!instance) throw new DaemonError('internal', `container ${name} vanished during create`);
    return { container: wire(instance), note };
  }

  /** Async failure: keep the instance (stopped) marked as error, so GET shows ERROR durably. */
  async function recordFailure(request: CreateRequest, error: unknown, instanceExists: boolean) {
    const name = containerName(request.username);
    log(`async create of ${name} failed: ${message(error)}`);
    if (!instanceExists) {
      if (!(error instanceof DaemonError && error.kind === 'conflict')) {
        failedEarly.set(request.username, {
          ...creatingContainer(request),
          state: 'error',
        });
      }
      return;
    }
    await markFailed(name, error);
  }

  /** Stops the instance and stores the reason: state ERROR, shown by the log and a later 409. */
  async function markFailed(name: string, error: unknown) {
    await forceStop(name).catch(() => undefined);
    await setConfig(name, {
      [KEY.status]: 'error',
      [KEY.error]: clip(message(error), 1000),
    }).catch((failure) => log(`could not mark ${name} as failed: ${message(failure)}`));
  }

  function creatingContainer(request: CreateRequest): Container {
    return {
      name: containerName(request.username),
      username: request.username,
      state: 'creating',
      resources: { cpu: String(request.cpu), memory: request.memory, disk: request.disk },
      sshKeys: request.sshKeys,
      network: null,
      createdAt: 0,
      updatedAt: 0,
      labels: request.labels,
      image: request.image,
      dockerEnabled: request.enableDocker,
    };
  }

  async function create(
    asked: CreateRequest,
    { async }: { async: boolean },
  ): Promise<CreateResult> {
    // The host's limits come before the claim: nothing may await between its check and its set.
    const { request, note: fitted } = await fitToHost(asked);
    const { username } = request;
    const name = containerName(username);
    const { image } = request;
    if (closed) throw shuttingDown();
    // Claimed before the next await, so a second create in this process loses at once.
    if (creating.has(username)) throw exists(username);
    creating.set(username, creatingContainer(request));
    let source: ImageSource;
    try {
      const existing = await lookup(username, NO_STATE);
      if (existing) throw isOurs(existing) ? exists(username, existing) : foreign(name);
      source = await resolveImage(image);
      failedEarly.delete(username);
    } catch (error) {
      release(username);
      throw error;
    }

    if (async) {
      const snapshot = creating.get(username) as Container;
      void (async () => {
        let instanceExists = false;
        try {
          await createInstance(request, image, source);
          instanceExists = true;
          await build(request);
        } catch (error) {
          await recordFailure(request, error, instanceExists);
        } finally {
          release(username);
        }
      })();
      return {
        container: snapshot,
        message: `Container creation started for user ${username}. Poll GET /v1/containers/${username} to check status.`,
        sshCommand: '',
      };
    }

    try {
      await createInstance(request, image, source);
      try {
        const { container, note } = await build(request);
        const access = sshAccess({
          username,
          address: container.network?.ipAddress ?? '',
          keys: request.sshKeys.length,
          account: (await accountIds(name, username)) !== undefined,
          jump: options.sshJump,
        });
        return {
          container,
          message: `Container ${name} created successfully${fitted}${note}${access.note}`,
          sshCommand: access.sshCommand,
        };
      } catch (error) {
        await remove(name).catch((failure) =>
          log(`could not remove half-made ${name}: ${message(failure)}`),
        );
        throw error instanceof DaemonError
          ? error
          : new DaemonError('internal', `failed to create container ${name}: ${message(error)}`);
      }
    } finally {
      release(username);
    }
  }

  // ---- Resume ---------------------------------------------------------------------------------

  const shuttingDown = () =>
    new DaemonError('unavailable', 'the daemon is shutting down; try again once it is back');

  /** A create marked "creating" whose owner process is gone (killed, or stopped past its grace). */
  const abandoned = (instance: Instance) => {
    const tag = instance.config[KEY.owner];
    return (
      instance.config[KEY.status] === 'creating' &&
      !!tag &&
      !ownerAlive(tag) &&
      !creating.has(usernameOf(instance.name))
    );
  };

  /** Claims an abandoned create and runs its steps again; ends RUNNING, or ERROR with the reason. */
  async function resumeOne(instance: Instance) {
    const username = usernameOf(instance.name);
    if (closed || creating.has(username)) return;
    creating.set(username, wire(instance));
    const provisioning: Provisioning = {
      username,
      sshKeys: sshKeysOf(instance.config),
      enableDocker: instance.config[KEY.docker] === 'true',
    };
    try {
      await setConfig(instance.name, { [KEY.owner]: owner });
      log(`resuming the unfinished create of ${instance.name}`);
      await build(provisioning);
      log(`resumed create of ${instance.name} is done`);
    } catch (error) {
      log(`resumed create of ${instance.name} failed: ${message(error)}`);
      await markFailed(instance.name, error);
    } finally {
      release(username);
    }
  }

  /** Incus may not answer yet when the daemon starts: the look for unfinished creates waits. */
  async function resume() {
    let instances: Instance[] | undefined;
    while (!instances && !closed) {
      try {
        instances = await listInstances(1);
      } catch (error) {
        log(
          `containarium: cannot look for unfinished creates yet (${message(error)}); trying again in ${resumeRetry / 1000}s`,
        );
        await Bun.sleep(resumeRetry);
      }
    }
    const left = (instances ?? []).filter(abandoned);
    if (left.length > 0) log(`${left.length} unfinished create(s) to resume`);
    const queue = [...left];
    const worker = async () => {
      for (let next = queue.shift(); next && !closed; next = queue.shift()) await resumeOne(next);
    };
    await Promise.all(Array.from({ length: RESUME_PARALLELISM }, worker));
  }

  // ---- Read -----------------------------------------------------------------------------------

  async function list(filter: ListFilter): Promise<Container[]> {
    const containers = (await listInstances(2)).map(wire);
    const seen = new Set(containers.map((c) => c.username));
    for (const [username, container] of [...failedEarly, ...creating]) {
      if (!seen.has(username)) containers.push(container);
      seen.add(username);
    }
    return containers
      .filter((c) => matches(c, filter))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async function get(username: string) {
    const instance = await find(username);
    if (!instance) {
      const container = ghost(username);
      if (container) return { container, metrics: null };
      throw notFound(username);
    }
    const running = instance.status === 'Running' && instance.state;
    return {
      container: wire(instance),
      metrics: running && instance.state ? toMetrics(instance.name, instance.state) : null,
    };
  }

  async function metrics(username?: string): Promise<Metrics[]> {
    if (username === undefined) {
      return (await listInstances(2))
        .filter((i) => i.state)
        .map((i) => toMetrics(i.name, i.state as NonNullable<Instance['state']>))
        .sort((a, b) => a.name.localeCompare(b.name));
    }
    const name = containerName(username);
    try {
      if (!(await find(username, NO_STATE))) throw notFound(username);
      return [toMetrics(name, await client.instanceState(name))];
    } catch (error) {
      if (!(error instanceof DaemonError && error.kind === 'not_found')) throw error;
      // Being created (or failed before Incus had it): get shows it, so it has no metrics yet.
      if (ghost(username)) return [];
      throw notFound(username);
    }
  }

  async function systemInfo(): Promise<SystemInfo> {
    const [server, resources, space, instances] = await Promise.all([
      client.server(),
      client.resources(),
      poolSpace(),
      listInstances(1),
    ]);
    const running = instances.filter((i) => i.status === 'Running').length;
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
    };
  }

  // ---- Change ---------------------------------------------------------------------------------

  async function destroy(username: string, { force }: { force: boolean }) {
    const name = containerName(username);
    if (creating.has(username)) throw stillCreating(username);
    const instance = await find(username, NO_STATE);
    if (!instance) {
      if (failedEarly.delete(username)) return { containerName: name };
      throw notFound(username);
    }
    if (instance.status !== 'Stopped') {
      if (!force) {
        throw new DaemonError(
          'invalid',
          `container ${name} is running; stop it first or delete with force`,
        );
      }
      await changeState(name, 'stop', { force: true });
    }
    await client.deleteInstance(name);
    return { containerName: name };
  }

  async function start(username: string): Promise<Container> {
    const instance = await mustFind(username, NO_STATE);
    if (instance.status !== 'Running') {
      await changeState(instance.name, instance.status === 'Frozen' ? 'unfreeze' : 'start');
    }
    return wire(await mustFind(username));
  }

  async function stop(username: string, options: { force: boolean; timeout?: number }) {
    const instance = await mustFind(username, NO_STATE);
    if (instance.status !== 'Stopped') {
      await changeState(instance.name, 'stop', {
        force: options.force,
        timeout: options.timeout ?? 30,
      });
    }
    return wire(await mustFind(username));
  }

  /** Key changes for one user run one at a time: each is a read-modify-write of one config key. */
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
      if (creating.has(username)) throw stillCreating(username);
      const instance = await mustFind(username, NO_STATE);
      const keys = change(sshKeysOf(instance.config));
      await setConfig(instance.name, { [KEY.sshKeys]: JSON.stringify(keys) });
      await installKeys(instance.name, username, keys);
      return { totalKeys: keys.length };
    });

  const backend: IncusBackend = {
    resume,
    close() {
      closed = true;
    },
    settled: () =>
      creating.size === 0
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            waiting.push(resolve);
          }),
    inFlight: () => [...creating.keys()],
    create,
    list,
    get,
    delete: destroy,
    start,
    stop,
    metrics,
    systemInfo,
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

const NO_STATE = { withState: false };

/** `image "X" could not be fetched: REASON; local images: a, b`: clients rely on both ends. */
function imageError(kind: ErrorKind, image: string, reason: string, local: Iterable<string>) {
  const names = [...local].sort().join(', ') || 'none';
  return new DaemonError(
    kind,
    `image "${image}" could not be fetched: ${reason}; local images: ${names}`,
  );
}

/**
 * Reading an instance's state can fail on its own (Incus answers "Invalid PID" while a failed
 * start settles); the instance is still there, so read it again without state.
 */
async function withoutState<T>(withState: () => Promise<T>, plain: () => Promise<T>): Promise<T> {
  try {
    return await withState();
  } catch (error) {
    if (error instanceof DaemonError && error.kind === 'internal') return plain();
    throw error;
  }
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
