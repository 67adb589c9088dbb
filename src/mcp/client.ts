// The Containarium REST client (ky): one method per route the tools use, each response checked with valibot.
import ky, { HTTPError, type KyInstance, type Options, TimeoutError } from 'ky';
import * as v from 'valibot';
import {
  type ByteBudget,
  boundedResponse,
  createByteBudget,
  MAX_RESPONSE_BYTES,
} from '../shared/bounded-body.ts';
import { readClaims } from '../shared/jwt.ts';
import { VERSION } from '../shared/version.ts';
import {
  CreateContainerResponseSchema,
  DeleteContainerResponseSchema,
  GetContainerResponseSchema,
  GetMetricsResponseSchema,
  GetSystemInfoResponseSchema,
  ListContainersResponseSchema,
  SshKeyResponseSchema,
  StartStopContainerResponseSchema,
} from '../shared/wire.ts';
import type { Config } from './config.ts';

const HealthSchema = v.object({ status: v.nullish(v.string(), '') });

/** Read timeout; create waits far longer because a synchronous create provisions packages. */
export const TIMEOUTS = { read: 30_000, change: 120_000, create: 600_000 };
/** How long health() lets /health take: a daemon that is up answers at once. */
export const HEALTH_TIMEOUT_MS = 5_000;

/**
 * Most bytes of daemon responses mcp-server holds while reading them, all calls together: with
 * MAX_RESPONSE_BYTES per response and 32 calls at once, memory would otherwise grow to 512 MiB.
 */
export const MAX_RESPONSES_BYTES = 16 * 1024 * 1024;
/** What each response may hold whatever the others hold: small answers never fail for big ones. */
export const RESPONSE_FLOOR_BYTES = 64 * 1024;
/**
 * Past the floor, a response reserves the budget in steps this large, so that only a few large
 * answers are read at once and the rest stop early, instead of all growing until the budget
 * runs out with every one of them holding a share.
 */
export const RESPONSE_STEP_BYTES = 4 * 1024 * 1024;

// The bytes of an answer given up are garbage that Bun frees only at its next collection; many
// given up at once would pile up first. One collection per turn of the event loop, after them.
let collecting = false;
const collect = () => {
  if (collecting) return;
  collecting = true;
  setTimeout(() => {
    collecting = false;
    Bun.gc(true);
  }, 0);
};

/** The budget of the process: every client of it reads through the same one. */
const RESPONSES = createByteBudget(
  MAX_RESPONSES_BYTES,
  RESPONSE_FLOOR_BYTES,
  collect,
  RESPONSE_STEP_BYTES,
);

/** The longest wait before a retry, whatever the server's Retry-After says: a tool call never stalls. */
export const MAX_RETRY_WAIT_MS = 2000;

/** Waits `ms`, or rejects when `signal` aborts: the client's one way to pause, injectable for tests. */
export type Wait = (ms: number, signal: AbortSignal | undefined) => Promise<void>;

const realWait: Wait = (ms, signal) =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const done = () => {
      signal?.removeEventListener('abort', stop);
      resolve();
    };
    const timer = setTimeout(done, ms);
    const stop = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', stop, { once: true });
  });

/**
 * How long to wait before retry `attempt` (1, 2, …): the server's Retry-After (seconds or a date),
 * else 300 ms doubling; never more than MAX_RETRY_WAIT_MS.
 */
export function retryWait(error: unknown, attempt: number, now = Date.now()): number {
  const header = error instanceof HTTPError ? error.response.headers.get('retry-after') : null;
  let ms = 300 * 2 ** (attempt - 1);
  if (header?.trim()) {
    const seconds = Number(header);
    const at = Date.parse(header);
    if (Number.isFinite(seconds) && seconds >= 0) ms = seconds * 1000;
    else if (Number.isFinite(at)) ms = Math.max(0, at - now);
  }
  return Math.min(MAX_RETRY_WAIT_MS, ms);
}

/** Limits and image left undefined are left out, so the daemon applies its defaults. */
export type CreateInput = {
  username: string;
  cpu?: string | undefined;
  memory?: string | undefined;
  disk?: string | undefined;
  sshKeys: string[];
  image?: string | undefined;
  /** Undefined leaves it to the template, else the daemon's default (false). */
  enableDocker?: boolean | undefined;
  /** A template name (this project's daemon): it fills what the rest leaves out. */
  template?: string | undefined;
};

