// Container lifecycle tools: create, list, get, delete, start, stop.
import { HTTPError } from 'ky';
import * as v from 'valibot';
import { IMAGE, IMAGE_FORM } from '../../shared/image.ts';
import { formatBytes } from '../../shared/sizes.ts';
import {
  containerName,
  isSystemAccount,
  isValidUsername,
  usernameOf,
} from '../../shared/username.ts';
import type { ContainariumClient } from '../client.ts';
import type { Question } from '../confirm.ts';
import { ActionableError, CONTAINER, daemonMessage } from '../errors.ts';
import {
  ContainerOut,
  containerText,
  containerView,
  countText,
  limit as limitText,
  listLines,
  MetricsOut,
  metricsLine,
  metricsView,
  resources,
  sshCommand,
  sshLine,
  withinBudget,
} from '../format.ts';
import { log } from '../log.ts';
import {
  cpu,
  daemonDefault,
  defineTool,
  force,
  limit,
  size,
  sshKeys,
  type ToolContext,
  username,
} from './define.ts';
import { snapshotNames } from './snapshots.ts';
import { checkTemplates } from './templates.ts';

/** create_container's arguments. */
const CreateInput = v.strictObject({
  username: v.pipe(
    username('Linux user name that owns the container, e.g. "alice".'),
    v.check(
      (name) => !isSystemAccount(name),
      'must not be a system account of the image (like root, admin or ubuntu)',
    ),
  ),
  cpu,
  memory: size('Memory limit with a unit, e.g. "4GB", "2048MB" or "8GiB".', '4GB'),
  disk: size('Root disk size with a unit, e.g. "50GB" or "100GiB".', '50GB'),
  ssh_keys: sshKeys,
  image: daemonDefault(
    'usually "images:ubuntu/24.04"',
    'Image to create from, e.g. "images:ubuntu/24.04", "images:debian/12" or a local alias.',
    (description) =>
      v.pipe(
        v.string(`must be ${IMAGE_FORM}`),
        v.trim(),
        v.regex(IMAGE, `must be ${IMAGE_FORM}`),
        description,
      ),
  ),
  // Left out when not given, so a template's setting can apply; true otherwise.
  enable_docker: v.optional(
    v.pipe(
      v.boolean('must be true or false'),
      v.description(
        "Allow Docker inside the container (nesting). When left out: the template's setting, else true.",
      ),
    ),
  ),
  template: v.optional(
    v.pipe(
      v.string('must be a template name'),
      v.description('Template whose values fill what this call leaves out; see list_templates.'),
      v.trim(),
      v.nonEmpty('must be a template name'),
    ),
  ),
});

export const createContainer = defineTool({
  name: 'create_container',
  title: 'Create container',
  description:
    "Create a new LXC container for a user, with CPU, memory and disk limits, SSH keys and an image, and start it. Each user has at most one container, named <username>-container. Creating can take minutes while packages install; if it times out, call get_container before trying again. Returns the container's state, limits and IP address, and the SSH command when ssh_keys were given (without a key there is no account to log in to).",
  effect: 'create',
  toolset: 'containers',
  resource: CONTAINER,
  input: CreateInput,
  output: v.object({ container: ContainerOut, message: v.string(), sshCommand: v.string() }),
  action: (input) => `create the container for ${input.username}`,
  async handle(input, ctx) {
    // A daemon without templates would ignore the name: it must have it before anything is made.
    if (input.template) await checkTemplates([input.template], ctx.client, ctx.signal);
    return createChecked(input, ctx);
  },
});

