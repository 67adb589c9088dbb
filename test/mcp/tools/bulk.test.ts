// create_containers and delete_containers through a real MCP client, against the fake v0.3 and
// HEAD daemons (the bulk tools need no route of their own) and this project's daemon for templates:
// one line per item, partial failure, validation by index, bounded parallelism, progress per
// item, and one confirmation for a whole bulk delete.
import { afterEach, describe, expect, test } from 'bun:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import {
  type CallToolResult,
  ElicitRequestSchema,
  type Progress,
} from '@modelcontextprotocol/sdk/types.js';
import { createClient } from '../../../src/mcp/client.ts';
import { loadConfig } from '../../../src/mcp/config.ts';
import { createServer } from '../../../src/mcp/server.ts';
import { MAX_ITEMS, PARALLEL } from '../../../src/mcp/tools/bulk.ts';
import { type FakeDaemon, type SeedContainer, startFakeDaemon } from '../../support/fake-daemon.ts';
import { makeToken } from '../../support/mcp.ts';

const token = await makeToken();
type Answer = { action: 'accept' | 'decline' | 'cancel'; content?: Record<string, string> };

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A fake daemon with `containers`, and an MCP client of mcp-server; `person` answers questions. */
async function start(
  containers: SeedContainer[] = [],
  options: { generation?: 'v0.3' | 'head'; person?: (message: string) => Answer } = {},
) {
  const fake = startFakeDaemon({ generation: options.generation ?? 'head', token, containers });
  cleanups.push(() => fake.stop());
  const config = loadConfig({ CONTAINARIUM_SERVER_URL: fake.url, CONTAINARIUM_JWT_TOKEN: token });
  const server = createServer({ client: createClient(config), config });
  const client = new Client(
    { name: 'bulk-test', version: '1' },
    { capabilities: options.person ? { elicitation: {} } : {} },
  );
  const asked: string[] = [];
  if (options.person) {
    const person = options.person;
    client.setRequestHandler(ElicitRequestSchema, async (request) => {
      asked.push(request.params.message);
      return person(request.params.message);
    });
  }
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await Promise.all([server.connect(serverSide), client.connect(clientSide)]);
  await client.listTools();
  cleanups.push(async () => {
    await client.close();
    await server.close();
  });
  const progress: Progress[] = [];
  const call = async (name: string, args: Record<string, unknown>, withProgress = false) => {
    const result = (await client.callTool(
      { name, arguments: args },
      undefined,
      withProgress ? { onprogress: (p) => progress.push(p) } : {},
    )) as CallToolResult;
    const text = result.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');
    return { ...result, text };
  };
  return { fake, call, asked, progress };
}

const posts = (fake: FakeDaemon) =>
  fake.requests
    .filter((r) => r.method === 'POST' && r.status === 200)
    .map((r) => (r.body as { username: string }).username);
const deletes = (fake: FakeDaemon) => fake.requests.filter((r) => r.method === 'DELETE').length;

