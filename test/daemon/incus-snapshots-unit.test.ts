// Rollback against a fake Incus whose storage restores only the newest snapshot, as ZFS does:
// what the real (btrfs) Incus here cannot show.
import { describe, expect, test } from 'bun:test';
import { createIncusClient } from '../../src/daemon/incus.ts';
import { createIncusBackend } from '../../src/daemon/incus-backend.ts';
import { rejection } from '../support/rejection.ts';
import { fakeIncus, finished, fixture, started, sync } from './incus-fake.ts';

const ZFS_REFUSAL =
  'Snapshot "one" cannot be restored due to subsequent snapshot(s). Set zfs.remove_snapshots to override';
const BASE = '/1.0/instances/fixture-container';

/** A stopped container with snapshots one, two, three (listed out of order) on a ZFS-like pool. */
async function zfsLike() {
  let names = ['two', 'one', 'three'];
  const times: Record<string, string> = {
    one: '2026-11-29T07:00:00Z',
    two: '2026-11-29T07:10:00Z',
    three: '2026-11-29T07:20:00Z',
  };
  const instance = await fixture('instance-stopped');
  const incus = fakeIncus({
    [`GET ${BASE}`]: () => sync(instance),
    [`GET ${BASE}/snapshots`]: () =>
      sync(names.map((name) => ({ name, created_at: times[name], size: 4096 }))),
    [`DELETE ${BASE}/snapshots/two`]: () => {
      names = names.filter((n) => n !== 'two');
      return started('del-two');
    },
    [`DELETE ${BASE}/snapshots/three`]: () => {
      names = names.filter((n) => n !== 'three');
      return started('del-three');
    },
    'GET /1.0/operations/del-two/wait': () => finished('del-two'),
    'GET /1.0/operations/del-three/wait': () => finished('del-three'),
    [`PUT ${BASE}`]: () => started('restore'),
    'GET /1.0/operations/restore/wait': () =>
      names.at(-1) === 'one'
        ? finished('restore')
        : sync({ id: 'restore', status: 'Failure', status_code: 400, err: ZFS_REFUSAL }),
  });
  const backend = createIncusBackend(createIncusClient({ socket: incus.socket }), {
    log: () => undefined,
  });
  return { incus, backend };
}

describe('rollback on storage that restores only the newest snapshot', () => {
  test('without destroyNewer: a 400 that names the newer snapshots and the way out', async () => {
    const { incus, backend } = await zfsLike();
    await using _ = incus;
    const error = await rejection(
      backend.rollbackSnapshot('fixture', 'one', { force: false, destroyNewer: false }),
    );
    expect(error.kind).toBe('invalid');
    expect(error.message).toBe(
      'snapshot "one" is not the newest of the container for user fixture (newer: two, three), and its storage restores only the newest; roll back with destroyNewer to delete the newer snapshots first',
    );
    expect(incus.calls('DELETE', BASE)).toEqual([]);
  });

  test('with destroyNewer: the newer ones are deleted newest first, then the restore runs', async () => {
    const { incus, backend } = await zfsLike();
    await using _ = incus;
    expect(
      await backend.rollbackSnapshot('fixture', 'one', { force: false, destroyNewer: true }),
    ).toEqual({ containerStopped: false, destroyedSnapshots: ['three', 'two'] });
    const changes = incus.seen
      .filter((s) => s.method !== 'GET')
      .map((s) => `${s.method} ${s.path}`);
    expect(changes).toEqual([
      `DELETE ${BASE}/snapshots/three`,
      `DELETE ${BASE}/snapshots/two`,
      `PUT ${BASE}`,
    ]);
    expect(JSON.parse(incus.calls('PUT', BASE)[0]?.body ?? '{}')).toEqual({ restore: 'one' });
  });

  test('the list is oldest first whatever order Incus gives', async () => {
    const { incus, backend } = await zfsLike();
    await using _ = incus;
    expect((await backend.listSnapshots('fixture')).map((s) => [s.name, s.createdAt])).toEqual([
      ['one', Date.parse('2026-11-29T07:00:00Z') / 1000],
      ['two', Date.parse('2026-11-29T07:10:00Z') / 1000],
      ['three', Date.parse('2026-11-29T07:20:00Z') / 1000],
    ]);
  });
});
