// What the daemon accepts from clients: valibot schemas for request bodies, path and query values.
// Like upstream's protojson: camelCase or snake_case names, int32 as number or string, unknown fields
// ignored. Unlike upstream: every value is checked here, so bad input is a 400 naming the field.
import * as v from 'valibot';
import { IMAGE_FORM, isValidImage } from '../shared/image.ts';
import { parseBool } from '../shared/parse-bool.ts';
import { CPU_FORM, parseCpu, parseSize, SIZE_FORM } from '../shared/sizes.ts';
import { isValidSnapshotName, SNAPSHOT_NAME_FORM } from '../shared/snapshot.ts';
import { MAX_SSH_KEYS, normalizeSshKey, SSH_KEY_FORM } from '../shared/ssh-key.ts';
import { isSystemAccount, isValidUsername, USERNAME_FORM } from '../shared/username.ts';
import { CONTAINER_STATES } from '../shared/wire.ts';
import type { CreateRequest, ListFilter, ResizeRequest } from './backend.ts';
import { DaemonError } from './errors.ts';
import type { Templates } from './templates.ts';
import { stateOf } from './to-wire.ts';

/** Upstream's defaults for fields left empty (CONTAINARIUM-API.md §7). */
export const DEFAULTS = {
  cpu: 4,
  memory: '4GB',
  disk: '50GB',
  image: 'images:ubuntu/24.04',
  enableDocker: false,
} as const;

const MAX_LABELS = 64;
const MAX_LABEL_VALUE = 256;
const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
const CONTROL = /[\u0000-\u001f\u007f]/;

// ---- Field schemas: each message says what was expected; describeIssue adds the field name. ----

const USERNAME_EXPECTED = `expected ${USERNAME_FORM}`;

const Username = v.pipe(
  v.string(USERNAME_EXPECTED),
  v.nonEmpty(USERNAME_EXPECTED),
  v.check(isValidUsername, USERNAME_EXPECTED),
);

const NewUsername = v.pipe(
  Username,
  v.check(
    (name) => !isSystemAccount(name),
    'expected a name that is not a system account of the image (like root, admin or ubuntu)',
  ),
);

export const Bool = v.boolean('expected true or false');

export const Int32 = v.pipe(
  v.union(
    [
      v.pipe(v.number(), v.integer()),
      v.pipe(v.string(), v.regex(/^-?\d{1,10}$/), v.transform(Number)),
    ],
    'expected a whole number',
  ),
  v.check((n) => Math.abs(n) <= 2 ** 31 - 1, 'expected a whole number that fits in 32 bits'),
);

// Waits longer than an hour are mistakes, and beyond ~24 days no timer can hold them at all.
const MAX_WAIT_SECONDS = 3600;
const SECONDS_EXPECTED = `expected a number of seconds from 0 to ${MAX_WAIT_SECONDS}`;
const Seconds = v.pipe(
  Int32,
  v.minValue(0, SECONDS_EXPECTED),
  v.maxValue(MAX_WAIT_SECONDS, SECONDS_EXPECTED),
);

export const Cpu = v.pipe(
  v.union([v.string(), v.number()], `expected ${CPU_FORM}`),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    // Empty is protojson's unset: the default, filled in with the others below.
    if (dataset.value === '') return undefined;
    const cores = parseCpu(dataset.value);
    if (cores === undefined) {
      addIssue({ message: `expected ${CPU_FORM}` });
      return NEVER;
    }
    return cores;
  }),
);

export const size = () =>
  v.pipe(
    v.string(`expected ${SIZE_FORM}`),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      if (dataset.value.trim() === '') return undefined;
      const parsed = parseSize(dataset.value);
      if (!parsed) {
        addIssue({ message: `expected ${SIZE_FORM}` });
        return NEVER;
      }
      return parsed.incus;
    }),
  );

const Resources = v.object(
  {
    cpu: v.nullish(Cpu),
    memory: v.nullish(size()),
    disk: v.nullish(size()),
  },
  'expected an object like {"cpu": "4", "memory": "4GB", "disk": "50GB"}',
);

const SshKey = v.pipe(
  v.string(`expected ${SSH_KEY_FORM}`),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const key = normalizeSshKey(dataset.value);
    if (key === undefined) {
      addIssue({ message: `expected ${SSH_KEY_FORM}` });
      return NEVER;
    }
    return key;
  }),
);