describe('create_containers', () => {
  for (const generation of ['v0.3', 'head'] as const) {
    test(`${generation}: one line per item; a failed item says why, the others are created`, async () => {
      const { fake, call } = await start([{ username: 'bob' }], { generation });
      const result = await call('create_containers', {
        containers: [
          { username: 'alice', memory: '2GB' },
          { username: 'bob' },
          { username: 'carol', cpu: 2 },
        ],
      });
      expect(result.isError).toBeFalsy();
      const lines = result.text.split('\n');
      expect(lines[0]).toBe(
        'Created 2 of 3 containers; 1 failed (the others are done; retry only the failed ones):',
      );
      expect(lines[1]).toStartWith('- alice: created, alice-container running');
      expect(lines[2]).toStartWith('- bob: failed: A container for user bob already exists');
      expect(lines[3]).toStartWith('- carol: created, carol-container running');
      expect(result.structuredContent).toMatchObject({
        succeeded: 2,
        failed: 1,
        results: [
          { username: 'alice', ok: true },
          { username: 'bob', ok: false },
          { username: 'carol', ok: true },
        ],
      });
      expect(fake.state.container('alice')?.memory).toBe('2GB');
      expect(fake.state.container('carol')?.cpu).toBe('2');
    });
  }

  test('when every item fails the result is an error, each line with its sentence', async () => {
    const { call } = await start([{ username: 'alice' }, { username: 'bob' }]);
    const result = await call('create_containers', {
      containers: [{ username: 'alice' }, { username: 'bob' }],
    });
    expect(result.isError).toBe(true);
    expect(result.text.split('\n')[0]).toBe(
      'Could not create any of the 2 containers; nothing was created:',
    );
    expect(result.text).toContain('- bob: failed: A container for user bob already exists');
  });

  test('an invalid item is named by its index and field, and nothing is created', async () => {
    const { fake, call } = await start();
    const result = await call('create_containers', {
      containers: [{ username: 'alice' }, { username: 'bob', memory: 'lots' }],
    });
    expect(result.isError).toBe(true);
    expect(result.text).toStartWith(
      'Invalid arguments: "containers.1.memory" must be a size of at least 1MiB with a unit',
    );
    expect(result.text).toContain('Nothing was changed');
    expect(fake.requests).toEqual([]);
  });

  test('empty, too many, or the same user twice: refused before anything is sent', async () => {
    const { fake, call } = await start();
    const many = Array.from({ length: MAX_ITEMS + 1 }, (_, i) => ({ username: `u${i}` }));
    for (const [containers, says] of [
      [[], 'must hold at least one item'],
      [many, `may hold at most ${MAX_ITEMS} items`],
      [[{ username: 'alice' }, { username: 'alice' }], 'must not name the same user twice'],
    ] as const) {
      const result = await call('create_containers', { containers });
      expect(result.isError).toBe(true);
      expect(result.text).toContain(`"containers" ${says}`);
    }
    expect(fake.requests).toEqual([]);
  });

  test(`at most ${PARALLEL} creates at once, and every item is created`, async () => {
    const { fake, call } = await start();
    fake.setLatency(50);
    const names = Array.from({ length: 10 }, (_, i) => `user${i}`);
    const result = await call('create_containers', {
      containers: names.map((username) => ({ username })),
    });
    expect(result.text.split('\n')[0]).toBe('Created all 10 containers:');
    expect(fake.peakInFlight).toBeLessThanOrEqual(PARALLEL);
    expect(fake.peakInFlight).toBeGreaterThan(1);
    expect(posts(fake).sort()).toEqual(names.sort());
  });

  test('with a progressToken, one progress notification per finished item, always rising', async () => {
    const { call, progress } = await start();
    await call(
      'create_containers',
      { containers: [{ username: 'alice' }, { username: 'bob' }, { username: 'carol' }] },
      true,
    );
    const items = progress.filter((p) => / of 3 done: /.test(p.message ?? ''));
    expect(items.map((p) => p.message?.replace(/: .*/, ''))).toEqual([
      '1 of 3 done',
      '2 of 3 done',
      '3 of 3 done',
    ]);
    for (let i = 1; i < progress.length; i++) {
      expect(progress[i]!.progress).toBeGreaterThan(progress[i - 1]!.progress);
    }
  });

  test('a template on a daemon without templates: nothing is created', async () => {
    const { fake, call } = await start([], { generation: 'v0.3' });
    const result = await call('create_containers', {
      containers: [{ username: 'alice' }, { username: 'bob', template: 'small' }],
    });
    expect(result.isError).toBe(true);
    expect(result.text).toStartWith('This daemon does not support templates');
    expect(posts(fake)).toEqual([]);
  });
});

