// loadServer: the MCP SDK's schemas validate without compiling code (zod's jitless mode), which
// the first answer would otherwise wait for.
import { describe, expect, test } from 'bun:test';
import { resolve } from 'node:path';

const ROOT = resolve(import.meta.dir, '../..');

const INITIALIZE = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: {
    protocolVersion: '2025-06-18',
    capabilities: {},
    clientInfo: { name: 't', version: '1' },
  },
});

/**
 * In a fresh process: counts the functions compiled from source (`new Function`) while the server
 * module loads (by `load`, an expression) and answers an initialize over the stdio framing.
 */
function firstAnswer(load: string): { compiled: number; replies: string[] } {
  const script = `
    let compiled = 0;
    globalThis.Function = new Proxy(Function, {
      construct(target, args) { compiled++; return Reflect.construct(target, args); },
    });
    const { requestHooks, serveBothEras } = await ${load};
    const { LineTransport } = await import('./src/mcp/stdio.ts');
    const input = new ReadableStream({
      start(c) { c.enqueue(new TextEncoder().encode(${JSON.stringify(`${INITIALIZE}\n`)})); c.close(); },
    });
    const replies = [];
    const transport = new LineTransport(input, { write: (s) => replies.push(s), flush: () => 0 }, undefined, requestHooks);
    serveBothEras({ configError: 'unset' }, transport);
    await transport.finished;
    console.log(JSON.stringify({ compiled, replies }));
  `;
  const proc = Bun.spawnSync(['bun', '-e', script], { cwd: ROOT, stderr: 'pipe' });
  if (proc.exitCode !== 0) throw new Error(proc.stderr.toString());
  return JSON.parse(proc.stdout.toString());
}

describe('loadServer', () => {
  test('answers the first request without compiling a validator', () => {
    const { compiled, replies } = firstAnswer(
      "import('./src/mcp/load-server.ts').then((m) => m.loadServer())",
    );
    expect(replies).toHaveLength(1);
    expect(JSON.parse(replies[0] as string)).toMatchObject({
      id: 1,
      result: { protocolVersion: '2025-06-18', serverInfo: { name: 'containarium-mcp-server' } },
    });
    expect(compiled).toBe(0);
  });

  test('where server.ts loaded by itself compiles them (what the count above would see)', () => {
    const { compiled, replies } = firstAnswer("import('./src/mcp/server.ts')");
    expect(replies).toHaveLength(1);
    expect(compiled).toBeGreaterThan(0);
  });
});
