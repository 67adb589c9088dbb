// Every success body of the daemon's HTTP layer checked: the 11 upstream routes against the upstream
// swagger, and the routes this project adds against api/containarium.openapi.json, both with v0.3
// strictness: every property present, none extra, int64 strings, enum names.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type * as v from 'valibot';
import { serve } from '../../src/daemon/app.ts';
import { createAuthenticator } from '../../src/daemon/auth.ts';
import type { Backend, Container } from '../../src/daemon/backend.ts';
import { emitContainer } from '../../src/daemon/to-wire.ts';
import { ExecResponseSchema } from '../../src/mcp/tools/exec.ts';
import { ListImagesResponseSchema } from '../../src/mcp/tools/images.ts';
import { LogsResponseSchema } from '../../src/mcp/tools/logs.ts';
import {
  CreateSnapshotResponseSchema,
  DeleteSnapshotResponseSchema,
  ListSnapshotsResponseSchema,
  RollbackSnapshotResponseSchema,
} from '../../src/mcp/tools/snapshots.ts';
import { ListTemplatesResponseSchema } from '../../src/mcp/tools/templates.ts';
import { signToken } from '../../src/shared/jwt.ts';
import { MemoryBackend } from '../support/memory-backend.ts';
import {
  expectContractBody,
  loadOpenApi,
  loadSwagger,
  operations,
  type Strictness,
  type Swagger,
  V03,
  V03_GET,
  V03_WITH_SSH,
  validate,
} from '../support/swagger.ts';

const SECRET = 'c0ntract-Secret-9f8e7d6c5b4a3f2e1d0c';
const KEY =
  'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBwpNkNQXWp3hJGeq7jF0t/s+QYTIC06R1RhbnuIlaKv alice@laptop';
const doc = loadSwagger();
/** This project's OpenAPI file: upstream's, plus the routes this project adds. */
const project = loadOpenApi();

/** The memory backend, but get reports metrics too, so GetContainerResponse.metrics is checked. */
class WithMetrics extends MemoryBackend {
  override async get(username: string) {
    const found = await super.get(username);
    const running = found.container.state === 'running';
    return { ...found, metrics: running ? ((await this.metrics(username))[0] ?? null) : null };
  }
}
const memory = new WithMetrics();
const backend: Backend = memory;
const server = serve({
  backend,
  auth: createAuthenticator({ secret: SECRET, log: () => {} }),
  hostname: '127.0.0.1',
  port: 0,
  log: () => {},
});
const base = `http://127.0.0.1:${server.port}`;
let admin = '';
let alice = '';

beforeAll(async () => {
  const sign = async (username: string, roles: string[]) =>
    (await signToken({ username, roles, lifetimeMs: 3_600_000, secret: SECRET })).token;
  admin = await sign('mcp-client', ['admin']);
  alice = await sign('alice', ['user']);
  memory.seed('alice', { labels: { team: 'ml' }, sshKeys: [KEY], dockerEnabled: true });
  // What a half-known container looks like: no resources, no network, zero timestamps.
  memory.seed('bob', {
    state: 'CONTAINER_STATE_STOPPED',
    resources: null,
    network: null,
    createdAt: '0',
  });
  memory.seed('erin', { state: 'CONTAINER_STATE_ERROR', image: '' });
});
afterAll(() => server.stop(true));

/**
 * Routes whose bodies carry fields this project added to upstream's definitions (metrics' CPU
 * share, system info's load and committed limits): checked against the project's OpenAPI file.
 */
const ADDED = { contract: project };

/** Routes checked so far, as "method route" in the swagger's spelling. */
const covered = new Set<string>();

/**
 * Calls `method path`, expects a 200 JSON body that is exactly the `route` response of `contract`
 * (upstream's swagger unless given), read by the client's schema (`wire` for an added route).
 */
