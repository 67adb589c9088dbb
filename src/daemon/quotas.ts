import * as v from 'valibot';
import { formatBytes, parseCpu, parseSize, SIZE_FORM } from '../shared/sizes.ts';
import { isValidUsername, USERNAME_FORM } from '../shared/username.ts';
import type { Container, CreateRequest, ResizeRequest } from './backend.ts';
import { DaemonError } from './errors.ts';
import type { Context } from './router.ts';

/**
 * One user's quota; sizes as the quota file spells them ("16GB"). `snapshots` is how many each
 * of the user's containers may keep.
 */
export type Quota = {
  containers: number;
  cpus: number;
  memory: string;
  disk: string;
  snapshots: number;
};

/** The quota of every user without an entry, and the entries. */
export type QuotaTable = { default: Quota; users: Record<string, Quota> };

/** What a user has, or asks for more: counts and bytes. */
export type Use = { containers: number; cpus: number; memoryBytes: number; diskBytes: number };

/** The quota when no --quota-file is given, and what a file's `default` leaves out. */
export const DEFAULT_QUOTA: Quota = {
  containers: 3,
  cpus: 8,
  memory: '16GB',
  disk: '100GB',
  snapshots: 10,
};

export const DEFAULT_QUOTAS: QuotaTable = { default: DEFAULT_QUOTA, users: {} };

const WHOLE = 'expected a whole number of at least 0, like 3';
const Whole = v.pipe(
  v.number(WHOLE),
  v.integer(WHOLE),
  v.minValue(0, WHOLE),
  v.maxValue(1_000_000, WHOLE),
);
const Size = v.pipe(
  v.string(`expected ${SIZE_FORM}`),
  v.check((s) => parseSize(s) !== undefined, `expected ${SIZE_FORM}`),
  v.transform((s) => parseSize(s)!.incus),
);
const Entry = v.strictObject(
  {
    containers: v.optional(Whole),
    cpus: v.optional(Whole),
    memory: v.optional(Size),
    disk: v.optional(Size),
    snapshots: v.optional(Whole),
  },
  'expected an object with some of containers, cpus, memory, disk and snapshots, like {"cpus": 8, "memory": "16GB"}',
);
const UNLISTABLE = ['constructor', 'prototype'];
const QuotaFile = v.strictObject(
  {
    default: v.optional(Entry),
    users: v.optional(
      v.pipe(
        v.custom<Record<string, unknown>>(
          (users) => typeof users === 'object' && users !== null && !Array.isArray(users),
          'expected an object of usernames to quotas',
        ),
        // valibot's records leave these keys out, so an entry for them would silently not apply.
        v.check(
          (users) => !Object.keys(users).some((name) => UNLISTABLE.includes(name)),
          `expected usernames other than ${UNLISTABLE.join(' and ')} (those users get the default quota)`,
        ),
        v.record(v.string(), Entry, 'expected an object of usernames to quotas'),
        v.check(
          (users) => Object.keys(users).every(isValidUsername),
          `expected usernames of ${USERNAME_FORM}`,
        ),
      ),
    ),
  },
  'expected an object with "default" and "users"',
);

/** Reads a quota file (YAML, or JSON, which is YAML too); throws naming the field at fault. */
export function parseQuotaFile(text: string): QuotaTable {
  let data: unknown;
  try {
    data = Bun.YAML.parse(text);
  } catch (error) {
    throw new Error(`is neither JSON nor YAML (${(error as Error).message})`);
  }
  const parsed = v.safeParse(QuotaFile, data ?? {});
  if (!parsed.success) {
    const issue = parsed.issues[0];
    const path = (issue.path ?? []).map((p) => String(p.key)).join('.');
    throw new Error(`${path ? `has an invalid ${path}: ` : ''}${issue.message}`);
  }
  const fallback = over(DEFAULT_QUOTA, parsed.output.default);
  const users = Object.fromEntries(
    Object.entries(parsed.output.users ?? {}).map(([name, entry]) => [name, over(fallback, entry)]),
  );
  return { default: fallback, users };
}

/** `base` with what `entry` sets. */
function over(base: Quota, entry: Partial<Record<keyof Quota, number | string | undefined>> = {}) {
  const quota = { ...base };
  if (typeof entry.containers === 'number') quota.containers = entry.containers;
  if (typeof entry.cpus === 'number') quota.cpus = entry.cpus;
  if (typeof entry.memory === 'string') quota.memory = entry.memory;
  if (typeof entry.disk === 'string') quota.disk = entry.disk;
  if (typeof entry.snapshots === 'number') quota.snapshots = entry.snapshots;
  return quota;
}