const SshKeys = v.pipe(
  v.array(SshKey, 'expected an array of OpenSSH public keys'),
  v.maxLength(MAX_SSH_KEYS, `expected at most ${MAX_SSH_KEYS} keys`),
);

export const Labels = v.pipe(
  v.record(
    v.string(),
    v.pipe(
      v.string('expected a string value'),
      v.maxLength(MAX_LABEL_VALUE, `expected a value of at most ${MAX_LABEL_VALUE} characters`),
      v.check((value) => !CONTROL.test(value), 'expected a value without control characters'),
    ),
    'expected an object of string labels, like {"team": "ml"}',
  ),
  v.check(
    (labels) => Object.keys(labels).length <= MAX_LABELS,
    `expected at most ${MAX_LABELS} labels`,
  ),
  v.check(
    (labels) => Object.keys(labels).every((key) => LABEL_KEY.test(key)),
    'expected label names of 1 to 63 letters, digits, ".", "_" or "-", starting with a letter or digit',
  ),
);

// Empty means the default image (protojson's unset string); anything else must be a valid name.
export const Image = v.pipe(
  v.string(`expected ${IMAGE_FORM}`),
  v.trim(),
  v.check((image) => image === '' || isValidImage(image), `expected ${IMAGE_FORM}`),
);

export const BODY = 'the request body must be a JSON object';

/** protojson takes either name; giving both is ambiguous, so it is refused like a duplicate field. */
export function either<T>(
  body: Record<string, unknown>,
  camel: string,
  snake: string,
  addIssue: (info: { message: string }) => void,
): T | undefined {
  const a = body[camel] ?? undefined;
  const b = body[snake] ?? undefined;
  if (a !== undefined && b !== undefined) {
    addIssue({ message: `give either ${camel} or ${snake}, not both` });
  }
  return (a ?? b) as T | undefined;
}

// ---- Bodies -----------------------------------------------------------------------------------

export type CreateInput = { request: CreateRequest; async: boolean };

/**
 * The create body; `template` names one of `templates`, whose values fill what the call leaves
 * out. Template values count as given: only what neither gives is `defaulted`.
 */
export const createBody = (templates: Templates) =>
  v.pipe(
    v.object(
      {
        username: v.optional(NewUsername),
        resources: v.nullish(Resources),
        sshKeys: v.nullish(SshKeys),
        ssh_keys: v.nullish(SshKeys),
        labels: v.nullish(Labels),
        image: v.nullish(Image),
        enableDocker: v.nullish(Bool),
        enable_docker: v.nullish(Bool),
        // HEAD's name for the same switch (Feb 2026): accepted so new clients work too.
        enablePodman: v.nullish(Bool),
        enable_podman: v.nullish(Bool),
        async: v.nullish(Bool),
        // This project's addition (README): a template name; "" is none, like protojson's unset.
        template: v.nullish(v.string('expected a template name')),
      },
      BODY,
    ),
    v.rawTransform(({ dataset, addIssue, NEVER }): CreateInput => {
      const body = dataset.value;
      if (body.username === undefined)
        addIssue({ message: `username is required: ${USERNAME_EXPECTED}` });
      const sshKeys = either<string[]>(body, 'sshKeys', 'ssh_keys', addIssue) ?? [];
      const docker = either<boolean>(body, 'enableDocker', 'enable_docker', addIssue);
      const podman = either<boolean>(body, 'enablePodman', 'enable_podman', addIssue);
      if (docker !== undefined && podman !== undefined && docker !== podman) {
        addIssue({ message: 'enableDocker and enablePodman disagree; give one of them' });
      }
      const template = body.template ? templates.get(body.template) : undefined;
      if (body.template && !template) {
        addIssue({
          message: `unknown template ${quote(body.template)}: expected one of ${[...templates.keys()].join(', ') || 'none (this daemon has no templates)'}`,
        });
      }
      if (dataset.issues || body.username === undefined) return NEVER;
      const given = body.resources ?? {};
      const cpu = given.cpu ?? template?.cpu;
      const memory = given.memory ?? template?.memory;
      const disk = given.disk ?? template?.disk;
      const image = body.image || template?.image;
      const defaulted = [
        ...(cpu === undefined ? (['cpu'] as const) : []),
        ...(memory === undefined ? (['memory'] as const) : []),
        ...(disk === undefined ? (['disk'] as const) : []),
        ...(image ? [] : (['image'] as const)),
      ];
      const packages = template?.packages ?? [];
      return {
        request: {
          username: body.username,
          cpu: cpu ?? DEFAULTS.cpu,
          memory: memory ?? DEFAULTS.memory,
          disk: disk ?? DEFAULTS.disk,
          sshKeys: [...new Set(sshKeys)],
          // The call's labels win over the template's of the same name.
          labels: { ...template?.labels, ...body.labels },
          image: image || DEFAULTS.image,
          enableDocker: docker ?? podman ?? template?.docker ?? DEFAULTS.enableDocker,
          ...(defaulted.length > 0 ? { defaulted } : {}),
          ...(packages.length > 0 ? { packages: [...packages] } : {}),
        },
        async: body.async ?? false,
      };
    }),
  );

