// A fake Containarium daemon for fast tests: the 11 v0.3 routes in the exact wire format of a v0.3
// or a HEAD daemon (CONTAINARIUM-API.md §1, §3, §7), with recorded requests and injected failures.
//
// Where the contract names a behaviour the fake reproduces it exactly (shapes, int64 strings, enum
// names, error bodies, 401 texts). Where the contract is silent (the wording of most error
// descriptions), the fake picks one plausible text: tests must match on status and gRPC code,
// not on those descriptions.
import { normalizeSshKey } from '../../src/shared/ssh-key.ts';
import { containerName, usernameOf } from '../../src/shared/username.ts';
import type { ContainerState } from '../../src/shared/wire.ts';

export type Generation = 'v0.3' | 'head';

export type RouteKey =
  | 'createContainer'
  | 'listContainers'
  | 'getContainer'
  | 'deleteContainer'
  | 'startContainer'
  | 'stopContainer'
  | 'addSshKey'
  | 'removeSshKey'
  | 'getMetrics'
  | 'getSystemInfo'
  | 'health';

/** An int64 held by the fake; rendered as a decimal string. */
export type Int = number | bigint;

export type FakeMetrics = {
  cpuUsageSeconds: Int;
  memoryUsageBytes: Int;
  memoryPeakBytes: Int;
  diskUsageBytes: Int;
  networkRxBytes: Int;
  networkTxBytes: Int;
  processCount: number;
  /** This project's daemon only: CPU % of one core over the last second; upstream sends none. */
  cpuUsagePercent?: number;
};

/** What the fake knows about one instance; each generation renders what its daemon would. */
export type FakeContainer = {
  name: string;
  username: string;
  state: ContainerState | 'CONTAINER_STATE_PROVISIONING';
  cpu: string;
  memory: string;
  disk: string;
  gpu: string;
  sshKeys: string[];
  labels: Record<string, string>;
  image: string;
  /** Only shown while the instance runs (or is frozen), as Incus only reports an address then. */
  ipAddress: string;
  macAddress: string;
  interface: string;
  bridge: string;
  createdAt: Int;
  updatedAt: Int;
  /** HEAD's flag; v0.3 always reports `dockerEnabled: true` whatever was asked. */
  podmanEnabled: boolean;
  backendId: string;
  osType: string;
  accessType: string;
  stack: string;
  gpuDevice: string;
  rdpAddress: string;
  metrics: FakeMetrics;
  /** Set while an async create is tracked: GET shows CREATING, then ERROR if it failed. */
  pending?: 'creating' | 'error' | undefined;
  /** With `asyncPhases`: the phases this create has still to show, one per GET. */
  phases?: string[] | undefined;
  /** With `asyncPhases`: the phase the last GET showed. */
  phase?: string | undefined;
};

/** A container to start with: `username` or `name` (e.g. a non-Containarium "ws2022"), the rest defaulted. */
export type SeedContainer = Partial<Omit<FakeContainer, 'metrics'>> & {
  metrics?: Partial<FakeMetrics>;
} & ({ username: string } | { name: string });

export type RecordedRequest = {
  method: string;
  /** The raw, still percent-encoded path, so tests can assert how usernames and keys were encoded. */
  path: string;
  query: Record<string, string>;
  /** Lower-cased names. Holds `authorization` so tests can assert Bearer usage: never print it. */
  headers: Record<string, string>;
  rawBody: string;
  /** Parsed JSON body; the raw text when it is not JSON; undefined when empty. */
  body: unknown;
  route: RouteKey | undefined;
  /** Status sent; undefined while in flight or when the client went away first. */
  status: number | undefined;
  /** The client aborted before the response was sent. */
  aborted: boolean;
};

export type InjectedFailure =
  | {
      status: number;
      body?: string | object;
      contentType?: string;
      headers?: Record<string, string>;
    }
  /** Never answer; ends when the client aborts or the fake stops. */
  | { hang: true }
  /** Reset the connection without a response. */
  | { close: true };

