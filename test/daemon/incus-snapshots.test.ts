// Snapshots in the Incus backend against the real Incus on this machine: a busybox container,
// a file written and read back through the Incus file API, and every answer checked against what
// Incus itself then holds.
import { afterAll, describe, expect, test } from 'bun:test';
import { DaemonError } from '../../src/daemon/errors.ts';
import { createIncusClient, INCUS_SOCKET } from '../../src/daemon/incus.ts';
import { createIncusBackend } from '../../src/daemon/incus-backend.ts';
import { createRequest } from '../support/create-request.ts';
import { INCUS_SETUP, missingPrerequisites } from '../support/prerequisites.ts';
import { rejection } from '../support/rejection.ts';

const missing = missingPrerequisites('incus-snapshots.test.ts', { [INCUS_SOCKET]: INCUS_SETUP });

const run = Math.random().toString(36).slice(2, 7);
const DAEMON = `test-${run}`;
const MARKER = '/snapshot-marker';
const ROOT_FILE = { uid: 0, gid: 0, mode: 0o644 };

describe.skipIf(missing.length > 0)('snapshots on real Incus', () => {
  const client = createIncusClient({ socket: INCUS_SOCKET });
  const backend = createIncusBackend(client, { daemonId: DAEMON, log: () => undefined });
  const username = `s${run}snap`;
  const name = `${username}-container`;
  const foreign = `s${run}other`;
  const limited = `s${run}limits`;

  afterAll(async () => {
    await backend.delete(username, { force: true }).catch(() => undefined);
    await client.deleteInstance(`${foreign}-container`).catch(() => undefined);
    await backend.delete(limited, { force: true }).catch(() => undefined);
  }, 60_000);

  const marker = () =>
    client.readFile(name, MARKER).then(
      (file) => file.content,
      (error: unknown) => {
        if (error instanceof DaemonError && error.kind === 'not_found') return undefined;
        throw error;
      },
    );
  const incusSnapshots = async () => (await client.snapshots(name)).map((s) => s.name);

  test('take, list, roll back (running and stopped), delete', async () => {
    await backend.create(
      createRequest({ username, cpu: 1, memory: '128MB', disk: '1GB', image: 'busybox' }),
      { async: false },
    );
    const started = Math.floor(Date.now() / 1000) - 5;
    const one = await backend.createSnapshot(username, 'one');
    expect(one.name).toBe('one');
    expect(one.createdAt).toBeGreaterThanOrEqual(started);
    await client.writeFile(name, MARKER, 'after one\n', ROOT_FILE);
    await backend.createSnapshot(username, 'two');
    expect((await backend.listSnapshots(username)).map((s) => s.name)).toEqual(['one', 'two']);
    expect(await incusSnapshots()).toEqual(['one', 'two']);

    // A taken name changes nothing.
    const taken = await rejection(backend.createSnapshot(username, 'one'));
    expect(taken.kind).toBe('conflict');
    expect(taken.message).toContain('snapshot "one" already exists');

    // Running: refused without force, and the disk is untouched.
    const refused = await rejection(
      backend.rollbackSnapshot(username, 'one', { force: false, destroyNewer: false }),
    );
    expect(refused.kind).toBe('invalid');
    expect(refused.message).toContain('is running; a rollback stops it and starts it again');
    expect(await marker()).toBe('after one\n');

    // With force: the file written after "one" is gone, the container runs again, "two" stays.
    expect(
      await backend.rollbackSnapshot(username, 'one', { force: true, destroyNewer: false }),
    ).toEqual({ containerStopped: true, destroyedSnapshots: [] });
    expect(await marker()).toBeUndefined();
    expect((await client.instance(name)).status).toBe('Running');
    expect(await incusSnapshots()).toEqual(['one', 'two']);

    // Forward again to "two": the file is back.
    await backend.rollbackSnapshot(username, 'two', { force: true, destroyNewer: false });
    expect(await marker()).toBe('after one\n');

    // Stopped, with destroyNewer: not stopped by the rollback, "two" deleted and named.
    await backend.stop(username, { force: true });
    expect(
      await backend.rollbackSnapshot(username, 'one', { force: false, destroyNewer: true }),
    ).toEqual({ containerStopped: false, destroyedSnapshots: ['two'] });
    expect(await incusSnapshots()).toEqual(['one']);
    expect((await client.instance(name)).status).toBe('Stopped');

    const missing = await rejection(
      backend.rollbackSnapshot(username, 'two', { force: true, destroyNewer: false }),
    );
    expect(missing.kind).toBe('not_found');
    expect(missing.message).toBe(`snapshot "two" not found in the container for user ${username}`);

    const { freedBytes } = await backend.deleteSnapshot(username, 'one');
    expect(freedBytes).toBeGreaterThanOrEqual(0);
    expect(await incusSnapshots()).toEqual([]);
    expect((await rejection(backend.deleteSnapshot(username, 'one'))).kind).toBe('not_found');
  }, 180_000);

  test('an instance this daemon did not make has no snapshots for it, and gets none', async () => {
    const other = `${foreign}-container`;
    await client.createInstance(
      { name: other, type: 'container', source: { type: 'image', alias: 'busybox' } },
      120,
    );
    for (const call of [
      () => backend.listSnapshots(foreign),
      () => backend.createSnapshot(foreign, 'mine'),
      () => backend.deleteSnapshot(foreign, 'mine'),
      () => backend.rollbackSnapshot(foreign, 'mine', { force: true, destroyNewer: true }),
    ]) {
      expect((await rejection(call())).message).toBe(`container for user ${foreign} not found`);
    }
    expect(await client.snapshots(other)).toEqual([]);
  }, 120_000);

  test('a rollback brings back files, not limits: those set after the snapshot stay', async () => {
    const limitedName = `${limited}-container`;
    await backend.create(
      createRequest({
        username: limited,
        cpu: 1,
        memory: '128MB',
        disk: '1GB',
        image: 'busybox',
      }),
      { async: false },
    );
    await backend.createSnapshot(limited, 'roomy');
    await backend.resize(limited, { memory: '96MB', disk: '2GB' });
    await backend.rollbackSnapshot(limited, 'roomy', { force: true, destroyNewer: false });
    const after = await client.instance(limitedName);
    expect(after.config['limits.memory']).toBe('96MB');
    expect(after.config['limits.cpu']).toBe('1');
    expect(Object.values(after.devices).find((d) => d.path === '/')?.size).toBe('2GB');
    expect(after.status).toBe('Running');
    expect((await backend.get(limited)).container.resources).toMatchObject({
      memory: '96MB',
      disk: '2GB',
    });
  }, 180_000);
});
