// The daemon's REST API on Bun.serve: the 11 v0.3 routes plus /health, upstream's wire format,
// auth on every /v1 route, CORS for listed origins only, one log line per request.
import type { Server } from 'bun';
import { BodyTooLargeError, readBounded } from '../shared/bounded-body.ts';
import { formatBytes } from '../shared/sizes.ts';
import { isValidUsername } from '../shared/username.ts';
import type {
  WireContainer,
  WireMetrics,
  WireNetwork,
  WireResources,
  WireSystemInfo,
} from '../shared/wire.ts';
import { type Cidr, clientAddress } from './address.ts';
import { type Authenticator, authorizeUser, type Principal, requireAdmin } from './auth.ts';
import type { Backend } from './backend.ts';
import { DaemonError, GRPC_CODE, isDaemonError } from './errors.ts';
import {
  CreateBody,
  parseBody,
  parseBoolParam,
  parseListQuery,
  parseSshKeySegment,
  parseUsername,
  parseUsernameParam,
  SshKeyBody,
  StartBody,
  StopBody,
} from './requests.ts';

export const MAX_BODY_BYTES = 1024 * 1024;
export const BODY_DEADLINE_MS = 30_000;

export type AppOptions = {
  backend: Backend;
  auth: Authenticator;
  /** Reverse proxies whose X-Forwarded-For names the client (none by default: the peer is). */
  trustedProxies?: readonly Cidr[];
  /** Origins allowed to call from a browser; none by default, never "*". */
  corsOrigins?: readonly string[];
  maxBodyBytes?: number;
  /**
   * How long an authenticated request's body may take to arrive (default 30 s); a late one is
   * answered 408 and its connection closed, so no caller holds a connection by trickling bytes.
   */
  bodyDeadlineMs?: number;
  /** One line per request and every server-side failure (default: stderr). */
  log?: (line: string) => void;
  /** How long /health waits for Incus (default 2 s). */
  healthTimeoutMs?: number;
};

type Context = {
  request: Request;
  url: URL;
  /** Path parameters, still URL-encoded. */
  params: Record<string, string>;
  principal: Principal;
  body(): Promise<unknown>;
};

type Route = {
  method: string;
  /** Literal segments, ":name" for one segment, "*name" for the rest of the path. */
  segments: string[];
  handle(context: Context): Promise<unknown>;
};

const JSON_TYPE = 'application/json';

/** upstream's error body: `{"code":N,"error":"rpc error: code = X desc = ..."}` plus Go's newline. */
function errorBody(
  status: number,
  grpcCode: string,
  message: string,
  headers?: Record<string, string>,
) {
  const body = JSON.stringify({
    code: status,
    error: `rpc error: code = ${grpcCode} desc = ${message}`,
  });
  return new Response(`${body}\n`, { status, headers: { 'Content-Type': JSON_TYPE, ...headers } });
}

// ---- Wire output: proto field order, every field present, int64 as strings -------------------

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

// ---- Routes -----------------------------------------------------------------------------------

