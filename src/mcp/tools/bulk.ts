// Bulk tools: create or delete up to 20 containers in one call, a few at a time, each item through
// the one-container tool (so each behaves and fails exactly as that tool would), one line per item.
// Works against any daemon: it is the same routes, called once per item.
import { HTTPError } from 'ky';
import * as v from 'valibot';
import { formatBytes } from '../../shared/sizes.ts';
import { containerName } from '../../shared/username.ts';
import type { Question } from '../confirm.ts';
import { containerView, limit } from '../format.ts';
import { createChecked, createContainer, deleteContainer } from './containers.ts';
import { defineTool, force, type ToolContext, username } from './define.ts';
import { checkTemplates } from './templates.ts';

/** Most items of one bulk call. */
export const MAX_ITEMS = 20;
/** Items running at once: each also takes one of the slots all calls to the daemon share. */
export const PARALLEL = 4;

/** Runs `work` on every item, at most `parallel` at once; the results in the items' order. */
export async function eachBounded<T, R>(
  items: readonly T[],
  parallel: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, items.length) }, worker));
  return results;
}

const ItemOut = v.object({
  username: v.string(),
  ok: v.boolean(),
  message: v.pipe(v.string(), v.description('What was done, or why it failed and what to do')),
});
type Item = v.InferOutput<typeof ItemOut>;

/** A list of 1 to MAX_ITEMS, no two with the same username. */
const items = <S extends v.GenericSchema>(item: S, name: (value: v.InferOutput<S>) => string) =>
  v.pipe(
    v.array(item, 'must be a list'),
    v.minLength(1, 'must hold at least one item'),
    v.maxLength(MAX_ITEMS, `may hold at most ${MAX_ITEMS} items; split the work into calls`),
    v.check((list) => {
      const names = list.map(name);
      return new Set(names).size === names.length;
    }, 'must not name the same user twice'),
  );

/** What `run` answers for an item with nothing to do: its container is already gone. */
const ABSENT = Symbol('absent');
const ABSENT_TEXT = (name: string) =>
  `${containerName(name)} did not exist when the deletion was confirmed; nothing was sent`;

/**
 * Runs each item through `run` in its own slot, telling the client after each one, and words the
 * outcome: one line per item, a tool error only when every item failed (nothing was done then;
 * when some worked, the model must see which, so the result is not an error).
 */
async function runItems(
  usernames: readonly string[],
  verb: { done: string; doing: string },
  run: (index: number) => Promise<string | typeof ABSENT>,
  ctx: ToolContext,
  explain: (error: unknown, index: number) => string,
) {
  let finished = 0;
  const absent = new Set<string>();
  const results = await eachBounded(usernames, PARALLEL, async (name, index): Promise<Item> => {
    const item = await ctx
      .slot(() => run(index))
      .then(
        (message) => {
          if (message !== ABSENT) return { username: name, ok: true, message };
          absent.add(name);
          return { username: name, ok: true, message: `already absent: ${ABSENT_TEXT(name)}` };
        },
        (error: unknown) => ({ username: name, ok: false, message: explain(error, index) }),
      );
    finished += 1;
    const outcome = absent.has(name) ? 'already absent' : item.ok ? verb.done : 'failed';
    ctx.progress(`${finished} of ${usernames.length} done: ${name} ${outcome}`);
    return item;
  });
  const ok = results.filter((r) => r.ok).length;
  const failed = results.length - ok;
  const done = ok - absent.size;
  const noun = (n: number) => (n === 1 ? 'container' : 'containers');
  const Done = `${verb.done[0]!.toUpperCase()}${verb.done.slice(1)}`;
  const absentNote = absent.size > 0 ? `; ${absent.size} already absent` : '';
  const head =
    failed === 0
      ? absent.size === 0
        ? `${Done} all ${ok} ${noun(ok)}:`
        : `${Done} ${done} of ${results.length} ${noun(results.length)}${absentNote}:`
      : ok === 0
        ? `Could not ${verb.doing} any of the ${failed} ${noun(failed)}; nothing was ${verb.done}:`
        : `${Done} ${done} of ${results.length} ${noun(results.length)}${absentNote}; ${failed} failed (the others are done; retry only the failed ones):`;
  const lines = results.map(
    (r) =>
      `- ${r.username}: ${absent.has(r.username) ? r.message : r.ok ? `${verb.done}, ${r.message}` : `failed: ${r.message}`}`,
  );
  return {
    text: [head, ...lines].join('\n'),
    structured: { results, succeeded: ok, failed },
    ...(ok === 0 ? { isError: true } : {}),
  };
}

const BulkOut = v.object({
  results: v.array(ItemOut),
  succeeded: v.number(),
  failed: v.number(),
});

