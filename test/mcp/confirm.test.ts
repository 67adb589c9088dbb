// A human confirms destruction: delete_container asks through MCP elicitation, in both protocol
// eras, with real SDK clients: the v1 Client (2025 era, answering elicitation/create), the v2
// Client pinned to 2026-07-28 (answering input_required), and clients that cannot ask.
import { afterEach, describe, expect, test } from 'bun:test';
import { resolve } from 'node:path';
import { Client as ClientV2, InMemoryTransport as MemoryV2 } from '@modelcontextprotocol/client';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport as MemoryV1 } from '@modelcontextprotocol/sdk/inMemory.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { createClient } from '../../src/mcp/client.ts';
import { loadConfig } from '../../src/mcp/config.ts';
import { serveBothEras } from '../../src/mcp/server.ts';
import { servingFlagsEnv } from '../../src/mcp/settings.ts';
import { TOOLS } from '../../src/mcp/tools/index.ts';
import { type FakeDaemon, startFakeDaemon } from '../support/fake-daemon.ts';
import { makeToken } from '../support/mcp.ts';
import { startOwnDaemon } from '../support/own-daemon.ts';
import { ROOT, spawnMcp } from '../support/stdio.ts';

const token = await makeToken();
const MODERN = '2026-07-28';

type Answer = { action: 'accept' | 'decline' | 'cancel'; content?: Record<string, string> };
type Era = '2025' | '2026';
/** What the person does when asked: sees the question, and answers (undefined: the client cannot ask). */
type Person = ((message: string, schema: unknown) => Answer | Promise<Answer>) | undefined;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function daemon(): FakeDaemon {
  const fake = startFakeDaemon({
    generation: 'head',
    token,
    containers: [
      {
        username: 'alice',
        disk: '50GB',
        ipAddress: '10.0.3.7',
        createdAt: 1_780_000_000,
        metrics: { diskUsageBytes: 3 * 1024 ** 3 },
      },
    ],
  });
  cleanups.push(() => fake.stop());
  return fake;
}

/** One tool call by a client of `era`, through the server's own serving entry (both eras). */
async function callDelete(
  era: Era,
  daemon: { url: string; token?: string },
  person: Person,
  env: Record<string, string> = {},
) {
  const config = loadConfig({
    CONTAINARIUM_SERVER_URL: daemon.url,
    CONTAINARIUM_JWT_TOKEN: daemon.token ?? token,
    ...env,
  });
  const deps = { client: createClient(config), config };
  const asked: string[] = [];
  const answer = async (request: { params?: unknown }) => {
    const params = request.params as { message: string; requestedSchema: unknown };
    asked.push(params.message);
    return person!(params.message, params.requestedSchema);
  };
  // The v1 Client speaks the 2025 era and answers elicitation/create; the v2 Client pinned to
  // 2026-07-28 answers input_required results with the same handler.
  const [clientSide, serverSide] =
    era === '2025' ? MemoryV1.createLinkedPair() : MemoryV2.createLinkedPair();
  const served = serveBothEras(deps, serverSide as never);
  let client: ClientV1 | ClientV2;
  if (era === '2025') {
    const v1 = new ClientV1(
      { name: 'v1-client', version: '1' },
      { capabilities: person ? { elicitation: {} } : {} },
    );
    if (person) v1.setRequestHandler(ElicitRequestSchema, answer);
    client = v1;
  } else {
    const v2 = new ClientV2(
      { name: 'v2-client', version: '1' },
      {
        versionNegotiation: { mode: { pin: MODERN } },
        capabilities: person ? { elicitation: { form: {} } } : {},
      },
    );
    if (person) v2.setRequestHandler('elicitation/create', answer as never);
    client = v2;
  }
  await client.connect(clientSide as never);
  cleanups.push(async () => {
    await client.close();
    await served.close();
  });
  if (client instanceof ClientV2) expect(client.getNegotiatedProtocolVersion()).toBe(MODERN);
  const args = { name: 'delete_container', arguments: { username: 'alice', force: true } };
  const result = (await client.callTool(args)) as {
    content: { type: string; text?: string }[];
    isError?: boolean;
    structuredContent?: unknown;
  };
  const text = result.content.map((block) => block.text ?? '').join('\n');
  return { ...result, text, asked };
}

