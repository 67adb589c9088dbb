// The Incus create flow: fit to the host, make the instance, start it, wait for an address,
// provision it; sync or async, with the bookkeeping of creates in flight (claims, failures before
// Incus had the instance, shutdown drain) and the resume of creates a killed daemon left behind.
import { clip } from '../shared/clip.ts';
import { parseSize } from '../shared/sizes.ts';
import { containerName, usernameOf } from '../shared/username.ts';
import type { Container, CreateRequest, CreateResult } from './backend.ts';
import type { Clock } from './clock.ts';
import { createProgress, PHASES } from './create-progress.ts';
import { DaemonError, type ErrorKind } from './errors.ts';
import { type CachePick, imageCache } from './image-cache.ts';
import type { IncusClient } from './incus.ts';
import {
  exists,
  find,
  foreign,
  hostCapacity,
  listInstances,
  lookup,
  NO_STATE,
} from './incus-instances.ts';
import {
  type ImageSource,
  type Instance,
  imageSource,
  isOurs,
  KEY,
  packagesOf,
  primaryAddress,
  REMOTES,
  sshKeysOf,
  toContainer,
} from './incus-wire.ts';
import {
  diskTooSmall,
  fitDefaults,
  isDiskTooSmall,
  limitProblems,
  memoryTooSmall,
  reachedLimit,
} from './limits.ts';
import type { Logger } from './log.ts';
import { ownerAlive } from './owner.ts';
import { type Provisioning, packageList, provision } from './provision.ts';
import { message, retrying } from './retry.ts';
import { containerAccess } from './ssh-access.ts';

/** How many abandoned creates are resumed at once. */
const RESUME_PARALLELISM = 2;
/** Tries of one provisioning step in all, after transient Incus failures. */
const ATTEMPTS = 3;
/**
 * How long a resume waits while Incus is still busy with the killed daemon's own create
 * operation (an image download may take as long as create waits for one), and how often it asks.
 */
const BUSY_WAIT_MS = 900_000;
const BUSY_POLL_MS = 2000;

export type CreateFlowOptions = {
  pool: string;
  /** How long a new container may take to get an IPv4 address. */
  ipTimeoutSeconds: number;
  log: Logger;
  clock: Clock;
  /** Wait before the first retry of a provisioning step; the second waits twice as long. */
  retryDelayMs: number;
  /** How often resume() asks again while Incus does not answer. */
  resumeRetryMs: number;
  sshJump?: string | undefined;
  /** This process's owner tag, stored on the instances it creates. */
  owner: string;
  /** This daemon's id, stored on the instances it creates; only those are its own. */
  daemonId: string;
  /** The image cache's --image-cache-max-age; 0 turns it off. */
  imageCacheMaxAgeMs: number;
};

export type CreateFlow = ReturnType<typeof createFlow>;

