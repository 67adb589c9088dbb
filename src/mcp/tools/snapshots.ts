// Snapshot tools: take, list, restore and delete snapshots of a container's disk. The routes are
// upstream HEAD's (v0.3 lacks them; this project's daemon adds createdAt), so their wire schemas
// live here, and a daemon without them is told apart from a missing container.
import { HTTPError, TimeoutError } from 'ky';
import * as v from 'valibot';
import { formatBytes } from '../../shared/sizes.ts';
import { defaultSnapshotName, SNAPSHOT_NAME, SNAPSHOT_NAME_FORM } from '../../shared/snapshot.ts';
import { containerName } from '../../shared/username.ts';
import { integer, text } from '../../shared/wire.ts';
import type { Question } from '../confirm.ts';
import { CONTAINER, daemonMessage } from '../errors.ts';
import { containerView, table, timestamp, withinBudget } from '../format.ts';
import { defineTool, type ToolContext, username } from './define.ts';

// ---- The wire, read leniently (api/containarium.openapi.json) ---------------------------------

const WireSnapshot = v.object({
  name: text,
  usedBytes: integer,
  referencedBytes: integer,
  /** This project's daemon only; upstream HEAD sends none (read as 0: unknown). */
  createdAt: integer,
});
export const ListSnapshotsResponseSchema = v.object({
  snapshots: v.nullish(v.array(WireSnapshot), []),
});
export const CreateSnapshotResponseSchema = v.object({
  snapshot: v.nullish(WireSnapshot, null),
  message: text,
});
export const DeleteSnapshotResponseSchema = v.object({ message: text, freedBytes: integer });
export const RollbackSnapshotResponseSchema = v.object({
  message: text,
  containerStopped: v.nullish(v.boolean(), false),
  destroyedSnapshots: v.nullish(v.array(v.string()), []),
});

const FEATURE = 'snapshots';
const path = (user: string, ...rest: string[]) =>
  [`v1/containers/${encodeURIComponent(user)}/snapshots`, ...rest.map(encodeURIComponent)].join(
    '/',
  );

// ---- What the tools answer --------------------------------------------------------------------

const SnapshotOut = v.object({
  name: v.string(),
  createdAt: v.nullable(v.pipe(v.string(), v.description('ISO 8601; null when unknown'))),
  sizeBytes: v.pipe(v.number(), v.description('Space the snapshot holds of its own; 0 if unknown')),
});
type SnapshotView = v.InferOutput<typeof SnapshotOut>;

const view = (s: v.InferOutput<typeof WireSnapshot>): SnapshotView => ({
  name: s.name,
  createdAt: timestamp(s.createdAt),
  sizeBytes: s.usedBytes,
});

const created = (s: SnapshotView) => s.createdAt ?? 'at a time the daemon does not report';

const snapshotName = (description: string) =>
  v.pipe(
    v.string(`must be ${SNAPSHOT_NAME_FORM}`),
    v.description(description),
    v.trim(),
    v.regex(SNAPSHOT_NAME, `must be ${SNAPSHOT_NAME_FORM}`),
  );

/**
 * The daemon's refusals about one snapshot or its container, as sentences with the next step;
 * anything else (no route, bad token, Incus down) goes on to the shared error sentences.
 */
function snapshotFailure(error: unknown, user: string, name: string): unknown {
  if (!(error instanceof HTTPError)) return error;
  const said = daemonMessage(error.data);
  const status = error.response.status;
  if (status === 404 && /snapshot/i.test(said)) {
    return new Error(
      `${user}'s container has no snapshot "${name}" (the daemon says "${said}"); nothing changed. Call list_snapshots to see its snapshots`,
    );
  }
  if (status === 404) {
    // create_snapshot is a create: the shared sentences never take a 404 for a missing container.
    return new Error(
      `no container exists for user ${user} (the daemon says "${said}"); nothing changed. Call list_containers to see which containers exist`,
    );
  }
  if (status === 409 && /already exists/i.test(said)) {
    return new Error(
      `${user}'s container already has a snapshot "${name}" (the daemon says "${said}"); nothing changed. Choose another name, or call list_snapshots`,
    );
  }
  return error;
}

/** The user's snapshots, oldest first. */
async function snapshotsOf(user: string, { client, signal }: ToolContext) {
  const response = await client.get(path(user), ListSnapshotsResponseSchema, {
    signal,
    feature: FEATURE,
  });
  return response.snapshots.map(view);
}

/**
 * The names of the user's snapshots, for the question before deleting the container; undefined
 * when the daemon does not report them (no snapshot routes) or the read fails.
 */
export const snapshotNames = (user: string, ctx: ToolContext) =>
  snapshotsOf(user, ctx).then(
    (snapshots) => snapshots.map((s) => s.name),
    () => undefined,
  );