const createContainers = defineTool({
  name: 'create_containers',
  title: 'Create containers',
  description: `Create up to ${MAX_ITEMS} containers at once, each item as create_container takes it; one result line per item.`,
  effect: 'create',
  toolset: 'bulk',
  resource: null,
  bulk: true,
  input: v.strictObject({
    containers: v.pipe(
      items(createContainer.input, (item) => item.username),
      v.description("create_container's arguments for each container."),
    ),
  }),
  output: BulkOut,
  action: (input) => `create ${input.containers.length} containers`,
  async handle(input, ctx) {
    // Before anything is made: every template named exists, and the daemon knows templates.
    const templates = input.containers.flatMap((c) => (c.template ? [c.template] : []));
    await ctx.slot(() => checkTemplates(templates, ctx.client, ctx.signal));
    const created = await runItems(
      input.containers.map((c) => c.username),
      { done: 'created', doing: 'create' },
      async (index) => {
        const { structured } = await createChecked(input.containers[index]!, ctx);
        const c = structured.container;
        return `${c.name} ${c.state}${c.ipAddress ? `, IP ${c.ipAddress}` : ''}`;
      },
      ctx,
      (error, index) => ctx.explain(error, createContainer, input.containers[index]),
    );
    return created;
  },
});

/** No container for the user: a 404, or a v0.3 daemon's 500 "not found". */
const missing = (error: unknown) =>
  error instanceof HTTPError &&
  (error.response.status === 404 ||
    (error.response.status === 500 && /not found/i.test(String(JSON.stringify(error.data)))));

/** What deleting them all would destroy, from fresh reads: one line per container. */
async function deleteQuestion(
  input: { usernames: string[]; force: boolean },
  ctx: ToolContext,
): Promise<Question> {
  const read = await eachBounded(input.usernames, PARALLEL, async (name) => {
    try {
      const [{ container: raw }, metrics] = await Promise.all([
        ctx.client.getContainer(name, { signal: ctx.signal }),
        ctx.client.getMetrics(name, { signal: ctx.signal }).catch(() => undefined),
      ]);
      if (!raw) throw new Error(`the daemon returned no container for ${name}`);
      const c = containerView(raw);
      const used = metrics?.metrics?.[0]?.diskUsageBytes;
      const disk =
        c.state === 'running' && used !== undefined
          ? `${formatBytes(Number(used))} of disk used`
          : c.disk
            ? `disk limit ${limit(c.disk)}`
            : 'disk use not reported';
      const line = `- ${c.name} (user ${name}): ${c.state}${c.ipAddress ? `, IP ${c.ipAddress}` : ''}, ${disk}, created ${c.createdAt ?? 'at an unknown time'}.`;
      return { line, identity: `${c.name}@${c.createdAt ?? ''}`, absent: undefined };
    } catch (error) {
      if (!missing(error)) throw error;
      return {
        line: `- ${containerName(name)} (user ${name}): does not exist; nothing to delete.`,
        identity: `${name}:none`,
        absent: name,
      };
    }
  });
  const count = input.usernames.length;
  const typed = `delete ${count} ${count === 1 ? 'container' : 'containers'}`;
  const message = [
    `Delete these ${count} containers and all their data, permanently?${input.force ? ' Running ones are stopped first.' : ' Running ones are not deleted without force.'}`,
    ...read.map((r) => r.line),
    `To confirm, type "${typed}".`,
  ].join('\n');
  return {
    message,
    typed,
    identity: read.map((r) => r.identity).join(' '),
    absent: read.flatMap((r) => (r.absent === undefined ? [] : [r.absent])),
  };
}

const deleteContainers = defineTool({
  name: 'delete_containers',
  title: 'Delete containers',
  description: `Delete up to ${MAX_ITEMS} users' containers and their data, permanently, with one confirmation; one result line per item.`,
  effect: 'destroy',
  toolset: 'bulk',
  resource: null,
  bulk: true,
  input: v.strictObject({
    usernames: v.pipe(
      items(username('A user whose container to delete.'), (name) => name),
      v.description('Users whose containers to delete, e.g. ["alice", "bob"].'),
    ),
    force: force('Stop running containers first.'),
  }),
  output: BulkOut,
  action: (input) => `delete ${input.usernames.length} containers`,
  confirm: {
    ask: deleteQuestion,
    untouched: (input, why) => ({
      results: input.usernames.map((name) => ({ username: name, ok: false, message: why })),
      succeeded: 0,
      failed: 0,
    }),
  },
  handle: (input, ctx) =>
    runItems(
      input.usernames,
      { done: 'deleted', doing: 'delete' },
      async (index) => {
        const item = { username: input.usernames[index]!, force: input.force };
        // The confirmed question found no container for this user just now: no DELETE.
        if (ctx.confirmed?.absent?.includes(item.username)) return ABSENT;
        const { structured } = await deleteContainer.handle(item, ctx);
        return structured.containerName;
      },
      ctx,
      (error, index) =>
        ctx.explain(error, deleteContainer, {
          username: input.usernames[index],
          force: input.force,
        }),
    ),
});

export default [createContainers, deleteContainers];
