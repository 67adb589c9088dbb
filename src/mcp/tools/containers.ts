// Container lifecycle tools: create, list, get, delete, start, stop.
import { HTTPError } from 'ky';
import * as v from 'valibot';
import { IMAGE, IMAGE_FORM } from '../../shared/image.ts';
import { formatBytes } from '../../shared/sizes.ts';
import { containerName, isSystemAccount } from '../../shared/username.ts';
import type { ContainariumClient } from '../client.ts';
import type { Question } from '../confirm.ts';
import { CONTAINER, daemonMessage } from '../errors.ts';
import {
  ContainerOut,
  containerText,
  containerView,
  limit,
  listText,
  MetricsOut,
  metricsLine,
  metricsView,
  resources,
  sshCommand,
  sshLine,
} from '../format.ts';
import {
  cpu,
  daemonDefault,
  defineTool,
  force,
  size,
  sshKeys,
  type ToolContext,
  username,
} from './define.ts';
import { checkTemplates } from './templates.ts';

export const createContainer = defineTool({
  name: 'create_container',
  title: 'Create container',
  description:
    "Create a new LXC container for a user, with CPU, memory and disk limits, SSH keys and an image, and start it. Each user has at most one container, named <username>-container. Creating can take minutes while packages install; if it times out, call get_container before trying again. Returns the container's state, limits and IP address, and the SSH command when ssh_keys were given (without a key there is no account to log in to).",
  effect: 'create',
  toolset: 'containers',
  resource: CONTAINER,
  input: v.strictObject({
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
  }),
  output: v.object({ container: ContainerOut, message: v.string(), sshCommand: v.string() }),
  action: (input) => `create the container for ${input.username}`,
  async handle(input, { client, signal }) {
    // A daemon without templates would ignore the name: it must have it before anything is made.
    if (input.template) await checkTemplates([input.template], client, signal);
    const response = await client.createContainer(
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
      { signal },
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
  },
});

const listContainers = defineTool({
  name: 'list_containers',
  title: 'List containers',
  description:
    'List every container with its user, state, CPU, memory and disk limits, IP address and creation date. Use it to find out which users have containers before acting on one.',
  effect: 'read',
  toolset: 'containers',
  resource: null,
  input: v.strictObject({}),
  output: v.object({ containers: v.array(ContainerOut), totalCount: v.number() }),
  action: () => 'list containers',
  async handle(_input, { client, signal }) {
    const response = await client.listContainers({ signal });
    const containers = (response.containers ?? []).map(containerView);
    // The array is the truth: some daemons leave totalCount at 0 (upstream #1214).
    return {
      text: listText(containers),
      structured: { containers, totalCount: containers.length },
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
  const { container, metrics } = await readContainer(username, ctx);
  const disk = metrics
    ? `${formatBytes(metrics.diskBytes)} used${container.disk ? ` of ${limit(container.disk)}` : ''}`
    : `not reported while ${container.state}${container.disk ? ` (limit ${limit(container.disk)})` : ''}`;
  const message = [
    `Delete ${container.name} (user ${container.username || username}) and all its data, permanently?`,
    // The daemon reports no start time, so the uptime is not known; the creation date is.
    `State: ${container.state}; uptime not reported by the daemon; created ${container.createdAt ?? 'at an unknown time'}.`,
    `IP: ${container.ipAddress || 'none'}.`,
    `Disk: ${disk}.`,
    'Snapshots: none known (the daemon does not report snapshots); any there are go with it.',
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
  async handle(input, { client, signal }) {
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
  { client, signal }: ToolContext,
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