export function createFlow(client: IncusClient, options: CreateFlowOptions) {
  const { pool, log, clock, owner, daemonId } = options;
  const ipTimeout = options.ipTimeoutSeconds;
  const resumeRetry = options.resumeRetryMs;
  const retry = retrying({ attempts: ATTEMPTS, delayMs: options.retryDelayMs, clock, log });

  /** Creates in flight in this process (sync, async and resumed), by username. */
  const creating = new Map<string, Container>();
  /** Async creates that failed before their instance existed: nothing in Incus to mark. */
  const failedEarly = new Map<string, Container>();
  /** The step each create is at, and how async creates ended: what GET shows of them. */
  const progress = createProgress();
  /** Set by close(): the daemon is stopping and takes no new creates. */
  let closed = false;
  /** Resolvers waiting for `creating` to empty. */
  let waiting: Array<() => void> = [];

  /** Ends one create's claim; wakes settled() when it was the last. */
  function release(username: string) {
    creating.delete(username);
    progress.end(username, undefined);
    if (creating.size > 0) return;
    for (const resolve of waiting) resolve();
    waiting = [];
  }

  /** Force-stops a failed create's instance. After a failed start Incus reports it Stopped,
   * briefly Running, then Stopped again; so it must read Stopped for a full second. */
  async function forceStop(name: string) {
    let stoppedSince = 0;
    for (let attempt = 1; attempt <= 40; attempt++) {
      const instance = await client.instance(name);
      if (instance.status !== 'Stopped') {
        stoppedSince = 0;
        await client.changeState(name, 'stop', { force: true }).catch(() => undefined);
      } else if (!stoppedSince) {
        stoppedSince = clock.now();
      } else if (clock.now() - stoppedSince >= 1000) {
        return;
      }
      await clock.sleep(250);
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
        await clock.sleep(500);
      }
    }
  }

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

  /** Lowers defaults a small host cannot give, and refuses what the caller asked beyond it. */
  async function fitToHost(asked: CreateRequest) {
    const host = await hostCapacity(client, pool);
    const { request, lowered } = fitDefaults(asked, host);
    const problems = limitProblems(request, host);
    if (problems.length > 0) throw new DaemonError('invalid', problems.join('; '));
    const note = lowered.length
      ? ` (defaults lowered to what this host has: ${lowered.join(', ')})`
      : '';
    return { request, note };
  }

  /** The keys Docker needs inside a container (also the image cache's builder's). */
  const dockerConfig = (enableDocker: boolean): Record<string, string> =>
    enableDocker
      ? {
          'security.nesting': 'true',
          'security.syscalls.intercept.mknod': 'true',
          'security.syscalls.intercept.setxattr': 'true',
        }
      : {};

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
      ...(request.packages?.length ? { [KEY.packages]: JSON.stringify(request.packages) } : {}),
      [KEY.status]: 'creating',
      [KEY.owner]: owner,
      [KEY.daemon]: daemonId,
      ...dockerConfig(request.enableDocker),
    };
  }

  async function createInstance(
    request: CreateRequest,
    image: string,
    source: ImageSource,
    cached?: string,
  ) {
    const name = containerName(request.username);
    // Marks the instance as this create's own, so a failure never deletes a racing winner's.
    const createId = crypto.randomUUID();
    try {
      await client.createInstance(
        {
          name,
          type: 'container',
          source,
          config: {
            ...createConfig(request, image),
            [KEY.createId]: createId,
            ...(cached ? { [KEY.cachedImage]: cached } : {}),
          },
          devices: { root: { type: 'disk', path: '/', pool, size: request.disk } },
        },
        'server' in source ? 900 : 300,
      );
    } catch (error) {
      if (error instanceof DaemonError && error.kind === 'unavailable') throw error;
      const text = message(error);
      // Another create of the same name got there first: Incus's 409, a failed unique
      // constraint, or "Instance is busy running a create operation", depending on timing.
      // (incus.ts turns "busy" into the kind 'busy'.)
      if (
        /already exists|UNIQUE constraint/i.test(text) ||
        (error instanceof DaemonError && (error.kind === 'conflict' || error.kind === 'busy'))
      ) {
        const winner = await lookup(client, request.username, NO_STATE).catch(() => undefined);
        throw winner && !isOurs(winner, daemonId) ? foreign(name) : exists(request.username);
      }
      const left = await find(client, daemonId, request.username, NO_STATE).catch(() => undefined);
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

  const cache = imageCache(client, {
    maxAgeMs: options.imageCacheMaxAgeMs,
    pool,
    daemonId,
    owner,
    log,
    clock,
    retry,
    start: async (name) => {
      await retry(`starting ${name}`, () => ensureRunning(name));
      await waitForAddress(name).finally(() => memoryPeaks.delete(name));
    },
    remove,
  });

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
    const deadline = clock.now() + ipTimeout * 1000;
    for (;;) {
      const state = await startingState(name);
      const found = state && primaryAddress(state.network);
      if (found) return found.address;
      if (clock.now() > deadline) {
        throw new DaemonError(
          'internal',
          `container ${name} got no IPv4 address within ${ipTimeout} s`,
        );
      }
      await clock.sleep(300);
    }
  }

  /** Starts the instance unless it runs already (a resumed create may find it either way). */
  async function ensureRunning(name: string) {
    const instance = await client.instance(name);
    if (instance.status === 'Running') return;
    await client.changeState(name, instance.status === 'Frozen' ? 'unfreeze' : 'start');
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
    progress.enter(request.username, PHASES.starting);
    await retry(`starting ${name}`, () => ensureRunning(name)).catch((error) => {
      // Busy is Incus's own 409 (another operation holds the instance), kept for the caller.
      if (error instanceof DaemonError && error.kind === 'busy') throw error;
      throw new DaemonError('internal', `failed to start container ${name}: ${message(error)}`);
    });
    progress.enter(request.username, PHASES.network);
    await waitForAddress(name);
    const note = await provision(client.guest(name), request, retry, (phase) =>
      progress.enter(request.username, phase),
    );
    await client.setConfig(name, { [KEY.status]: 'ready' });
    const instance = await find(client, daemonId, request.username);
    if (!instance) throw new DaemonError('internal', `container ${name} vanished during create`);
    return { container: toContainer(instance), note };
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
        progress.end(request.username, { error: clip(message(error), 1000) });
      }
      return;
    }
    await markFailed(name, error);
  }

  /** Stops the instance and stores the reason: state ERROR, shown by the log and a later 409. */
  async function markFailed(name: string, error: unknown) {
    await forceStop(name).catch(() => undefined);
    await client
      .setConfig(name, {
        [KEY.status]: 'error',
        [KEY.error]: clip(message(error), 1000),
      })
      .catch((failure) => log(`could not mark ${name} as failed: ${message(failure)}`));
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

  /** The rest of a create once its instance exists, and the answer a sync create gives. */
  async function complete(
    request: CreateRequest,
    fitted: string,
    cached: boolean,
  ): Promise<CreateResult> {
    const name = containerName(request.username);
    const { container, note } = await build({ ...request, cached });
    const access = await containerAccess(client.guest(name), container, options.sshJump);
    return {
      container,
      message: `Container ${name} created successfully${fitted}${note}${access.note}`,
      sshCommand: access.sshCommand,
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
    let pick: CachePick;
    try {
      const existing = await lookup(client, username, NO_STATE);
      if (existing) throw isOurs(existing, daemonId) ? exists(username, existing) : foreign(name);
      source = await resolveImage(image);
      pick = await cache
        .pick(source, packageList(request), dockerConfig(request.enableDocker))
        .catch((error) => {
          log(`image cache: ${message(error)}; creating ${name} without it`);
          return undefined;
        });
      failedEarly.delete(username);
    } catch (error) {
      release(username);
      throw error;
    }

    // From the cached image when there is one: its packages are in place.
    const cached = pick && 'use' in pick ? pick.use : undefined;
    const from: ImageSource = cached ? { type: 'image', alias: cached.alias } : source;
    /** After a create without a cached image: build the entry for the next ones. */
    const fill = () => {
      if (pick && 'build' in pick) cache.refresh(pick.build);
    };

    progress.enter(username, PHASES.creating);
    if (async) {
      const snapshot = creating.get(username) as Container;
      void (async () => {
        let instanceExists = false;
        try {
          await createInstance(request, image, from, cached?.fingerprint);
          instanceExists = true;
          const { message } = await complete(request, fitted, cached !== undefined);
          progress.end(username, { message });
          fill();
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
      await createInstance(request, image, from, cached?.fingerprint);
      try {
        const result = await complete(request, fitted, cached !== undefined);
        fill();
        return result;
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

  /** Claimed resumes waiting for one of the RESUME_PARALLELISM slots. */
  const resumeQueue: Array<() => Promise<void>> = [];
  let resumeSlots = RESUME_PARALLELISM;

  function nextResume() {
    while (resumeSlots > 0 && resumeQueue.length > 0) {
      resumeSlots--;
      const job = resumeQueue.shift() as () => Promise<void>;
      void job().finally(() => {
        resumeSlots++;
        nextResume();
      });
    }
  }

  /**
   * Resumes the create if it is abandoned; resolves when that is done. The claim is taken before
   * any await, so one create is never resumed twice at once, whoever meets it first (the start-up
   * scan, a GET or a list).
   */
  function adopt(instance: Instance): Promise<void> {
    if (closed || !abandoned(instance)) return Promise.resolve();
    const username = usernameOf(instance.name);
    creating.set(username, toContainer(instance));
    return new Promise<void>((resolve) => {
      resumeQueue.push(() => resumeOne(instance).finally(resolve));
      nextResume();
    });
  }

  /**
   * Runs a resumed create's steps again, while Incus may still be busy with the killed daemon's
   * own create operation ("Instance is busy running a create operation"): it waits for that.
   */
  async function whileBusy(name: string, steps: () => Promise<unknown>) {
    const deadline = clock.now() + BUSY_WAIT_MS;
    for (let told = false; ; told = true) {
      try {
        return await steps();
      } catch (error) {
        if (!(error instanceof DaemonError && error.kind === 'busy') || clock.now() >= deadline) {
          throw error;
        }
        if (!told) log(`${name} is busy in Incus (${message(error)}); resuming once it is free`);
        await clock.sleep(BUSY_POLL_MS);
      }
    }
  }

  /** A claimed abandoned create, run again; ends RUNNING, or ERROR with the reason. */
  async function resumeOne(instance: Instance) {
    const username = usernameOf(instance.name);
    const provisioning: Provisioning = {
      username,
      sshKeys: sshKeysOf(instance.config),
      enableDocker: instance.config[KEY.docker] === 'true',
      packages: packagesOf(instance.config),
      cached: instance.config[KEY.cachedImage] !== undefined,
    };
    try {
      if (closed) return;
      log(`resuming the unfinished create of ${instance.name}`);
      await whileBusy(instance.name, async () => {
        // The killed daemon's create may still run in Incus: touching the instance now would
        // break it, so this counts as busy until that operation has ended.
        const running = await client.runningOperations(instance.name);
        if (running.length > 0) {
          throw new DaemonError(
            'busy',
            `Incus is still running an operation on it: ${running.join(', ')}`,
          );
        }
        await client.setConfig(instance.name, { [KEY.owner]: owner });
        await build(provisioning);
      });
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
        instances = await listInstances(client, daemonId, 1);
      } catch (error) {
        log(
          `cannot look for unfinished creates yet (${message(error)}); trying again in ${resumeRetry / 1000}s`,
        );
        await clock.sleep(resumeRetry);
      }
    }
    const left = (instances ?? []).filter(abandoned);
    if (left.length > 0) log(`${left.length} unfinished create(s) to resume`);
    await Promise.all(left.map(adopt));
  }

  return {
    create,
    resume,
    /** Waits for a container this daemon just started to get its address (start's SSH command). */
    addressAfterStart: (name: string) =>
      waitForAddress(name).finally(() => {
        // Its memory peaks are a create's business, and kept while one runs.
        if (!creating.has(usernameOf(name))) memoryPeaks.delete(name);
      }),
    /**
     * Instances a read met: any abandoned create among them (its daemon was killed after this one
     * started) is resumed in the background, so none reads CREATING until the next restart.
     */
    adoptAbandoned(instances: Instance[]) {
      for (const instance of instances) void adopt(instance);
    },
    /** Resolves once no image-cache build runs in this process. */
    cacheIdle: cache.idle,
    /** Refuses new creates and resumes from now on (503). */
    close() {
      closed = true;
    },
    /** Resolves once no create (sync, async or resumed) is in flight in this process. */
    settled: () =>
      creating.size === 0
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            waiting.push(resolve);
          }),
    /** The users whose creates are in flight, for the shutdown log. */
    inFlight: () => [...creating.keys()],
    /** True while this process creates the user's container. */
    busy: (username: string) => creating.has(username),
    /** A container that exists only in this process: being created, or failed before Incus had it. */
    ghost: (username: string) => creating.get(username) ?? failedEarly.get(username),
    /** Every such container, failed ones first. */
    ghosts: (): [string, Container][] => [...failedEarly, ...creating],
    /** Drops a failed-early create (its delete); false when there was none. */
    forget: (username: string) => {
      progress.forget(username);
      return failedEarly.delete(username);
    },
    /** What GET shows of a create: its phase while it runs, how an async one ended. */
    progress: {
      phase: progress.phase,
      message: progress.message,
      failure: progress.failure,
    },
  };
}

/** `image "X" could not be fetched: REASON; local images: a, b`: clients rely on both ends. */
function imageError(kind: ErrorKind, image: string, reason: string, local: Iterable<string>) {
  const names = [...local].sort().join(', ') || 'none';
  return new DaemonError(
    kind,
    `image "${image}" could not be fetched: ${reason}; local images: ${names}`,
  );
}
