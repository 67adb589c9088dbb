// Smoke test of the compiled dist/mcp-server over stdio, against the fake daemon.
import { describe, expect, test } from 'bun:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { TOOLS } from '../../src/mcp/tools/index.ts';
import { startFakeDaemon } from '../support/fake-daemon.ts';
import { makeToken } from '../support/mcp.ts';
import { BINARY, binaryBuilt, spawnMcp } from '../support/stdio.ts';

const built = binaryBuilt('the binary smoke test');

describe.skipIf(!built)('dist/mcp-server', () => {
  test('--version and --help answer without a config', async () => {
    const version = Bun.spawnSync([BINARY, '--version'], { env: {} });
    expect(version.exitCode).toBe(0);
    expect(version.stdout.toString()).toMatch(/^mcp-server \d+\.\d+\.\d+\n$/);
    const help = Bun.spawnSync([BINARY, '--help'], { env: {} });
    expect(help.stdout.toString()).toContain('CONTAINARIUM_SERVER_URL');
  });

  test('without a server URL an MCP client still connects, and each tool says what to set', async () => {
    const transport = new StdioClientTransport({
      command: BINARY,
      args: [],
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' },
      stderr: 'pipe',
    });
    let stderr = '';
    transport.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const client = new Client({ name: 'binary-test', version: '1' });
    await client.connect(transport);
    expect((await client.listTools()).tools.length).toBe(TOOLS.length);
    const result = (await client.callTool({ name: 'list_containers', arguments: {} })) as {
      isError?: boolean;
      content: { type: string; text: string }[];
    };
    await client.close();
    expect(result.isError).toBe(true);
    expect(result.content[0]!.text).toStartWith(
      'CONTAINARIUM_SERVER_URL environment variable is required. Set it to the Containarium REST API, e.g. http://localhost:8080.',
    );
    expect(result.content[0]!.text).toContain('mcp-server install');
    expect(stderr).toContain('CONTAINARIUM_SERVER_URL environment variable is required');
  });

  test('serves the tools over stdio', async () => {
    const token = await makeToken();
    await using fake = startFakeDaemon({
      generation: 'v0.3',
      token,
      containers: [{ username: 'alice' }],
    });
    const proc = spawnMcp({ CONTAINARIUM_SERVER_URL: fake.url, CONTAINARIUM_JWT_TOKEN: token }, [
      BINARY,
    ]);
    const init = await proc.initialize();
    expect(init.result).toMatchObject({ serverInfo: { name: 'containarium-mcp-server' } });
    proc.send({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
    const tools = (await proc.reply(2)).result as { tools: { name: string }[] };
    expect(tools.tools.length).toBe(TOOLS.length);
    proc.send({
      jsonrpc: '2.0',
      id: 3,
      method: 'tools/call',
      params: { name: 'list_containers', arguments: {} },
    });
    const list = (await proc.reply(3)).result as { content: { text: string }[] };
    expect(list.content[0]!.text).toContain('alice-container');
    const { code, stderr } = await proc.close();
    expect(code).toBe(0);
    expect(stderr).not.toContain(token);
  });

  test("answers the seed's test line, piped in, with the server info", async () => {
    const token = await makeToken();
    // As the seed prints it: the line on stdin, then end of input (Ctrl+D).
    const proc = Bun.spawn([BINARY], {
      env: { CONTAINARIUM_SERVER_URL: 'http://127.0.0.1:9', CONTAINARIUM_JWT_TOKEN: token },
      stdin: new TextEncoder().encode(
        '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}\n',
      ),
      stdout: 'pipe',
      stderr: 'pipe',
    });
    const [stdout, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines.length).toBe(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({
      id: 1,
      result: {
        serverInfo: { name: 'containarium-mcp-server' },
        protocolVersion: expect.stringMatching(/^2025-/),
      },
    });
  });
});
