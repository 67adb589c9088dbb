// create_snapshot, list_snapshots, restore_snapshot and delete_snapshot through a real MCP client:
// against this project's daemon app over the memory backend (with and without a person who
// confirms), and against the fake v0.3 and HEAD daemons, which have no snapshot routes.
import { afterEach, describe, expect, test } from 'bun:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { type CallToolResult, ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { createClient } from '../../../src/mcp/client.ts';
import { loadConfig } from '../../../src/mcp/config.ts';
import { createServer } from '../../../src/mcp/server.ts';
import { SNAPSHOT_NAME_FORM } from '../../../src/shared/snapshot.ts';
import { startFakeDaemon } from '../../support/fake-daemon.ts';
import { connectMcp, makeToken } from '../../support/mcp.ts';
import { startOwnDaemon } from '../../support/own-daemon.ts';

const UNSUPPORTED = (route: string) =>
  `This daemon does not support snapshots (it has no ${route} route); upgrade the Containarium daemon (this project's \`containarium daemon --rest\` serves it). The other tools still work.`;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** This project's daemon with alice's running container and bob's stopped one. */
async function own() {
  const d = await startOwnDaemon();
  cleanups.push(() => d[Symbol.asyncDispose]());
  d.backend.seed('alice');
  d.backend.seed('bob', { state: 'stopped' });
  const token = await d.token('mcp-client', { roles: ['admin'] });
  return { ...d, mcp: await d.connect(token), token };
}

type Answer = { action: 'accept' | 'decline' | 'cancel'; content?: Record<string, string> };

/** An MCP client whose person answers each confirmation with `answer`, recording the questions. */
async function withPerson(url: string, token: string, answer: () => Answer) {
  const config = loadConfig({ CONTAINARIUM_SERVER_URL: url, CONTAINARIUM_JWT_TOKEN: token });
  const server = createServer({ client: createClient(config), config });
  const client = new Client(
    { name: 'person', version: '1' },
    { capabilities: { elicitation: {} } },
  );
  const asked: string[] = [];
  client.setRequestHandler(ElicitRequestSchema, async (request) => {
    asked.push(request.params.message);
    return answer();
  });
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await Promise.all([server.connect(serverSide), client.connect(clientSide)]);
  await client.listTools();
  cleanups.push(async () => {
    await client.close();
    await server.close();
  });
  return {
    asked,
    async call(name: string, args: Record<string, unknown>) {
      const result = (await client.callTool({ name, arguments: args })) as CallToolResult;
      const text = result.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');
      return { ...result, text };
    },
  };
}

const names = (d: Awaited<ReturnType<typeof own>>, user = 'alice') =>
  (d.backend.snapshots.get(user) ?? []).map((s) => s.name);

