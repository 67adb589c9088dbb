// Test harness: the compiled mcp-server in http mode on 127.0.0.1, port 0, with its stderr kept.
import { BINARY } from './stdio.ts';

export type HttpMcp = {
  /** The /mcp URL it serves. */
  url: string;
  /** Everything it wrote to stderr so far. */
  stderr(): string;
  stop(): Promise<void>;
};

/** Starts `mcp-server http --port 0 ...args` and waits for the line naming its URL. */
export async function startHttpMcp(
  env: Record<string, string>,
  args: string[] = [],
  command: string[] = [BINARY],
): Promise<HttpMcp> {
  const child = Bun.spawn([...command, 'http', '--port', '0', ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
  });
  let text = '';
  const decoder = new TextDecoder();
  const reader = child.stderr.getReader();
  const url = await new Promise<string>((resolve, reject) => {
    void (async () => {
      for (;;) {
        const chunk = await reader.read();
        if (chunk.done) {
          reject(new Error(`mcp-server http exited before serving:\n${text}`));
          return;
        }
        text += decoder.decode(chunk.value, { stream: true });
        const found = text.match(/serving MCP over HTTP at (http\S+\/mcp)/)?.[1];
        if (found) {
          resolve(found);
          break;
        }
      }
      // Keep reading, so the log lines of the calls are there to check.
      for (;;) {
        const chunk = await reader.read();
        if (chunk.done) return;
        text += decoder.decode(chunk.value, { stream: true });
      }
    })();
  });
  return {
    url,
    stderr: () => text,
    stop: async () => {
      child.kill('SIGTERM');
      await child.exited;
    },
  };
}

/**
 * A forwarder on 127.0.0.1 that adds `Authorization: Bearer <token>` to each request that has
 * none and passes everything else (Host and Origin included) on to `target` unchanged: for clients
 * that cannot send a header of their own, such as the conformance suite.
 */
export function startBearerForwarder(
  target: string,
  token: string,
): { url: string; stop(): Promise<void> } {
  const to = new URL(target);
  const server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    idleTimeout: 0,
    fetch: (request) => {
      const url = new URL(request.url);
      url.host = to.host;
      const headers = new Headers(request.headers);
      if (!headers.has('authorization')) headers.set('authorization', `Bearer ${token}`);
      return fetch(url, {
        method: request.method,
        headers,
        body: request.body,
        redirect: 'manual',
        decompress: false,
      } as RequestInit);
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}${to.pathname}`,
    stop: () => server.stop(true),
  };
}