export type FakeDaemonOptions = {
  generation: Generation;
  /** The one accepted bearer token (change it later through `state.token`). */
  token: string;
  /** A token the fake treats as expired (v0.3 says so in its 401; HEAD stays generic). */
  expiredToken?: string;
  latencyMs?: number;
  containers?: SeedContainer[];
  /** v0.3 before f32bc6be (Mar 2026): start/stop answered 500 "not implemented yet". */
  v03StartStopUnimplemented?: boolean;
  /** v0.3 never implemented the SSH-key routes; set to serve them anyway. */
  v03SshKeysImplemented?: boolean;
  /** How long an async create stays CREATING (default 50 ms). */
  asyncCreateMs?: number;
  /** Async creates end in ERROR instead of RUNNING. */
  asyncCreateFails?: boolean;
  /**
   * Like this project's daemon: a creating container's GET shows the next of these as `phase`
   * (and `error`, the failure's reason, once it failed); the create ends at the GET after the
   * last one, instead of after asyncCreateMs.
   */
  asyncPhases?: string[];
  /** With asyncPhases: the `error` an async create that fails shows. */
  asyncCreateError?: string;
  /** HEAD: acting on these usernames is 403 PermissionDenied (another tenant's containers). */
  forbiddenUsernames?: string[];
  /** HEAD: whether the token holds the admin role (system info is admin-only). Default true. */
  admin?: boolean;
  /** HEAD: failed authentications before every request gets 429. Default: unlimited. */
  authFailureLimit?: number;
  /** HEAD: fill `metrics` in GET /v1/containers/{username} (the contract says HEAD still sends null). */
  headGetMetrics?: boolean;
  systemInfo?: Partial<{
    hostname: string;
    os: string;
    kernelVersion: string;
    incusVersion: string;
    daemonVersion: string;
  }>;
  /** Unix seconds for createdAt/updatedAt. */
  now?: () => number;
};

export type FakeState = {
  /** Keyed by instance name, in insertion order. */
  containers: Map<string, FakeContainer>;
  /** The container the daemon finds for `username` (instance `<username>-container`). */
  container(username: string): FakeContainer | undefined;
  add(seed: SeedContainer): FakeContainer;
  /** The accepted bearer token; assign to simulate rotation. */
  token: string;
  authFailures: number;
};

export type FakeDaemon = {
  url: string;
  port: number;
  generation: Generation;
  requests: RecordedRequest[];
  state: FakeState;
  /** Most requests it was answering at the same time. */
  readonly peakInFlight: number;
  setLatency(ms: number): void;
  /** Injects a failure for the next `times` requests to `route` ('*' for any route). */
  fail(route: RouteKey | '*', failure: InjectedFailure, times?: number): void;
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
};

/**
 * What both generations apply to a create whose fields are empty or missing (CONTAINARIUM-API.md
 * §7): a client that leaves them out gets exactly these.
 */
const DEFAULTS = { cpu: '4', memory: '4GB', disk: '50GB', image: 'images:ubuntu/24.04' };
const ONLINE = new Set(['CONTAINER_STATE_RUNNING', 'CONTAINER_STATE_FROZEN']);

// ---- Wire writers ----------------------------------------------------------------------------

/** A gRPC-status failure as grpc-gateway reports it. */
class RpcError {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly desc: string,
  ) {}
}
const unknown = (desc: string) => new RpcError(500, 'Unknown', desc);
const invalidArgument = (desc: string) => new RpcError(400, 'InvalidArgument', desc);

/** Go's encoding/json: HTML-safe escapes, trailing newline. */
function goJson(value: unknown): string {
  return `${JSON.stringify(value)
    .replaceAll('<', '\\u003c')
    .replaceAll('>', '\\u003e')
    .replaceAll('&', '\\u0026')
    .replaceAll('\u2028', '\\u2028')
    .replaceAll('\u2029', '\\u2029')}\n`;
}

const json = (body: unknown, status = 200) =>
  new Response(status === 200 ? JSON.stringify(body) : goJson(body), {
    status,
    headers: { 'content-type': 'application/json' },
  });

/** The custom error handler: `{"code":N,"error":"rpc error: ..."}`, keys sorted by Go's encoder. */
const rpcResponse = (e: RpcError) =>
  json({ code: e.status, error: `rpc error: code = ${e.code} desc = ${e.desc}` }, e.status);

