// Test harness: mcp-server as a child process over stdio (from source, or the compiled binary).
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

export const ROOT = resolve(import.meta.dir, '../..');
export const BINARY = resolve(ROOT, 'dist/mcp-server');

/**
 * Whether dist/mcp-server is built. CI builds before testing, so there a missing binary is an
 * error; on a laptop, the tests of `what` are skipped with the reason printed.
 */
export function binaryBuilt(what: string): boolean {
  const built = existsSync(BINARY);
  if (!built && process.env.CI === 'true')
    throw new Error('dist/mcp-server is missing: run `bun run build`');
  if (!built) console.warn(`skipping ${what}: dist/mcp-server is missing (run \`bun run build\`)`);
  return built;
}

export type Message = {
  id?: unknown;
  result?: unknown;
  error?: { code: number; message: string };
  [k: string]: unknown;
};

export function spawnMcp(
  env: Record<string, string>,
  command: string[] = ['bun', resolve(ROOT, 'src/mcp/main.ts')],
) {
  const proc = Bun.spawn(command, {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdin: 'pipe',
    stdout: 'pipe',
    stderr: 'pipe',
  });
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  const decoder = new TextDecoder();
  let partial = '';
  const pump = (async () => {
    for await (const chunk of proc.stdout) {
      partial += decoder.decode(chunk, { stream: true });
      let newline = partial.indexOf('\n');
      while (newline !== -1) {
        lines.push(partial.slice(0, newline));
        partial = partial.slice(newline + 1);
        newline = partial.indexOf('\n');
      }
      for (const wake of waiters.splice(0)) wake();
    }
  })();
  const messages = () => lines.map((line) => JSON.parse(line) as Message);
  return {
    proc,
    /** Every stdout line so far, raw. */
    lines,
    send(message: unknown) {
      proc.stdin.write(`${typeof message === 'string' ? message : JSON.stringify(message)}\n`);
      proc.stdin.flush();
    },
    /** Waits for the reply with this id (or, with id null, the first reply whose id is null). */
    async reply(id: unknown, timeoutMs = 10_000): Promise<Message> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = messages().find((m) => m.id === id && ('result' in m || 'error' in m));
        if (found) return found;
        if (Date.now() > deadline)
          throw new Error(`no reply to id ${String(id)}; got ${lines.join('\n')}`);
        await Promise.race([new Promise<void>((r) => waiters.push(r)), Bun.sleep(50)]);
      }
    },
    async initialize() {
      this.send({
        jsonrpc: '2.0',
        id: 'init',
        method: 'initialize',
        params: {
          protocolVersion: '2025-06-18',
          capabilities: {},
          clientInfo: { name: 'stdio-test', version: '1' },
        },
      });
      const reply = await this.reply('init');
      this.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
      return reply;
    },
    async close() {
      proc.stdin.end();
      const code = await proc.exited;
      await pump;
      return { code, stderr: await new Response(proc.stderr).text() };
    },
  };
}