/** create_container once its template, if any, is known to the daemon (bulk checks all at once). */
export async function createChecked(input: v.InferOutput<typeof CreateInput>, ctx: ToolContext) {
  const response = await createAndFollow(input.username, ctx, () =>
    ctx.client.createContainer(
      {
        username: input.username,
        cpu: input.cpu,
        memory: input.memory,
        disk: input.disk,
        sshKeys: input.ssh_keys,
        image: input.image,
        enableDocker: input.enable_docker ?? (input.template ? undefined : true),
        template: input.template,
      },
      { signal: ctx.signal, async: true },
    ),
  );
  const container = containerView(
    response.container ?? {
      name: containerName(input.username),
      username: input.username,
      state: 'CONTAINER_STATE_UNSPECIFIED',
      resources: { cpu: input.cpu ?? '', memory: input.memory ?? '', disk: input.disk ?? '' },
      sshKeys: input.ssh_keys,
      network: null,
      createdAt: 0,
      updatedAt: 0,
      labels: {},
      image: input.image ?? '',
      dockerEnabled: input.enable_docker ?? false,
      podmanEnabled: undefined,
    },
  );
  // What was used, as the daemon reports it: the limits it chose when none were given.
  const lines = [
    container.state === 'creating'
      ? `Creating ${container.name} for ${container.username}; call get_container to follow it.`
      : `Created ${container.name} for ${container.username}: ${container.state}.`,
    `Resources: ${resources(container)}`,
    `Image: ${container.image || input.image || "the daemon's default (not reported)"}`,
  ];
  if (container.ipAddress) lines.push(`IP: ${container.ipAddress}`);
  // The daemon's command is the truth ("" when it made no account), except that upstream
  // daemons send one even when no key was given, and without a key it would not log in.
  const keys = Math.max(input.ssh_keys.length, container.sshKeys.length);
  const command = sshCommand(container, keys, keys === 0 ? '' : response.sshCommand);
  const ssh = sshLine(command);
  if (ssh) lines.push(ssh);
  if (response.message) lines.push(`Daemon: ${response.message}`);
  return {
    text: lines.join('\n'),
    structured: { container, message: response.message, sshCommand: command },
  };
}

/** The states list_containers filters by, as its text and structured content spell them. */
const LIST_STATES = ['running', 'stopped', 'frozen', 'error', 'creating'] as const;
const CURSOR_FORM = 'must be the nextCursor of an earlier list_containers answer';

/**
 * Opaque to the model: the name of the last container a page showed, base64url-encoded (not as
 * JSON, whose base64 starts like a JWT's and would be redacted from the answer).
 */
const cursorFor = (name: string) => Buffer.from(`after:${name}`).toString('base64url');
/** The longest cursor read: one of a container name is far shorter. */
const CURSOR_MAX = 512;
function afterOf(cursor: string): string | undefined {
  if (cursor.length > CURSOR_MAX) return undefined;
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const name = text.startsWith('after:') ? text.slice('after:'.length) : '';
  // Only a cursor that encodes back the same way and names a container (a username, with or
  // without "-container"), so junk is refused rather than half-read.
  return name && cursorFor(name) === cursor && isValidUsername(usernameOf(name)) ? name : undefined;
}

const byName = (a: { name: string }, b: { name: string }) =>
  a.name < b.name ? -1 : a.name > b.name ? 1 : 0;

type Created = Awaited<ReturnType<ContainariumClient['createContainer']>>;
type WireContainer = NonNullable<Created['container']>;

/** States of a create still under way: HEAD's daemon adds PROVISIONING after CREATING. */
const UNDER_WAY = new Set(['CONTAINER_STATE_CREATING', 'CONTAINER_STATE_PROVISIONING']);

/**
 * Starts an async create and polls get until the container is RUNNING or ERROR, telling the
 * client each phase. A daemon that ignores `async` answers when it is done: that answer is used.
 * Cancelled, it stops waiting (never deleting) and says what state the container is in.
 */
async function createAndFollow(
  username: string,
  ctx: ToolContext,
  start: () => Promise<Created>,
): Promise<Created> {
  const { client, signal, progress, polling } = ctx;
  const name = containerName(username);
  let accepted = false;
  let phase = '';
  const tell = (now: string) => {
    if (now !== phase) progress(`creating ${name}: ${now}`);
    phase = now;
  };
  try {
    tell('requesting the create');
    const response = await start();
    accepted = true;
    let container = response.container;
    let waited = 0;
    for (let pause = polling.firstMs; container && UNDER_WAY.has(container.state); ) {
      tell(container.phase || 'creating');
      if (waited >= polling.limitMs) {
        throw new ActionableError(
          `The daemon is still creating ${name} after ${Math.round(waited / 60_000)} min (${phase}); mcp-server stopped waiting, and the container was not deleted. Call get_container for ${username} later to follow it; do not create it again.`,
        );
      }
      await client.wait(pause, signal);
      waited += pause;
      pause = Math.min(polling.maxMs, Math.round(pause * 1.5));
      container = await readCreating(username, ctx);
    }
    if (container?.state === 'CONTAINER_STATE_ERROR') throw createFailed(username, container);
    if (container === response.container) return response;
    return {
      container,
      message: container?.createMessage || `Container ${name} created successfully`,
      sshCommand: container?.sshCommand,
    };
  } catch (error) {
    if (!signal.aborted) throw error;
    const text = accepted
      ? `The call was cancelled while the daemon was still creating ${name}${phase ? ` (${phase})` : ''}: mcp-server stopped waiting, and the container was not deleted. Check it with get_container for ${username}, or delete it with delete_container.`
      : `The call was cancelled before the daemon answered the create of ${name}: it may or may not be creating it. Check with get_container for ${username} before trying again; delete it with delete_container if it is not wanted.`;
    // A cancelled request gets no answer: the log at least says what was left behind.
    log(text);
    throw new ActionableError(text);
  }
}

