// Both protocol eras: the 2026-07-28 wire as a client sees it, byte by byte, and real clients
// (the v1 and v2 TypeScript SDKs, the Python SDK, the MCP Inspector CLI) against the compiled
// dist/mcp-server and the fake daemon.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { Client as ClientV2 } from '@modelcontextprotocol/client';
import { StdioClientTransport as StdioV2 } from '@modelcontextprotocol/client/stdio';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport as StdioV1 } from '@modelcontextprotocol/sdk/client/stdio.js';
import { TOOLS_TTL_MS } from '../../src/mcp/server.ts';
import { TOOLS } from '../../src/mcp/tools/index.ts';
import { type FakeDaemon, startFakeDaemon } from '../support/fake-daemon.ts';
import { makeToken } from '../support/mcp.ts';
import { runPythonClient } from '../support/python.ts';
import { BINARY, binaryBuilt, ROOT, spawnMcp } from '../support/stdio.ts';

const MODERN = '2026-07-28';
const NAMES = TOOLS.map((tool) => tool.name);
const envelope = (capabilities: Record<string, unknown> = {}) => ({
  'io.modelcontextprotocol/protocolVersion': MODERN,
  'io.modelcontextprotocol/clientInfo': { name: 'eras-test', version: '1' },
  'io.modelcontextprotocol/clientCapabilities': capabilities,
});

const token = await makeToken();
// Port 9 (discard) on loopback: nothing listens; these wire checks call no daemon.
const offline = { CONTAINARIUM_SERVER_URL: 'http://127.0.0.1:9', CONTAINARIUM_JWT_TOKEN: token };

describe('the 2026-07-28 wire', () => {
  test('server/discover names the version, the capabilities and the server', async () => {
    const mcp = spawnMcp(offline);
    mcp.send({ jsonrpc: '2.0', id: 1, method: 'server/discover', params: { _meta: envelope() } });
    const { result } = await mcp.reply(1);
    expect(result).toMatchObject({
      supportedVersions: [MODERN],
      capabilities: { tools: { listChanged: false } },
      resultType: 'complete',
      _meta: { 'io.modelcontextprotocol/serverInfo': { name: 'containarium-mcp-server' } },
    });
    // A probe does not pin the connection: a 2025 client may still shake hands after it.
    const init = await mcp.initialize();
    expect(init.result).toMatchObject({ protocolVersion: '2025-06-18' });
    expect((await mcp.close()).code).toBe(0);
  });

  test('tools/list: resultType, cache hints, and the same tools in the same order every time', async () => {
    const mcp = spawnMcp(offline);
    const lists = [];
    for (const id of [1, 2]) {
      mcp.send({ jsonrpc: '2.0', id, method: 'tools/list', params: { _meta: envelope() } });
      lists.push((await mcp.reply(id)).result as Record<string, unknown>);
    }
    const [first, second] = lists as [Record<string, unknown>, Record<string, unknown>];
    expect(first).toMatchObject({
      resultType: 'complete',
      ttlMs: TOOLS_TTL_MS,
      cacheScope: 'public',
      _meta: { 'io.modelcontextprotocol/serverInfo': { name: 'containarium-mcp-server' } },
    });
    expect((first.tools as { name: string }[]).map((tool) => tool.name)).toEqual(NAMES);
    expect(JSON.stringify(second)).toBe(JSON.stringify(first));
    // A fresh process lists them in the same order too.
    const again = spawnMcp(offline);
    again.send({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: envelope() } });
    expect(JSON.stringify((await again.reply(1)).result)).toBe(JSON.stringify(first));
    await again.close();
    await mcp.close();
  });

  test('tools/call: resultType and a tool result; bad arguments are still an isError sentence', async () => {
    const mcp = spawnMcp(offline);
    mcp.send({
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { name: 'get_container', arguments: { username: 'Not A Name' }, _meta: envelope() },
    });
    const { result } = await mcp.reply(1);
    expect(result).toMatchObject({ resultType: 'complete', isError: true });
    expect((result as { content: { text: string }[] }).content[0]!.text).toContain('"username"');
    expect(result).not.toHaveProperty('ttlMs');
    // Our own -32602 sentences hold in this era too.
    mcp.send({
      jsonrpc: '2.0',
      id: 2,
      method: 'tools/call',
      params: { name: 'get_container', arguments: ['alice'], _meta: envelope() },
    });
    expect((await mcp.reply(2)).error).toMatchObject({
      code: -32602,
      message: expect.stringContaining('arguments must be an object'),
    });
    await mcp.close();
  });

  test('an incomplete envelope is invalid params; initialize on a 2026 connection is refused', async () => {
    const mcp = spawnMcp(offline);
    mcp.send({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: envelope() } });
    await mcp.reply(1);
    mcp.send({
      jsonrpc: '2.0',
      id: 2,
      method: 'tools/list',
      params: { _meta: { 'io.modelcontextprotocol/protocolVersion': MODERN } },
    });
    const incomplete = await mcp.reply(2);
    expect(incomplete.error?.code).toBe(-32602);
    expect(incomplete.error?.message).toContain('_meta');
    mcp.send({ jsonrpc: '2.0', id: 3, method: 'initialize', params: {} });
    const refused = await mcp.reply(3);
    expect(refused.error?.code).toBe(-32022);
    // ping left the protocol in 2026-07-28.
    mcp.send({ jsonrpc: '2.0', id: 4, method: 'ping', params: { _meta: envelope() } });
    expect((await mcp.reply(4)).error?.code).toBe(-32601);
    expect((await mcp.close()).code).toBe(0);
  });

  test('a 2025 connection sees none of the 2026 fields', async () => {
    for (const version of ['2025-06-18', '2025-11-25']) {
      const mcp = spawnMcp(offline);
      mcp.send({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: {
          protocolVersion: version,
          capabilities: {},
          clientInfo: { name: 'c', version: '1' },
        },
      });
      expect((await mcp.reply(1)).result).toMatchObject({ protocolVersion: version });
      mcp.send({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
      const list = (await mcp.reply(2)).result as Record<string, unknown>;
      expect(Object.keys(list)).toEqual(['tools']);
      expect((list.tools as { name: string }[]).map((tool) => tool.name)).toEqual(NAMES);
      mcp.send({ jsonrpc: '2.0', id: 3, method: 'ping' });
      expect((await mcp.reply(3)).result).toEqual({});
      await mcp.close();
    }
  });
});

