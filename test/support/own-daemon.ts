// The project's own daemon app (createApp, the real authenticator and routes) over the in-memory
// Backend, on 127.0.0.1 port 0, with every request that reaches it recorded; tokens minted by
// `containarium token generate`'s code; mcp-server connected to it through a real MCP client.
import { randomBytes } from 'node:crypto';
import { createApp } from '../../src/daemon/app.ts';
import { createAuthenticator } from '../../src/daemon/auth.ts';
import type { Templates } from '../../src/daemon/templates.ts';
import { generateToken } from '../../src/daemon/token.ts';
import { connectMcp } from './mcp.ts';
import { MemoryBackend } from './memory-backend.ts';

/** One request as the app saw it, and the status it answered (0 while unanswered). */
export type Seen = { method: string; path: string; query: string; status: number };

export type TokenOptions = {
  roles?: string[];
  /** Sign with this secret instead of the daemon's. */
  secret?: string;
  lifetimeMs?: number;
  /** The signing time (default now). */
  now?: Date;
};

/** `templates`: the daemon's create templates (--templates), else the built-ins. */
export async function startOwnDaemon(templates?: Templates) {
  const backend = new MemoryBackend();
  // A real secret, as `openssl rand -base64 32` makes one.
  const secret = randomBytes(32).toString('base64');
  const app = createApp({
    backend,
    auth: createAuthenticator({ secret }),
    ...(templates ? { templates } : {}),
  });
  const requests: Seen[] = [];
  const server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    async fetch(request, server) {
      const url = new URL(request.url);
      const seen = { method: request.method, path: url.pathname, query: url.search, status: 0 };
      requests.push(seen);
      const response = await app.fetch(request, server);
      seen.status = response.status;
      return response;
    },
  });
  const url = server.url.href;
  const open: Array<AsyncDisposable> = [];

  /** A token from `token generate`'s own code (its stdout), for `username` with `roles`. */
  const token = async (username: string, options: TokenOptions = {}) => {
    let stdout = '';
    await generateToken(
      {
        kind: 'token',
        username,
        roles: options.roles ?? ['user'],
        lifetimeMs: options.lifetimeMs ?? 3_600_000,
        secret: options.secret ?? secret,
      },
      { stdout: { write: (text: string) => (stdout += text) }, stderr: { write: () => true } },
      options.now,
    );
    return stdout.trim();
  };

  return {
    backend,
    url,
    requests,
    token,
    /** "METHOD /path?query" of every request the app received, in order. */
    routes: () => requests.map((r) => `${r.method} ${r.path}${r.query}`),
    /** mcp-server configured with this daemon's URL and `jwt`, behind a real MCP client. */
    async connect(jwt: string) {
      const mcp = await connectMcp({ CONTAINARIUM_SERVER_URL: url, CONTAINARIUM_JWT_TOKEN: jwt });
      open.push(mcp);
      return mcp;
    },
    async [Symbol.asyncDispose]() {
      for (const mcp of open) await mcp[Symbol.asyncDispose]();
      await server.stop(true);
    },
  };
}