/** The container being created, as get shows it now; a failed read says the create goes on. */
async function readCreating(username: string, { client, signal }: ToolContext) {
  try {
    const { container } = await client.getContainer(username, { signal });
    return container;
  } catch (error) {
    if (signal.aborted) throw error;
    const why = error instanceof HTTPError ? daemonMessage(error.data) : String(error);
    throw new ActionableError(
      `The daemon accepted the create of ${containerName(username)}, but reading its progress failed (${why || 'no reason given'}). Call get_container for ${username} to follow it; do not create it again.`,
    );
  }
}

/** An async create that ended in ERROR: the daemon's reason, and how to try again. */
function createFailed(username: string, container: WireContainer) {
  const why = container.error
    ? `: ${container.error}`
    : ' (this daemon does not say why; its log does)';
  return new ActionableError(
    `The daemon could not create the container for ${username}${why}. ${container.name || containerName(username)} shows the ERROR state: delete it with delete_container, then correct the cause and create it again.`,
  );
}

const listContainers = defineTool({
  name: 'list_containers',
  title: 'List containers',
  description:
    'List containers with their user, state, limits, IP address and creation date, optionally only those in one state, a page at a time with limit and cursor.',
  effect: 'read',
  toolset: 'containers',
  resource: null,
  input: v.strictObject({
    state: v.optional(
      v.pipe(
        v.picklist(LIST_STATES, `must be one of ${LIST_STATES.join(', ')}`),
        v.description('Only containers in this state.'),
      ),
    ),
    limit: limit('At most this many containers; the answer says how to get the next page.'),
    cursor: v.optional(
      v.pipe(
        v.string(CURSOR_FORM),
        v.description("The previous answer's nextCursor, for the page after it."),
        v.check((c) => afterOf(c) !== undefined, CURSOR_FORM),
        v.transform((c) => afterOf(c) as string),
      ),
    ),
  }),
  output: v.object({
    containers: v.array(ContainerOut),
    totalCount: v.pipe(v.number(), v.description('Containers matching state, on every page')),
    nextCursor: v.nullable(v.pipe(v.string(), v.description('For the next page; null at the end'))),
  }),
  action: () => 'list containers',
  async handle(input, { client, signal }) {
    const response = await client.listContainers({ signal, state: input.state });
    // v0.3 daemons ignore the state filter, so it is applied here too.
    const all = (response.containers ?? [])
      .map(containerView)
      .filter((c) => !input.state || c.state === input.state)
      .sort(byName);
    const after = input.cursor;
    const rest = after === undefined ? all : all.filter((c) => c.name > after);
    const page = rest.slice(0, input.limit ?? rest.length);
    const which = input.state ? `${input.state} ` : '';
    if (page.length === 0) {
      const text =
        after === undefined
          ? `No ${which}containers found.`
          : `No more ${which}containers: this was the last page.`;
      return { text, structured: { containers: [], totalCount: all.length, nextCursor: null } };
    }
    const skipped = all.length - rest.length;
    const paged = page.length < all.length;
    const head = paged
      ? `${countText(page)}, ${skipped + 1}-${skipped + page.length} of ${all.length} ${which}containers:`
      : `${countText(page)}:`;
    const { header, rows } = listLines(page);
    const stateArg = input.state ? ` and state "${input.state}"` : '';
    const next = (shown: number) => {
      const last = page[shown - 1]?.name;
      return last === undefined ? (input.cursor ?? null) : cursorFor(last);
    };
    const more = (shown: number) => rest.length - shown;
    const { text, shown } = withinBudget(
      `${head}\n${header}`,
      rows,
      (left) =>
        `… ${more(page.length - left)} more not shown (the answer's size limit); call list_containers with cursor "${next(page.length - left)}"${stateArg} for the next ones, or give a smaller limit.`,
    );
    const remaining = more(shown);
    const nextCursor = remaining > 0 ? next(shown) : null;
    const footer =
      shown === page.length && nextCursor
        ? `\n${remaining} more; call list_containers with cursor "${nextCursor}"${stateArg} for the next page.`
        : '';
    return {
      text: text + footer,
      structured: { containers: page.slice(0, shown), totalCount: all.length, nextCursor },
    };
  },
});