export const StartBody = v.pipe(
  v.object(
    {
      waitForReady: v.nullish(Bool),
      wait_for_ready: v.nullish(Bool),
      readyTimeoutSeconds: v.nullish(Seconds),
      ready_timeout_seconds: v.nullish(Seconds),
    },
    BODY,
  ),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const body = dataset.value;
    const waitForReady = either<boolean>(body, 'waitForReady', 'wait_for_ready', addIssue);
    const timeout = either<number>(body, 'readyTimeoutSeconds', 'ready_timeout_seconds', addIssue);
    if (dataset.issues) return NEVER;
    return { waitForReady: waitForReady ?? false, readyTimeoutSeconds: timeout ?? 0 };
  }),
);

export const StopBody = v.pipe(
  v.object({ force: v.nullish(Bool), timeout: v.nullish(Seconds) }, BODY),
  v.transform((body): { force: boolean; timeout?: number } =>
    body.timeout
      ? { force: body.force ?? false, timeout: body.timeout }
      : { force: body.force ?? false },
  ),
);

export const SshKeyBody = v.pipe(
  v.object({ sshPublicKey: v.nullish(SshKey), ssh_public_key: v.nullish(SshKey) }, BODY),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const key = either<string>(dataset.value, 'sshPublicKey', 'ssh_public_key', addIssue);
    if (key === undefined) addIssue({ message: `sshPublicKey is required: ${SSH_KEY_FORM}` });
    if (dataset.issues || key === undefined) return NEVER;
    return key;
  }),
);

const RESIZE_FORM = `at least one of cpu (${CPU_FORM}), memory or disk (${SIZE_FORM})`;

/** PUT .../resize: the limits to change; empty strings are unset, as protojson reads them. */
export const ResizeBody = v.pipe(
  v.object({ cpu: v.nullish(Cpu), memory: v.nullish(size()), disk: v.nullish(size()) }, BODY),
  v.rawTransform(({ dataset, addIssue, NEVER }): ResizeRequest => {
    const { cpu, memory, disk } = dataset.value;
    const change: ResizeRequest = {
      ...(cpu == null ? {} : { cpu }),
      ...(memory == null ? {} : { memory }),
      ...(disk == null ? {} : { disk }),
    };
    if (Object.keys(change).length === 0) {
      addIssue({ message: `nothing to resize: give ${RESIZE_FORM}` });
      return NEVER;
    }
    return change;
  }),
);

const SnapshotName = v.pipe(
  v.string(`expected ${SNAPSHOT_NAME_FORM}`),
  v.check((name) => name === '' || isValidSnapshotName(name), `expected ${SNAPSHOT_NAME_FORM}`),
);

/** POST .../snapshots: the name, or undefined for one made from the time (protojson's unset ""). */
export const SnapshotBody = v.pipe(
  v.object({ name: v.nullish(SnapshotName) }, BODY),
  v.transform((body) => body.name || undefined),
);

/** POST .../snapshots/{name}/rollback. */
export const RollbackBody = v.pipe(
  v.object(
    { force: v.nullish(Bool), destroyNewer: v.nullish(Bool), destroy_newer: v.nullish(Bool) },
    BODY,
  ),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const destroyNewer = either<boolean>(dataset.value, 'destroyNewer', 'destroy_newer', addIssue);
    if (dataset.issues) return NEVER;
    return { force: dataset.value.force ?? false, destroyNewer: destroyNewer ?? false };
  }),
);

/** Parses a decoded JSON body, or throws a 400 that names the field and the expected form. */
export function parseBody<const S extends v.GenericSchema>(
  schema: S,
  body: unknown,
): v.InferOutput<S> {
  // valibot's object() takes arrays too; protojson does not.
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new DaemonError('invalid', BODY);
  }
  const result = v.safeParse(schema, body);
  if (result.success) return result.output;
  throw new DaemonError('invalid', describeIssue(result.issues[0]));
}

