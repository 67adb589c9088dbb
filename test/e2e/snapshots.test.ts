// Snapshots through the whole stack on real Incus: a real MCP client → compiled dist/mcp-server →
// compiled dist/containarium daemon → Incus. exec_command changes a file after the snapshot (the
// test reads files through the Incus exec API); plus a daemon without the routes (the v0.3 fake).
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { rmSync } from 'node:fs';
import { startFakeDaemon } from '../support/fake-daemon.ts';
import { makeToken } from '../support/mcp.ts';
import {
  connectMcp,
  type Daemon,
  type Mcp,
  missingPrerequisites,
  startAdminDaemon,
  stopAll,
  type ToolResult,
} from './harness.ts';
import { exec, incus, removeInstance } from './incus.ts';

const missing = missingPrerequisites('snapshots.test.ts');

const run = Array.from(crypto.getRandomValues(new Uint8Array(4)), (b) =>
  'abcdefghijklmnopqrstuvwxyz0123456789'.charAt(b % 36),
).join('');
const username = `e2e${run}snap`;
const container = `${username}-container`;
const FILE = '/snapshot-e2e';

/** The structured part of a successful tool result (fails the test with the text otherwise). */
function ok<T = Record<string, unknown>>(result: ToolResult): T {
  if (result.isError) throw new Error(`tool failed: ${result.text}`);
  return result.structuredContent as T;
}

/** A file's content inside the container, read with cat through the Incus exec API. */
async function cat(path: string) {
  const { exitCode, stdout } = await exec(container, ['cat', path]);
  return exitCode === 0 ? stdout : undefined;
}

async function write(path: string, content: string) {
  const { exitCode } = await exec(container, ['sh', '-c', `printf '%s' '${content}' > ${path}`]);
  expect(exitCode).toBe(0);
}

type Snapshots = { snapshots: { name: string; createdAt: string | null; sizeBytes: number }[] };

describe.skipIf(missing.length > 0)('snapshots through the stack on real Incus', () => {
  let tmp = '';
  let daemon: Daemon;
  let mcp: Mcp;

  beforeAll(async () => {
    const admin = await startAdminDaemon('containarium-e2e-snap-');
    tmp = admin.tmp;
    daemon = admin.daemon;
    mcp = await connectMcp(daemon.url, admin.token);
  }, 30_000);

  afterAll(async () => {
    await stopAll();
    const problem = await removeInstance(container);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    if (problem) throw new Error(problem);
  }, 90_000);

  test('snapshot, change a file, restore: the file is back; list and delete', async () => {
    ok(
      await mcp.call(
        'create_container',
        {
          username,
          image: 'busybox',
          enable_docker: false,
          cpu: '1',
          memory: '128MB',
          disk: '1GB',
        },
        180_000,
      ),
    );
    await write(FILE, 'before');

    const first = await mcp.call('create_snapshot', { username, name: 'first' });
    expect(first.text).toBe(
      `Took snapshot "first" of ${container}; restore it with restore_snapshot.`,
    );
    // The change after the snapshot is made by exec_command, through the whole stack.
    const changed = await mcp.call('exec_command', {
      username,
      user: 'root',
      command: `printf after > ${FILE} && printf new > /snapshot-e2e-new && cat ${FILE}`,
    });
    expect(changed.isError).toBeFalsy();
    expect(changed.text).toContain('after');
    expect(await cat(FILE)).toBe('after');
    const second = ok<{ snapshot: { name: string } }>(
      await mcp.call('create_snapshot', { username }),
    );
    expect(second.snapshot.name).toMatch(/^snap-\d{8}-\d{6}$/);

    const listed = await mcp.call('list_snapshots', { username });
    const { snapshots } = ok<Snapshots>(listed);
    expect(snapshots.map((s) => s.name)).toEqual([second.snapshot.name, 'first']);
    expect(snapshots.every((s) => s.createdAt?.startsWith('20'))).toBe(true);
    expect(listed.text).toStartWith(`2 snapshots of ${container}, newest first:\nNAME`);

    const restored = await mcp.call('restore_snapshot', { username, name: 'first' }, 180_000);
    expect(restored.text).toBe(
      [
        `Restored ${container} to snapshot "first".`,
        'It was running: it was stopped for the restore and started again.',
        `Removed newer snapshots: ${second.snapshot.name}.`,
      ].join('\n'),
    );
    expect(await cat(FILE)).toBe('before');
    expect(await cat('/snapshot-e2e-new')).toBeUndefined();
    const state = await incus<{ status: string }>('GET', `/1.0/instances/${container}`);
    expect(state.metadata.status).toBe('Running');

    const left = await incus<string[]>('GET', `/1.0/instances/${container}/snapshots`);
    expect(left.metadata).toEqual([`/1.0/instances/${container}/snapshots/first`]);

    const deleted = await mcp.call('delete_snapshot', { username, name: 'first' });
    expect(deleted.text).toStartWith(`Deleted snapshot "first" of ${container}, freeing `);
    expect(
      (await incus<string[]>('GET', `/1.0/instances/${container}/snapshots`)).metadata,
    ).toEqual([]);
    const gone = await mcp.call('restore_snapshot', { username, name: 'first' });
    expect(gone.isError).toBe(true);
    expect(gone.text).toContain(`has no snapshot "first"`);
    expect(gone.text).toContain('list_snapshots');
  }, 300_000);

  test('against a v0.3 daemon every snapshot tool says it is not supported', async () => {
    const token = await makeToken();
    await using fake = startFakeDaemon({
      generation: 'v0.3',
      token,
      containers: [{ username: 'alice' }],
    });
    const old = await connectMcp(fake.url, token);
    for (const [tool, args] of [
      ['list_snapshots', {}],
      ['create_snapshot', { name: 'x' }],
      ['restore_snapshot', { name: 'x' }],
      ['delete_snapshot', { name: 'x' }],
    ] as const) {
      const result = await old.call(tool, { username: 'alice', ...args });
      expect([tool, result.isError]).toEqual([tool, true]);
      expect(result.text).toStartWith('This daemon does not support snapshots');
      expect(result.text).not.toContain('No container');
    }
    await old.close();
  }, 60_000);
});