describe("snapshots against this project's daemon", () => {
  test('create with a name, then list: name, creation time and size', async () => {
    const d = await own();
    const made = await d.mcp.call('create_snapshot', { username: 'alice', name: 'before-upgrade' });
    expect(made.isError).toBeFalsy();
    expect(made.text).toBe(
      'Took snapshot "before-upgrade" of alice-container; restore it with restore_snapshot.',
    );
    const snapshot = d.backend.snapshots.get('alice')?.[0];
    const createdAt = new Date((snapshot?.createdAt ?? 0) * 1000)
      .toISOString()
      .replace('.000Z', 'Z');
    expect(made.structuredContent).toEqual({
      username: 'alice',
      snapshot: { name: 'before-upgrade', createdAt, sizeBytes: 16384 },
      message: 'Snapshot before-upgrade of the container for user alice created',
    });
    const listed = await d.mcp.call('list_snapshots', { username: 'alice' });
    expect(listed.text).toBe(
      `1 snapshot of alice-container, newest first:\nNAME           CREATED              SIZE\nbefore-upgrade ${createdAt} 16 KiB`,
    );
    expect(listed.structuredContent).toEqual({
      username: 'alice',
      snapshots: [{ name: 'before-upgrade', createdAt, sizeBytes: 16384 }],
      totalCount: 1,
    });
  });

  test('create without a name: named from the time, the name sent to the daemon', async () => {
    const d = await own();
    const made = await d.mcp.call('create_snapshot', { username: 'alice' });
    expect(made.isError).toBeFalsy();
    expect(names(d)).toEqual([expect.stringMatching(/^snap-\d{8}-\d{6}$/)]);
    expect(made.text).toContain(`"${names(d)[0]}"`);
  });

  test('no snapshots: the list says so and how to take one', async () => {
    const d = await own();
    const listed = await d.mcp.call('list_snapshots', { username: 'alice' });
    expect(listed.text).toBe('alice-container has no snapshots; create_snapshot takes one.');
  });

  test('a taken name, a missing snapshot, a missing container: sentences with the next step', async () => {
    const d = await own();
    await d.mcp.call('create_snapshot', { username: 'alice', name: 'one' });
    const taken = await d.mcp.call('create_snapshot', { username: 'alice', name: 'one' });
    expect(taken.isError).toBe(true);
    expect(taken.text).toStartWith(
      `Could not snapshot the container for alice: alice's container already has a snapshot "one"`,
    );
    expect(taken.text).toEndWith('Choose another name, or call list_snapshots.');
    const missing = await d.mcp.call('delete_snapshot', { username: 'alice', name: 'two' });
    expect(missing.isError).toBe(true);
    expect(missing.text).toContain(`alice's container has no snapshot "two"`);
    expect(missing.text).toContain('Call list_snapshots');
    // A client that asked for progress hears what the restore does before it acts.
    const heard: string[] = [];
    const restore = await d.mcp.client
      .callTool(
        { name: 'restore_snapshot', arguments: { username: 'alice', name: 'two' } },
        undefined,
        {
          onprogress: (p) => heard.push(p.message ?? ''),
        },
      )
      .then((r) => ({
        ...r,
        text: (r.content as { text: string }[]).map((c) => c.text).join('\n'),
      }));
    expect(heard[0]).toBe('restoring alice-container to snapshot "two"');
    expect(restore.text).toContain(`alice's container has no snapshot "two"`);
    for (const [tool, args] of [
      ['list_snapshots', {}],
      ['create_snapshot', { name: 'x' }],
    ] as const) {
      const result = await d.mcp.call(tool, { username: 'carol', ...args });
      expect(result.isError).toBe(true);
      expect(result.text).toContain('o container exists for user carol');
      expect(result.text).toContain('list_containers');
      expect(result.text).not.toContain('does not support');
    }
    expect(names(d)).toEqual(['one']);
  });

  test('a create the daemon does not answer in time: unknown, and list_snapshots comes first', async () => {
    const d = await own();
    let release = () => {};
    d.backend.createSnapshot = () =>
      new Promise((resolve) => {
        release = () => resolve({ name: 'x', usedBytes: 0, referencedBytes: 0, createdAt: 0 });
      });
    cleanups.push(async () => release());
    const mcp = await connectMcp({
      CONTAINARIUM_SERVER_URL: d.url,
      CONTAINARIUM_JWT_TOKEN: d.token,
      CONTAINARIUM_TIMEOUT: '1',
    });
    cleanups.push(() => mcp[Symbol.asyncDispose]());
    const result = await mcp.call('create_snapshot', { username: 'alice', name: 'slow' });
    expect(result.isError).toBe(true);
    expect(result.text).toBe(
      'Could not snapshot the container for alice: the daemon did not answer in time, so whether snapshot "slow" was taken is unknown. Call list_snapshots for alice before trying again.',
    );
  });

  test('a bad name is refused naming the argument, and the daemon is not asked', async () => {
    const d = await own();
    const before = d.requests.length;
    for (const [tool, name] of [
      ['create_snapshot', 'a/b'],
      ['restore_snapshot', '../x'],
      ['delete_snapshot', ''],
    ] as const) {
      const result = await d.mcp.call(tool, { username: 'alice', name });
      expect(result.isError).toBe(true);
      expect(result.text).toContain('name');
      expect(result.text).toContain(SNAPSHOT_NAME_FORM);
    }
    expect(d.requests.length).toBe(before);
  });

  test('restore (a client that cannot ask): the running container is restarted, newer snapshots removed', async () => {
    const d = await own();
    for (const name of ['one', 'two', 'three']) {
      await d.mcp.call('create_snapshot', { username: 'alice', name });
    }
    const restored = await d.mcp.call('restore_snapshot', { username: 'alice', name: 'one' });
    expect(restored.isError).toBeFalsy();
    expect(restored.text).toBe(
      [
        'Restored alice-container to snapshot "one".',
        'It was running: it was stopped for the restore and started again.',
        'Removed newer snapshots: three, two.',
      ].join('\n'),
    );
    expect(restored.structuredContent).toMatchObject({
      containerStopped: true,
      destroyedSnapshots: ['three', 'two'],
    });
    expect(names(d)).toEqual(['one']);
    expect(d.backend.calls.at(-1)?.args).toEqual([
      'alice',
      'one',
      { force: true, destroyNewer: true },
    ]);
  });

  test('restore asks first: the question states the impact; typing the username restores', async () => {
    const d = await own();
    for (const name of ['one', 'two']) {
      await d.mcp.call('create_snapshot', { username: 'alice', name });
    }
    const person = await withPerson(d.url, d.token, () => ({
      action: 'accept',
      content: { username: 'alice' },
    }));
    const result = await person.call('restore_snapshot', { username: 'alice', name: 'one' });
    expect(person.asked).toHaveLength(1);
    const question = person.asked[0] ?? '';
    expect(question).toStartWith(
      'Restore alice-container (user alice) to snapshot "one", taken 20',
    );
    expect(question).toContain(
      'State: running; the restore stops it (its processes are killed) and starts it again.',
    );
    expect(question).toContain('Every change to its disk since the snapshot is lost.');
    expect(question).toContain('Newer snapshots removed for good: two.');
    expect(question).toContain('type the username "alice"');
    expect(result.isError).toBeFalsy();
    expect(result.text).toContain('Removed newer snapshots: two.');
    expect(names(d)).toEqual(['one']);
  });

  test('restore of a stopped container without newer snapshots says both', async () => {
    const d = await own();
    await d.mcp.call('create_snapshot', { username: 'bob', name: 'only' });
    const person = await withPerson(d.url, d.token, () => ({
      action: 'accept',
      content: { username: 'bob' },
    }));
    const result = await person.call('restore_snapshot', { username: 'bob', name: 'only' });
    expect(person.asked[0]).toContain('State: stopped; it stays stopped.');
    expect(person.asked[0]).toContain('No newer snapshots, so none are removed.');
    expect(result.text).toBe(
      [
        'Restored bob-container to snapshot "only".',
        'It was not running, so it was not stopped.',
        'No newer snapshots were removed.',
      ].join('\n'),
    );
  });

  test('restore declined: nothing is changed, and the result says so', async () => {
    const d = await own();
    for (const name of ['one', 'two']) {
      await d.mcp.call('create_snapshot', { username: 'alice', name });
    }
    const person = await withPerson(d.url, d.token, () => ({ action: 'decline' }));
    const result = await person.call('restore_snapshot', { username: 'alice', name: 'one' });
    expect(result.isError).toBeFalsy();
    expect(result.text).toContain('The user declined to restore the container for alice');
    expect(result.structuredContent).toMatchObject({
      containerStopped: false,
      destroyedSnapshots: [],
    });
    expect(d.backend.calls.map((c) => c.method)).not.toContain('rollbackSnapshot');
    expect(names(d)).toEqual(['one', 'two']);
  });

  test('a snapshot taken between question and answer stops the restore', async () => {
    const d = await own();
    for (const name of ['one', 'two']) {
      await d.mcp.call('create_snapshot', { username: 'alice', name });
    }
    const person = await withPerson(d.url, d.token, () => {
      d.backend.snapshots.get('alice')?.push({
        name: 'late',
        usedBytes: 1,
        referencedBytes: 0,
        createdAt: 1_800_000_000,
      });
      return { action: 'accept', content: { username: 'alice' } };
    });
    const result = await person.call('restore_snapshot', { username: 'alice', name: 'one' });
    expect(result.text).toContain('The target changed since the user was asked');
    expect(names(d)).toEqual(['one', 'two', 'late']);
  });

  test('delete asks first, then deletes and says what it freed', async () => {
    const d = await own();
    await d.mcp.call('create_snapshot', { username: 'alice', name: 'old' });
    const person = await withPerson(d.url, d.token, () => ({
      action: 'accept',
      content: { username: 'alice' },
    }));
    const result = await person.call('delete_snapshot', { username: 'alice', name: 'old' });
    expect(person.asked[0]).toContain(
      'Delete snapshot "old" of alice-container (user alice), taken 20',
    );
    expect(person.asked[0]).toContain(
      'It holds 16 KiB of its own; the container itself is not changed.',
    );
    expect(result.text).toBe('Deleted snapshot "old" of alice-container, freeing 16 KiB.');
    expect(names(d)).toEqual([]);
  });
});