/** One snapshot and those newer than it; a missing one says so. */
async function findSnapshot(user: string, name: string, ctx: ToolContext) {
  const all = await snapshotsOf(user, ctx);
  const index = all.findIndex((s) => s.name === name);
  if (index < 0) {
    const known = all.length
      ? `its snapshots are ${all.map((s) => s.name).join(', ')}`
      : 'it has none';
    throw new Error(
      `${user}'s container has no snapshot "${name}" (${known}); nothing changed. Call list_snapshots to see them`,
    );
  }
  return { snapshot: all[index] as SnapshotView, newer: all.slice(index + 1) };
}

// ---- The tools ----------------------------------------------------------------------------------

const createSnapshot = defineTool({
  name: 'create_snapshot',
  title: 'Create snapshot',
  description:
    "Snapshot a user's container disk, to restore later with restore_snapshot. Default name: the UTC time, like snap-20261129-071500.",
  effect: 'create',
  toolset: 'snapshots',
  resource: CONTAINER,
  input: v.strictObject({
    username: username('User whose container to snapshot, e.g. "alice".'),
    name: v.optional(snapshotName('Snapshot name, e.g. "before-upgrade"; left out, the UTC time.')),
  }),
  output: v.object({ username: v.string(), snapshot: SnapshotOut, message: v.string() }),
  action: (input) => `snapshot the container for ${input.username}`,
  async handle(input, { client, signal }) {
    const name = input.name ?? defaultSnapshotName(new Date());
    const response = await client
      .change('POST', path(input.username), CreateSnapshotResponseSchema, {
        json: { name },
        signal,
        feature: FEATURE,
      })
      .catch((error: unknown) => {
        if (error instanceof TimeoutError) {
          throw new Error(
            `the daemon did not answer in time, so whether snapshot "${name}" was taken is unknown. Call list_snapshots for ${input.username} before trying again`,
          );
        }
        throw snapshotFailure(error, input.username, name);
      });
    const snapshot = response.snapshot
      ? view(response.snapshot)
      : { name, createdAt: null, sizeBytes: 0 };
    return {
      text: `Took snapshot "${snapshot.name}" of ${containerName(input.username)}; restore it with restore_snapshot.`,
      structured: { username: input.username, snapshot, message: response.message },
    };
  },
});

const listSnapshots = defineTool({
  name: 'list_snapshots',
  title: 'List snapshots',
  description: "List the snapshots of a user's container, newest first: name, creation time, size.",
  effect: 'read',
  toolset: 'snapshots',
  resource: CONTAINER,
  input: v.strictObject({ username: username('User whose snapshots to list, e.g. "alice".') }),
  output: v.object({
    username: v.string(),
    snapshots: v.pipe(v.array(SnapshotOut), v.description('The ones the text shows, newest first')),
    totalCount: v.pipe(v.number(), v.description('All snapshots of the container')),
  }),
  action: (input) => `list the snapshots of the container for ${input.username}`,
  async handle(input, ctx) {
    // The daemon lists them oldest first.
    const snapshots = (await snapshotsOf(input.username, ctx)).reverse();
    const name = containerName(input.username);
    const totalCount = snapshots.length;
    if (totalCount === 0) {
      const text = `${name} has no snapshots; create_snapshot takes one.`;
      return { text, structured: { username: input.username, snapshots, totalCount } };
    }
    const [header, ...rows] = table(
      ['NAME', 'CREATED', 'SIZE'],
      snapshots.map((s) => [s.name, s.createdAt ?? '-', formatBytes(s.sizeBytes)]),
    ).split('\n');
    const { text, shown } = withinBudget(
      `${totalCount} ${totalCount === 1 ? 'snapshot' : 'snapshots'} of ${name}, newest first:\n${header}`,
      rows,
      (left) =>
        `… ${left} older ${left === 1 ? 'snapshot' : 'snapshots'} not shown (the answer's size limit); delete_snapshot removes the ones no longer needed.`,
    );
    return {
      text,
      structured: { username: input.username, snapshots: snapshots.slice(0, shown), totalCount },
    };
  },
});

const RestoreOut = v.object({
  username: v.string(),
  snapshot: v.string(),
  containerStopped: v.pipe(
    v.boolean(),
    v.description('The container was running, so it was stopped for the restore and started again'),
  ),
  destroyedSnapshots: v.pipe(v.array(v.string()), v.description('Newer snapshots removed')),
  message: v.string(),
});

