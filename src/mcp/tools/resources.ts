// Resource tools: change a container's limits, and see how much of a user's quota its containers
// take. GET /v1/quotas/{username} is a route this project added (see the README), so its wire
// schema lives here; PUT .../resize is upstream HEAD's and lives in client.ts.
import * as v from 'valibot';
import { formatBytes } from '../../shared/sizes.ts';
import { containerName } from '../../shared/username.ts';
import { integer, text } from '../../shared/wire.ts';
import type { ResizeInput } from '../client.ts';
import { CONTAINER } from '../errors.ts';
import { ContainerOut, containerView } from '../format.ts';
import { cpuValue, defineTool, sizeValue, username } from './define.ts';

const LIMITS = ['cpu', 'memory', 'disk'] as const;

const ChangeOut = v.object({
  limit: v.picklist(LIMITS),
  from: v.pipe(v.string(), v.description('As the daemon reported it before; "" when unknown')),
  to: v.string(),
});

const resizeContainer = defineTool({
  name: 'resize_container',
  title: 'Resize container',
  description:
    "Change a container's CPU, memory or disk limits, live while it runs; give at least one. A disk cannot shrink below what it holds. Returns each limit old → new.",
  effect: 'change',
  toolset: 'resources',
  resource: CONTAINER,
  input: v.pipe(
    v.strictObject({
      username: username('User whose container to resize, e.g. "alice".'),
      cpu: v.optional(cpuValue(v.description('New number of CPU cores, e.g. "2".'))),
      memory: v.optional(sizeValue(v.description('New memory limit, e.g. "8GB".'))),
      disk: v.optional(sizeValue(v.description('New root disk size, e.g. "100GB".'))),
    }),
    v.check(
      (input) => LIMITS.some((limit) => input[limit] !== undefined),
      'give at least one of "cpu", "memory" or "disk" to change',
    ),
  ),
  output: v.object({
    username: v.string(),
    changes: v.array(ChangeOut),
    container: v.nullable(ContainerOut),
    message: v.string(),
  }),
  action: (input) => `resize the container for ${input.username}`,
  async handle(input, { client, signal }) {
    const before = await client.getContainer(input.username, { signal });
    const was = before.container ? containerView(before.container) : undefined;
    const change: ResizeInput = {};
    for (const limit of LIMITS) if (input[limit] !== undefined) change[limit] = input[limit];
    const response = await client.resizeContainer(input.username, change, { signal });
    const container = response.container ? containerView(response.container) : null;
    const changes = LIMITS.flatMap((limit) => {
      const asked = change[limit];
      if (asked === undefined) return [];
      return [{ limit, from: was?.[limit] ?? '', to: container?.[limit] || asked }];
    });
    const lines = changes.map(({ limit, from, to }) =>
      from === to ? `${limit} ${to} (unchanged)` : `${limit} ${from || '?'} → ${to}`,
    );
    const name = container?.name || containerName(input.username);
    return {
      text: `Resized ${name} (user ${input.username}): ${lines.join('; ')}.${container ? ` State: ${container.state}.` : ''}`,
      structured: { username: input.username, changes, container, message: response.message },
    };
  },
});

/** GET /v1/quotas/{username} as the daemon sends it (api/containarium.openapi.json), read leniently. */
export const GetQuotaResponseSchema = v.object({
  username: text,
  quota: v.object({
    containers: integer,
    cpus: integer,
    memory: text,
    memoryBytes: integer,
    disk: text,
    diskBytes: integer,
    /** Snapshots a container may have; daemons before the snapshot cap leave it out. */
    snapshots: v.optional(integer),
  }),
  used: v.object({ containers: integer, cpus: integer, memoryBytes: integer, diskBytes: integer }),
});

const Amount = v.object({ used: v.number(), quota: v.number() });

const getQuota = defineTool({
  name: 'get_quota',
  title: 'Get quota',
  description:
    "Show a user's quota (containers, CPUs, memory, disk, snapshots) against what its containers use. Default user: the token's own.",
  effect: 'read',
  toolset: 'resources',
  resource: null,
  input: v.strictObject({
    username: v.optional(username('User whose quota to show, e.g. "alice".')),
  }),
  output: v.object({
    username: v.string(),
    containers: Amount,
    cpus: Amount,
    memoryBytes: Amount,
    diskBytes: Amount,
    snapshotsPerContainer: v.optional(v.number()),
    note: v.string(),
  }),
  action: (input) => `get the quota${input.username ? ` of ${input.username}` : ''}`,
  async handle(input, { client, signal }) {
    const caller = client.caller();
    const name = input.username ?? (caller?.admin ? undefined : caller?.username);
    if (!name) {
      throw new Error(
        caller?.admin
          ? 'an admin token is held to no quota; give the username whose quota to show'
          : 'the API token names no user; give the username whose quota to show',
      );
    }
    const { quota, used } = await client.get(
      `v1/quotas/${encodeURIComponent(name)}`,
      GetQuotaResponseSchema,
      { signal, feature: 'quotas' },
    );
    const size = (bytes: number, spelled: string) =>
      spelled ? `${spelled} (${formatBytes(bytes)})` : formatBytes(bytes);
    const rows = [
      `containers ${used.containers} of ${quota.containers}`,
      `cpus ${used.cpus} of ${quota.cpus}`,
      `memory ${formatBytes(used.memoryBytes)} of ${size(quota.memoryBytes, quota.memory)}`,
      `disk ${formatBytes(used.diskBytes)} of ${size(quota.diskBytes, quota.disk)}`,
      ...(quota.snapshots === undefined
        ? []
        : [`at most ${quota.snapshots} snapshots per container`]),
    ];
    const note =
      'Use is the sum of the limits of the containers; creates and resizes by tokens without the admin role cannot go past the quota, admin tokens are not held to it.';
    return {
      text: `Quota of ${name}: ${rows.join('; ')}.\n${note}`,
      structured: {
        username: name,
        containers: { used: used.containers, quota: quota.containers },
        cpus: { used: used.cpus, quota: quota.cpus },
        memoryBytes: { used: used.memoryBytes, quota: quota.memoryBytes },
        diskBytes: { used: used.diskBytes, quota: quota.diskBytes },
        ...(quota.snapshots === undefined ? {} : { snapshotsPerContainer: quota.snapshots }),
        note,
      },
    };
  },
});

export default [resizeContainer, getQuota];