/**
 * Which daemon generation we talk to. v0.3 takes `enableDocker` and ignores unknown fields;
 * HEAD renamed it `enablePodman` (Feb 2026) and, since April 2026, rejects unknown fields with
 * 400. We send both names and drop `enableDocker` for good once a daemon rejects it.
 */
export type Dialect = 'v0.3' | 'head';

type Call = { signal?: AbortSignal | undefined };

/**
 * A route v0.3 lacks (one of upstream HEAD's, or one this project added: README;
 * api/containarium.openapi.json), on a daemon without it: it answers 404 (or 501). Never a sign
 * that a container is missing.
 */
export class RouteUnsupportedError extends Error {
  constructor(
    readonly route: string,
    /** What the route is for, as a noun phrase: "listing images". */
    readonly feature: string,
    readonly status: number,
  ) {
    super(`the daemon has no ${route} route (HTTP ${status})`);
    this.name = 'RouteUnsupportedError';
  }
}

/** A call of a route v0.3 lacks (HEAD's, or this project's): `feature` names it in the unsupported sentence. */
type AddedCall = Call & { feature?: string };

/**
 * A daemon's words for a missing container: v0.3 answers 500 "Instance not found", this daemon
 * and HEAD 404 "container for user alice not found". Under /v1/containers/{username}/ a 404
 * with these words is a missing container, any other 404 a missing route.
 */
export const CONTAINER_MISSING = /instance not found|container[\w ]* not found/i;

/** A daemon's words for a missing snapshot (a 404 too), which is no missing route either. */
const SNAPSHOT_MISSING = /\bsnapshot\b[^;]{0,160}\b(not found|does not exist)\b/i;

/**
 * A 404 or 501 of a call that names its `feature`, unless it says the container (or the snapshot)
 * is missing.
 */
function unsupported(error: unknown, route: string, call: AddedCall): unknown {
  if (call.feature === undefined || !(error instanceof HTTPError)) return error;
  const status = error.response.status;
  if (status !== 404 && status !== 501) return error;
  const body = typeof error.data === 'string' ? error.data : JSON.stringify(error.data ?? '');
  if (CONTAINER_MISSING.test(body) || SNAPSHOT_MISSING.test(body)) return error;
  return new RouteUnsupportedError(route, call.feature, status);
}

/** The limits a resize changes, as the wire spells them; those left out stay as they are. */
export type ResizeInput = { cpu?: string; memory?: string; disk?: string };

export type ContainariumClient = ReturnType<typeof createClient>;