/** What restoring would do, from a fresh read: the question the user confirms. */
async function restoreQuestion(user: string, name: string, ctx: ToolContext): Promise<Question> {
  const [response, { snapshot, newer }] = await Promise.all([
    ctx.client.getContainer(user, { signal: ctx.signal }),
    findSnapshot(user, name, ctx),
  ]);
  if (!response.container) throw new Error(`the daemon returned no container for ${user}`);
  const container = containerView(response.container);
  const running = container.state !== 'stopped';
  const message = [
    `Restore ${container.name} (user ${user}) to snapshot "${name}", taken ${created(snapshot)}?`,
    `State: ${container.state}${running ? '; the restore stops it (its processes are killed) and starts it again' : '; it stays stopped'}.`,
    `Every change to its disk since the snapshot is lost.`,
    newer.length
      ? `Newer snapshots removed for good: ${newer.map((s) => s.name).join(', ')}.`
      : 'No newer snapshots, so none are removed.',
    `To confirm, type the username "${user}".`,
  ].join('\n');
  const identity = [
    `${container.name}@${container.createdAt ?? ''}`,
    `${name}@${snapshot.createdAt ?? ''}`,
    ...newer.map((s) => s.name),
  ].join(' ');
  return { message, typed: user, identity };
}

const restoreSnapshot = defineTool({
  name: 'restore_snapshot',
  title: 'Restore snapshot',
  description:
    "Roll a user's container disk back to a snapshot, losing later changes and newer snapshots; a running container is restarted.",
  effect: 'destroy',
  toolset: 'snapshots',
  resource: CONTAINER,
  input: v.strictObject({
    username: username('User whose container to restore, e.g. "alice".'),
    name: snapshotName('Snapshot to restore, as list_snapshots names it.'),
  }),
  output: RestoreOut,
  action: (input) => `restore the container for ${input.username} to snapshot "${input.name}"`,
  confirm: {
    ask: (input, ctx) => restoreQuestion(input.username, input.name, ctx),
    untouched: (input, why) => ({
      username: input.username,
      snapshot: input.name,
      containerStopped: false,
      destroyedSnapshots: [],
      message: why,
    }),
  },
  async handle(input, { client, signal, progress }) {
    progress(`restoring ${containerName(input.username)} to snapshot "${input.name}"`);
    // force: a running container is stopped and started again; destroyNewer: the container's
    // history ends at the snapshot, on every storage driver (ZFS allows nothing else).
    const response = await client
      .change(
        'POST',
        path(input.username, input.name, 'rollback'),
        RollbackSnapshotResponseSchema,
        { json: { force: true, destroyNewer: true }, signal, feature: FEATURE },
      )
      .catch((error: unknown) => {
        throw snapshotFailure(error, input.username, input.name);
      });
    const removed = response.destroyedSnapshots;
    const lines = [
      `Restored ${containerName(input.username)} to snapshot "${input.name}".`,
      response.containerStopped
        ? 'It was running: it was stopped for the restore and started again.'
        : 'It was not running, so it was not stopped.',
      removed.length
        ? `Removed newer snapshots: ${removed.join(', ')}.`
        : 'No newer snapshots were removed.',
    ];
    return {
      text: lines.join('\n'),
      structured: {
        username: input.username,
        snapshot: input.name,
        containerStopped: response.containerStopped,
        destroyedSnapshots: removed,
        message: response.message,
      },
    };
  },
});

const deleteSnapshot = defineTool({
  name: 'delete_snapshot',
  title: 'Delete snapshot',
  description:
    "Delete one snapshot of a user's container, permanently; the container is unchanged.",
  effect: 'destroy',
  toolset: 'snapshots',
  resource: CONTAINER,
  input: v.strictObject({
    username: username('User whose snapshot to delete, e.g. "alice".'),
    name: snapshotName('Snapshot to delete, as list_snapshots names it.'),
  }),
  output: v.object({
    username: v.string(),
    snapshot: v.string(),
    freedBytes: v.number(),
    message: v.string(),
  }),
  action: (input) => `delete snapshot "${input.name}" of the container for ${input.username}`,
  confirm: {
    async ask(input, ctx) {
      const { snapshot } = await findSnapshot(input.username, input.name, ctx);
      const message = [
        `Delete snapshot "${input.name}" of ${containerName(input.username)} (user ${input.username}), taken ${created(snapshot)}, permanently?`,
        `It holds ${formatBytes(snapshot.sizeBytes)} of its own; the container itself is not changed.`,
        `To confirm, type the username "${input.username}".`,
      ].join('\n');
      return {
        message,
        typed: input.username,
        identity: `${input.username}/${input.name}@${snapshot.createdAt ?? ''}`,
      };
    },
    untouched: (input, why) => ({
      username: input.username,
      snapshot: input.name,
      freedBytes: 0,
      message: why,
    }),
  },
  async handle(input, { client, signal }) {
    const response = await client
      .change('DELETE', path(input.username, input.name), DeleteSnapshotResponseSchema, {
        signal,
        feature: FEATURE,
      })
      .catch((error: unknown) => {
        throw snapshotFailure(error, input.username, input.name);
      });
    return {
      text: `Deleted snapshot "${input.name}" of ${containerName(input.username)}, freeing ${formatBytes(response.freedBytes)}.`,
      structured: {
        username: input.username,
        snapshot: input.name,
        freedBytes: response.freedBytes,
        message: response.message,
      },
    };
  },
});

export default [createSnapshot, listSnapshots, restoreSnapshot, deleteSnapshot];
