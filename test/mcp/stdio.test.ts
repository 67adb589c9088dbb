// mcp-server as a real process: framing, bad input, notifications, stdout hygiene.
import { describe, expect, test } from 'bun:test';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JSONRPCMessage } from '@modelcontextprotocol/server';
import { LineTransport, MAX_PENDING_REQUESTS } from '../../src/mcp/stdio.ts';
import { TOOLS } from '../../src/mcp/tools/index.ts';
import { makeToken } from '../support/mcp.ts';
import { spawnMcp } from '../support/stdio.ts';

const token = await makeToken();
// Port 9 (discard) on loopback: nothing listens, so API calls fail fast; these tests need no daemon.
const env = { CONTAINARIUM_SERVER_URL: 'http://127.0.0.1:9', CONTAINARIUM_JWT_TOKEN: token };

describe('stdio', () => {
  test('answers initialize and ping, never a notification', async () => {
    const mcp = spawnMcp(env);
    const init = await mcp.initialize();
    expect((init.result as { serverInfo: { name: string } }).serverInfo.name).toBe(
      'containarium-mcp-server',
    );
    mcp.send({
      jsonrpc: '2.0',
      method: 'notifications/cancelled',
      params: { requestId: 'nothing' },
    });
    mcp.send({ jsonrpc: '2.0', method: 'notifications/unknown' });
    mcp.send({ jsonrpc: '2.0', id: 1, method: 'ping' });
    expect((await mcp.reply(1)).result).toEqual({});
    await mcp.close();
    // Only the two answers: initialize and ping.
    expect(mcp.lines.length).toBe(2);
  });

  test("answers the seed's bare initialize line with the server info", async () => {
    // The newest protocol version of 2025 that the SDK speaks.
    const newest2025 = '2025-11-25';
    const mcp = spawnMcp(env);
    // Byte for byte the line the seed tells users to paste.
    mcp.send('{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}');
    const reply = await mcp.reply(1);
    expect(reply.error).toBeUndefined();
    expect(reply.result).toMatchObject({
      protocolVersion: newest2025,
      serverInfo: { name: 'containarium-mcp-server' },
      capabilities: { tools: {} },
    });
    // No params at all means the same; a version the client names is still honoured.
    mcp.send({ jsonrpc: '2.0', id: 2, method: 'initialize' });
    expect((await mcp.reply(2)).result).toMatchObject({
      protocolVersion: newest2025,
    });
    mcp.send({
      jsonrpc: '2.0',
      id: 3,
      method: 'initialize',
      params: { protocolVersion: '2024-11-05' },
    });
    expect((await mcp.reply(3)).result).toMatchObject({ protocolVersion: '2024-11-05' });
    expect((await mcp.close()).code).toBe(0);
  });

  test('answers params the protocol schema rejects with -32602 and one sentence naming the field', async () => {
    const mcp = spawnMcp(env);
    const cases = [
      {
        method: 'initialize',
        params: { protocolVersion: 5 },
        says: 'Invalid params for initialize: "protocolVersion" must be a string, not a number.',
      },
      {
        method: 'initialize',
        params: { clientInfo: { name: 'me' } },
        says: 'Invalid params for initialize: "clientInfo.version" is missing; it must be a string.',
      },
      {
        method: 'tools/list',
        params: { cursor: 5 },
        says: 'Invalid params for tools/list: "cursor" must be a string, not a number.',
      },
      {
        method: 'ping',
        params: { _meta: { progressToken: {} } },
        says: 'Invalid params for ping: "_meta.progressToken" must be a string or a number, not an object.',
      },
    ];
    for (const [i, { method, params, says }] of cases.entries()) {
      mcp.send({ jsonrpc: '2.0', id: i, method, params });
      const { error } = await mcp.reply(i);
      expect(error?.code).toBe(-32602);
      expect(error?.message).toBe(says);
      // Never the validator's internals: no issue list, no JSON, one line.
      expect(error?.message).not.toMatch(/issues|expected|invalid_type|[[{\n]/);
    }
    // The SDK would leave these unanswered: params that are not an object, a _meta that is not one.
    for (const [id, params] of [
      ['list', 5],
      ['meta', { _meta: 'x' }],
    ] as const) {
      mcp.send({ jsonrpc: '2.0', id, method: 'tools/list', params });
      expect((await mcp.reply(id)).error?.code).toBe(-32602);
    }
    // A method the server does not serve stays "not found", whatever its params.
    mcp.send({ jsonrpc: '2.0', id: 'r', method: 'resources/list', params: { cursor: 5 } });
    expect((await mcp.reply('r')).error?.code).toBe(-32601);
    // Still serving after all of that.
    const init = await mcp.initialize();
    expect(init.result).toMatchObject({ serverInfo: { name: 'containarium-mcp-server' } });
    expect((await mcp.close()).code).toBe(0);
  });

  test('answers bad input with JSON-RPC errors and keeps serving', async () => {
    const mcp = spawnMcp(env);
    await mcp.initialize();
    mcp.send('this is not json');
    expect((await mcp.reply(null)).error?.code).toBe(-32700);
    mcp.send({ jsonrpc: '1.0', id: 2, method: 'ping' });
    expect((await mcp.reply(2)).error?.code).toBe(-32600);
    mcp.send({ jsonrpc: '2.0', id: 3, method: 'no/such/method' });
    expect((await mcp.reply(3)).error?.code).toBe(-32601);
    mcp.send({
      jsonrpc: '2.0',
      id: 4,
      method: 'tools/call',
      params: { name: 'no_such_tool', arguments: {} },
    });
    const unknown = await mcp.reply(4);
    expect(unknown.error?.code).toBe(-32602);
    expect(unknown.error?.message).toContain('no_such_tool');
    mcp.lines.length = 0;
    for (const line of ['42', '"text"', 'true', 'null']) {
      mcp.send(line);
      const reply = await mcp.reply(null);
      expect(reply.error?.code).toBe(-32600);
      mcp.lines.length = 0;
    }
    mcp.send({ jsonrpc: '2.0', id: null, method: 'ping' });
    expect((await mcp.reply(null)).error?.code).toBe(-32600);
    mcp.lines.length = 0;
    mcp.send({
      jsonrpc: '2.0',
      id: 'args',
      method: 'tools/call',
      params: { name: 'get_container', arguments: ['alice'] },
    });
    const args = await mcp.reply('args');
    expect(args.error?.code).toBe(-32602);
    expect(args.error?.message).toContain('arguments must be an object');
    mcp.send('[{"jsonrpc":"2.0","id":5,"method":"ping"}]');
    // Batches left the protocol in 2025-06-18: refused as a whole, with no id to answer to.
    expect((await mcp.reply(null)).error?.code).toBe(-32600);
    mcp.send({ jsonrpc: '2.0', id: 6, method: 'ping' });
    expect((await mcp.reply(6)).result).toEqual({});
    const { code } = await mcp.close();
    expect(code).toBe(0);
    for (const line of mcp.lines) expect(JSON.parse(line).jsonrpc).toBe('2.0');
  });

  test('a parse error never echoes the token, whole or in part', async () => {
    // A token whose signature has no '-' or '_', so that JSON.parse names all of it.
    let signed = token;
    for (let i = 0; !/^[^.]+\.[^.]+\.[A-Za-z0-9]+$/.test(signed); i++)
      signed = await makeToken({ username: `user${i}` });
    const mcp = spawnMcp({ ...env, CONTAINARIUM_JWT_TOKEN: signed });
    await mcp.initialize();
    const [header, , signature] = signed.split('.');
    // JSON.parse names the identifier it trips on: here the token's header, then its signature.
    for (const line of [`{"a": ${signed}}`, `{"a": Z${signature}}`]) {
      mcp.lines.length = 0;
      mcp.send(line);
      const reply = await mcp.reply(null);
      expect(reply.error?.code).toBe(-32700);
      expect(reply.error?.message).toContain('[redacted]');
      expect(reply.error?.message).not.toContain(header!);
      expect(reply.error?.message).not.toContain(signature!);
    }
    await mcp.close();
  });

  test('handles a 1 MB line, and skips a line over the limit without dying', async () => {
    const mcp = spawnMcp(env);
    await mcp.initialize();
    const big = 'a'.repeat(1024 * 1024);
    mcp.send({
      jsonrpc: '2.0',
      id: 'big',
      method: 'tools/call',
      params: { name: 'get_container', arguments: { username: big } },
    });
    const reply = (await mcp.reply('big')).result as {
      isError: boolean;
      content: { text: string }[];
    };
    expect(reply.isError).toBe(true);
    expect(reply.content[0]!.text).toContain('"username"');
    mcp.send(
      `{"jsonrpc":"2.0","id":"huge","method":"ping","params":{"x":"${'b'.repeat(17 * 1024 * 1024)}"}}`,
    );
    expect((await mcp.reply(null, 30_000)).error?.code).toBe(-32600);
    mcp.send({ jsonrpc: '2.0', id: 'after', method: 'ping' });
    expect((await mcp.reply('after')).result).toEqual({});
    await mcp.close();
  }, 60_000);

  test('answers requests still in flight when stdin closes', async () => {
    const mcp = spawnMcp(env);
    await mcp.initialize();
    mcp.send({
      jsonrpc: '2.0',
      id: 7,
      method: 'tools/call',
      params: { name: 'list_containers', arguments: {} },
    });
    const { code } = await mcp.close();
    expect(code).toBe(0);
    const reply = JSON.parse(mcp.lines.at(-1)!);
    expect(reply.id).toBe(7);
    expect(reply.result.isError).toBe(true);
    expect(reply.result.content[0].text).toContain('not reachable at http://127.0.0.1:9');
  });

  test('debug logs go to stderr with the token redacted', async () => {
    const mcp = spawnMcp({ ...env, CONTAINARIUM_DEBUG: 'true' });
    await mcp.initialize();
    mcp.send({ jsonrpc: '2.0', id: 8, method: 'ping', params: { _meta: { echo: token } } });
    await mcp.reply(8);
    const { stderr } = await mcp.close();
    expect(stderr).toContain('"method":"ping"');
    expect(stderr).toContain('[redacted]');
    expect(stderr).not.toContain(token);
    for (const line of mcp.lines) expect(() => JSON.parse(line)).not.toThrow();
  });

  test('a configuration error still serves: stderr has the message, every tool call answers with it', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'mcp-config-'));
    const openFile = join(folder, 'token');
    writeFileSync(openFile, token, { mode: 0o644 });
    chmodSync(openFile, 0o644);
    const cases: [Record<string, string>, string][] = [
      [
        { CONTAINARIUM_JWT_TOKEN: token },
        'CONTAINARIUM_SERVER_URL environment variable is required',
      ],
      [
        { CONTAINARIUM_SERVER_URL: 'http://127.0.0.1:9' },
        'CONTAINARIUM_JWT_TOKEN environment variable is required',
      ],
      [
        { ...env, CONTAINARIUM_SERVER_URL: 'localhost 8080' },
        'CONTAINARIUM_SERVER_URL is not a valid URL',
      ],
      [{ ...env, CONTAINARIUM_JWT_TOKEN: 'not-a-jwt' }, 'CONTAINARIUM_JWT_TOKEN is not a JWT'],
      [
        { CONTAINARIUM_SERVER_URL: 'http://127.0.0.1:9', CONTAINARIUM_JWT_TOKEN_FILE: openFile },
        'can be read by other users (mode 644)',
      ],
    ];
    for (const [settings, message] of cases) {
      const mcp = spawnMcp(settings);
      const init = await mcp.initialize();
      expect((init.result as { serverInfo: { name: string } }).serverInfo.name).toBe(
        'containarium-mcp-server',
      );
      mcp.send({ jsonrpc: '2.0', id: 'list', method: 'tools/list' });
      expect(((await mcp.reply('list')).result as { tools: unknown[] }).tools.length).toBe(
        TOOLS.length,
      );
      for (const name of ['list_containers', 'get_container']) {
        mcp.send({
          jsonrpc: '2.0',
          id: name,
          method: 'tools/call',
          params: { name, arguments: { username: 'alice' } },
        });
        const result = (await mcp.reply(name)).result as {
          isError: boolean;
          content: { text: string }[];
        };
        expect(result.isError).toBe(true);
        expect(result.content[0]!.text).toContain(message);
        expect(result.content[0]!.text).toContain('"env" of this server\'s entry');
      }
      const { code, stderr } = await mcp.close();
      expect(code).toBe(0);
      expect(stderr).toContain(message);
      expect(stderr + mcp.lines.join('\n')).not.toContain(token);
    }
    rmSync(folder, { recursive: true, force: true });
  }, 60_000);

  test('tools/call without params, or without a tool name, is invalid params (-32602)', async () => {
    const mcp = spawnMcp(env);
    await mcp.initialize();
    mcp.send({ jsonrpc: '2.0', id: 'none', method: 'tools/call' });
    const none = await mcp.reply('none');
    expect(none.error?.code).toBe(-32602);
    expect(none.error?.message).toContain('tool name');
    mcp.send({ jsonrpc: '2.0', id: 'nameless', method: 'tools/call', params: { arguments: {} } });
    expect((await mcp.reply('nameless')).error?.code).toBe(-32602);
    mcp.send({ jsonrpc: '2.0', id: 'number', method: 'tools/call', params: { name: 7 } });
    expect((await mcp.reply('number')).error?.code).toBe(-32602);
    // Other methods may leave params out.
    mcp.send({ jsonrpc: '2.0', id: 'list', method: 'tools/list' });
    expect((await mcp.reply('list')).result).toBeDefined();
    await mcp.close();
  });

  test('warns about an expired token and plain http to another host, without the token', async () => {
    const expired = await makeToken({ expiresIn: Math.floor(Date.now() / 1000) - 3600 });
    const mcp = spawnMcp({
      CONTAINARIUM_SERVER_URL: 'http://containarium.invalid:8080',
      CONTAINARIUM_JWT_TOKEN: expired,
    });
    await mcp.initialize();
    const { stderr } = await mcp.close();
    expect(stderr).toMatch(/expired at \d{4}-\d\d-\d\dT/);
    expect(stderr).toContain('clear text');
    expect(stderr).not.toContain(expired);
  });
});

