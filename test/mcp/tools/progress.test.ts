// Progress and cancellation of the long tools, through a real MCP client against the fake daemon:
// create follows the daemon's async create phase by phase, start, stop and delete say what they
// do, a client that asked for progress hears from a running call at least every few seconds,
// and a cancelled create stops waiting, leaving the container as it is.
import { describe, expect, test } from 'bun:test';
import type { Progress } from '@modelcontextprotocol/sdk/types.js';
import { PROGRESS_EVERY_MS } from '../../../src/mcp/server.ts';
import { type FakeDaemonOptions, startFakeDaemon } from '../../support/fake-daemon.ts';
import { ED25519 } from '../../support/keys.ts';
import { connectMcp, makeToken } from '../../support/mcp.ts';

const token = await makeToken();
/** The phases this project's daemon shows on get while it creates. */
const PHASES = ['creating instance', 'starting', 'waiting for network', 'installing packages'];

async function setup(
  options: Partial<FakeDaemonOptions> & Pick<FakeDaemonOptions, 'generation'>,
  mcpOptions: Parameters<typeof connectMcp>[1] = {},
) {
  const fake = startFakeDaemon({
    token,
    containers: [
      { username: 'alice' },
      { username: 'bob', state: 'CONTAINER_STATE_STOPPED', ipAddress: '' },
    ],
    ...options,
  });
  const mcp = await connectMcp(
    { CONTAINARIUM_SERVER_URL: fake.url, CONTAINARIUM_JWT_TOKEN: token },
    mcpOptions,
  );
  const heard: Progress[] = [];
  /** Calls a tool with a progress token; what the client heard is in `heard`. */
  const call = (name: string, args: Record<string, unknown>, signal?: AbortSignal) =>
    mcp.client.callTool({ name, arguments: args }, undefined, {
      onprogress: (p) => heard.push(p),
      ...(signal && { signal }),
    });
  return {
    fake,
    mcp,
    heard,
    call,
    messages: () => heard.map((p) => p.message ?? ''),
    async [Symbol.asyncDispose]() {
      await mcp[Symbol.asyncDispose]();
      await fake.stop();
    },
  };
}

const textOf = (result: Awaited<ReturnType<Awaited<ReturnType<typeof setup>>['call']>>) =>
  (result.content as { type: string; text: string }[]).map((c) => c.text).join('\n');

/** Each notification's progress is larger than the one before, as the spec requires. */
const increasing = (heard: Progress[]) =>
  heard.every((p, i) => i === 0 || p.progress > (heard[i - 1] as Progress).progress);