const getContainer = defineTool({
  name: 'get_container',
  title: 'Get container',
  description:
    "Get everything about one user's container: state, limits, IP address, image, SSH keys, labels, dates, and current CPU, memory, disk and network usage when it is running.",
  effect: 'read',
  toolset: 'containers',
  resource: CONTAINER,
  input: v.strictObject({ username: username('User whose container to show, e.g. "alice".') }),
  output: v.object({ container: ContainerOut, metrics: v.nullable(MetricsOut) }),
  action: (input) => `get the container for ${input.username}`,
  async handle(input, ctx) {
    const { container, metrics, sshCommand } = await readContainer(input.username, ctx);
    const text =
      containerText(container, sshCommand) + (metrics ? `\nUsage: ${metricsLine(metrics)}` : '');
    return { text, structured: { container, metrics } };
  },
});

/** One container as it is now, with its usage while it runs. */
async function readContainer(username: string, { client, signal }: ToolContext) {
  // Older daemons never fill metrics in this response, so ask for them alongside.
  const [response, extra] = await Promise.all([
    client.getContainer(username, { signal }),
    client.getMetrics(username, { signal }).catch(() => undefined),
  ]);
  if (!response.container) throw new Error(`the daemon returned no container for ${username}`);
  const container = containerView(response.container);
  const raw = response.metrics ?? extra?.metrics?.[0] ?? null;
  const metrics = raw && container.state === 'running' ? metricsView(raw, container) : null;
  return { container, metrics, sshCommand: response.container.sshCommand };
}

/** What deleting would destroy, from a fresh read: the question the user confirms. */
async function deleteQuestion(username: string, ctx: ToolContext): Promise<Question> {
  const [{ container, metrics }, snapshots] = await Promise.all([
    readContainer(username, ctx),
    snapshotNames(username, ctx),
  ]);
  const disk = metrics
    ? `${formatBytes(metrics.diskBytes)} used${container.disk ? ` of ${limitText(container.disk)}` : ''}`
    : `not reported while ${container.state}${container.disk ? ` (limit ${limitText(container.disk)})` : ''}`;
  const message = [
    `Delete ${container.name} (user ${container.username || username}) and all its data, permanently?`,
    // The daemon reports no start time, so the uptime is not known; the creation date is.
    `State: ${container.state}; uptime not reported by the daemon; created ${container.createdAt ?? 'at an unknown time'}.`,
    `IP: ${container.ipAddress || 'none'}.`,
    `Disk: ${disk}.`,
    snapshots === undefined
      ? 'Snapshots: none known (the daemon does not report snapshots); any there are go with it.'
      : snapshots.length > 0
        ? `Snapshots: ${snapshots.length} (${snapshots.join(', ')}), deleted with it.`
        : 'Snapshots: none.',
    `To confirm, type the username "${username}".`,
  ].join('\n');
  return { message, typed: username, identity: `${container.name}@${container.createdAt ?? ''}` };
}

export const deleteContainer = defineTool({
  name: 'delete_container',
  title: 'Delete container',
  description:
    "Delete a user's container and all its data, permanently. A running container is only deleted with force=true (which stops it first); confirm with the user before deleting.",
  effect: 'destroy',
  toolset: 'containers',
  resource: CONTAINER,
  input: v.strictObject({
    username: username('User whose container to delete, e.g. "alice".'),
    force: force('Stop the container first if it is running.'),
  }),
  output: v.object({ username: v.string(), containerName: v.string(), message: v.string() }),
  action: (input) => `delete the container for ${input.username}`,
  confirm: {
    ask: (input, ctx) => deleteQuestion(input.username, ctx),
    untouched: (input, why) => ({
      username: input.username,
      containerName: containerName(input.username),
      message: why,
    }),
  },
  async handle(input, { client, signal, progress }) {
    progress(`deleting ${containerName(input.username)}`);
    const response = await client.deleteContainer(input.username, input.force, { signal });
    const name = response.containerName || containerName(input.username);
    return {
      text: `Deleted ${name} (user ${input.username}).`,
      structured: { username: input.username, containerName: name, message: response.message },
    };
  },
});