export function createClient(
  config: Config,
  options: { fetch?: typeof fetch; wait?: Wait; now?: () => number; budget?: ByteBudget } = {},
) {
  const wait = options.wait ?? realWait;
  const now = options.now ?? Date.now;
  const timeout = (kind: keyof typeof TIMEOUTS) => config.timeoutMs ?? TIMEOUTS[kind];
  // ky leaves `timeout` out of the options its hooks see, so it travels in the context too.
  const within = (kind: keyof typeof TIMEOUTS) => {
    const ms = timeout(kind);
    return { timeout: ms, context: { timeoutMs: ms } };
  };
  const fetchImpl = options.fetch ?? globalThis.fetch;
  // Where and how to connect: shared by the API calls and the unauthenticated health check.
  const transport: Options = {
    prefix: config.serverUrl,
    headers: { 'user-agent': `containarium-mcp/${VERSION}` },
    // Every answer is read whole here, at most MAX_RESPONSE_BYTES, within the call's timeout, and
    // from the budget shared by all the answers being read.
    fetch: async (input, init) =>
      boundedResponse(
        await fetchImpl(input, init),
        MAX_RESPONSE_BYTES,
        options.budget ?? RESPONSES,
      ),
    ...(config.caCert ? ({ tls: { ca: config.caCert } } as Options) : {}),
  };
  const base: Options = {
    ...transport,
    // GETs are safe to repeat; anything that changes state is never retried behind the user's back.
    // Not 429: the daemon sends it to lock out bad tokens, and waiting it out helps nobody.
    // A server's Retry-After counts only up to 2 s, so a tool call never stalls for a minute.
    // ky itself waits 0: the wait happens in beforeRetry, through `wait`, so tests need no clock.
    retry: {
      limit: 2,
      methods: ['get'],
      statusCodes: [408, 502, 503, 504],
      delay: () => 0,
      maxRetryAfter: 0,
      backoffLimit: 0,
    },
    hooks: {
      // The timeout this request really ran with, for the error sentence (see timeoutUsed).
      beforeError: [
        ({ error, options }) =>
          error instanceof TimeoutError
            ? Object.assign(error, { timeoutMs: options.context.timeoutMs })
            : error,
      ],
      beforeRetry: [
        ({ request, error, retryCount }) =>
          wait(retryWait(error, retryCount, now()), request.signal),
      ],
      beforeRequest: [
        ({ request }) => {
          request.headers.set('authorization', `Bearer ${config.token.get()}`);
        },
      ],
    },
  };
  const http: KyInstance = ky.create(base);
  let dialect: Dialect = 'v0.3';
  const user = (username: string) => `v1/containers/${encodeURIComponent(username)}`;

  const get = <S extends v.GenericSchema>(path: string, schema: S, call: Call) =>
    http.get(path, { ...within('read'), signal: call.signal ?? null }).json(schema);

  async function change<S extends v.GenericSchema>(
    method: 'POST' | 'PUT' | 'DELETE',
    path: string,
    schema: S,
    call: AddedCall & { json?: unknown; timeoutMs?: number } = {},
  ) {
    const ms = Math.max(timeout('change'), call.timeoutMs ?? 0);
    try {
      return await http(path, {
        method,
        ...(call.json === undefined ? {} : { json: call.json }),
        timeout: ms,
        context: { timeoutMs: ms },
        signal: call.signal ?? null,
      }).json(schema);
    } catch (error) {
      throw unsupported(error, `${method} /${path}`, call);
    }
  }

  return {
    timeoutFor: timeout,
    /** Waits `ms` unless `signal` aborts first (then rejects): the pause between polls. */
    wait,

    /**
     * GET `path` (no leading slash), the answer read with `schema`: a tool file declares its own
     * read this way, so a new route needs no method here. Give `feature` for a route this
     * project added, so a daemon without it gives RouteUnsupportedError.
     */
    async get<S extends v.GenericSchema>(path: string, schema: S, call: AddedCall = {}) {
      try {
        return await get(path, schema, call);
      } catch (error) {
        throw unsupported(error, `GET /${path.split('?')[0]}`, call);
      }
    },

    /**
     * A change (POST, PUT, DELETE) of `path` with an optional JSON body, the answer read with
     * `schema`, like get: never retried, waiting `timeoutMs` (or the change timeout, whichever is
     * longer).
     */
    change,

    /** POST `json` to `path`, the answer read with `schema`: a change (see change). */
    post: <S extends v.GenericSchema>(
      path: string,
      json: unknown,
      schema: S,
      call: AddedCall & { timeoutMs?: number } = {},
    ) => change('POST', path, schema, { ...call, json }),

    /**
     * With `async`, every daemon generation answers at once with the container CREATING (one
     * that ignores it answers when done): poll getContainer until it is RUNNING or ERROR.
     */
    async createContainer(input: CreateInput, call: Call & { async?: boolean } = {}) {
      // The dialect of the last send: creates run in parallel, and one may switch it meanwhile.
      let sentIn: Dialect = dialect;
      const send = () => {
        sentIn = dialect;
        // Only the limits given: the object itself always goes, as upstream's own client sends
        // it, and its empty fields are unset to every daemon generation (CONTAINARIUM-API.md §7).
        const resources = { cpu: input.cpu, memory: input.memory, disk: input.disk };
        const body: Record<string, unknown> = {
          username: input.username,
          resources: Object.fromEntries(Object.entries(resources).filter(([, value]) => value)),
        };
        if (input.image) body.image = input.image;
        if (input.sshKeys.length > 0) body.sshKeys = input.sshKeys;
        if (call.async) body.async = true;
        // false is every daemon's default, so it is left out and needs no dialect. Until a daemon
        // rejects enableDocker, both names go: each older daemon ignores the one it does not know.
        if (input.enableDocker) {
          body.enablePodman = true;
          if (dialect === 'v0.3') body.enableDocker = true;
        }
        // Only this project's daemon knows templates (the tools check first), and it takes
        // enableDocker; an explicit false must go, or the template's true would win.
        if (input.template) {
          body.template = input.template;
          if (input.enableDocker === false) body.enableDocker = false;
        }
        return http
          .post('v1/containers', {
            json: body,
            ...within('create'),
            signal: call.signal ?? null,
          })
          .json(CreateContainerResponseSchema);
      };
      try {
        return await send();
      } catch (error) {
        // A 400 means nothing was created, so sending again in HEAD's dialect is safe.
        if (sentIn === 'v0.3' && input.enableDocker && rejectsEnableDocker(error)) {
          dialect = 'head';
          return await send();
        }
        throw error;
      }
    },

    /** `state` ("running") is sent as the contract's enum name; v0.3 daemons ignore it. */
    listContainers: (call: Call & { state?: string | undefined } = {}) =>
      get(
        call.state
          ? `v1/containers?state=CONTAINER_STATE_${call.state.toUpperCase()}`
          : 'v1/containers',
        ListContainersResponseSchema,
        call,
      ),

    getContainer: (username: string, call: Call = {}) =>
      get(user(username), GetContainerResponseSchema, call),

    deleteContainer: (username: string, force: boolean, call: Call = {}) =>
      http
        .delete(user(username), {
          searchParams: { force: String(force) },
          ...within('change'),
          signal: call.signal ?? null,
        })
        .json(DeleteContainerResponseSchema),

    startContainer: (username: string, call: Call = {}) =>
      http
        .post(`${user(username)}/start`, {
          json: {},
          ...within('change'),
          signal: call.signal ?? null,
        })
        .json(StartStopContainerResponseSchema),

    stopContainer: (username: string, force: boolean, call: Call = {}) =>
      http
        .post(`${user(username)}/stop`, {
          json: { force },
          ...within('change'),
          signal: call.signal ?? null,
        })
        .json(StartStopContainerResponseSchema),

    addSshKey: (username: string, key: string, call: Call = {}) =>
      http
        .post(`${user(username)}/ssh-keys`, {
          json: { sshPublicKey: key },
          ...within('change'),
          signal: call.signal ?? null,
        })
        .json(SshKeyResponseSchema),

    /** The key travels URL-encoded in the path, as the contract says. */
    removeSshKey: (username: string, key: string, call: Call = {}) =>
      http
        .delete(`${user(username)}/ssh-keys/${encodeURIComponent(key)}`, {
          ...within('change'),
          signal: call.signal ?? null,
        })
        .json(SshKeyResponseSchema),

    /** PUT .../resize (upstream HEAD): v0.3 daemons lack it, which gives RouteUnsupportedError. */
    async resizeContainer(username: string, change: ResizeInput, call: Call = {}) {
      const path = `${user(username)}/resize`;
      try {
        return await http
          .put(path, { json: change, ...within('change'), signal: call.signal ?? null })
          .json(StartStopContainerResponseSchema);
      } catch (error) {
        throw unsupported(error, 'PUT /v1/containers/{username}/resize', {
          feature: 'resizing containers',
        });
      }
    },

    /** Who the token calls are made with says it is (unchecked claims); undefined if unreadable. */
    caller(): { username: string | undefined; admin: boolean } | undefined {
      try {
        const claims = readClaims(config.token.get());
        return claims && { username: claims.username, admin: !!claims.roles?.includes('admin') };
      } catch {
        return undefined;
      }
    },

    getMetrics: (username: string | undefined, call: Call = {}) =>
      get(
        username ? `v1/metrics/${encodeURIComponent(username)}` : 'v1/metrics',
        GetMetricsResponseSchema,
        call,
      ),

    getSystemInfo: (call: Call = {}) => get('v1/system/info', GetSystemInfoResponseSchema, call),

    /** GET /health: no token, a short timeout and no retries, for `mcp-server doctor`. */
    health: (call: Call = {}) =>
      ky
        .get('health', {
          ...transport,
          timeout: HEALTH_TIMEOUT_MS,
          retry: 0,
          signal: call.signal ?? null,
        })
        .json(HealthSchema),
  };
}

function rejectsEnableDocker(error: unknown): boolean {
  if (!(error instanceof HTTPError) || error.response.status !== 400) return false;
  const body = typeof error.data === 'string' ? error.data : JSON.stringify(error.data ?? '');
  return /unknown field.{0,4}enableDocker/i.test(body);
}