/** "invalid resources.memory: expected ...", "username is required: expected ...". */
export function describeIssue(issue: v.BaseIssue<unknown>): string {
  const path = (issue.path ?? [])
    .map((item) => item.key)
    .reduce<string>(
      (text, key) =>
        typeof key === 'number' ? `${text}[${key}]` : text ? `${text}.${String(key)}` : String(key),
      '',
    );
  if (!path) return issue.message;
  if (issue.input === undefined) return `${path} is required`;
  return `invalid ${path}: ${issue.message}`;
}

// ---- Path and query values --------------------------------------------------------------------

/** Shown back in messages, shortened so a hostile value cannot flood a log or a response. */
const quote = (text: string) => JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}…` : text);

/** A `{username}` path segment (still URL-encoded), checked before anything touches the backend. */
export function parseUsername(segment: string): string {
  let name: string;
  try {
    name = decodeURIComponent(segment);
  } catch {
    throw new DaemonError('invalid', `invalid username ${quote(segment)}: ${USERNAME_EXPECTED}`);
  }
  if (!isValidUsername(name)) {
    throw new DaemonError('invalid', `invalid username ${quote(name)}: ${USERNAME_EXPECTED}`);
  }
  return name;
}

/** The `{sshPublicKey}` path segment of DELETE .../ssh-keys/{sshPublicKey}. */
export function parseSshKeySegment(segment: string): string {
  let text: string;
  try {
    text = decodeURIComponent(segment);
  } catch {
    throw new DaemonError('invalid', `invalid sshPublicKey: expected ${SSH_KEY_FORM}, URL-encoded`);
  }
  const key = normalizeSshKey(text);
  if (key === undefined) {
    throw new DaemonError('invalid', `invalid sshPublicKey: expected ${SSH_KEY_FORM}, URL-encoded`);
  }
  return key;
}

/** A bool query parameter as grpc-gateway reads it (Go's strconv.ParseBool); absent or empty is false. */
export function parseBoolParam(query: URLSearchParams, name: string): boolean {
  const value = query.get(name);
  if (value === null || value === '') return false;
  const parsed = parseBool(value);
  if (parsed === undefined) {
    throw new DaemonError('invalid', `invalid ${name} ${quote(value)}: expected true or false`);
  }
  return parsed;
}

/** The `{name}` path segment of a snapshot route, still URL-encoded. */
export function parseSnapshotSegment(segment: string): string {
  let name: string;
  try {
    name = decodeURIComponent(segment);
  } catch {
    name = segment;
  }
  if (!isValidSnapshotName(name)) {
    throw new DaemonError('invalid', `invalid name ${quote(name)}: expected ${SNAPSHOT_NAME_FORM}`);
  }
  return name;
}

/** Optional `username` query parameter (list, metrics). */
export function parseUsernameParam(query: URLSearchParams): string | undefined {
  const value = query.get('username');
  if (value === null || value === '') return undefined;
  if (!isValidUsername(value)) {
    throw new DaemonError('invalid', `invalid username ${quote(value)}: ${USERNAME_EXPECTED}`);
  }
  return value;
}

/** GET /v1/containers filters: state (enum name or number), username, labelFilter[key]=value. */
export function parseListQuery(query: URLSearchParams): ListFilter {
  const filter: ListFilter = {};
  const username = parseUsernameParam(query);
  if (username !== undefined) filter.username = username;
  const state = query.get('state');
  if (state !== null && state !== '') {
    const byNumber = /^\d$/.test(state) ? CONTAINER_STATES[Number(state)] : undefined;
    const found = byNumber ?? CONTAINER_STATES.find((name) => name === state);
    if (!found) {
      throw new DaemonError(
        'invalid',
        `invalid state ${quote(state)}: expected one of ${CONTAINER_STATES.join(', ')}`,
      );
    }
    if (found !== 'CONTAINER_STATE_UNSPECIFIED') filter.state = stateOf(found);
  }
  const labels: Record<string, string> = {};
  for (const [name, value] of query) {
    const match = /^(?:labelFilter|label_filter)\[(.+)\]$/.exec(name);
    if (!match) continue;
    const key = match[1] ?? '';
    if (!LABEL_KEY.test(key)) {
      throw new DaemonError('invalid', `invalid label filter ${quote(key)}: expected a label name`);
    }
    labels[key] = value;
  }
  if (Object.keys(labels).length > 0) filter.labels = labels;
  return filter;
}