describe('LineTransport back-pressure', () => {
  const ping = (id: number) => `${JSON.stringify({ jsonrpc: '2.0', id, method: 'ping' })}\n`;
  const answer = (id: unknown) => ({ jsonrpc: '2.0', id, result: {} }) as JSONRPCMessage;
  /** A stdin the test writes to, counting the chunks the transport has taken. */
  function controlledInput() {
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const stream = new ReadableStream<Uint8Array>(
      {
        start(c) {
          controller = c;
        },
      },
      { highWaterMark: 0 },
    );
    return {
      stream,
      write: (text: string) => controller.enqueue(new TextEncoder().encode(text)),
      end: () => controller.close(),
      /** Chunks written but not yet read by the transport. */
      queued: () => -(controller.desiredSize ?? 0),
    };
  }
  const quickSink = { write: () => 0, flush: () => 0 };

  test(`stops reading at ${MAX_PENDING_REQUESTS} unanswered requests and reads on as they are answered`, async () => {
    const input = controlledInput();
    const transport = new LineTransport(input.stream, quickSink);
    const seen: unknown[] = [];
    transport.onmessage = (message) => void seen.push((message as { id: unknown }).id);
    await transport.start();
    // A burst in one write, then more: the lines beyond the limit wait unread.
    input.write(Array.from({ length: 1000 }, (_, i) => ping(i)).join(''));
    input.write(Array.from({ length: 1000 }, (_, i) => ping(1000 + i)).join(''));
    await Bun.sleep(10);
    expect(seen.length).toBe(MAX_PENDING_REQUESTS);
    // The second chunk is still in the stream: paused means not read, not read and held.
    expect(input.queued()).toBe(1);
    let answered = 0;
    let most = 0;
    while (answered < 2000) {
      while (answered >= seen.length) await Bun.sleep(0);
      await transport.send(answer(seen[answered++]));
      most = Math.max(most, seen.length - answered);
    }
    expect(seen).toEqual(Array.from({ length: 2000 }, (_, i) => i));
    expect(most).toBeLessThanOrEqual(MAX_PENDING_REQUESTS);
    input.end();
    await transport.finished;
  });

  test('replies written while stdout is full share one wait for it to drain', async () => {
    const input = controlledInput();
    let flushes = 0;
    let written = 0;
    let taken = 0;
    let take: (() => void) | undefined;
    // A pipe whose reader is away: each flush waits until the test lets it through.
    const sink = {
      write: () => void written++,
      flush: () => {
        flushes++;
        return new Promise<number>((resolve) => {
          take = () => {
            taken = written;
            resolve(0);
          };
        });
      },
    };
    const transport = new LineTransport(input.stream, sink);
    await transport.start();
    input.write(Array.from({ length: 50 }, (_, i) => ping(i)).join(''));
    let done = 0;
    const sent = Array.from({ length: 50 }, (_, i) => transport.send(answer(i)).then(() => done++));
    await Bun.sleep(0);
    // Fifty replies, one wait.
    expect(flushes).toBe(1);
    expect(done).toBe(0);
    take?.();
    await Bun.sleep(0);
    // The replies written during the wait get one more flush, and nobody is done before it.
    expect(flushes).toBe(2);
    expect(done).toBe(0);
    take?.();
    await Promise.all(sent);
    expect(taken).toBe(50);
  });

  test('at end of input, waits for the answers in flight, then closes once they are flushed', async () => {
    const input = controlledInput();
    const lines: string[] = [];
    const transport = new LineTransport(input.stream, {
      write: (line: string) => void lines.push(line),
      flush: () => 0,
    });
    let closed = false;
    transport.onclose = () => {
      closed = true;
    };
    const seen: unknown[] = [];
    transport.onmessage = (message) => void seen.push((message as { id: unknown }).id);
    await transport.start();
    input.write(ping(1) + ping(2));
    input.end();
    await Bun.sleep(10);
    expect(seen).toEqual([1, 2]);
    expect(closed).toBe(false);
    await transport.send(answer(1));
    expect(closed).toBe(false);
    await transport.send(answer(2));
    await transport.finished;
    expect(closed).toBe(true);
    expect(lines.length).toBe(2);
  });
});