async function conforms(
  method: 'get' | 'post' | 'put' | 'delete',
  path: string,
  route: string,
  options: {
    body?: unknown;
    token?: string;
    contract?: Swagger;
    wire?: v.GenericSchema;
    strictness?: Strictness;
  } = {},
) {
  const response = await fetch(`${base}${path}`, {
    method: method.toUpperCase(),
    headers: {
      Authorization: `Bearer ${options.token ?? admin}`,
      'Content-Type': 'application/json',
    },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  const text = await response.text();
  expect({ status: response.status, text }).toMatchObject({ status: 200 });
  expect(response.headers.get('content-type')).toBe('application/json');
  const body = JSON.parse(text);
  expectContractBody(
    options.contract ?? doc,
    method,
    route,
    body,
    options.strictness ?? V03,
    options.wire,
  );
  covered.add(`${method} ${route}`);
  return body;
}

describe('every success body is exactly the v0.3 swagger response', () => {
  test('the validator is strict: an extra, a missing and a mistyped field are all caught', () => {
    // A valid wire container: the domain one as the HTTP layer writes it.
    const container = emitContainer(memory.containers.get('alice') as Container);
    const start = { message: 'ok', container, readyTimedOut: false };
    expect(validate(doc, 'StartContainerResponse', start, V03)).toEqual([
      '$.readyTimedOut: not in the contract',
    ]);
    expect(validate(doc, 'StartContainerResponse', { message: 'ok' }, V03)).toEqual([
      '$.container: missing',
    ]);
    expect(
      validate(doc, 'Container', { ...container, createdAt: 1, state: 'RUNNING' }, V03),
    ).toHaveLength(2);
  });

  test('the one documented addition, sshCommand (a string) in the container of GET and start, is allowed nowhere else', () => {
    const container = { ...emitContainer(memory.containers.get('alice') as Container) };
    const withSsh = { ...container, sshCommand: 'ssh alice@10.98.0.10' };
    const get = { container: withSsh, metrics: null };
    expect(validate(doc, 'GetContainerResponse', get, V03)).toEqual([
      '$.container.sshCommand: not in the contract',
    ]);
    expect(validate(doc, 'GetContainerResponse', get, V03_WITH_SSH)).toEqual([]);
    // GET's container also says what the daemon knows of the create; start's does not.
    const status = { phase: '', error: '', createMessage: '' };
    expect(
      validate(
        doc,
        'GetContainerResponse',
        { ...get, container: { ...withSsh, ...status } },
        V03_GET,
      ),
    ).toEqual([]);
    expect(
      validate(
        doc,
        'StartContainerResponse',
        { message: 'ok', container: { ...withSsh, ...status } },
        V03_WITH_SSH,
      ),
    ).toHaveLength(3);
    expect(validate(doc, 'GetContainerResponse', { ...get, sshCommand: '' }, V03_WITH_SSH)).toEqual(
      ['$.sshCommand: not in the contract'],
    );
    expect(
      validate(
        doc,
        'GetContainerResponse',
        { container: { ...withSsh, sshKey: '' }, metrics: null },
        V03_WITH_SSH,
      ),
    ).toEqual(['$.container.sshKey: not in the contract']);
    expect(
      validate(
        doc,
        'GetContainerResponse',
        { container: { ...container, sshCommand: null }, metrics: null },
        V03_WITH_SSH,
      ),
    ).toEqual(['$.container.sshCommand: expected a string, got null']);
  });

  test('POST /v1/containers, sync and async', async () => {
    const sync = await conforms('post', '/v1/containers', '/v1/containers', {
      body: {
        username: 'carol',
        resources: { cpu: '2', memory: '2GB', disk: '10GB' },
        sshKeys: [KEY],
        labels: { team: 'demo' },
        image: 'debian/12',
        enableDocker: true,
      },
    });
    expect(sync.container.state).toBe('CONTAINER_STATE_RUNNING');
    const pending = await conforms('post', '/v1/containers', '/v1/containers', {
      body: { username: 'dave', async: true },
    });
    expect(pending.container.state).toBe('CONTAINER_STATE_CREATING');
  });

  test('GET /v1/containers, all, filtered, and narrowed for a user', async () => {
    const all = await conforms('get', '/v1/containers', '/v1/containers');
    expect(all.totalCount).toBeGreaterThanOrEqual(3);
    await conforms('get', '/v1/containers?state=CONTAINER_STATE_STOPPED', '/v1/containers');
    await conforms('get', '/v1/containers?labelFilter[team]=nobody', '/v1/containers');
    const own = await conforms('get', '/v1/containers', '/v1/containers', { token: alice });
    expect(own.totalCount).toBe(1);
  });

  test('GET /v1/containers/{username}, with and without metrics', async () => {
    const get = (username: string) =>
      conforms('get', `/v1/containers/${username}`, '/v1/containers/{username}', {
        ...ADDED,
        strictness: V03_GET,
      });
    const running = await get('alice');
    expect(running.metrics).not.toBeNull();
    expect(running.container.sshCommand).toBe('ssh alice@10.98.0.10');
    const stopped = await get('bob');
    expect(stopped).toMatchObject({
      container: { resources: null, network: null, sshCommand: '' },
      metrics: null,
    });
    await get('erin');
  });

  test("GET /v1/containers/{username} of an async create: its phase while CREATING, then sync create's message, or why it failed", async () => {
    const get = (username: string) =>
      conforms('get', `/v1/containers/${username}`, '/v1/containers/{username}', {
        ...ADDED,
        strictness: V03_GET,
      });
    const start = (username: string) =>
      conforms('post', '/v1/containers', '/v1/containers', { body: { username, async: true } });
    await start('gail');
    const seen: string[] = [];
    for (let body = await get('gail'); ; body = await get('gail')) {
      if (body.container.state !== 'CONTAINER_STATE_CREATING') {
        expect(body.container).toMatchObject({
          state: 'CONTAINER_STATE_RUNNING',
          phase: '',
          error: '',
          createMessage: 'Container gail-container created successfully',
        });
        break;
      }
      expect(body.container).toMatchObject({ error: '', createMessage: '' });
      seen.push(body.container.phase);
    }
    expect(seen).toEqual(['creating instance', 'installing packages', 'adding keys']);
    memory.asyncFailure = 'apt-get install failed: no network';
    await start('hank');
    let body = await get('hank');
    while (body.container.state === 'CONTAINER_STATE_CREATING') body = await get('hank');
    memory.asyncFailure = undefined;
    expect(body.container).toMatchObject({
      state: 'CONTAINER_STATE_ERROR',
      phase: '',
      error: 'apt-get install failed: no network',
      createMessage: '',
    });
    // Every other container says nothing of a create, in the same three fields.
    expect((await get('alice')).container).toMatchObject({
      phase: '',
      error: '',
      createMessage: '',
    });
  });

  test('POST start and stop', async () => {
    const start = await conforms(
      'post',
      '/v1/containers/bob/start',
      '/v1/containers/{username}/start',
      { body: { waitForReady: true, readyTimeoutSeconds: 30 }, strictness: V03_WITH_SSH },
    );
    expect(start.container.state).toBe('CONTAINER_STATE_RUNNING');
    // bob has no key: no command, but the field is there.
    expect(start.container.sshCommand).toBe('');
    const stop = await conforms(
      'post',
      '/v1/containers/bob/stop',
      '/v1/containers/{username}/stop',
      {
        body: { force: true },
      },
    );
    expect(stop.container.state).toBe('CONTAINER_STATE_STOPPED');
  });

  test('POST and DELETE ssh keys', async () => {
    const added = await conforms(
      'post',
      '/v1/containers/carol/ssh-keys',
      '/v1/containers/{username}/ssh-keys',
      { body: { sshPublicKey: KEY.replace('alice@laptop', 'alice@desk') } },
    );
    expect(added.totalKeys).toBe(2);
    await conforms(
      'delete',
      `/v1/containers/carol/ssh-keys/${encodeURIComponent(KEY)}`,
      '/v1/containers/{username}/ssh-keys/{sshPublicKey}',
    );
  });

  test('GET /v1/metrics (all, one, none for a user without a container) and /v1/metrics/{username}', async () => {
    const all = await conforms('get', '/v1/metrics', '/v1/metrics', ADDED);
    expect(all.metrics.length).toBeGreaterThanOrEqual(3);
    await conforms('get', '/v1/metrics?username=alice', '/v1/metrics', ADDED);
    await conforms('get', '/v1/metrics?username=bob', '/v1/metrics', { ...ADDED, token: alice });
    const one = await conforms('get', '/v1/metrics/alice', '/v1/metrics/{username}', ADDED);
    expect(one.metrics).toHaveLength(1);
    // The added field is a number, as the project's OpenAPI file declares it.
    expect(one.metrics[0].cpuUsagePercent).toBe(25);
    const upstream = validate(doc, 'GetMetricsResponse', one, V03);
    expect(upstream).toEqual(['$.metrics[0].cpuUsagePercent: not in the contract']);
  });

  test('GET /v1/system/info', async () => {
    const { info } = await conforms('get', '/v1/system/info', '/v1/system/info', ADDED);
    expect(info).toMatchObject({ cpuLoad1min: 0.5, committedMemoryBytes: expect.any(String) });
  });

  test('DELETE /v1/containers/{username}', async () => {
    await conforms('delete', '/v1/containers/dave?force=true', '/v1/containers/{username}');
  });

  test('all 11 routes of the swagger were checked', () => {
    const routes = operations(doc);
    expect(routes).toHaveLength(11);
    expect([...covered].filter((op) => routes.includes(op)).sort()).toEqual(routes.sort());
  });
});

describe("every route this project adds is exactly its OpenAPI file's response", () => {
  test('GET /v1/images, for an admin and for a user', async () => {
    const contract = { contract: project, wire: ListImagesResponseSchema };
    const listed = await conforms('get', '/v1/images', '/v1/images', contract);
    expect(listed.images[0].sizeBytes).toBe(String(memory.images[0]?.sizeBytes));
    expect(listed.remotes).toEqual(['images', 'ubuntu', 'ubuntu-daily']);
    await conforms('get', '/v1/images', '/v1/images', { ...contract, token: alice });
    memory.images = [];
    expect(await conforms('get', '/v1/images', '/v1/images', contract)).toMatchObject({
      images: [],
    });
  });

  test('PUT /v1/containers/{username}/resize (upstream HEAD), for an admin and for its own user', async () => {
    const route = '/v1/containers/{username}/resize';
    const resized = await conforms('put', '/v1/containers/alice/resize', route, {
      contract: project,
      body: { cpu: '2', memory: '2GB' },
    });
    expect(resized.container.resources).toEqual({ cpu: '2', memory: '2GB', disk: '50GB' });
    await conforms('put', '/v1/containers/alice/resize', route, {
      contract: project,
      body: { disk: '60GB' },
      token: alice,
    });
  });

  test('GET /v1/quotas/{username}, for an admin and for its own user', async () => {
    const route = '/v1/quotas/{username}';
    const own = await conforms('get', '/v1/quotas/alice', route, {
      contract: project,
      token: alice,
    });
    expect(own).toEqual({
      username: 'alice',
      quota: {
        containers: 3,
        cpus: 8,
        memory: '16GB',
        memoryBytes: '16000000000',
        disk: '100GB',
        diskBytes: '100000000000',
        snapshots: 10,
      },
      used: { containers: 1, cpus: 2, memoryBytes: '2000000000', diskBytes: '60000000000' },
    });
    await conforms('get', '/v1/quotas/nobody', route, { contract: project });
  });

  test('GET /v1/templates, for an admin and for a user', async () => {
    const contract = { contract: project, wire: ListTemplatesResponseSchema };
    const listed = await conforms('get', '/v1/templates', '/v1/templates', contract);
    expect(listed.templates[0]).toMatchObject({ name: 'small', resources: { cpu: '1' } });
    await conforms('get', '/v1/templates', '/v1/templates', { ...contract, token: alice });
  });

  test('POST /v1/containers/{username}/exec, for an admin and for the user', async () => {
    const contract = { contract: project, wire: ExecResponseSchema };
    const route = '/v1/containers/{username}/exec';
    const ran = await conforms('post', '/v1/containers/alice/exec', route, {
      ...contract,
      body: { command: ['echo', 'hi'], timeoutSeconds: 5, user: 'root' },
    });
    expect(ran).toEqual({
      exitCode: 0,
      stdout: 'echo hi\n',
      stderr: '',
      stdoutTruncated: false,
      stderrTruncated: false,
      timedOut: false,
    });
    await conforms('post', '/v1/containers/alice/exec', route, {
      ...contract,
      body: { command: 'true' },
      token: alice,
    });
  });

  test('GET /v1/containers/{username}/logs, for an admin and for the user', async () => {
    const contract = { contract: project, wire: LogsResponseSchema };
    const route = '/v1/containers/{username}/logs';
    memory.logAnswer = { source: 'journal', text: 'a\nb\n', cut: false };
    const read = await conforms('get', '/v1/containers/alice/logs?lines=1&grep=b', route, contract);
    expect(read).toEqual({ source: 'journal', lines: ['b'], truncated: false });
    await conforms('get', '/v1/containers/alice/logs', route, { ...contract, token: alice });
  });

  test("the snapshot routes (upstream HEAD's, plus createdAt)", async () => {
    const on = (wire: v.GenericSchema) => ({ contract: project, wire });
    const base = '/v1/containers/alice/snapshots';
    const list = '/v1/containers/{username}/snapshots';
    const one = `${list}/{name}`;
    expect(await conforms('get', base, list, on(ListSnapshotsResponseSchema))).toEqual({
      snapshots: [],
    });
    for (const name of ['one', 'two']) {
      const made = await conforms('post', base, list, {
        ...on(CreateSnapshotResponseSchema),
        body: { name },
      });
      expect(made.snapshot.usedBytes).toBe('16384');
    }
    await conforms('get', base, list, { ...on(ListSnapshotsResponseSchema), token: alice });
    const rolled = await conforms('post', `${base}/one/rollback`, `${one}/rollback`, {
      ...on(RollbackSnapshotResponseSchema),
      body: { force: true, destroyNewer: true },
    });
    expect(rolled).toMatchObject({ containerStopped: true, destroyedSnapshots: ['two'] });
    const deleted = await conforms('delete', `${base}/one`, one, on(DeleteSnapshotResponseSchema));
    expect(deleted.freedBytes).toBe('16384');
  });

  test('all of them were checked', () => {
    const added = operations(project).filter((op) => !operations(doc).includes(op));
    expect(added.length).toBeGreaterThan(0);
    expect([...covered].filter((op) => added.includes(op)).sort()).toEqual(added.sort());
  });
});

describe('/health (not in the swagger)', () => {
  test('answers {"status":"healthy","incus":"reachable"|"unreachable"} without a token', async () => {
    for (const reachable of [true, false]) {
      memory.reachable = reachable;
      const response = await fetch(`${base}/health`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('application/json');
      expect(await response.json()).toEqual({
        status: 'healthy',
        incus: reachable ? 'reachable' : 'unreachable',
      });
    }
    memory.reachable = true;
  });
});
