// Cancelling a create through the compiled dist/mcp-server: over stdio with the SDK client's
// AbortSignal (notifications/cancelled), and in `mcp-server http` by closing the response stream.
// Either way mcp-server stops polling, deletes nothing, and logs what it left behind to stderr.
import { describe, expect, test } from 'bun:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { type FakeDaemon, startFakeDaemon } from '../support/fake-daemon.ts';
import { startHttpMcp } from '../support/http.ts';
import { makeToken } from '../support/mcp.ts';
import { BINARY, binaryBuilt } from '../support/stdio.ts';

const built = binaryBuilt('the cancellation tests');
const token = await makeToken({ username: 'alice', roles: ['admin'] });
const LEFT =
  'The call was cancelled while the daemon was still creating carol-container (creating): mcp-server stopped waiting, and the container was not deleted. Check it with get_container for carol, or delete it with delete_container.';

/** A daemon whose async creates stay CREATING for the whole test. */
const slowCreates = () =>
  startFakeDaemon({ generation: 'head', token, asyncCreateMs: 600_000, containers: [] });

const polls = (fake: FakeDaemon) =>
  fake.requests.filter((r) => r.method === 'GET' && r.path === '/v1/containers/carol').length;

/** Waits until `check` holds, for at most `ms`; the test fails on the expectations after it. */
async function until(check: () => boolean, ms = 10_000) {
  for (const end = Date.now() + ms; !check() && Date.now() < end; ) await Bun.sleep(20);
}

/** The polls stop: a few poll intervals later the count is the same. */
async function expectPollsStopped(fake: FakeDaemon) {
  const seen = polls(fake);
  await Bun.sleep(2_500);
  expect(polls(fake)).toBe(seen);
  expect(fake.requests.some((r) => r.method === 'DELETE')).toBe(false);
  expect(fake.state.container('carol')?.pending).toBe('creating');
}

describe.skipIf(!built)('cancelling a create through dist/mcp-server', () => {
  test('over stdio: the SDK client aborts, and the server stops waiting and logs what it left', async () => {
    await using fake = slowCreates();
    const transport = new StdioClientTransport({
      command: BINARY,
      args: [],
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/tmp',
        CONTAINARIUM_SERVER_URL: fake.url,
        CONTAINARIUM_JWT_TOKEN: token,
      },
      stderr: 'pipe',
    });
    let stderr = '';
    transport.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const client = new Client({ name: 'cancel-test', version: '1' });
    await client.connect(transport);
    try {
      const heard: string[] = [];
      const abort = new AbortController();
      const call = client.callTool(
        { name: 'create_container', arguments: { username: 'carol' } },
        undefined,
        { signal: abort.signal, onprogress: (p) => heard.push(p.message ?? '') },
      );
      await until(() => polls(fake) > 0);
      expect(heard).toContain('creating carol-container: creating');
      abort.abort('changed my mind');
      await expect(call).rejects.toThrow('changed my mind');
      await until(() => stderr.includes(LEFT));
      expect(stderr).toContain(LEFT);
      expect(stderr).not.toContain(token);
      await expectPollsStopped(fake);
    } finally {
      await client.close();
    }
  }, 30_000);

  test('over http: closing the response stream stops the waiting, and the log says what was left', async () => {
    await using fake = slowCreates();
    const mcp = await startHttpMcp({ CONTAINARIUM_SERVER_URL: fake.url });
    try {
      const abort = new AbortController();
      const response = await fetch(mcp.url, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-protocol-version': '2025-06-18',
        },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'tools/call',
          params: {
            name: 'create_container',
            arguments: { username: 'carol' },
            _meta: { progressToken: 'p1' },
          },
        }),
        signal: abort.signal,
      });
      expect(response.headers.get('content-type')).toContain('text/event-stream');
      const reader = (response.body as ReadableStream<Uint8Array>).getReader();
      let streamed = '';
      while (!streamed.includes('creating carol-container: creating')) {
        const chunk = await reader.read();
        if (chunk.done) break;
        streamed += new TextDecoder().decode(chunk.value);
      }
      expect(streamed).toContain('"progressToken":"p1"');
      abort.abort();
      await until(() => mcp.stderr().includes(LEFT));
      expect(mcp.stderr()).toContain(LEFT);
      await expectPollsStopped(fake);
    } finally {
      await mcp.stop();
    }
  }, 30_000);
});
