// `mcp-server http`: MCP over Streamable HTTP at /mcp (and GET /health) on Bun.serve. Stateless,
// so instances behind a load balancer need no affinity; every request carries its caller's token,
// which is forwarded to the daemon, so each caller acts with its own role.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseCidr } from '../shared/address.ts';
import { BodyTooLargeError, readBounded } from '../shared/bounded-body.ts';
import { claimsProblem, readClaims } from '../shared/jwt.ts';
import { VERSION } from '../shared/version.ts';
import { createClient } from './client.ts';
import { type Config, callerToken, configWarnings, isLoopback, loadConfig } from './config.ts';
import { createLogger, type Logger } from './log.ts';
import { ConfigError, servingFlagsEnv } from './settings.ts';

/** How long a stopping server waits for calls in flight (rolling restarts behind a balancer). */
export const SHUTDOWN_GRACE_MS = 30_000;
export const MCP_PATH = '/mcp';
/** The largest request body read; MCP requests of these tools are a few kilobytes. */
export const MAX_BODY_BYTES = 1024 * 1024;
/** Requests one caller (one token) may have in flight at once; more get 429. */
export const MAX_CALLS_PER_CALLER = 8;

export type HttpOptions = {
  host: string;
  port: number;
  tls?: { cert: string; key: string };
  allowedHosts: string[];
  allowedOrigins: string[];
  trustedProxies: string[];
  maxBodyBytes: number;
  maxCallsPerCaller: number;
};

export const HTTP_HELP = `Usage: mcp-server http [flags]   serve MCP over Streamable HTTP at /mcp (and GET /health)

Every request must carry "Authorization: Bearer <Containarium JWT>": the caller's own token, sent
on to the daemon. A token in the server's environment is never used for callers.

  --host ADDRESS          address to listen on (default 127.0.0.1)
  --port PORT             port to listen on, 0 for any free one (default 8090)
  --tls-cert FILE         PEM certificate chain: serve https (needs --tls-key)
  --tls-key FILE          PEM private key of --tls-cert
  --allowed-host NAME     a Host name clients use to reach this server (repeatable); on a loopback
                          --host localhost names pass too, on any other --host it is required
  --allowed-origin NAME   a browser Origin allowed to call (repeatable): a host name (any scheme
                          and port on it) or an exact origin like https://app.example.com;
                          requests without Origin always pass
  --trusted-proxy CIDR    a reverse proxy that ends TLS in front of this server (repeatable):
                          silences the warning about serving plain http on a non-loopback address
Flags of the stdio server that set guard rails (--read-only, --toolsets ...) apply here too.
`;

