// The daemon's REST API on Bun.serve: auth on every /v1 route, the body read whole, the route
// table matched, upstream's error bodies, CORS for listed origins only, one log line per request.
import type { Server } from 'bun';
import { type Cidr, clientAddress } from '../shared/address.ts';
import { errorText } from '../shared/error-text.ts';
import { type AuditLog, type RequestFacts, requestIdOf } from './audit.ts';
import type { Authenticator } from './auth.ts';
import type { Backend } from './backend.ts';
import { BODY_DEADLINE_MS, BodyLateError, MAX_BODY_BYTES, parseJson, readBody } from './body.ts';
import { type Clock, systemClock } from './clock.ts';
import { GRPC_CODE, isDaemonError } from './errors.ts';
import { type Logger, silent } from './log.ts';
import { DEFAULT_QUOTAS, type QuotaTable } from './quotas.ts';
import { matchRoute } from './router.ts';
import { ROUTES } from './routes/index.ts';
import { builtinTemplates, type Templates } from './templates.ts';

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
  /** The daemon's logger: one line per request and every server-side failure (silent by default). */
  log?: Logger;
  /** The audit trail (--audit-log): mutating requests and refused logins; none by default. */
  audit?: AuditLog;
  /** Per-user quotas of callers without the admin role (default DEFAULT_QUOTAS). */
  quotas?: QuotaTable;
  /** The create templates (--templates); the built-ins by default. */
  templates?: Templates;
  /** How long /health waits for Incus (default 2 s). */
  healthTimeoutMs?: number;
  /** Time for that wait; the system's by default. */
  clock?: Clock;
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

// ---- The app ----------------------------------------------------------------------------------

const CORS_METHODS = 'GET, POST, PUT, DELETE, OPTIONS';
const CORS_HEADERS = 'Authorization, Content-Type';

/** Builds the request handler; `serve` puts it on a port. */
export function createApp(options: AppOptions) {
  const { backend, auth } = options;
  const origins = new Set(options.corsOrigins ?? []);
  const limit = options.maxBodyBytes ?? MAX_BODY_BYTES;
  const bodyDeadlineMs = options.bodyDeadlineMs ?? BODY_DEADLINE_MS;
  const log = options.log ?? silent;
  const healthTimeoutMs = options.healthTimeoutMs ?? 2000;
  const clock = options.clock ?? systemClock;
  const trustedProxies = options.trustedProxies ?? [];
  const quotas = options.quotas ?? DEFAULT_QUOTAS;
  const templates = options.templates ?? builtinTemplates();

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
      clock.sleep(healthTimeoutMs).then(() => false),
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
    const message = errorText(error);
    log(`error: ${where}: ${message}`);
    return errorBody(500, GRPC_CODE.internal, withoutPaths(message) || 'internal error');
  };

  /** `trail` collects what the audit log needs to know about this request. */
  type Trail = Pick<RequestFacts, 'principal' | 'refusal' | 'body'>;
  const handle = async (
    request: Request,
    address: string,
    server: Server<unknown> | undefined,
    trail: Trail,
  ) => {
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
    if (!verdict.ok) {
      trail.refusal = verdict.refusal;
      return { response: verdict.response };
    }
    const principal = verdict.principal;
    trail.principal = principal;
    // The whole body first, bounded in size and time: only then may the request run long.
    let bytes: Uint8Array;
    try {
      bytes = await readBody(request, limit, bodyDeadlineMs);
      trail.body = bytes;
    } catch (error) {
      // The rest of the body is unread, so the connection cannot carry another request.
      const response =
        error instanceof BodyLateError
          ? errorBody(408, 'DeadlineExceeded', error.message)
          : failure(error, `${method} ${shorten(url.pathname)}`);
      return { response, user: principal.username, close: true };
    }
    const match = matchRoute(ROUTES, method, url.pathname);
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
    // Reads keep it, so a client that stops reading an answer cannot hold the connection.
    if (match.route.long) server?.timeout(request, 0);
    try {
      const body = await match.route.handle({
        backend,
        request,
        url,
        params: match.params,
        principal,
        quotas,
        templates,
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
      const requestId = requestIdOf(request);
      const trail: Trail = {};
      let outcome: { response: Response; user?: string; close?: boolean };
      try {
        outcome = await handle(request, address, server, trail);
      } catch (error) {
        outcome = { response: failure(error, 'request') };
      }
      const ms = Math.round(performance.now() - started);
      const path = shorten(new URL(request.url).pathname);
      const who = outcome.user ? ` user=${outcome.user}` : '';
      log(`${address} ${request.method} ${path} ${outcome.response.status} ${ms}ms${who}`);
      outcome.response.headers.set('X-Request-Id', requestId);
      options.audit?.record({
        request,
        address,
        requestId,
        response: outcome.response,
        durationMs: ms,
        ...trail,
      });
      // A body not read to its end (late, too large, a refused token, /health) leaves the
      // connection unable to carry another request.
      if (outcome.close || (request.body !== null && !request.bodyUsed)) {
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

export type ServeOptions = AppOptions & {
  hostname: string;
  port: number;
  /**
   * Bun's idle cut-off of a connection, in seconds (at most 255). By default the body deadline
   * plus 30 s: Bun does not count body bytes as activity, so a shorter cut-off would close a slow
   * body without an answer before its 408; and a read's Incus calls fit in it. Long changes
   * lift it once their body is in.
   */
  idleTimeoutSeconds?: number;
};

/** The body deadline plus 30 s, within Bun's limit of 255 s. */
export const idleTimeoutFor = (bodyDeadlineMs = BODY_DEADLINE_MS): number =>
  Math.min(255, Math.ceil(bodyDeadlineMs / 1000) + 30);

/** Starts the REST API; `server.port` is the bound port (useful with port 0). */
export function serve(options: ServeOptions): Server<unknown> {
  const app = createApp(options);
  return Bun.serve({
    hostname: options.hostname,
    port: options.port,
    idleTimeout: options.idleTimeoutSeconds ?? idleTimeoutFor(options.bodyDeadlineMs),
    // Bun's own cap would answer 413 before the app sees the request. Bun streams bodies rather
    // than buffering them, and readBody refuses anything over the limit (by Content-Length, or
    // once a streamed body passes it) with a 400, reading no further.
    maxRequestBodySize: Number.MAX_SAFE_INTEGER,
    fetch: app.fetch,
  });
}