function defineRoutes(backend: Backend): Route[] {
  const route = (method: string, path: string, handle: Route['handle']): Route => ({
    method,
    segments: path.split('/').slice(1),
    handle,
  });
  const user = (c: Context) => {
    const username = parseUsername(c.params.username ?? '');
    authorizeUser(c.principal, username);
    return username;
  };

  return [
    route('POST', '/v1/containers', async (c) => {
      const { request, async } = parseBody(CreateBody, await c.body());
      authorizeUser(c.principal, request.username);
      const result = await backend.create(request, { async });
      return {
        container: result.container ? emitContainer(result.container) : null,
        message: text(result.message),
        sshCommand: text(result.sshCommand),
      };
    }),

    route('GET', '/v1/containers', async (c) => {
      const filter = parseListQuery(c.url.searchParams);
      if (!c.principal.admin) {
        // Silently narrowed to the caller's own container, as HEAD does.
        // (A token name that is not a valid username owns no container.)
        if (
          (filter.username !== undefined && filter.username !== c.principal.username) ||
          !isValidUsername(c.principal.username)
        ) {
          return { containers: [], totalCount: 0 };
        }
        filter.username = c.principal.username;
      }
      let containers = await backend.list(filter);
      if (!c.principal.admin)
        containers = containers.filter((x) => x.username === c.principal.username);
      // totalCount is the length of the list sent, so a summary can never contradict it (#1214).
      return { containers: containers.map(emitContainer), totalCount: containers.length };
    }),

    route('GET', '/v1/containers/:username', async (c) => {
      const { container, metrics } = await backend.get(user(c));
      return {
        container: emitContainer(container),
        metrics: metrics ? emitMetrics(metrics) : null,
      };
    }),

    route('DELETE', '/v1/containers/:username', async (c) => {
      const username = user(c);
      const force = parseBoolParam(c.url.searchParams, 'force');
      const { containerName } = await backend.delete(username, { force });
      return { message: `Container for user ${username} deleted successfully`, containerName };
    }),

    route('POST', '/v1/containers/:username/start', async (c) => {
      const username = user(c);
      // waitForReady/readyTimeoutSeconds (HEAD) are checked but not needed: start returns when running.
      parseBody(StartBody, await c.body());
      const container = await backend.start(username);
      return {
        message: `Container for user ${username} started successfully`,
        container: emitContainer(container),
      };
    }),

    route('POST', '/v1/containers/:username/stop', async (c) => {
      const username = user(c);
      const options = parseBody(StopBody, await c.body());
      const container = await backend.stop(username, options);
      return {
        message: `Container for user ${username} stopped successfully`,
        container: emitContainer(container),
      };
    }),

    route('POST', '/v1/containers/:username/ssh-keys', async (c) => {
      const username = user(c);
      const key = parseBody(SshKeyBody, await c.body());
      const { totalKeys } = await backend.addSshKey(username, key);
      return { message: `SSH key added to the container of user ${username}`, totalKeys };
    }),

    route('DELETE', '/v1/containers/:username/ssh-keys/*key', async (c) => {
      const username = user(c);
      const key = parseSshKeySegment(c.params.key ?? '');
      const { totalKeys } = await backend.removeSshKey(username, key);
      return { message: `SSH key removed from the container of user ${username}`, totalKeys };
    }),

    route('GET', '/v1/metrics', async (c) => {
      const username = parseUsernameParam(c.url.searchParams);
      if (!c.principal.admin) {
        const own = c.principal.username;
        if ((username !== undefined && username !== own) || !isValidUsername(own)) {
          return { metrics: [] };
        }
        try {
          return { metrics: (await backend.metrics(own)).map(emitMetrics) };
        } catch (error) {
          // "All metrics" for someone without a container is an empty list, not an error.
          if (username === undefined && isDaemonError(error) && error.kind === 'not_found') {
            return { metrics: [] };
          }
          throw error;
        }
      }
      return { metrics: (await backend.metrics(username)).map(emitMetrics) };
    }),

    route('GET', '/v1/metrics/:username', async (c) => {
      return { metrics: (await backend.metrics(user(c))).map(emitMetrics) };
    }),

    route('GET', '/v1/system/info', async (c) => {
      requireAdmin(c.principal);
      return { info: emitSystemInfo(await backend.systemInfo()) };
    }),
  ];
}

type Match = { route: Route; params: Record<string, string> } | { allowed: string[] } | undefined;

function matchRoute(routes: Route[], method: string, pathname: string): Match {
  const parts = pathname.split('/').slice(1);
  const allowed: string[] = [];
  for (const route of routes) {
    const params: Record<string, string> = {};
    let matched = true;
    for (let i = 0; i < route.segments.length; i++) {
      const segment = route.segments[i] as string;
      const part = parts[i];
      if (segment.startsWith('*')) {
        // The rest of the path, so a key whose "/" was left unencoded still arrives whole.
        const rest = parts.slice(i).join('/');
        if (rest === '') matched = false;
        else params[segment.slice(1)] = rest;
        break;
      }
      if (
        part === undefined ||
        (i === route.segments.length - 1 && parts.length !== route.segments.length)
      ) {
        matched = false;
        break;
      }
      if (segment.startsWith(':')) {
        if (part === '') {
          matched = false;
          break;
        }
        params[segment.slice(1)] = part;
      } else if (segment !== part) {
        matched = false;
        break;
      }
    }
    if (!matched) continue;
    if (route.method === method) return { route, params };
    allowed.push(route.method);
  }
  return allowed.length > 0 ? { allowed } : undefined;
}

// ---- Bodies -----------------------------------------------------------------------------------