/** Go's http.Error with the middleware's hand-formatted JSON-looking text (§3.2). */
const httpError = (message: string, code: number) =>
  new Response(`{"error": "${message}", "code": ${code}}\n`, {
    status: code,
    headers: { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' },
  });

// ---- Request bodies, as protojson reads them ---------------------------------------------------

type Kind = 'string' | 'bool' | 'int' | 'strings' | 'map' | 'any' | Spec;
type Spec = { [camelName: string]: Kind };

const RESOURCES: Spec = { cpu: 'string', memory: 'string', disk: 'string' };
const BODIES: Record<Generation, Partial<Record<RouteKey, Spec>>> = {
  'v0.3': {
    createContainer: {
      username: 'string',
      resources: RESOURCES,
      sshKeys: 'strings',
      labels: 'map',
      image: 'string',
      enableDocker: 'bool',
      async: 'bool',
    },
    startContainer: { username: 'string' },
    stopContainer: { username: 'string', force: 'bool', timeout: 'int' },
    addSshKey: { username: 'string', sshPublicKey: 'string' },
  },
  head: {
    createContainer: {
      username: 'string',
      resources: { ...RESOURCES, gpu: 'string', gpus: 'any', storageClass: 'string' },
      sshKeys: 'strings',
      labels: 'map',
      image: 'string',
      enablePodman: 'bool',
      async: 'bool',
      gpu: 'string',
      gpus: 'any',
      osType: 'any',
      stack: 'string',
      stackParameters: 'any',
      staticIp: 'string',
      backendId: 'string',
      pool: 'string',
      monitoring: 'any',
      ttlSeconds: 'int',
      idleStopMinutes: 'int',
      deleteAfterStoppedSeconds: 'int',
      encrypted: 'bool',
      tenantId: 'string',
    },
    startContainer: { username: 'string', waitForReady: 'bool', readyTimeoutSeconds: 'int' },
    stopContainer: { username: 'string', force: 'bool', timeout: 'int' },
    addSshKey: { username: 'string', sshPublicKey: 'string' },
  },
};

const snake = (camel: string) => camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** protojson's "(line L:C)" for the key (or, with `value`, the value) named `key` in `raw`. */
function where(raw: string, key: string, value = false): string {
  const match = new RegExp(`"${key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"\\s*:\\s*`).exec(raw);
  const at = match ? match.index + (value ? match[0].length : 0) : 0;
  const before = raw.slice(0, at);
  const line = before.split('\n').length;
  return `line ${line}:${at - before.lastIndexOf('\n')}`;
}

function fits(kind: Kind, value: unknown): boolean {
  if (kind === 'any') return true;
  if (kind === 'string') return typeof value === 'string';
  if (kind === 'bool') return typeof value === 'boolean';
  // protojson takes integers as numbers or decimal strings.
  if (kind === 'int') {
    return Number.isInteger(value) || (typeof value === 'string' && /^-?\d+$/.test(value));
  }
  if (kind === 'strings') return Array.isArray(value) && value.every((s) => typeof s === 'string');
  const isObject = typeof value === 'object' && value !== null && !Array.isArray(value);
  if (kind === 'map') return isObject && Object.values(value).every((s) => typeof s === 'string');
  return isObject;
}

/**
 * Reads a body like protojson: camelCase or snake_case names, null as unset, wrong types → 400;
 * unknown names are discarded by v0.3 and rejected by HEAD (since 16bc4cf7).
 */
function decodeMessage(
  value: unknown,
  spec: Spec,
  generation: Generation,
  raw: string,
): Record<string, unknown> | RpcError {
  const out: Record<string, unknown> = {};
  if (value === null) return out;
  for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
    const name = Object.keys(spec).find((camel) => camel === key || snake(camel) === key);
    const kind = name === undefined ? undefined : spec[name];
    if (name === undefined || kind === undefined) {
      // protobuf-go prints "proto: " with a space or a no-break space, chosen per build.
      if (generation === 'head') {
        return invalidArgument(`proto: (${where(raw, key)}): unknown field "${key}"`);
      }
      continue;
    }
    if (item === null) continue;
    if (!fits(kind, item)) {
      const type = typeof kind === 'object' ? 'message' : kind === 'int' ? 'int64' : kind;
      return invalidArgument(
        `proto: (${where(raw, key, true)}): invalid value for ${type} field ${name}: ${JSON.stringify(item)}`,
      );
    }
    if (typeof kind === 'object') {
      const nested = decodeMessage(item, kind, generation, raw);
      if (nested instanceof RpcError) return nested;
      out[name] = nested;
    } else {
      out[name] = kind === 'int' ? Number(item) : item;
    }
  }
  return out;
}

function decodeBody(
  raw: string,
  spec: Spec,
  generation: Generation,
): Record<string, unknown> | RpcError {
  // grpc-gateway tolerates an empty body (EOF) on body:"*" routes.
  if (raw.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return invalidArgument(
      `proto: syntax error (line 1:1): invalid value ${raw.trim().slice(0, 16)}`,
    );
  }
  if (value !== null && (typeof value !== 'object' || Array.isArray(value))) {
    return invalidArgument(`proto: (line 1:1): unexpected token ${JSON.stringify(value)}`);
  }
  return decodeMessage(value, spec, generation, raw);
}

/** Go's strconv.ParseBool, which grpc-gateway uses for bool query parameters. */
function parseBool(text: string): boolean | RpcError {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return false;
  return invalidArgument(`strconv.ParseBool: parsing ${JSON.stringify(text)}: invalid syntax`);
}

// ---- Routing ----------------------------------------------------------------------------------

type Match = { route: RouteKey; params: string[] } | { status: 404 | 405 };