const HTTP_FLAGS = {
  host: { type: 'string' },
  port: { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'allowed-host': { type: 'string', multiple: true },
  'allowed-origin': { type: 'string', multiple: true },
  'trusted-proxy': { type: 'string', multiple: true },
} as const;

/**
 * An --allowed-origin value as it is matched: a bare host name (any scheme and port of it), or an
 * origin URL, which allows that exact origin (scheme, host and port) only.
 */
const allowedOrigin = (text: string): string => {
  if (!text.includes('://')) return text.trim().toLowerCase();
  const origin = URL.parse(text.trim())?.origin;
  if (!origin || origin === 'null') {
    throw new ConfigError(
      `invalid --allowed-origin "${text}": expected a host name or an origin like https://app.example.com`,
    );
  }
  return origin;
};

/** Whether a browser's Origin header is allowed: its host by name, or the whole origin listed. */
export function originAllowed(origin: string, allowed: readonly string[]): boolean {
  const url = URL.parse(origin);
  if (!url) return false;
  return allowed.some((entry) =>
    entry.includes('://') ? entry === url.origin : entry === url.hostname,
  );
}

/**
 * Splits `mcp-server http`'s arguments into its own options and the environment the serving
 * flags name. Throws ConfigError naming a bad flag and its expected form.
 */
export function parseHttpArgs(argv: string[]): {
  options: HttpOptions;
  env: Record<string, string>;
} {
  const own = new Set(Object.keys(HTTP_FLAGS));
  const mine: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const name = arg.replace(/^--/, '').split('=')[0] as string;
    if (arg.startsWith('--') && own.has(name)) {
      mine.push(arg);
      if (!arg.includes('=') && i + 1 < argv.length) mine.push(argv[++i] as string);
    } else rest.push(arg);
  }
  let values: ReturnType<typeof parseArgs<{ options: typeof HTTP_FLAGS }>>['values'];
  try {
    ({ values } = parseArgs({ args: mine, options: HTTP_FLAGS, strict: true }));
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
  const host = values.host?.trim() || '127.0.0.1';
  const portText = values.port ?? '8090';
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) {
    throw new ConfigError(`invalid --port "${portText}": expected a number from 0 to 65535`);
  }
  const cert = values['tls-cert'];
  const key = values['tls-key'];
  if (Boolean(cert) !== Boolean(key)) {
    throw new ConfigError('--tls-cert and --tls-key go together: give both PEM files, or neither');
  }
  for (const [flag, file] of [
    ['--tls-cert', cert],
    ['--tls-key', key],
  ] as const) {
    if (file && !existsSync(file)) throw new ConfigError(`${flag} ${file} does not exist`);
  }
  const trustedProxies = values['trusted-proxy'] ?? [];
  for (const text of trustedProxies) {
    if (!parseCidr(text)) {
      throw new ConfigError(
        `invalid --trusted-proxy "${text}": expected an address or CIDR range, like 10.0.0.5 or 10.0.0.0/8`,
      );
    }
  }
  const allowedHosts = (values['allowed-host'] ?? []).map((h) => h.trim().toLowerCase());
  if (!isLoopback(host) && allowedHosts.length === 0) {
    throw new ConfigError(
      `--host ${host} is not a loopback address, so --allowed-host must name the host names clients use to reach this server (every other Host is refused, against DNS rebinding)`,
    );
  }
  return {
    options: {
      host,
      port,
      ...(cert && key ? { tls: { cert, key } } : {}),
      allowedHosts,
      allowedOrigins: (values['allowed-origin'] ?? []).map(allowedOrigin),
      trustedProxies,
      maxBodyBytes: MAX_BODY_BYTES,
      maxCallsPerCaller: MAX_CALLS_PER_CALLER,
    },
    env: servingFlagsEnv(rest),
  };
}

const jsonError = (status: number, message: string, headers: Record<string, string> = {}) =>
  Response.json(
    { jsonrpc: '2.0', error: { code: -32001, message }, id: null },
    { status, headers },
  );

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

export type CallerAuth = {
  token: string;
  /** The token's username claim: who the logs name. */
  subject: string;
  roles: string[];
  expiresAt: Date;
  /** Keys the per-caller limit: a hash of the token, never the token itself. */
  key: string;
};

/**
 * The caller of a request, from its bearer token, or the 401 that refuses it. The token is only
 * decoded here (shape, claims, expiry): its signature needs the daemon's secret, which this server
 * does not have, so the daemon checks it on every call.
 */
export function authenticate(request: Request, now = Date.now()): CallerAuth | Response {
  const header = request.headers.get('authorization');
  const token = header?.match(/^Bearer[ ]+(\S+)\s*$/i)?.[1];
  if (!token) {
    return jsonError(
      401,
      'Authorization required: send "Authorization: Bearer <token>" with your Containarium API token (make one with `containarium token generate`).',
      { 'www-authenticate': 'Bearer realm="containarium-mcp"' },
    );
  }
  const refuse = (reason: string) =>
    jsonError(401, `The bearer token was refused: ${reason}.`, {
      'www-authenticate': `Bearer realm="containarium-mcp", error="invalid_token", error_description="${reason}"`,
    });
  if (!JWT_SHAPE.test(token)) {
    return refuse(
      'it is not a JWT (expected three base64url parts separated by dots, the middle one JSON claims)',
    );
  }
  const claims = readClaims(token);
  if (!claims) return refuse(claimsProblem(token) ?? 'its claims cannot be read');
  if (!claims.username)
    return refuse('it has no username claim, so it is not a Containarium API token');
  if (typeof claims.exp !== 'number') return refuse('it has no exp claim');
  const expiresAt = new Date(claims.exp * 1000);
  if (expiresAt.getTime() <= now) {
    return refuse(
      `it expired at ${expiresAt.toISOString()}; generate a new one with containarium token generate`,
    );
  }
  return {
    token,
    subject: claims.username,
    roles: claims.roles ?? [],
    expiresAt,
    key: createHash('sha256').update(token).digest('base64url').slice(0, 22),
  };
}

