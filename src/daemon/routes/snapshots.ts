// GET|POST /v1/containers/{username}/snapshots, DELETE .../snapshots/{name} and POST
// .../snapshots/{name}/rollback: upstream HEAD's routes and shapes (CONTAINARIUM-API.md §10),
// plus `createdAt` (int64 seconds) in each snapshot, this project's addition (README;
// api/containarium.openapi.json).
import * as v from 'valibot';
import { defaultSnapshotName } from '../../shared/snapshot.ts';
import { Int64Schema } from '../../shared/wire.ts';
import type { Snapshot } from '../backend.ts';
import { guardSnapshotQuota } from '../quotas.ts';
import { parseBody, parseSnapshotSegment, RollbackBody, SnapshotBody } from '../requests.ts';
import { type Context, pathUser, route } from '../router.ts';
import { int64 } from '../to-wire.ts';

export const WireSnapshotSchema = v.strictObject({
  name: v.string(),
  usedBytes: Int64Schema,
  referencedBytes: Int64Schema,
  createdAt: Int64Schema,
});
export type WireSnapshot = v.InferOutput<typeof WireSnapshotSchema>;

export const emitSnapshot = (s: Snapshot): WireSnapshot => ({
  name: s.name,
  usedBytes: int64(s.usedBytes),
  referencedBytes: int64(s.referencedBytes),
  createdAt: int64(s.createdAt),
});

const snapshotOf = (c: Context) => parseSnapshotSegment(c.params.name ?? '');

export const listSnapshots = route('GET', '/v1/containers/:username/snapshots', async (c) => {
  const snapshots = await c.backend.listSnapshots(pathUser(c));
  return { snapshots: snapshots.map(emitSnapshot) };
});

export const createSnapshot = route(
  'POST',
  '/v1/containers/:username/snapshots',
  async (c) => {
    const username = pathUser(c);
    const name = parseBody(SnapshotBody, await c.body()) ?? defaultSnapshotName(new Date());
    await guardSnapshotQuota(c, username);
    const snapshot = await c.backend.createSnapshot(username, name);
    return {
      snapshot: emitSnapshot(snapshot),
      message: `Snapshot ${name} of the container for user ${username} created`,
    };
  },
  { long: true },
);

export const deleteSnapshot = route(
  'DELETE',
  '/v1/containers/:username/snapshots/:name',
  async (c) => {
    const username = pathUser(c);
    const name = snapshotOf(c);
    const { freedBytes } = await c.backend.deleteSnapshot(username, name);
    return {
      message: `Snapshot ${name} of the container for user ${username} deleted`,
      freedBytes: int64(freedBytes),
    };
  },
  { long: true },
);

export const rollbackSnapshot = route(
  'POST',
  '/v1/containers/:username/snapshots/:name/rollback',
  async (c) => {
    const username = pathUser(c);
    const name = snapshotOf(c);
    const options = parseBody(RollbackBody, await c.body());
    const done = await c.backend.rollbackSnapshot(username, name, options);
    const restarted = done.containerStopped ? ' (it was stopped for it and started again)' : '';
    return {
      message: `Container for user ${username} rolled back to snapshot ${name}${restarted}`,
      containerStopped: done.containerStopped,
      destroyedSnapshots: [...done.destroyedSnapshots],
    };
  },
  { long: true },
);
