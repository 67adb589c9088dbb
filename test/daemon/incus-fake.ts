// A fake Incus for unit tests: Bun.serve on a unix socket in a temp dir, answering from a route
// table with Incus-shaped envelopes, and recording every request it gets.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type Seen = { method: string; path: string; search: string; headers: Headers; body: string };
type Route = (seen: Seen) => Response | Promise<Response>;

export const sync = (metadata: unknown) =>
  Response.json({
    type: 'sync',
    status: 'Success',
    status_code: 200,
    operation: '',
    error_code: 0,
    error: '',
    metadata,
  });

export const failure = (code: number, error: string) =>
  Response.json(
    {
      type: 'error',
      status: '',
      status_code: 0,
      operation: '',
      error_code: code,
      error,
      metadata: null,
    },
    { status: code },
  );

export const started = (id: string) =>
  Response.json(
    {
      type: 'async',
      status: 'Operation created',
      status_code: 100,
      operation: `/1.0/operations/${id}`,
      error_code: 0,
      error: '',
      metadata: { id, status: 'Running', status_code: 103, err: '', metadata: null },
    },
    { status: 202 },
  );

export const finished = (id: string, metadata: unknown = null) =>
  sync({ id, status: 'Success', status_code: 200, err: '', metadata });

export const fixture = async (name: string) =>
  (await Bun.file(`${import.meta.dir}/../fixtures/incus/${name}.json`).json()).metadata;

/** Routes are keyed "METHOD /path" (no query); unknown routes answer Incus's 404. */
export function fakeIncus(routes: Record<string, Route>) {
  const dir = mkdtempSync(join(tmpdir(), 'incus-fake-'));
  const socket = join(dir, 'unix.socket');
  const seen: Seen[] = [];
  const server = Bun.serve({
    unix: socket,
    async fetch(request) {
      const url = new URL(request.url);
      const entry: Seen = {
        method: request.method,
        path: decodeURIComponent(url.pathname),
        search: url.search,
        headers: request.headers,
        body: await request.text(),
      };
      seen.push(entry);
      const route = routes[`${entry.method} ${entry.path}`];
      return route ? route(entry) : failure(404, 'Not Found');
    },
  });
  return {
    socket,
    seen,
    /** The requests with this method whose path starts with prefix. */
    calls: (method: string, prefix: string) =>
      seen.filter((s) => s.method === method && s.path.startsWith(prefix)),
    async [Symbol.asyncDispose]() {
      await server.stop(true);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