const deletes = (fake: FakeDaemon) =>
  fake.requests.filter((request) => request.method === 'DELETE').length;

for (const era of ['2025', '2026'] as const) {
  describe(`${era} era`, () => {
    test('the question states the impact from fresh state; typing the username deletes', async () => {
      const fake = daemon();
      let schema: unknown;
      const result = await callDelete(era, fake, (_message, requested) => {
        schema = requested;
        return { action: 'accept', content: { username: 'alice' } };
      });
      expect(result.asked).toHaveLength(1);
      const question = result.asked[0]!;
      expect(question).toContain(
        'Delete alice-container (user alice) and all its data, permanently?',
      );
      expect(question).toContain('State: running');
      expect(question).toContain('uptime not reported by the daemon');
      expect(question).toContain('created 2026-05-28T');
      expect(question).toContain('IP: 10.0.3.7.');
      expect(question).toContain('Disk: 3 GiB used of 50 GB.');
      expect(question).toContain('Snapshots: none known');
      expect(question).toContain('type the username "alice"');
      expect(schema).toMatchObject({
        type: 'object',
        properties: { username: { type: 'string' } },
        required: ['username'],
      });
      expect(result.isError).toBeFalsy();
      expect(result.text).toBe('Deleted alice-container (user alice).');
      expect(deletes(fake)).toBe(1);
      expect(fake.state.container('alice')).toBeUndefined();
    });

    for (const [label, answer, said] of [
      ['declined', { action: 'decline' }, 'The user declined to delete the container for alice'],
      ['cancelled', { action: 'cancel' }, 'The user cancelled the confirmation'],
      [
        'a mistyped username',
        { action: 'accept', content: { username: 'alice2' } },
        'the user had to type "alice" exactly',
      ],
    ] as const) {
      test(`${label}: nothing is changed, and the result says so plainly (not an error)`, async () => {
        const fake = daemon();
        const result = await callDelete(era, fake, () => answer as Answer);
        expect(result.asked).toHaveLength(1);
        expect(result.isError).toBeFalsy();
        expect(result.text).toContain(said);
        expect(result.text).toContain('nothing was changed');
        expect(result.structuredContent).toMatchObject({
          username: 'alice',
          containerName: 'alice-container',
        });
        expect(deletes(fake)).toBe(0);
        expect(fake.state.container('alice')).toBeDefined();
      });
    }

    test('deleted and created again between question and answer: nothing happens', async () => {
      const fake = daemon();
      const result = await callDelete(era, fake, () => {
        fake.state.containers.delete('alice-container');
        fake.state.add({ username: 'alice', createdAt: 1_790_000_000 });
        return { action: 'accept', content: { username: 'alice' } };
      });
      expect(result.isError).toBeFalsy();
      expect(result.text).toContain('The target changed since the user was asked');
      expect(deletes(fake)).toBe(0);
      expect(fake.state.container('alice')?.createdAt).toBe(1_790_000_000);
    });

    test("the project's own daemon: a container created again meanwhile is not deleted", async () => {
      await using own = await startOwnDaemon();
      own.backend.seed('alice');
      const admin = await own.token('admin', { roles: ['admin'] });
      const daemonCall = (method: string, path: string, body?: object) =>
        fetch(`${own.url}v1/containers${path}`, {
          method,
          headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
          body: body && JSON.stringify(body),
        }).then((response) => expect(response.ok).toBe(true));
      const before = own.backend.containers.get('alice')!.createdAt;
      const result = await callDelete(era, { url: own.url, token: admin }, async () => {
        // Another person deletes alice's container and creates a new one, through the daemon.
        await daemonCall('DELETE', '/alice?force=true');
        await daemonCall('POST', '', { username: 'alice' });
        return { action: 'accept', content: { username: 'alice' } };
      });
      expect(result.isError).toBeFalsy();
      expect(result.text).toContain('The target changed since the user was asked');
      const after = own.backend.containers.get('alice');
      expect(after?.createdAt).not.toBe(before);
      // The daemon saw one delete only: the other person's.
      expect(own.routes().filter((route) => route.startsWith('DELETE'))).toHaveLength(1);

      // Asked again, about what is there now, the user's confirmation deletes it.
      const again = await callDelete(era, { url: own.url, token: admin }, () => ({
        action: 'accept',
        content: { username: 'alice' },
      }));
      expect(again.text).toBe('Deleted alice-container (user alice).');
      expect(own.backend.containers.has('alice')).toBe(false);
    });

    test('a client that cannot ask: auto proceeds, always refuses, never does not ask', async () => {
      const auto = daemon();
      const proceeded = await callDelete(era, auto, undefined);
      expect(proceeded.isError).toBeFalsy();
      expect(proceeded.text).toBe('Deleted alice-container (user alice).');
      expect(deletes(auto)).toBe(1);

      const always = daemon();
      const refused = await callDelete(era, always, undefined, { CONTAINARIUM_CONFIRM: 'always' });
      expect(refused.isError).toBe(true);
      expect(refused.text).toContain('CONTAINARIUM_CONFIRM=always');
      expect(refused.text).toContain('did not declare elicitation');
      expect(always.requests).toHaveLength(0);

      const never = daemon();
      const notAsked = await callDelete(era, never, undefined, { CONTAINARIUM_CONFIRM: 'never' });
      expect(notAsked.text).toBe('Deleted alice-container (user alice).');
      expect(deletes(never)).toBe(1);
    });

    test('never: a client that could ask is not asked; always: it is asked', async () => {
      const never = daemon();
      const person = () => ({ action: 'decline' }) as const;
      const notAsked = await callDelete(era, never, person, { CONTAINARIUM_CONFIRM: 'never' });
      expect(notAsked.asked).toHaveLength(0);
      expect(deletes(never)).toBe(1);

      const always = daemon();
      const asked = await callDelete(era, always, person, { CONTAINARIUM_CONFIRM: 'always' });
      expect(asked.asked).toHaveLength(1);
      expect(asked.isError).toBeFalsy();
      expect(deletes(always)).toBe(0);
    });

    test('a container that does not exist is an error sentence, asking nothing', async () => {
      const fake = daemon();
      fake.state.containers.delete('alice-container');
      const result = await callDelete(era, fake, () => ({ action: 'accept' }));
      expect(result.asked).toHaveLength(0);
      expect(result.isError).toBe(true);
      expect(result.text).toContain('No container exists for user alice');
    });
  });
}