const StartStopOut = v.object({ container: v.nullable(ContainerOut), message: v.string() });

/**
 * Start or stop, reading the state first: a container already there is left alone and the
 * answer says so. When the read fails (or the state changed meanwhile), the daemon's refusal
 * ("The instance is already running") says the same.
 */
/** Answers to the read that the change would get too: bad token, not allowed, no container. */
const REFUSED = new Set([401, 403, 404, 429]);

async function startOrStop(
  username: string,
  target: 'running' | 'stopped',
  change: () => ReturnType<ContainariumClient['startContainer']>,
  { client, signal, progress }: ToolContext,
) {
  const read = await client
    .getContainer(username, { signal })
    .then((r) => r.container)
    .catch((error: unknown) => {
      // The change would be refused the same way: no second request with a token that failed.
      if (error instanceof HTTPError && REFUSED.has(error.response.status)) throw error;
      return null;
    });
  const before = read ? containerView(read) : null;
  const already = before?.state === target;
  if (!already)
    progress(`${target === 'running' ? 'starting' : 'stopping'} ${containerName(username)}`);
  const response = already
    ? undefined
    : await change().catch((error: unknown) => {
        const said = error instanceof HTTPError ? daemonMessage(error.data) : '';
        if (new RegExp(`already ${target}`, 'i').test(said)) return undefined;
        throw error;
      });
  const container = response?.container
    ? containerView(response.container)
    : already
      ? before
      : null;
  const verb = target === 'running' ? 'Started' : 'Stopped';
  const text = !response
    ? `The container for ${username} was already ${target}; nothing changed.`
    : `${verb} the container for ${username}${container ? `: ${container.state}${container.ipAddress && target === 'running' ? `, IP ${container.ipAddress}` : ''}` : ''}.`;
  const message = response?.message ?? `Container for user ${username} is already ${target}`;
  // The daemon's command, from the answer that gave the container, when it sent one.
  const fromDaemon = response ? response.container?.sshCommand : read?.sshCommand;
  const ssh =
    container &&
    target === 'running' &&
    sshLine(sshCommand(container, container.sshKeys.length, fromDaemon));
  return { text: ssh ? `${text}\n${ssh}` : text, structured: { container, message } };
}

const startContainer = defineTool({
  name: 'start_container',
  title: 'Start container',
  description:
    "Start a user's stopped container. Starting a running container changes nothing. Returns the new state.",
  effect: 'change',
  toolset: 'containers',
  resource: CONTAINER,
  input: v.strictObject({ username: username('User whose container to start, e.g. "alice".') }),
  output: StartStopOut,
  action: (input) => `start the container for ${input.username}`,
  handle: (input, ctx) =>
    startOrStop(
      input.username,
      'running',
      () => ctx.client.startContainer(input.username, { signal: ctx.signal }),
      ctx,
    ),
});

const stopContainer = defineTool({
  name: 'stop_container',
  title: 'Stop container',
  description:
    "Stop a user's running container, gracefully by default; force=true kills it at once. Stopping a stopped container changes nothing. Data on disk is kept.",
  effect: 'change',
  toolset: 'containers',
  resource: CONTAINER,
  input: v.strictObject({
    username: username('User whose container to stop, e.g. "alice".'),
    force: force('Kill the container instead of shutting it down gracefully.'),
  }),
  output: StartStopOut,
  action: (input) => `stop the container for ${input.username}`,
  handle: (input, ctx) =>
    startOrStop(
      input.username,
      'stopped',
      () => ctx.client.stopContainer(input.username, input.force, { signal: ctx.signal }),
      ctx,
    ),
});

export default [
  createContainer,
  listContainers,
  getContainer,
  deleteContainer,
  startContainer,
  stopContainer,
];