/**
 * How many requests a POST body carries: one, or for a JSON-RPC batch each of its messages that
 * expects an answer (a method and an id). A batch must not run more calls than a lone request.
 */
export function requestsIn(body: Uint8Array): number {
  const text = new TextDecoder().decode(body);
  if (!text.trimStart().startsWith('[')) return 1;
  let messages: unknown;
  try {
    messages = JSON.parse(text);
  } catch {
    return 1;
  }
  if (!Array.isArray(messages)) return 1;
  const asks = messages.filter(
    (message) =>
      typeof message === 'object' && message !== null && 'method' in message && 'id' in message,
  );
  return Math.max(1, asks.length);
}

/** Calls `done` once the response body has been read to its end or abandoned. */
function onBodyEnd(response: Response, done: () => void): Response {
  if (!response.body) {
    done();
    return response;
  }
  let finished = false;
  const end = () => {
    if (!finished) {
      finished = true;
      done();
    }
  };
  const reader = response.body.getReader();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const chunk = await reader.read();
        if (chunk.done) {
          end();
          controller.close();
        } else controller.enqueue(chunk.value);
      } catch (error) {
        end();
        controller.error(error);
      }
    },
    cancel(reason) {
      end();
      return reader.cancel(reason);
    },
  });
  return new Response(body, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
}

/** The running server: its URL (with the port it got) and how to stop it. */
export type HttpServer = { url: URL; stop(): Promise<void> };