describe("delete_container's question names the snapshots that go with the container", () => {
  test('some, then none', async () => {
    const d = await own();
    for (const name of ['one', 'two']) {
      await d.mcp.call('create_snapshot', { username: 'alice', name });
    }
    const person = await withPerson(d.url, d.token, () => ({ action: 'decline' }));
    await person.call('delete_container', { username: 'alice', force: true });
    expect(person.asked[0]).toContain('Snapshots: 2 (one, two), deleted with it.');
    await person.call('delete_container', { username: 'bob', force: true });
    expect(person.asked[1]).toContain('Snapshots: none.');
    expect(d.backend.containers.has('alice')).toBe(true);
  });
});

describe('snapshots against a daemon without the routes', () => {
  for (const generation of ['v0.3', 'head'] as const) {
    test(`${generation}: every tool says the daemon does not support snapshots, never that alice's container is missing`, async () => {
      const token = await makeToken();
      const fake = startFakeDaemon({ generation, token, containers: [{ username: 'alice' }] });
      cleanups.push(() => fake.stop());
      const mcp = await connectMcp({
        CONTAINARIUM_SERVER_URL: fake.url,
        CONTAINARIUM_JWT_TOKEN: token,
      });
      cleanups.push(() => mcp[Symbol.asyncDispose]());
      const expected = {
        create_snapshot: 'POST /v1/containers/alice/snapshots',
        list_snapshots: 'GET /v1/containers/alice/snapshots',
        restore_snapshot: 'POST /v1/containers/alice/snapshots/one/rollback',
        delete_snapshot: 'DELETE /v1/containers/alice/snapshots/one',
      };
      for (const [tool, route] of Object.entries(expected)) {
        const args = tool === 'list_snapshots' ? {} : { name: 'one' };
        const result = await mcp.call(tool, { username: 'alice', ...args });
        expect([tool, result.isError, result.text]).toEqual([tool, true, UNSUPPORTED(route)]);
      }
    });
  }

  test('a person is asked nothing: the question cannot be read, and says why', async () => {
    const token = await makeToken();
    const fake = startFakeDaemon({
      generation: 'v0.3',
      token,
      containers: [{ username: 'alice' }],
    });
    cleanups.push(() => fake.stop());
    const person = await withPerson(fake.url, token, () => ({ action: 'accept' }));
    const result = await person.call('restore_snapshot', { username: 'alice', name: 'one' });
    expect(person.asked).toEqual([]);
    expect(result.text).toBe(UNSUPPORTED('GET /v1/containers/alice/snapshots'));
  });
});