const built = binaryBuilt('the real clients');

describe.skipIf(!built)('real clients against dist/mcp-server', () => {
  let fake: FakeDaemon;
  let env: Record<string, string>;
  beforeAll(() => {
    fake = startFakeDaemon({ generation: 'v0.3', token, containers: [{ username: 'alice' }] });
    env = { CONTAINARIUM_SERVER_URL: fake.url, CONTAINARIUM_JWT_TOKEN: token };
  });
  afterAll(async () => {
    await fake.stop();
  });
  const childEnv = () => ({
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    ...env,
  });
  const textOf = (result: unknown) =>
    (result as { content: { type: string; text?: string }[] }).content
      .map((block) => block.text ?? '')
      .join('\n');

  test('the v1 TypeScript SDK client (2025-11-25)', async () => {
    const client = new ClientV1({ name: 'v1-client', version: '1' });
    await client.connect(new StdioV1({ command: BINARY, env: childEnv(), stderr: 'ignore' }));
    expect(client.getServerVersion()?.name).toBe('containarium-mcp-server');
    const { tools } = await client.listTools();
    expect(tools.map((tool) => tool.name)).toEqual(NAMES);
    const result = await client.callTool({ name: 'list_containers', arguments: {} });
    expect(result.isError).toBeFalsy();
    expect(textOf(result)).toContain('alice-container');
    await client.close();
  });

  for (const [label, mode, version] of [
    ['legacy', 'legacy', '2025-11-25'],
    ['pinned to 2026-07-28', { pin: MODERN }, MODERN],
    ['auto', 'auto', MODERN],
  ] as const) {
    test(`the v2 TypeScript SDK client, ${label}`, async () => {
      const client = new ClientV2(
        { name: 'v2-client', version: '1' },
        { versionNegotiation: { mode } },
      );
      await client.connect(new StdioV2({ command: BINARY, env: childEnv(), stderr: 'ignore' }));
      expect(client.getNegotiatedProtocolVersion()).toBe(version);
      expect(client.getServerVersion()?.name).toBe('containarium-mcp-server');
      const list = await client.listTools();
      expect(list.tools.map((tool) => tool.name)).toEqual(NAMES);
      const result = await client.callTool({ name: 'list_containers', arguments: {} });
      expect(result.isError).toBeFalsy();
      expect(textOf(result)).toContain('alice-container');
      const invalid = await client.callTool({ name: 'get_container', arguments: { username: 1 } });
      expect(invalid.isError).toBe(true);
      expect(textOf(invalid)).toContain('"username"');
      await client.close();
    });
  }

  test('the Python SDK (mcp 2.x) in 2026-07-28 mode', async () => {
    const seen = await runPythonClient(MODERN, [BINARY], childEnv());
    expect(seen).toMatchObject({
      protocol_version: MODERN,
      tools: NAMES,
      ttl_ms: TOOLS_TTL_MS,
      cache_scope: 'public',
      list_is_error: false,
      invalid_is_error: true,
    });
    expect(seen.list_text).toContain('alice-container');
    expect(seen.invalid_text).toContain('"username"');
  }, 60_000);

  for (const era of ['legacy', 'modern'] as const) {
    test(`the MCP Inspector CLI, --protocol-era ${era}`, async () => {
      const inspector = resolve(ROOT, 'node_modules/.bin/mcp-inspector');
      if (!existsSync(inspector)) {
        throw new Error('the MCP Inspector is missing: run `bun install` (a devDependency)');
      }
      const run = async (...args: string[]) => {
        const proc = Bun.spawn(
          [
            'bun',
            inspector,
            '--cli',
            '--protocol-era',
            era,
            '--format',
            'json',
            ...Object.entries(env).flatMap(([key, value]) => ['-e', `${key}=${value}`]),
            BINARY,
            ...args,
          ],
          // Its own settings file goes to a home of its own.
          { env: { PATH: process.env.PATH ?? '', HOME: '/tmp' }, stdout: 'pipe', stderr: 'pipe' },
        );
        const [stdout, stderr, code] = await Promise.all([
          new Response(proc.stdout).text(),
          new Response(proc.stderr).text(),
          proc.exited,
        ]);
        if (code !== 0) throw new Error(`the Inspector failed (${code}):\n${stdout}\n${stderr}`);
        return JSON.parse(stdout);
      };
      const list = await run('--method', 'tools/list');
      expect(list.result.tools.map((tool: { name: string }) => tool.name)).toEqual(NAMES);
      const call = await run('--method', 'tools/call', '--tool-name', 'list_containers');
      expect(JSON.stringify(call.result.content)).toContain('alice-container');
      // Only a 2026 answer names the server in its _meta: proof of the era actually spoken.
      const named = call.result._meta?.['io.modelcontextprotocol/serverInfo']?.name;
      expect(named).toBe(era === 'modern' ? 'containarium-mcp-server' : undefined);
    }, 60_000);
  }
});