/** The user's own entry, else the default; a name like "constructor" is never read off Object. */
export const quotaOf = (table: QuotaTable, username: string): Quota =>
  Object.hasOwn(table.users, username) ? (table.users[username] ?? table.default) : table.default;

const bytes = (size: string) => parseSize(size)?.bytes ?? 0;

/** The sum of the limits of these containers; a limit that is not a number counts 0. */
export function useOf(containers: readonly Container[]): Use {
  const use: Use = { containers: 0, cpus: 0, memoryBytes: 0, diskBytes: 0 };
  for (const container of containers) {
    use.containers += 1;
    use.cpus += parseCpu(container.resources?.cpu ?? '') ?? 0;
    use.memoryBytes += bytes(container.resources?.memory ?? '');
    use.diskBytes += bytes(container.resources?.disk ?? '');
  }
  return use;
}

/** What a create adds to the user's use: one container and its limits. */
export const createAsks = (request: CreateRequest): Use => ({
  containers: 1,
  cpus: request.cpu,
  memoryBytes: bytes(request.memory),
  diskBytes: bytes(request.disk),
});

/** What a resize adds to the user's use: only the limits it raises (a lower one is always fine). */
export function resizeAsks(container: Container, change: ResizeRequest): Use {
  const now = useOf([container]);
  const more = (next: number | undefined, was: number) =>
    next === undefined ? 0 : Math.max(0, next - was);
  return {
    containers: 0,
    cpus: more(change.cpu, now.cpus),
    memoryBytes: more(
      change.memory === undefined ? undefined : bytes(change.memory),
      now.memoryBytes,
    ),
    diskBytes: more(change.disk === undefined ? undefined : bytes(change.disk), now.diskBytes),
  };
}

/**
 * 403 when `asked` on top of `use` goes past the quota, naming each quantity with its use:
 * "quota exceeded for alice: memory 14.9 GiB used + 3.7 GiB asked > 14.9 GiB quota (16GB)";
 * sizes all in the same binary units, the quota also as the quota file spells it.
 */
export function enforceQuota(username: string, quota: Quota, use: Use, asked: Use): void {
  const over: string[] = [];
  const check = (
    what: string,
    used: number,
    more: number,
    most: number,
    show: (n: number) => string,
    spelled?: string,
  ) => {
    if (more > 0 && used + more > most) {
      const as =
        spelled === undefined || spelled.replace(/\s/g, '') === show(most).replace(/\s/g, '')
          ? ''
          : ` (${spelled})`;
      over.push(`${what} ${show(used)} used + ${show(more)} asked > ${show(most)} quota${as}`);
    }
  };
  const count = (n: number) => String(n);
  check('containers', use.containers, asked.containers, quota.containers, count);
  check('cpus', use.cpus, asked.cpus, quota.cpus, count);
  check(
    'memory',
    use.memoryBytes,
    asked.memoryBytes,
    bytes(quota.memory),
    formatBytes,
    quota.memory,
  );
  check('disk', use.diskBytes, asked.diskBytes, bytes(quota.disk), formatBytes, quota.disk);
  if (over.length > 0) {
    throw new DaemonError(
      'forbidden',
      `quota exceeded for ${username}: ${over.join('; ')}; ask for less, or ask an administrator to raise the quota`,
    );
  }
}

/**
 * For a caller without the admin role: reads the user's containers and throws 403 when what
 * `asks` adds to them goes past the user's quota (undefined asks nothing). Admins pass at once.
 */
export async function guardQuota(
  c: Pick<Context, 'principal' | 'backend' | 'quotas'>,
  username: string,
  asks: (mine: Container[]) => Use | undefined,
): Promise<void> {
  if (c.principal.admin) return;
  const mine = await c.backend.list({ username });
  const asked = asks(mine);
  if (asked) enforceQuota(username, quotaOf(c.quotas, username), useOf(mine), asked);
}

/**
 * For a caller without the admin role: 403 when the user's container already keeps as many
 * snapshots as the quota allows each container. Admins pass at once.
 */
export async function guardSnapshotQuota(
  c: Pick<Context, 'principal' | 'backend' | 'quotas'>,
  username: string,
): Promise<void> {
  if (c.principal.admin) return;
  const most = quotaOf(c.quotas, username).snapshots;
  const kept = (await c.backend.listSnapshots(username)).length;
  if (kept >= most) {
    throw new DaemonError(
      'forbidden',
      `quota exceeded for ${username}: snapshots ${kept} kept + 1 asked > ${most} quota per container; delete a snapshot first, or ask an administrator to raise the quota`,
    );
  }
}