/** Serves MCP over HTTP with `config` (whose token is never used: callers bring theirs). */
export async function startHttp(
  config: Config,
  options: HttpOptions,
  logger: Logger,
): Promise<HttpServer> {
  const { createHttpHandler } = await import('./server.ts');
  const handler = createHttpHandler(
    {
      client: createClient(config),
      config,
      callerOf: ({ authInfo }) => {
        const caller = authInfo?.extra?.caller as CallerAuth | undefined;
        const callerConfig: Config = {
          ...config,
          token: callerToken(caller?.token ?? '', caller?.expiresAt),
        };
        return { client: createClient(callerConfig), config: callerConfig };
      },
      onToolCall: ({ tool, context, outcome, ms }) => {
        const caller = context?.authInfo?.extra?.caller as CallerAuth | undefined;
        logger.info(
          `tool=${tool} caller=${JSON.stringify(caller?.subject ?? 'unknown')} outcome=${outcome} ms=${Math.round(ms)}`,
        );
      },
    },
    {
      maxRequestBodySize: options.maxBodyBytes,
      ...(logger.debugging && {
        onerror: (error: Error) => logger.debug(`error: ${error.message}`),
      }),
    },
  );
  const { hostHeaderValidationResponse, localhostAllowedHostnames } = await import(
    '@modelcontextprotocol/server'
  );
  const loopback = isLoopback(options.host);
  // On loopback, localhost names always pass; the lists add the names a local proxy passes on.
  const hosts = [...(loopback ? localhostAllowedHostnames() : []), ...options.allowedHosts];
  const origins = [...(loopback ? localhostAllowedHostnames() : []), ...options.allowedOrigins];
  const inFlight = new Map<string, number>();

  const server = Bun.serve({
    hostname: options.host,
    port: options.port,
    ...(options.tls && {
      tls: { cert: Bun.file(options.tls.cert), key: Bun.file(options.tls.key) },
    }),
    // Streams of long calls stay open while the daemon works; Bun's default would cut them.
    idleTimeout: 0,
    fetch: async (request) => {
      // Without a Host, or with one like "a@b", the request has no URL to route by.
      const pathname = URL.parse(request.url)?.pathname;
      if (pathname === undefined) {
        return jsonError(400, 'Bad request: the Host header is missing or is not a host name.');
      }
      if (pathname === '/health' && request.method === 'GET') {
        return Response.json({ status: 'ok', version: VERSION });
      }
      if (pathname !== MCP_PATH) return jsonError(404, `Not found: MCP is served at ${MCP_PATH}.`);
      const rejected = hostHeaderValidationResponse(request, hosts);
      if (rejected) return rejected;
      const origin = request.headers.get('origin');
      if (origin !== null && !originAllowed(origin, origins)) {
        return jsonError(403, `Invalid Origin: ${origin} is not allowed to call this server.`);
      }
      const caller = authenticate(request);
      if (caller instanceof Response) return caller;
      // The body is read here (bounded), so that a batch counts as the requests it carries.
      let body: Uint8Array | undefined;
      if (request.method === 'POST') {
        try {
          body = await readBounded(request.body, options.maxBodyBytes, {
            declaredLength: request.headers.get('content-length'),
            signal: request.signal,
          });
        } catch (error) {
          if (!(error instanceof BodyTooLargeError)) throw error;
          return jsonError(
            413,
            `Payload Too Large: a request body may have at most ${options.maxBodyBytes} bytes.`,
          );
        }
      }
      const max = options.maxCallsPerCaller;
      const weight = body ? requestsIn(body) : 1;
      if (weight > max) {
        return jsonError(
          400,
          `Too many requests in one batch: it has ${weight}, and one token may have at most ${max} in flight; send them in smaller batches or one by one.`,
        );
      }
      const running = inFlight.get(caller.key) ?? 0;
      if (running + weight > max) {
        return jsonError(
          429,
          `Too many requests at once: this token already has ${running} in flight (at most ${max}); wait for one to finish and retry.`,
          { 'retry-after': '1' },
        );
      }
      inFlight.set(caller.key, running + weight);
      const release = () => {
        const left = (inFlight.get(caller.key) ?? weight) - weight;
        if (left > 0) inFlight.set(caller.key, left);
        else inFlight.delete(caller.key);
      };
      const forwarded = body
        ? new Request(request.url, {
            method: request.method,
            headers: request.headers,
            body,
            signal: request.signal,
          })
        : request;
      try {
        const response = await handler.fetch(forwarded, {
          authInfo: {
            token: caller.token,
            clientId: caller.subject,
            scopes: caller.roles,
            expiresAt: Math.floor(caller.expiresAt.getTime() / 1000),
            extra: { caller },
          },
        });
        return onBodyEnd(response, release);
      } catch (error) {
        release();
        throw error;
      }
    },
    error: (error) => {
      logger.warn(`request failed: ${error.message}`);
      return jsonError(500, 'Internal error; see the server log.');
    },
  });
  const url = new URL(
    `${options.tls ? 'https' : 'http'}://${server.hostname}:${server.port}${MCP_PATH}`,
  );
  return {
    url,
    /** Stops taking requests, lets those in flight finish (at most `graceMs`), then closes. */
    stop: async (graceMs = SHUTDOWN_GRACE_MS) => {
      const cut = setTimeout(() => void server.stop(true), graceMs);
      await server.stop(false);
      clearTimeout(cut);
      await handler.close();
    },
  };
}

/** The warning for plain http on a non-loopback address, unless TLS ends at a trusted proxy. */
export function plainHttpWarning(options: HttpOptions): string | undefined {
  if (isLoopback(options.host) || options.tls || options.trustedProxies.length > 0)
    return undefined;
  return `serving plain http on ${options.host}, which is not a loopback address: callers' tokens would travel in clear text. Give --tls-cert and --tls-key, or --trusted-proxy if TLS ends at a reverse proxy in front of this server`;
}

/** `mcp-server http [flags]`: serves until stopped; 2 for bad flags or settings. */
export async function runHttp(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(HTTP_HELP);
    return 0;
  }
  let parsed: ReturnType<typeof parseHttpArgs>;
  let config: Config;
  try {
    parsed = parseHttpArgs(argv);
    Object.assign(process.env, parsed.env);
    config = loadConfig(process.env, { callerTokens: true });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`mcp-server http: ${error.message}\n\n${HTTP_HELP}`);
    return 2;
  }
  const { options } = parsed;
  // No secrets of its own to hide: the callers' tokens are never written anywhere.
  const logger = createLogger({ debug: config.debug });
  for (const warning of configWarnings(config)) logger.warn(warning);
  const warning = plainHttpWarning(options);
  if (warning) logger.warn(warning);
  const server = await startHttp(config, options, logger);
  logger.info(`serving MCP over HTTP at ${server.url.href} for ${config.serverUrl}`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      void server.stop().then(resolve);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}