describe('delete_containers', () => {
  const three: SeedContainer[] = [
    { username: 'alice', ipAddress: '10.0.3.7', createdAt: 1_780_000_000 },
    { username: 'bob', state: 'CONTAINER_STATE_STOPPED' },
    { username: 'carol' },
  ];

  test('one question for the whole bulk, listing each state; typing the count deletes them all', async () => {
    const { fake, call, asked } = await start(three, {
      person: () => ({ action: 'accept', content: { username: 'delete 3 containers' } }),
    });
    const result = await call('delete_containers', {
      usernames: ['alice', 'bob', 'carol'],
      force: true,
    });
    expect(asked).toHaveLength(1);
    const question = asked[0]!;
    expect(question).toStartWith(
      'Delete these 3 containers and all their data, permanently? Running ones are stopped first.',
    );
    expect(question).toContain('- alice-container (user alice): running, IP 10.0.3.7,');
    expect(question).toContain('created 2026-05-28T');
    expect(question).toContain('- bob-container (user bob): stopped,');
    expect(question).toContain('- carol-container (user carol): running');
    expect(question).toEndWith('To confirm, type "delete 3 containers".');
    expect(result.isError).toBeFalsy();
    expect(result.text).toBe(
      [
        'Deleted all 3 containers:',
        '- alice: deleted, alice-container',
        '- bob: deleted, bob-container',
        '- carol: deleted, carol-container',
      ].join('\n'),
    );
    expect(fake.state.containers.size).toBe(0);
  });

  test('declined, or the wrong words typed: nothing is deleted', async () => {
    for (const answer of [
      { action: 'decline' },
      { action: 'accept', content: { username: 'alice' } },
    ] as Answer[]) {
      const { fake, call } = await start(three, { person: () => answer });
      const result = await call('delete_containers', { usernames: ['alice', 'bob'], force: true });
      expect(result.isError).toBeFalsy();
      expect(result.text).toMatch(/declined|did not match/);
      expect(result.text).toContain('nothing was changed');
      expect(deletes(fake)).toBe(0);
      expect(result.structuredContent).toMatchObject({ succeeded: 0, failed: 0 });
    }
  });

  test('a user the confirmation found without a container is already absent: no DELETE is sent for it', async () => {
    const { fake, call, asked } = await start(three, {
      person: () => ({ action: 'accept', content: { username: 'delete 2 containers' } }),
    });
    const result = await call('delete_containers', { usernames: ['alice', 'zed'], force: true });
    expect(asked[0]).toContain('- zed-container (user zed): does not exist; nothing to delete.');
    expect(result.isError).toBeFalsy();
    expect(result.text.split('\n')).toEqual([
      'Deleted 1 of 2 containers; 1 already absent:',
      '- alice: deleted, alice-container',
      '- zed: already absent: zed-container did not exist when the deletion was confirmed; nothing was sent',
    ]);
    expect(fake.requests.filter((r) => r.method === 'DELETE').map((r) => r.path)).toEqual([
      '/v1/containers/alice',
    ]);
    expect(result.structuredContent).toMatchObject({ succeeded: 2, failed: 0 });
  });

  test('every user already absent: not an error, and nothing is deleted', async () => {
    const { fake, call } = await start(three, {
      person: () => ({ action: 'accept', content: { username: 'delete 1 container' } }),
    });
    const result = await call('delete_containers', { usernames: ['zed'] });
    expect(result.isError).toBeFalsy();
    expect(result.text.split('\n')).toEqual([
      'Deleted 0 of 1 container; 1 already absent:',
      '- zed: already absent: zed-container did not exist when the deletion was confirmed; nothing was sent',
    ]);
    expect(deletes(fake)).toBe(0);
  });

  test('a client that cannot ask: deleted at once under the default policy', async () => {
    const { fake, call } = await start(three);
    const result = await call('delete_containers', { usernames: ['bob'] });
    expect(result.text).toBe('Deleted all 1 container:\n- bob: deleted, bob-container');
    expect(deletes(fake)).toBe(1);
  });

  test('the same user twice is refused before anything is read', async () => {
    const { fake, call } = await start(three);
    const result = await call('delete_containers', { usernames: ['bob', 'bob'] });
    expect(result.isError).toBe(true);
    expect(result.text).toContain('"usernames" must not name the same user twice');
    expect(fake.requests).toEqual([]);
  });
});