/** Bad input like any other: a 400 with the reason, and the rest of the body is never read. */
const tooLarge = (limit: number) =>
  new DaemonError('invalid', `request body larger than ${formatBytes(limit)}`);

/** A body that did not arrive within the deadline; the request is answered 408 and its connection closed. */
class BodyLateError extends Error {
  constructor(readonly deadlineMs: number) {
    super(`request body did not arrive within ${formatDeadline(deadlineMs)}`);
  }
}

const formatDeadline = (ms: number) => (ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`);

/** Reads at most `limit` bytes, all within `deadlineMs`. */
async function readBody(request: Request, limit: number, deadlineMs: number): Promise<Uint8Array> {
  try {
    return await readBounded(request.body, limit, {
      declaredLength: request.headers.get('content-length'),
      signal: AbortSignal.timeout(deadlineMs),
    });
  } catch (error) {
    if (error instanceof BodyTooLargeError) throw tooLarge(limit);
    if (error instanceof DOMException && error.name === 'TimeoutError') {
      throw new BodyLateError(deadlineMs);
    }
    throw error;
  }
}

/** The body as JSON; an empty body is `{}` (grpc-gateway tolerates EOF). */
function parseJson(bytes: Uint8Array): unknown {
  const source = new TextDecoder('utf-8', { fatal: true });
  let text: string;
  try {
    text = source.decode(bytes);
  } catch {
    throw new DaemonError('invalid', 'malformed JSON body: not UTF-8 text');
  }
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch (error) {
    const detail = error instanceof Error ? error.message : 'syntax error';
    throw new DaemonError('invalid', `malformed JSON body: ${detail}`);
  }
}

// ---- The app ----------------------------------------------------------------------------------

const CORS_METHODS = 'GET, POST, PUT, DELETE, OPTIONS';
const CORS_HEADERS = 'Authorization, Content-Type';

const stderrLog = (line: string) => process.stderr.write(`containarium: ${line}\n`);

/** Builds the request handler; `serve` puts it on a port. */
export function createApp(options: AppOptions) {
  const { backend, auth } = options;
  const routes = defineRoutes(backend);
  const origins = new Set(options.corsOrigins ?? []);
  const limit = options.maxBodyBytes ?? MAX_BODY_BYTES;
  const bodyDeadlineMs = options.bodyDeadlineMs ?? BODY_DEADLINE_MS;
  const log = options.log ?? stderrLog;
  const healthTimeoutMs = options.healthTimeoutMs ?? 2000;
  const trustedProxies = options.trustedProxies ?? [];

  const cors = (request: Request, response: Response): Response => {
    const origin = request.headers.get('origin');
    response.headers.append('Vary', 'Origin');
    if (origin && origins.has(origin)) {
      response.headers.set('Access-Control-Allow-Origin', origin);
    }
    return response;
  };

  const preflight = (request: Request): Response => {
    const origin = request.headers.get('origin');
    const headers = new Headers({
      Vary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
    });
    if (origin && origins.has(origin)) {
      headers.set('Access-Control-Allow-Origin', origin);
      headers.set('Access-Control-Allow-Methods', CORS_METHODS);
      headers.set('Access-Control-Allow-Headers', CORS_HEADERS);
      headers.set('Access-Control-Max-Age', '600');
    }
    return new Response(null, { status: 204, headers });
  };

  const health = async (): Promise<Response> => {
    const reachable = await Promise.race([
      backend.ping().catch(() => false),
      Bun.sleep(healthTimeoutMs).then(() => false),
    ]);
    return Response.json(
      { status: 'healthy', incus: reachable ? 'reachable' : 'unreachable' },
      { headers: { 'Content-Type': JSON_TYPE } },
    );
  };

  const failure = (error: unknown, where: string): Response => {
    if (isDaemonError(error) && error.kind !== 'internal') {
      return errorBody(error.status, GRPC_CODE[error.kind], error.message);
    }
    // Unexpected: the whole message (Incus's own words) goes to the log; the client gets it
    // without this host's file paths.
    const message = error instanceof Error ? error.message : String(error);
    log(`error: ${where}: ${message}`);
    return errorBody(500, GRPC_CODE.internal, withoutPaths(message) || 'internal error');
  };

  const handle = async (request: Request, address: string, server?: Server<unknown>) => {
    const url = new URL(request.url);
    const method = request.method;
    if (method === 'OPTIONS') return { response: preflight(request) };
    if (url.pathname === '/health') {
      if (method !== 'GET' && method !== 'HEAD') {
        return {
          response: errorBody(405, 'Unimplemented', `method ${method} not allowed`, {
            Allow: 'GET',
          }),
        };
      }
      return { response: await health() };
    }
    // Upstream's JWT middleware wraps the whole gateway: a caller without a valid token learns
    // nothing, not even which routes exist.
    const verdict = await auth.authenticate(request, address);
    if (!verdict.ok) return { response: verdict.response };
    const principal = verdict.principal;
    // The whole body first, bounded in size and time: only then may the request run long.
    let bytes: Uint8Array;
    try {
      bytes = await readBody(request, limit, bodyDeadlineMs);
    } catch (error) {
      // The rest of the body is unread, so the connection cannot carry another request.
      const response =
        error instanceof BodyLateError
          ? errorBody(408, 'DeadlineExceeded', error.message)
          : failure(error, `${method} ${shorten(url.pathname)}`);
      response.headers.set('Connection', 'close');
      return { response, user: principal.username };
    }
    const match = matchRoute(routes, method, url.pathname);
    if (match === undefined) {
      return {
        response: errorBody(404, 'NotFound', `no route for ${method} ${shorten(url.pathname)}`),
      };
    }
    if ('allowed' in match) {
      const allow = [...new Set(match.allowed)].join(', ');
      return {
        response: errorBody(405, 'Unimplemented', `method ${method} not allowed; use ${allow}`, {
          Allow: allow,
        }),
      };
    }
    // A trusted caller's create can take minutes (image download, provisioning): no idle cut-off.
    server?.timeout(request, 0);
    try {
      const body = await match.route.handle({
        request,
        url,
        params: match.params,
        principal,
        body: async () => parseJson(bytes),
      });
      return {
        response: new Response(JSON.stringify(body), {
          status: 200,
          headers: { 'Content-Type': JSON_TYPE },
        }),
        user: principal.username,
      };
    } catch (error) {
      return {
        response: failure(error, `${method} ${shorten(url.pathname)}`),
        user: principal.username,
      };
    }
  };

  return {
    /** Bun.serve's fetch handler. */
    async fetch(request: Request, server: Server<unknown>): Promise<Response> {
      const started = performance.now();
      const address = clientAddress(
        server.requestIP(request)?.address ?? 'unknown',
        request.headers.get('x-forwarded-for'),
        trustedProxies,
      );
      let outcome: { response: Response; user?: string };
      try {
        outcome = await handle(request, address, server);
      } catch (error) {
        outcome = { response: failure(error, 'request') };
      }
      const ms = Math.round(performance.now() - started);
      const path = shorten(new URL(request.url).pathname);
      const who = outcome.user ? ` user=${outcome.user}` : '';
      log(`${address} ${request.method} ${path} ${outcome.response.status} ${ms}ms${who}`);
      // A body never read (a refused token, /health) must not keep the connection busy either.
      if (request.body !== null && !request.bodyUsed) {
        outcome.response.headers.set('Connection', 'close');
      }
      return cors(request, outcome.response);
    },
  };
}

/** Absolute file paths ("/var/lib/incus/...") become "<path>"; URLs and "debian/12" are kept. */
export const withoutPaths = (message: string): string =>
  message.replace(
    /(^|[\s"'([=,])\/[^\s"'()[\],/][^\s"'()[\],]*?(?=[:;.]?(?:$|[\s"'()[\],]))/g,
    '$1<path>',
  );

const shorten = (path: string) => (path.length > 200 ? `${path.slice(0, 200)}…` : path);

export type ServeOptions = AppOptions & { hostname: string; port: number };

/** Starts the REST API; `server.port` is the bound port (useful with port 0). */
export function serve(options: ServeOptions): Server<unknown> {
  const app = createApp(options);
  return Bun.serve({
    hostname: options.hostname,
    port: options.port,
    // Bun's own cap would answer 413 before the app sees the request. Bun streams bodies rather
    // than buffering them, and readBody refuses anything over the limit (by Content-Length, or
    // once a streamed body passes it) with a 400, reading no further.
    maxRequestBodySize: Number.MAX_SAFE_INTEGER,
    fetch: app.fetch,
  });
}