test('CONTAINARIUM_CONFIRM takes auto, always or never, and names itself otherwise', () => {
  const base = { CONTAINARIUM_SERVER_URL: 'http://127.0.0.1:9', CONTAINARIUM_JWT_TOKEN: token };
  expect(loadConfig(base).confirm).toBe('auto');
  expect(loadConfig({ ...base, CONTAINARIUM_CONFIRM: ' Always ' }).confirm).toBe('always');
  expect(() => loadConfig({ ...base, CONTAINARIUM_CONFIRM: 'sometimes' })).toThrow(
    'CONTAINARIUM_CONFIRM must be one of auto, always, never, got "sometimes"',
  );
});

test('every destructive tool asks first: it has a question to confirm', () => {
  const destructive = TOOLS.filter((tool) => tool.effect === 'destroy');
  expect(destructive.map((tool) => tool.name)).toContain('delete_container');
  for (const tool of destructive) expect(tool.confirm, tool.name).toBeDefined();
});

describe('the serving flag', () => {
  const envelope = (capabilities: Record<string, unknown>) => ({
    'io.modelcontextprotocol/protocolVersion': MODERN,
    'io.modelcontextprotocol/clientCapabilities': capabilities,
  });

  test('`mcp-server --confirm always` over stdio: the 2026 wire asks, or refuses a client that cannot', async () => {
    const fake = daemon();
    const mcp = spawnMcp({ CONTAINARIUM_SERVER_URL: fake.url, CONTAINARIUM_JWT_TOKEN: token }, [
      'bun',
      resolve(ROOT, 'src/mcp/main.ts'),
      '--confirm',
      'always',
    ]);
    const params = { name: 'delete_container', arguments: { username: 'alice' } };
    mcp.send({
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { ...params, _meta: envelope({ elicitation: { form: {} } }) },
    });
    const asked = (await mcp.reply(1)).result as {
      resultType: string;
      requestState: unknown;
      inputRequests: { confirm: { params: { message: string } } };
    };
    expect(asked.resultType).toBe('input_required');
    expect(asked.inputRequests.confirm).toMatchObject({
      method: 'elicitation/create',
      params: { mode: 'form', requestedSchema: { required: ['username'] } },
    });
    expect(asked.inputRequests.confirm.params.message).toContain('Delete alice-container');
    expect(typeof asked.requestState).toBe('string');

    mcp.send({
      jsonrpc: '2.0',
      id: 2,
      method: 'tools/call',
      params: { ...params, _meta: envelope({}) },
    });
    const refused = (await mcp.reply(2)).result as { content: { text: string }[] };
    expect(refused).toMatchObject({ resultType: 'complete', isError: true });
    expect(refused.content[0]!.text).toContain('CONTAINARIUM_CONFIRM=always');
    expect(deletes(fake)).toBe(0);
    expect((await mcp.close()).code).toBe(0);
  });

  test('2026 wire: an answer holds only for the call it was asked about, and a forged state is refused', async () => {
    const fake = daemon();
    const mcp = spawnMcp({ CONTAINARIUM_SERVER_URL: fake.url, CONTAINARIUM_JWT_TOKEN: token }, [
      'bun',
      resolve(ROOT, 'src/mcp/main.ts'),
    ]);
    const canAsk = envelope({ elicitation: { form: {} } });
    mcp.send({
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { name: 'delete_container', arguments: { username: 'alice' }, _meta: canAsk },
    });
    const asked = (await mcp.reply(1)).result as { requestState: string };
    expect(asked.requestState).toStartWith('v1.');
    const accept = { confirm: { action: 'accept', content: { username: 'alice' } } };

    // The person's answer and the state of that question, sent with other arguments (force).
    mcp.send({
      jsonrpc: '2.0',
      id: 2,
      method: 'tools/call',
      params: {
        name: 'delete_container',
        arguments: { username: 'alice', force: true },
        inputResponses: accept,
        requestState: asked.requestState,
        _meta: canAsk,
      },
    });
    const replayed = (await mcp.reply(2)).result as { content: { text: string }[] };
    expect(replayed.content[0]!.text).toStartWith(
      'The confirmation the user gave was for other arguments, so nothing was done',
    );

    // A state the server never minted: refused as protocol misuse.
    mcp.send({
      jsonrpc: '2.0',
      id: 3,
      method: 'tools/call',
      params: {
        name: 'delete_container',
        arguments: { username: 'alice' },
        inputResponses: accept,
        requestState: JSON.stringify({ typed: 'alice', identity: 'alice-container@1780000000' }),
        _meta: canAsk,
      },
    });
    const forged = await mcp.reply(3);
    expect(forged.error).toMatchObject({ code: -32602 });
    expect(deletes(fake)).toBe(0);

    // The state as minted, with the arguments it was asked about, does delete.
    mcp.send({
      jsonrpc: '2.0',
      id: 4,
      method: 'tools/call',
      params: {
        name: 'delete_container',
        arguments: { username: 'alice' },
        inputResponses: accept,
        requestState: asked.requestState,
        _meta: canAsk,
      },
    });
    const done = (await mcp.reply(4)).result as { content: { text: string }[] };
    expect(done.content[0]!.text).toContain('Deleted alice-container');
    expect(deletes(fake)).toBe(1);
    expect((await mcp.close()).code).toBe(0);
  });

  test('--confirm is a serving flag', () => {
    expect(servingFlagsEnv(['--confirm', 'never'])).toEqual({ CONTAINARIUM_CONFIRM: 'never' });
  });
});
