// A unix socket in front of the real Incus that forwards every call except those a test chooses to
// fail or hold: for the transient failures real Incus shows only under load, and for stopping a
// daemon at a known point of a create.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type Call = { method: string; path: string };

/** `fault` answers instead of Incus when it gives a Response; undefined forwards the call. */
export function incusProxy(
  target: string,
  fault: (call: Call) => Response | undefined | Promise<Response | undefined>,
) {
  const dir = mkdtempSync(join(tmpdir(), 'incus-proxy-'));
  const socket = join(dir, 'unix.socket');
  const server = Bun.serve({
    unix: socket,
    async fetch(request) {
      const url = new URL(request.url);
      const failed = await fault({
        method: request.method,
        path: decodeURIComponent(url.pathname),
      });
      if (failed) return failed;
      const body = ['GET', 'HEAD'].includes(request.method) ? undefined : await request.text();
      const headers = new Headers(request.headers);
      headers.delete('host');
      const answer = await fetch(`http://incus${url.pathname}${url.search}`, {
        method: request.method,
        headers,
        body,
        unix: target,
      });
      const passed = new Headers(answer.headers);
      // fetch has decoded the body already.
      passed.delete('content-encoding');
      passed.delete('content-length');
      return new Response(await answer.arrayBuffer(), { status: answer.status, headers: passed });
    },
  });
  return {
    socket,
    async [Symbol.asyncDispose]() {
      await server.stop(true);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
