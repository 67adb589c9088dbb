// Progress that a client follows stays honest across a confirmation and never carries a secret:
// a call that pauses for the user's answer (the SDK's 2025 shim enters the handler again; a 2026
// client retries with the same progress token) goes on counting from where it was, and a daemon
// phase that echoes the caller's token reaches the client redacted.
import { afterEach, describe, expect, test } from 'bun:test';
import { Client as ClientV2, InMemoryTransport as MemoryV2 } from '@modelcontextprotocol/client';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport as MemoryV1 } from '@modelcontextprotocol/sdk/inMemory.js';
import { ElicitRequestSchema, type Progress } from '@modelcontextprotocol/sdk/types.js';
import { createClient } from '../../src/mcp/client.ts';
import { loadConfig } from '../../src/mcp/config.ts';
import { serveBothEras } from '../../src/mcp/server.ts';
import { startFakeDaemon } from '../support/fake-daemon.ts';
import { connectMcp, makeToken } from '../support/mcp.ts';

const token = await makeToken();
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

for (const era of ['2025', '2026'] as const) {
  test(`${era} era: a delete that asks for a confirmation reports ever rising progress`, async () => {
    // Each daemon answer takes a while, so beats go out while the question is prepared and
    // again while the delete runs after the answer.
    const fake = startFakeDaemon({
      generation: 'head',
      token,
      latencyMs: 120,
      containers: [{ username: 'alice' }],
    });
    cleanups.push(() => fake.stop());
    const config = loadConfig({ CONTAINARIUM_SERVER_URL: fake.url, CONTAINARIUM_JWT_TOKEN: token });
    const [clientSide, serverSide] =
      era === '2025' ? MemoryV1.createLinkedPair() : MemoryV2.createLinkedPair();
    const served = serveBothEras(
      { client: createClient(config), config, progressEveryMs: 20 },
      serverSide as never,
    );
    const answer = async () => ({ action: 'accept' as const, content: { username: 'alice' } });
    let client: ClientV1 | ClientV2;
    if (era === '2025') {
      const v1 = new ClientV1({ name: 'v1', version: '1' }, { capabilities: { elicitation: {} } });
      v1.setRequestHandler(ElicitRequestSchema, answer);
      client = v1;
    } else {
      const v2 = new ClientV2(
        { name: 'v2', version: '1' },
        {
          versionNegotiation: { mode: { pin: '2026-07-28' } },
          capabilities: { elicitation: { form: {} } },
        },
      );
      v2.setRequestHandler('elicitation/create', answer as never);
      client = v2;
    }
    await client.connect(clientSide as never);
    cleanups.push(async () => {
      await client.close();
      await served.close();
    });
    const heard: Progress[] = [];
    const result = (await client.callTool(
      { name: 'delete_container', arguments: { username: 'alice', force: true } },
      ...((era === '2025' ? [undefined] : []) as []),
      { onprogress: (p: Progress) => heard.push(p) } as never,
    )) as { isError?: boolean };
    expect(result.isError).toBeFalsy();
    expect(fake.requests.filter((r) => r.method === 'DELETE')).toHaveLength(1);
    // Beats before the question and after the answer.
    expect(heard.length).toBeGreaterThan(2);
    // The 2026 client reports its own round of answering; the rest is the server's.
    const values = heard
      .filter((p) => !p.message?.startsWith('Fulfilling input required'))
      .map((p) => p.progress);
    expect(values).toEqual([...values].sort((a, b) => a - b));
    expect(new Set(values).size).toBe(values.length);
  });
}

describe('progress messages are redacted', () => {
  test("a daemon phase that echoes the caller's token reaches the client without it", async () => {
    const fake = startFakeDaemon({
      generation: 'v0.3',
      token,
      containers: [],
      asyncPhases: [`pulling with ${token}`, 'starting'],
    });
    cleanups.push(() => fake.stop());
    const mcp = await connectMcp({
      CONTAINARIUM_SERVER_URL: fake.url,
      CONTAINARIUM_JWT_TOKEN: token,
    });
    cleanups.push(() => mcp[Symbol.asyncDispose]());
    const heard: Progress[] = [];
    const result = await mcp.client.callTool(
      { name: 'create_container', arguments: { username: 'carol' } },
      undefined,
      { onprogress: (p) => heard.push(p) },
    );
    expect(result.isError).toBeFalsy();
    const messages = heard.map((p) => p.message ?? '');
    expect(messages.some((m) => m.startsWith('creating carol-container: pulling with '))).toBe(
      true,
    );
    expect(messages.join('\n')).not.toContain(token);
  });
});