function matchRoute(method: string, path: string): Match {
  const parts = path.split('/').slice(1);
  const decode = (s: string | undefined) => decodeURIComponent(s ?? '');
  const allow = (methods: Record<string, RouteKey>, ...params: string[]): Match => {
    const hit = methods[method];
    return hit ? { route: hit, params } : { status: 405 };
  };
  const [v1, group, user, action, key, extra] = parts;
  if (v1 !== 'v1' || extra !== undefined) return { status: 404 };
  try {
    if (group === 'containers') {
      if (user === undefined) {
        return allow({ GET: 'listContainers', POST: 'createContainer' });
      }
      const username = decode(user);
      if (action === undefined) {
        return allow({ GET: 'getContainer', DELETE: 'deleteContainer' }, username);
      }
      if (key === undefined && action === 'start') {
        return allow({ POST: 'startContainer' }, username);
      }
      if (key === undefined && action === 'stop') {
        return allow({ POST: 'stopContainer' }, username);
      }
      if (action === 'ssh-keys') {
        return key === undefined
          ? allow({ POST: 'addSshKey' }, username)
          : allow({ DELETE: 'removeSshKey' }, username, decode(key));
      }
    }
    if (group === 'metrics' && action === undefined) {
      return user === undefined
        ? allow({ GET: 'getMetrics' })
        : allow({ GET: 'getMetrics' }, decode(user));
    }
    if (group === 'system' && user === 'info' && action === undefined) {
      return allow({ GET: 'getSystemInfo' });
    }
  } catch {
    // A malformed percent-escape matches no route.
  }
  return { status: 404 };
}

// ---- The daemon -------------------------------------------------------------------------------