describe('create_container follows the async create', () => {
  for (const generation of ['v0.3', 'head'] as const) {
    test(`${generation}: one progress message per phase the daemon shows, then the same result as a sync create`, async () => {
      await using t = await setup({ generation, asyncPhases: PHASES });
      const result = await t.call('create_container', { username: 'carol', ssh_keys: [ED25519] });
      expect(result.isError).toBeFalsy();
      expect(t.messages()).toEqual([
        'creating carol-container: requesting the create',
        'creating carol-container: creating',
        ...PHASES.map((phase) => `creating carol-container: ${phase}`),
      ]);
      expect(increasing(t.heard)).toBe(true);
      // The create was asked for async, then read until it ran.
      const post = t.fake.requests.find((r) => r.method === 'POST');
      expect(post?.body).toMatchObject({ username: 'carol', async: true });
      expect(
        t.fake.requests.filter((r) => r.method === 'GET' && r.path === '/v1/containers/carol'),
      ).toHaveLength(PHASES.length + 1);
      const text = textOf(result);
      expect(text).toStartWith('Created carol-container for carol: running.\nResources: 4 cores');
      expect(text).toMatch(/\nIP: 10\.0\.3\.\d+\nSSH: ssh carol@10\.0\.3\.\d+ /);
      expect(text).toEndWith('\nDaemon: Container carol-container created successfully');
      expect(result.structuredContent).toMatchObject({
        container: { name: 'carol-container', state: 'running' },
        message: 'Container carol-container created successfully',
      });
    });
  }

  test('a daemon that shows no phase: "creating", then the last message again with the seconds, at least every beat', async () => {
    await using t = await setup(
      { generation: 'v0.3', asyncCreateMs: 400 },
      { progressEveryMs: 25 },
    );
    const result = await t.call('create_container', { username: 'carol' });
    expect(result.isError).toBeFalsy();
    const messages = t.messages();
    expect(messages.slice(0, 2)).toEqual([
      'creating carol-container: requesting the create',
      'creating carol-container: creating',
    ]);
    // Beats while it waits repeat the phase with the time so far.
    const beats = messages.filter((m) => /^creating carol-container: creating \(\d+ s\)$/.test(m));
    expect(beats.length).toBeGreaterThan(0);
    expect(increasing(t.heard)).toBe(true);
    // The beat a real server keeps is well inside the 10 s a client may wait for progress.
    expect(PROGRESS_EVERY_MS).toBeLessThanOrEqual(10_000);
  });

  test("a create that ends in ERROR shows the daemon's reason and what to do", async () => {
    await using t = await setup({
      generation: 'v0.3',
      asyncPhases: PHASES,
      asyncCreateFails: true,
      asyncCreateError: '"apt-get install" failed in carol-container (exit 100): no network',
    });
    const result = await t.call('create_container', { username: 'carol' });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toBe(
      'The daemon could not create the container for carol: "apt-get install" failed in carol-container (exit 100): no network. carol-container shows the ERROR state: delete it with delete_container, then correct the cause and create it again.',
    );
  });

  test('an upstream daemon that says no reason: the sentence says where to look', async () => {
    await using t = await setup({ generation: 'head', asyncCreateFails: true });
    const result = await t.call('create_container', { username: 'carol' });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toStartWith(
      'The daemon could not create the container for carol (this daemon does not say why; its log does).',
    );
  });

  test('a create that outlasts the wait: mcp-server stops waiting and says the daemon goes on', async () => {
    await using t = await setup(
      { generation: 'head', asyncCreateMs: 600_000 },
      { polling: { firstMs: 5, maxMs: 5, limitMs: 30 } },
    );
    const result = await t.call('create_container', { username: 'carol' });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toBe(
      'The daemon is still creating carol-container after 0 min (creating); mcp-server stopped waiting, and the container was not deleted. Call get_container for carol later to follow it; do not create it again.',
    );
    expect(t.fake.requests.some((r) => r.method === 'DELETE')).toBe(false);
  });

  test('a get that fails while following: the create goes on, and the sentence says so', async () => {
    await using t = await setup({ generation: 'head', asyncCreateMs: 600_000 });
    t.fake.fail('getContainer', {
      status: 403,
      body: { code: 403, error: 'rpc error: code = PermissionDenied desc = no' },
    });
    const result = await t.call('create_container', { username: 'carol' });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toBe(
      'The daemon accepted the create of carol-container, but reading its progress failed (no). Call get_container for carol to follow it; do not create it again.',
    );
  });

  test('cancelled while the daemon creates: the polls stop, nothing is deleted, the container still creates', async () => {
    await using t = await setup({ generation: 'head', asyncCreateMs: 600_000 });
    const abort = new AbortController();
    const call = t.call('create_container', { username: 'carol' }, abort.signal);
    while (!t.messages().includes('creating carol-container: creating')) await Bun.sleep(5);
    abort.abort('the user changed their mind');
    await expect(call).rejects.toThrow();
    const polls = () => t.fake.requests.filter((r) => r.method === 'GET').length;
    const seen = polls();
    // Several poll intervals later: no new get, and no delete.
    await Bun.sleep(200);
    expect(polls()).toBe(seen);
    expect(t.fake.requests.some((r) => r.method === 'DELETE')).toBe(false);
    expect(t.fake.state.container('carol')?.pending).toBe('creating');
  });
});

describe('start, stop and delete say what they do', () => {
  test('each tells its phase once before it acts', async () => {
    await using t = await setup({ generation: 'head' });
    await t.call('stop_container', { username: 'alice' });
    await t.call('start_container', { username: 'bob' });
    await t.call('delete_container', { username: 'bob', force: true });
    expect(t.messages()).toEqual([
      'stopping alice-container',
      'starting bob-container',
      'deleting bob-container',
    ]);
    // A container already where it should be: nothing to do, nothing to tell.
    t.heard.length = 0;
    await t.call('stop_container', { username: 'alice' });
    expect(t.heard).toEqual([]);
  });
});