export function startFakeDaemon(options: FakeDaemonOptions): FakeDaemon {
  const { generation } = options;
  const head = generation === 'head';
  const now = options.now ?? (() => Math.floor(Date.now() / 1000));
  let latencyMs = options.latencyMs ?? 0;
  let nextHost = 15;
  const requests: RecordedRequest[] = [];
  const failures: { route: RouteKey | '*'; failure: InjectedFailure; times: number }[] = [];
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const hanging = new Set<() => void>();

  const nextIp = () => `10.0.3.${nextHost++}`;
  const macFor = (n: number) => `00:16:3e:00:00:${(n % 256).toString(16).padStart(2, '0')}`;

  const state: FakeState = {
    containers: new Map(),
    container: (username) => state.containers.get(containerName(username)),
    add(seed) {
      const name = seed.name ?? containerName(seed.username ?? '');
      const image = seed.image ?? DEFAULTS.image;
      const record: FakeContainer = {
        state: 'CONTAINER_STATE_RUNNING',
        cpu: DEFAULTS.cpu,
        memory: DEFAULTS.memory,
        disk: DEFAULTS.disk,
        gpu: '',
        sshKeys: [],
        labels: {},
        ipAddress: seed.ipAddress ?? nextIp(),
        macAddress: macFor(nextHost),
        interface: 'eth0',
        bridge: 'incusbr0',
        createdAt: 1736930000,
        updatedAt: 0,
        podmanEnabled: true,
        backendId: 'local',
        osType: image.includes('ubuntu/24.04') ? 'OS_TYPE_UBUNTU_2404' : 'OS_TYPE_UNSPECIFIED',
        accessType: 'ACCESS_TYPE_SSH',
        stack: '',
        gpuDevice: '',
        rdpAddress: '',
        ...seed,
        metrics: {
          cpuUsageSeconds: 12,
          memoryUsageBytes: 536870912,
          memoryPeakBytes: 1073741824,
          diskUsageBytes: 5368709120,
          networkRxBytes: 104857600,
          networkTxBytes: 52428800,
          processCount: 42,
          ...seed.metrics,
        },
        name,
        username: seed.username ?? usernameOf(name),
        image,
      };
      state.containers.set(name, record);
      return record;
    },
    token: options.token,
    authFailures: 0,
  };
  for (const seed of options.containers ?? []) state.add(seed);

  // ---- Rendering, per generation (§1.3 and fixtures-head/) ----

  function renderContainer(c: FakeContainer, view: 'full' | 'list' = 'full') {
    const online = ONLINE.has(c.state) && c.ipAddress !== '';
    if (c.pending) {
      // The async tracker's placeholder: name, username, state and the effective resources only.
      const common = {
        name: c.name,
        username: c.username,
        state: c.pending === 'error' ? 'CONTAINER_STATE_ERROR' : 'CONTAINER_STATE_CREATING',
        resources: { cpu: c.cpu, memory: c.memory, disk: c.disk, ...(head ? { gpu: '' } : {}) },
        sshKeys: [],
        network: null,
        createdAt: '0',
        updatedAt: '0',
        labels: {},
        image: '',
      };
      return head
        ? {
            ...common,
            podmanEnabled: false,
            stack: '',
            gpuDevice: '',
            backendId: '',
            osType: 'OS_TYPE_UNSPECIFIED',
            accessType: 'ACCESS_TYPE_UNSPECIFIED',
            rdpAddress: '',
            ...ownFields(c),
          }
        : { ...common, dockerEnabled: false, ...ownFields(c) };
    }
    if (!head) {
      // v0.3 fills only name, username, state, cpu, memory, ip and createdAt; disk is read
      // from Incus but never copied, and dockerEnabled is hard-coded.
      return {
        name: c.name,
        username: c.username,
        state: c.state,
        resources: { cpu: c.cpu, memory: c.memory, disk: '' },
        sshKeys: [],
        network: online
          ? { ipAddress: c.ipAddress, macAddress: '', interface: '', bridge: '' }
          : null,
        createdAt: String(c.createdAt),
        updatedAt: '0',
        labels: {},
        image: '',
        dockerEnabled: true,
      };
    }
    // HEAD's list leaves keys, image and link details empty, as its wire fixtures show.
    const light = view === 'list';
    return {
      name: c.name,
      username: c.username,
      state: c.state,
      resources: { cpu: c.cpu, memory: c.memory, disk: c.disk, gpu: c.gpu },
      sshKeys: light ? [] : [...c.sshKeys],
      network: {
        ipAddress: online ? c.ipAddress : '',
        macAddress: light ? '' : c.macAddress,
        interface: light ? '' : c.interface,
        bridge: light ? '' : c.bridge,
      },
      createdAt: String(c.createdAt),
      updatedAt: String(c.updatedAt),
      labels: { ...c.labels },
      image: light ? '' : c.image,
      podmanEnabled: c.podmanEnabled,
      stack: c.stack,
      gpuDevice: c.gpuDevice,
      backendId: c.backendId,
      osType: c.osType,
      accessType: c.accessType,
      rdpAddress: c.rdpAddress,
    };
  }

  /** The fields this project's daemon adds to a creating container, when the fake plays it. */
  function ownFields(c: FakeContainer) {
    if (!options.asyncPhases) return {};
    const failed = c.pending === 'error';
    return {
      phase: failed ? '' : (c.phase ?? ''),
      error: failed ? (options.asyncCreateError ?? '') : '',
    };
  }

  function renderMetrics(c: FakeContainer) {
    const m = c.metrics;
    const live = ONLINE.has(c.state);
    return {
      name: c.name,
      cpuUsageSeconds: String(m.cpuUsageSeconds),
      memoryUsageBytes: live ? String(m.memoryUsageBytes) : '0',
      memoryPeakBytes: live ? String(m.memoryPeakBytes) : '0',
      diskUsageBytes: String(m.diskUsageBytes),
      networkRxBytes: live ? String(m.networkRxBytes) : '0',
      networkTxBytes: live ? String(m.networkTxBytes) : '0',
      processCount: live ? m.processCount : 0,
      ...(m.cpuUsagePercent === undefined ? {} : { cpuUsagePercent: live ? m.cpuUsagePercent : 0 }),
    };
  }

  function renderSystemInfo() {
    const all = [...state.containers.values()].filter((c) => !c.pending);
    const running = all.filter((c) => c.state === 'CONTAINER_STATE_RUNNING').length;
    const si = options.systemInfo ?? {};
    const base = {
      incusVersion: si.incusVersion ?? (head ? '6.23.0' : '6.20'),
      os: si.os ?? (head ? 'Ubuntu 24.04.1 LTS' : 'Ubuntu'),
      kernelVersion: si.kernelVersion ?? '6.8.0-49-generic',
      totalCpus: head ? 16 : 0,
      totalMemoryBytes: head ? '68719476736' : '0',
      availableMemoryBytes: head ? '34359738368' : '0',
      totalDiskBytes: head ? '1099511627776' : '0',
      availableDiskBytes: head ? '549755813888' : '0',
      containersRunning: running,
      containersStopped: all.length - running,
      containersTotal: all.length,
      hostname: si.hostname ?? 'fake-host',
      uptimeSeconds: head ? '86400' : '0',
    };
    if (!head) return { info: base };
    return {
      info: {
        ...base,
        networkCidr: '10.0.3.0/24',
        cpuLoad1min: 0.5,
        cpuLoad5min: 0.4,
        cpuLoad15min: 0.3,
        otelCollectorEndpoint: '',
        daemonVersion: si.daemonVersion ?? 'v0.67.0',
        sshIngressHost: '',
        gpus: [],
        storage: [],
      },
      peers: [],
    };
  }

  // ---- Route handlers ----

  const unimplemented = new Set<RouteKey>([
    ...(!head && options.v03StartStopUnimplemented
      ? (['startContainer', 'stopContainer'] as const)
      : []),
    ...(!head && !options.v03SshKeysImplemented ? (['addSshKey', 'removeSshKey'] as const) : []),
  ]);
  const forbidden = new Set(head ? (options.forbiddenUsernames ?? []) : []);

  function find(username: string, verb: string): FakeContainer | RpcError {
    const found = state.container(username);
    // Even HEAD still reports a missing instance as a plain error: 500 / Unknown.
    return found ?? unknown(`failed to ${verb}: failed to ${verb}: Instance not found`);
  }

  function createContainer(body: Record<string, unknown>): Response | RpcError {
    const username = (body.username as string | undefined) ?? '';
    if (username === '') {
      return head ? invalidArgument('username is required') : unknown('username is required');
    }
    if (forbidden.has(username)) {
      return new RpcError(403, 'PermissionDenied', 'not authorized for this tenant');
    }
    const sshKeys = (body.sshKeys as string[] | undefined) ?? [];
    if (head) {
      const bad = sshKeys.findIndex((k) => normalizeSshKey(k) === undefined);
      if (bad >= 0) return invalidArgument(`invalid SSH public key at index ${bad}`);
    }
    const name = containerName(username);
    const existing = state.containers.get(name);
    if (existing) {
      const desc = existing.pending
        ? `container creation already in progress for user ${username}`
        : `container ${name} already exists`;
      return head
        ? new RpcError(409, 'AlreadyExists', desc)
        : unknown(`failed to create container: ${desc}`);
    }
    const resources = (body.resources ?? {}) as Record<string, string | undefined>;
    const image = (body.image as string | undefined) || DEFAULTS.image;
    const record = state.add({
      username,
      cpu: resources.cpu || DEFAULTS.cpu,
      memory: resources.memory || DEFAULTS.memory,
      disk: resources.disk || DEFAULTS.disk,
      gpu: resources.gpu ?? '',
      sshKeys,
      labels: (body.labels as Record<string, string> | undefined) ?? {},
      image,
      podmanEnabled: Boolean(head ? body.enablePodman : body.enableDocker),
      createdAt: now(),
      updatedAt: head ? now() : 0,
      backendId: (body.backendId as string | undefined) || 'local',
    });
    if (body.async === true && options.asyncPhases) {
      record.pending = 'creating';
      record.phases = [...options.asyncPhases];
      return json({
        container: renderContainer(record),
        message: `Container creation started for user ${username}. Poll GET /v1/containers/${username} to check status.`,
        sshCommand: '',
      });
    }
    if (body.async === true) {
      record.pending = 'creating';
      const timer = setTimeout(() => {
        timers.delete(timer);
        record.pending = options.asyncCreateFails ? 'error' : undefined;
      }, options.asyncCreateMs ?? 50);
      timers.add(timer);
      return json({
        container: renderContainer(record),
        message: `Container creation started for user ${username}. Poll GET /v1/containers/${username} to check status.`,
        sshCommand: '',
      });
    }
    return json({
      container: renderContainer(record),
      message: head ? 'Container created successfully' : `Container ${name} created successfully`,
      sshCommand: `ssh ${username}@${record.ipAddress}`,
    });
  }

  function listContainers(query: URLSearchParams): Response | RpcError {
    const username = query.get('username') ?? '';
    const wanted = query.get('state') ?? '';
    const labels: [string, string][] = [];
    for (const [key, value] of query) {
      const label = /^(?:labelFilter|label_filter)\[(.+)\]$/.exec(key)?.[1];
      if (label !== undefined) labels.push([label, value]);
    }
    const containers = [...state.containers.values()].filter(
      (c) =>
        (username === '' || c.username === username) &&
        // v0.3 applied only the username filter.
        (!head ||
          wanted === '' ||
          wanted === 'CONTAINER_STATE_UNSPECIFIED' ||
          c.state === wanted) &&
        (!head || labels.every(([k, v]) => c.labels[k] === v)),
    );
    return json({
      containers: containers.map((c) => renderContainer(c, 'list')),
      totalCount: containers.length,
    });
  }

  function getContainer(username: string): Response | RpcError {
    const c = find(username, 'get container');
    if (c instanceof RpcError) return c;
    if (c.pending === 'creating' && c.phases) {
      c.phase = c.phases.shift();
      if (c.phase === undefined) c.pending = options.asyncCreateFails ? 'error' : undefined;
    }
    const metrics = head && options.headGetMetrics && !c.pending ? renderMetrics(c) : null;
    return json({ container: renderContainer(c), metrics });
  }

  function deleteContainer(username: string, query: URLSearchParams): Response | RpcError {
    const force = query.has('force') ? parseBool(query.get('force') ?? '') : false;
    if (force instanceof RpcError) return force;
    const c = state.container(username);
    if (!c) return unknown('failed to delete container: container not found: Instance not found');
    // The daemon stops a running instance itself before deleting, so `force` changes nothing here.
    state.containers.delete(c.name);
    return json({
      message: `Container for user ${username} deleted successfully`,
      containerName: c.name,
    });
  }

  function startStop(username: string, start: boolean): Response | RpcError {
    const verb = start ? 'start' : 'stop';
    const c = find(username, `${verb} container`);
    if (c instanceof RpcError) return c;
    const running = c.state === 'CONTAINER_STATE_RUNNING';
    if (c.pending || running === start) {
      return unknown(
        `failed to ${verb} container: The instance is already ${start ? 'running' : 'stopped'}`,
      );
    }
    c.state = start ? 'CONTAINER_STATE_RUNNING' : 'CONTAINER_STATE_STOPPED';
    c.updatedAt = now();
    if (start && c.ipAddress === '') c.ipAddress = nextIp();
    return json({
      message: `Container for user ${username} ${start ? 'started' : 'stopped'} successfully`,
      container: renderContainer(c),
      ...(head && start ? { readyTimedOut: false } : {}),
    });
  }

  function sshKeys(username: string, add: string | undefined, remove: string | undefined) {
    const verb = add !== undefined ? 'add SSH key' : 'remove SSH key';
    const c = state.container(username);
    if (!c) return unknown(`failed to ${verb}: container not found: Instance not found`);
    if (add !== undefined) {
      const key = normalizeSshKey(add);
      if (key === undefined) {
        return head ? invalidArgument('invalid SSH public key') : unknown('invalid SSH public key');
      }
      if (c.sshKeys.includes(key)) {
        return head
          ? new RpcError(409, 'AlreadyExists', 'SSH key already exists')
          : unknown('SSH key already exists');
      }
      c.sshKeys.push(key);
      return json({ message: 'SSH key added successfully', totalKeys: c.sshKeys.length });
    }
    const index = c.sshKeys.indexOf(normalizeSshKey(remove ?? '') ?? remove ?? '');
    if (index < 0) {
      return head
        ? new RpcError(404, 'NotFound', 'SSH key not found')
        : unknown('SSH key not found');
    }
    c.sshKeys.splice(index, 1);
    return json({ message: 'SSH key removed successfully', totalKeys: c.sshKeys.length });
  }

  function getMetrics(username: string): Response | RpcError {
    if (username !== '') {
      const c = state.container(username);
      if (!c || c.pending) return unknown('failed to get metrics: Instance not found');
      return json({ metrics: [renderMetrics(c)] });
    }
    const all = [...state.containers.values()].filter((c) => !c.pending);
    all.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return json({ metrics: all.map(renderMetrics) });
  }

  // ---- Auth (§3) ----

  function authenticate(req: Request): Response | undefined {
    const limit = options.authFailureLimit;
    if (head && limit !== undefined && state.authFailures >= limit) {
      return httpError('too many failed authentication attempts; try again later', 429);
    }
    const header = req.headers.get('authorization') ?? '';
    const failed = (message: string) => {
      state.authFailures++;
      return httpError(message, 401);
    };
    if (header === '') return failed('missing authorization header');
    const space = header.indexOf(' ');
    if (space < 0 || header.slice(0, space).toLowerCase() !== 'bearer') {
      return failed("invalid authorization header format, expected 'Bearer <token>'");
    }
    const token = header.slice(space + 1);
    if (token === state.token) return undefined;
    if (head) return failed('invalid token');
    // golang-jwt v5's messages, wrapped by v0.3's "failed to parse token: %w".
    const reason =
      options.expiredToken !== undefined && token === options.expiredToken
        ? 'token has invalid claims: token is expired'
        : /^[^.]+\.[^.]+\.[^.]+$/.test(token)
          ? 'token signature is invalid: signature is invalid'
          : 'token is malformed: token contains an invalid number of segments';
    return failed(`invalid token: failed to parse token: ${reason}`);
  }

  // ---- Dispatch ----

  function takeFailure(route: RouteKey | undefined): InjectedFailure | undefined {
    const index = failures.findIndex((f) => f.route === '*' || f.route === route);
    const entry = failures[index];
    if (!entry) return undefined;
    if (--entry.times <= 0) failures.splice(index, 1);
    return entry.failure;
  }

  function injected(failure: InjectedFailure, signal: AbortSignal): Response | Promise<Response> {
    if ('hang' in failure) {
      return new Promise<Response>((resolve) => {
        const end = () => {
          hanging.delete(end);
          resolve(new Response(null, { status: 499 }));
        };
        hanging.add(end);
        signal.addEventListener('abort', end, { once: true });
      });
    }
    if ('close' in failure) {
      // An errored body makes Bun reset the connection before any byte is sent.
      return new Response(new ReadableStream({ pull: (c) => c.error() }));
    }
    const isText = typeof failure.body === 'string';
    const body =
      failure.body === undefined ? '' : isText ? String(failure.body) : goJson(failure.body);
    return new Response(body, {
      status: failure.status,
      headers: {
        'content-type':
          failure.contentType ?? (isText ? 'text/plain; charset=utf-8' : 'application/json'),
        ...failure.headers,
      },
    });
  }

  function route(match: { route: RouteKey; params: string[] }, url: URL, raw: string) {
    const [username = '', key] = match.params;
    // The gateway decodes the body first; the gRPC server then authorizes and runs the handler.
    const spec = BODIES[generation][match.route];
    const body = spec ? decodeBody(raw, spec, generation) : {};
    if (body instanceof RpcError) return body;
    if (forbidden.has(username)) {
      return new RpcError(403, 'PermissionDenied', 'not authorized for this tenant');
    }
    if (unimplemented.has(match.route)) return unknown('not implemented yet');
    switch (match.route) {
      case 'createContainer':
        return createContainer(body);
      case 'listContainers':
        return listContainers(url.searchParams);
      case 'getContainer':
        return getContainer(username);
      case 'deleteContainer':
        return deleteContainer(username, url.searchParams);
      case 'startContainer':
        return startStop(username, true);
      case 'stopContainer':
        return startStop(username, false);
      case 'addSshKey':
        return sshKeys(username, (body.sshPublicKey as string | undefined) ?? '', undefined);
      case 'removeSshKey':
        return sshKeys(username, undefined, key);
      case 'getMetrics':
        return getMetrics(
          match.params.length > 0 ? username : (url.searchParams.get('username') ?? ''),
        );
      case 'getSystemInfo':
        if (head && options.admin === false) {
          return new RpcError(403, 'PermissionDenied', 'role required: admin');
        }
        return json(renderSystemInfo());
      case 'health':
        return json({ status: 'healthy' });
    }
  }

  async function handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const rawBody = await req.text();
    let body: unknown;
    if (rawBody !== '') {
      try {
        body = JSON.parse(rawBody);
      } catch {
        body = rawBody;
      }
    }
    const isHealth = url.pathname === '/health' && req.method === 'GET';
    const match: Match = isHealth
      ? { route: 'health', params: [] }
      : matchRoute(req.method, url.pathname);
    const record: RecordedRequest = {
      method: req.method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: Object.fromEntries(req.headers),
      rawBody,
      body,
      route: 'route' in match ? match.route : undefined,
      status: undefined,
      aborted: false,
    };
    requests.push(record);
    req.signal.addEventListener('abort', () => {
      if (record.status === undefined) record.aborted = true;
    });

    if (latencyMs > 0) {
      const ms = latencyMs;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          resolve();
        }
        req.signal.addEventListener('abort', done, { once: true });
      });
    }
    // A request the client gave up on never reaches the handlers, so it changes nothing.
    if (req.signal.aborted) return new Response(null, { status: 499 });

    const failure = takeFailure(record.route);
    let response: Response;
    if (failure) {
      response = await injected(failure, req.signal);
    } else if (isHealth) {
      response = json({ status: 'healthy' });
    } else if (!url.pathname.startsWith('/v1/')) {
      response = new Response('404 page not found\n', {
        status: 404,
        headers: {
          'content-type': 'text/plain; charset=utf-8',
          'x-content-type-options': 'nosniff',
        },
      });
    } else {
      // The JWT middleware wraps every /v1 route, so even unknown paths need a token first.
      const denied = authenticate(req);
      if (denied) {
        response = denied;
      } else if (!('route' in match)) {
        response = rpcResponse(
          match.status === 404
            ? new RpcError(404, 'NotFound', 'Not Found')
            : new RpcError(405, 'Unimplemented', 'Method Not Allowed'),
        );
      } else {
        const result = route(match, url, rawBody);
        response = result instanceof RpcError ? rpcResponse(result) : result;
      }
    }
    if (!req.signal.aborted) record.status = response.status;
    return response;
  }

  let inFlight = 0;
  let peakInFlight = 0;
  const server = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    async fetch(req) {
      inFlight += 1;
      peakInFlight = Math.max(peakInFlight, inFlight);
      try {
        return await handle(req);
      } finally {
        inFlight -= 1;
      }
    },
  });
  const port = server.port ?? 0;

  async function stop() {
    for (const timer of timers) clearTimeout(timer);
    timers.clear();
    for (const end of [...hanging]) end();
    await server.stop(true);
  }

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    generation,
    requests,
    state,
    get peakInFlight() {
      return peakInFlight;
    },
    setLatency(ms) {
      latencyMs = ms;
    },
    fail(route, failure, times = 1) {
      failures.push({ route, failure, times });
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
