// Keeps the fake daemon honest: every route, both generations, checked against the swagger
// contract, the exact error and 401 bodies of CONTAINARIUM-API.md, and the client's wire schemas.
import { describe, expect, test } from 'bun:test';
import {
  type FakeDaemon,
  type FakeDaemonOptions,
  type Generation,
  startFakeDaemon,
} from '../support/fake-daemon.ts';
import { expectContractBody, loadSwagger, V03 } from '../support/swagger.ts';

const TOKEN = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1c2VybmFtZSI6ImFkbWluIn0.Zm9v';
const EXPIRED = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjF9.YmFy';
// Its blob holds '/' and '+', so encoding it into a path is a real test.
const KEY =
  'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBwpNkNQXWp3hJGeq7jF0t/s+QYTIC06R1RhbnuIlaKv alice@laptop';
const doc = loadSwagger();

/** A HEAD daemon emits every field (EmitUnpopulated) but renamed one and adds many. */
const strictness = (generation: Generation) =>
  generation === 'v0.3' ? V03 : { complete: true, closed: false, renamed: ['dockerEnabled'] };

type Call = {
  body?: unknown;
  raw?: string;
  token?: string | null;
  headers?: Record<string, string>;
};

async function call(daemon: FakeDaemon, method: string, path: string, options: Call = {}) {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    ...options.headers,
  };
  if (options.token !== null) headers.authorization = `Bearer ${options.token ?? TOKEN}`;
  const response = await fetch(daemon.url + path, {
    method,
    headers,
    body: options.raw ?? (options.body === undefined ? null : JSON.stringify(options.body)),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, json: () => JSON.parse(text) };
}

/** A 200 JSON body that satisfies the swagger response of `method route` and the client's schema. */
async function ok(
  daemon: FakeDaemon,
  method: string,
  path: string,
  route: string,
  options: Call = {},
) {
  const res = await call(daemon, method.toUpperCase(), path, options);
  expect({ status: res.status, text: res.text }).toMatchObject({ status: 200 });
  expect(res.headers.get('content-type')).toBe('application/json');
  const body = res.json();
  expectContractBody(doc, method, route, body, strictness(daemon.generation));
  return body;
}

/** A JSON error body: exactly {code, error}, in Go's key order, with a trailing newline. */
async function rpcError(
  daemon: FakeDaemon,
  method: string,
  path: string,
  status: number,
  options: Call = {},
) {
  const res = await call(daemon, method, path, options);
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toBe('application/json');
  expect(res.text.endsWith('}\n')).toBe(true);
  const body = res.json();
  expect(Object.keys(body)).toEqual(['code', 'error']);
  expect(body.code).toBe(status);
  expect(body.error).toMatch(/^rpc error: code = \w+ desc = /);
  return body.error as string;
}

/** An auth-middleware failure: Go's http.Error with the hand-written JSON-looking text. */
async function authError(daemon: FakeDaemon, path: string, options: Call, expected: string) {
  const res = await call(daemon, 'GET', path, options);
  expect(res.status).toBe(401);
  expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
  expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  expect(res.text).toBe(expected);
}

const alice = { username: 'alice', cpu: '4', memory: '4GB', ipAddress: '10.0.3.15' };

function daemonFor(generation: Generation, extra: Partial<FakeDaemonOptions> = {}) {
  return startFakeDaemon({
    generation,
    token: TOKEN,
    expiredToken: EXPIRED,
    containers: [alice, { username: 'bob', state: 'CONTAINER_STATE_STOPPED', disk: '20GB' }],
    ...extra,
  });
}

const until = async (check: () => Promise<boolean>) => {
  for (let i = 0; i < 100; i++) {
    if (await check()) return;
    await Bun.sleep(10);
  }
  throw new Error('condition never held');
};

describe.each(['v0.3', 'head'] as const)('%s fake: every route in the contract', (generation) => {
  const head = generation === 'head';

  test('create (sync) returns the created container, message and ssh command', async () => {
    await using d = daemonFor(generation);
    const body = await ok(d, 'post', '/v1/containers', '/v1/containers', {
      body: {
        username: 'carol',
        resources: { cpu: '2', memory: '2GB', disk: '10GB' },
        sshKeys: [KEY],
        labels: { team: 'demo' },
        image: 'images:debian/12',
        ...(head ? { enablePodman: true } : { enableDocker: true }),
      },
    });
    expect(body.message).toBe(
      head ? 'Container created successfully' : 'Container carol-container created successfully',
    );
    expect(body.sshCommand).toMatch(/^ssh carol@10\.0\.3\.\d+$/);
    expect(body.sshCommand).toBe(`ssh carol@${body.container.network.ipAddress}`);
    const c = body.container;
    expect(c).toMatchObject({ name: 'carol-container', username: 'carol' });
    expect(c.state).toBe('CONTAINER_STATE_RUNNING');
    expect(c.createdAt).toMatch(/^\d{10}$/);
    if (head) {
      expect(c.resources).toEqual({ cpu: '2', memory: '2GB', disk: '10GB', gpu: '' });
      expect(c).toMatchObject({ sshKeys: [KEY], labels: { team: 'demo' }, podmanEnabled: true });
      expect(c).toMatchObject({ image: 'images:debian/12', osType: 'OS_TYPE_UNSPECIFIED' });
      expect(c.dockerEnabled).toBeUndefined();
    } else {
      // What the v0.3 daemon really filled: no disk, keys, labels or image; docker hard-coded.
      expect(c).toMatchObject({ resources: { cpu: '2', memory: '2GB', disk: '' }, sshKeys: [] });
      expect(c).toMatchObject({ labels: {}, image: '', updatedAt: '0', dockerEnabled: true });
      expect(c.podmanEnabled).toBeUndefined();
    }
  });

  test('create (async) answers CREATING, then GET shows the container running', async () => {
    await using d = daemonFor(generation, { asyncCreateMs: 30 });
    const body = await ok(d, 'post', '/v1/containers', '/v1/containers', {
      body: { username: 'dave', async: true },
    });
    expect(body.message).toBe(
      'Container creation started for user dave. Poll GET /v1/containers/dave to check status.',
    );
    expect(body.sshCommand).toBe('');
    expect(body.container).toMatchObject({
      name: 'dave-container',
      username: 'dave',
      state: 'CONTAINER_STATE_CREATING',
      resources: { cpu: '4', memory: '4GB', disk: '50GB' },
      network: null,
      createdAt: '0',
    });
    const first = await ok(d, 'get', '/v1/containers/dave', '/v1/containers/{username}');
    expect(first.container.state).toBe('CONTAINER_STATE_CREATING');
    await until(async () => {
      const now = await ok(d, 'get', '/v1/containers/dave', '/v1/containers/{username}');
      return now.container.state === 'CONTAINER_STATE_RUNNING';
    });
  });

  test('an async create that fails stays in ERROR', async () => {
    await using d = daemonFor(generation, { asyncCreateMs: 10, asyncCreateFails: true });
    await ok(d, 'post', '/v1/containers', '/v1/containers', {
      body: { username: 'erin', async: true },
    });
    await Bun.sleep(40);
    const body = await ok(d, 'get', '/v1/containers/erin', '/v1/containers/{username}');
    expect(body.container.state).toBe('CONTAINER_STATE_ERROR');
  });

  test('list: all containers, a username filter, and the empty list', async () => {
    await using d = daemonFor(generation, {
      containers: [
        { ...alice, labels: { team: 'a' } },
        { username: 'bob', state: 'CONTAINER_STATE_STOPPED', labels: { team: 'b' } },
        { name: 'ws2022', state: 'CONTAINER_STATE_STOPPED', createdAt: -62135596800 },
      ],
    });
    const all = await ok(d, 'get', '/v1/containers', '/v1/containers');
    expect(all.totalCount).toBe(3);
    expect(all.containers.map((c: { name: string }) => c.name)).toEqual([
      'alice-container',
      'bob-container',
      'ws2022',
    ]);
    // Names without the suffix are their own username; Go's zero time is a negative int64 string.
    expect(all.containers[2]).toMatchObject({ username: 'ws2022', createdAt: '-62135596800' });
    // A stopped instance has no address: v0.3 leaves network unset, HEAD sends empty strings.
    expect(all.containers[1].network).toEqual(
      head ? { ipAddress: '', macAddress: '', interface: '', bridge: '' } : null,
    );
    const one = await ok(d, 'get', '/v1/containers?username=bob', '/v1/containers');
    expect(one.containers.map((c: { name: string }) => c.name)).toEqual(['bob-container']);
    expect(one.totalCount).toBe(1);
    // v0.3 ignored state and label filters; HEAD applies them.
    const running = await ok(
      d,
      'get',
      '/v1/containers?state=CONTAINER_STATE_RUNNING',
      '/v1/containers',
    );
    expect(running.totalCount).toBe(head ? 1 : 3);
    const labelled = await ok(d, 'get', '/v1/containers?labelFilter%5Bteam%5D=b', '/v1/containers');
    expect(labelled.totalCount).toBe(head ? 1 : 3);
    const none = await call(d, 'GET', '/v1/containers?username=nobody');
    expect(none.json()).toEqual({ containers: [], totalCount: 0 });
  });

  test('get: the exact body of §1.3 at v0.3, the filled container at HEAD', async () => {
    await using d = daemonFor(generation);
    const body = await ok(d, 'get', '/v1/containers/alice', '/v1/containers/{username}');
    if (!head) {
      expect(body).toEqual({
        container: {
          name: 'alice-container',
          username: 'alice',
          state: 'CONTAINER_STATE_RUNNING',
          resources: { cpu: '4', memory: '4GB', disk: '' },
          sshKeys: [],
          network: { ipAddress: '10.0.3.15', macAddress: '', interface: '', bridge: '' },
          createdAt: '1736930000',
          updatedAt: '0',
          labels: {},
          image: '',
          dockerEnabled: true,
        },
        metrics: null,
      });
    } else {
      expect(Object.keys(body.container)).toEqual([
        'name',
        'username',
        'state',
        'resources',
        'sshKeys',
        'network',
        'createdAt',
        'updatedAt',
        'labels',
        'image',
        'podmanEnabled',
        'stack',
        'gpuDevice',
        'backendId',
        'osType',
        'accessType',
        'rdpAddress',
      ]);
      expect(body.container).toMatchObject({
        resources: { disk: '50GB', gpu: '' },
        image: 'images:ubuntu/24.04',
        osType: 'OS_TYPE_UBUNTU_2404',
        accessType: 'ACCESS_TYPE_SSH',
      });
      expect(body.container.network.bridge).toBe('incusbr0');
      expect(body.metrics).toBeNull();
    }
  });

  test('delete with ?force removes the container', async () => {
    await using d = daemonFor(generation);
    const body = await ok(
      d,
      'delete',
      '/v1/containers/alice?force=true',
      '/v1/containers/{username}',
    );
    expect(body).toEqual({
      message: 'Container for user alice deleted successfully',
      containerName: 'alice-container',
    });
    expect(d.state.container('alice')).toBeUndefined();
    await rpcError(d, 'GET', '/v1/containers/alice', 500);
  });

  test('stop then start (implemented since Mar 2026)', async () => {
    await using d = daemonFor(generation);
    const stopped = await ok(
      d,
      'post',
      '/v1/containers/alice/stop',
      '/v1/containers/{username}/stop',
      {
        body: { force: true },
      },
    );
    expect(stopped.message).toBe('Container for user alice stopped successfully');
    expect(stopped.container.state).toBe('CONTAINER_STATE_STOPPED');
    const started = await ok(
      d,
      'post',
      '/v1/containers/alice/start',
      '/v1/containers/{username}/start',
      {
        body: {},
      },
    );
    expect(started.message).toBe('Container for user alice started successfully');
    expect(started.container.state).toBe('CONTAINER_STATE_RUNNING');
    expect(started.readyTimedOut).toBe(head ? false : undefined);
    // An empty body is tolerated (grpc-gateway accepts EOF).
    await ok(d, 'post', '/v1/containers/alice/stop', '/v1/containers/{username}/stop');
  });

  test('metrics: all containers, one by path, one by query', async () => {
    await using d = daemonFor(generation);
    const all = await ok(d, 'get', '/v1/metrics', '/v1/metrics');
    expect(all.metrics.map((m: { name: string }) => m.name)).toEqual([
      'alice-container',
      'bob-container',
    ]);
    expect(all.metrics[0]).toEqual({
      name: 'alice-container',
      cpuUsageSeconds: '12',
      memoryUsageBytes: '536870912',
      memoryPeakBytes: '1073741824',
      diskUsageBytes: '5368709120',
      networkRxBytes: '104857600',
      networkTxBytes: '52428800',
      processCount: 42,
    });
    expect(all.metrics[1]).toMatchObject({ memoryUsageBytes: '0', processCount: 0 });
    const byPath = await ok(d, 'get', '/v1/metrics/alice', '/v1/metrics/{username}');
    expect(byPath.metrics).toEqual([all.metrics[0]]);
    const byQuery = await ok(d, 'get', '/v1/metrics?username=alice', '/v1/metrics');
    expect(byQuery).toEqual(byPath);
    await using empty = startFakeDaemon({ generation, token: TOKEN });
    expect((await call(empty, 'GET', '/v1/metrics')).json()).toEqual({ metrics: [] });
  });

  test('system info in the generation’s shape', async () => {
    await using d = daemonFor(generation);
    const body = await ok(d, 'get', '/v1/system/info', '/v1/system/info');
    expect(body.info).toMatchObject({
      containersRunning: 1,
      containersStopped: 1,
      containersTotal: 2,
      hostname: 'fake-host',
    });
    if (head) {
      expect(body.info.totalMemoryBytes).toMatch(/^[1-9]\d*$/);
      expect(body.info.daemonVersion).toBe('v0.67.0');
      expect(body.peers).toEqual([]);
    } else {
      // Declared but never filled at v0.3.
      expect(body.info).toMatchObject({ totalCpus: 0, totalMemoryBytes: '0', uptimeSeconds: '0' });
      expect(Object.keys(body)).toEqual(['info']);
    }
  });

  test('a missing container is 500 / Unknown in both generations', async () => {
    await using d = daemonFor(generation);
    const res = await call(d, 'GET', '/v1/containers/nobody');
    expect(res.text).toBe(
      '{"code":500,"error":"rpc error: code = Unknown desc = failed to get container: failed to get container: Instance not found"}\n',
    );
    for (const [method, path] of [
      ['DELETE', '/v1/containers/nobody'],
      ['POST', '/v1/containers/nobody/start'],
      ['POST', '/v1/containers/nobody/stop'],
      ['GET', '/v1/metrics/nobody'],
    ] as const) {
      expect(await rpcError(d, method, path, 500)).toStartWith('rpc error: code = Unknown desc = ');
    }
  });

  test('creating an existing container: 500 Unknown at v0.3, 409 AlreadyExists at HEAD', async () => {
    await using d = daemonFor(generation);
    const error = await rpcError(d, 'POST', '/v1/containers', head ? 409 : 500, {
      body: { username: 'alice' },
    });
    expect(error).toMatch(
      head
        ? /^rpc error: code = AlreadyExists desc = .*already exists$/
        : /^rpc error: code = Unknown desc = .*already exists$/,
    );
  });

  test('a missing username: 500 Unknown at v0.3, 400 InvalidArgument at HEAD', async () => {
    await using d = daemonFor(generation);
    const error = await rpcError(d, 'POST', '/v1/containers', head ? 400 : 500, { body: {} });
    expect(error).toBe(
      `rpc error: code = ${head ? 'InvalidArgument' : 'Unknown'} desc = username is required`,
    );
  });

  test('enableDocker: accepted by v0.3, an unknown field (400) for HEAD', async () => {
    await using d = daemonFor(generation);
    const raw = '{"username":"bob2","enableDocker":true}';
    if (head) {
      const error = await rpcError(d, 'POST', '/v1/containers', 400, { raw });
      // protojson points at the key's opening quote: offset 19, 1-based column 20.
      expect(error).toBe(
        'rpc error: code = InvalidArgument desc = proto: (line 1:20): unknown field "enableDocker"',
      );
      expect(d.state.container('bob2')).toBeUndefined();
    } else {
      await ok(d, 'post', '/v1/containers', '/v1/containers', { raw });
    }
  });

  test('enablePodman: used by HEAD, silently ignored by v0.3', async () => {
    await using d = daemonFor(generation);
    const body = await ok(d, 'post', '/v1/containers', '/v1/containers', {
      body: { username: 'pat', enablePodman: true },
    });
    expect(d.state.container('pat')?.podmanEnabled).toBe(head);
    if (head) expect(body.container.podmanEnabled).toBe(true);
    else expect(body.container.dockerEnabled).toBe(true); // hard-coded, whatever was asked
  });

  test('other unknown fields: discarded by v0.3, rejected by HEAD', async () => {
    await using d = daemonFor(generation);
    const options = { body: { username: 'quinn', resources: { cpu: '1', cores: 2 } } };
    if (head) {
      const error = await rpcError(d, 'POST', '/v1/containers', 400, options);
      expect(error).toMatch(/desc = proto: \(line 1:\d+\): unknown field "cores"$/);
    } else {
      await ok(d, 'post', '/v1/containers', '/v1/containers', options);
      expect(d.state.container('quinn')?.cpu).toBe('1');
    }
  });

  test('snake_case bodies and int64 as string or number are accepted', async () => {
    await using d = daemonFor(generation);
    await ok(d, 'post', '/v1/containers', '/v1/containers', {
      body: {
        username: 'sam',
        ssh_keys: [KEY],
        ...(head ? { enable_podman: true } : { enable_docker: true }),
      },
    });
    expect(d.state.container('sam')?.sshKeys).toEqual([KEY]);
    expect(d.state.container('sam')?.podmanEnabled).toBe(true);
    for (const timeout of [30, '30']) {
      await ok(d, 'post', '/v1/containers/sam/stop', '/v1/containers/{username}/stop', {
        body: { force: false, timeout },
      });
      await ok(d, 'post', '/v1/containers/sam/start', '/v1/containers/{username}/start');
    }
  });

  test('bad bodies and query values are 400 InvalidArgument', async () => {
    await using d = daemonFor(generation);
    const bad = async (method: string, path: string, options: Call) =>
      expect(await rpcError(d, method, path, 400, options)).toStartWith(
        'rpc error: code = InvalidArgument desc = ',
      );
    await bad('POST', '/v1/containers', { raw: '{"username":' });
    await bad('POST', '/v1/containers', { raw: '[1]' });
    await bad('POST', '/v1/containers', { body: { username: 'x', async: 'true' } });
    await bad('POST', '/v1/containers/alice/stop', { body: { timeout: 'soon' } });
    await bad('DELETE', '/v1/containers/alice?force=yes', {});
    expect(d.state.container('alice')).toBeDefined();
  });

  test('unknown paths are 404 and wrong methods 405, after authentication', async () => {
    await using d = daemonFor(generation);
    expect(await rpcError(d, 'GET', '/v1/nothing', 404)).toBe(
      'rpc error: code = NotFound desc = Not Found',
    );
    expect(await rpcError(d, 'PUT', '/v1/containers', 405)).toContain('Method Not Allowed');
    await authError(
      d,
      '/v1/nothing',
      { token: null },
      '{"error": "missing authorization header", "code": 401}\n',
    );
  });

  test('/health needs no token', async () => {
    await using d = daemonFor(generation);
    const res = await call(d, 'GET', '/health', { token: null });
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ status: 'healthy' });
  });
});

describe.each(['v0.3', 'head'] as const)('%s fake: the auth middleware (§3.2)', (generation) => {
  const head = generation === 'head';

  test('missing header and wrong scheme', async () => {
    await using d = daemonFor(generation);
    await authError(
      d,
      '/v1/containers',
      { token: null },
      '{"error": "missing authorization header", "code": 401}\n',
    );
    const format =
      '{"error": "invalid authorization header format, expected \'Bearer <token>\'", "code": 401}\n';
    await authError(
      d,
      '/v1/containers',
      { token: null, headers: { authorization: `Basic ${TOKEN}` } },
      format,
    );
    await authError(
      d,
      '/v1/containers',
      { token: null, headers: { authorization: TOKEN } },
      format,
    );
  });

  test('the scheme is case-insensitive', async () => {
    await using d = daemonFor(generation);
    const res = await call(d, 'GET', '/v1/containers', {
      token: null,
      headers: { authorization: `bEaReR ${TOKEN}` },
    });
    expect(res.status).toBe(200);
  });

  test('bad and expired tokens: library text at v0.3, generic at HEAD', async () => {
    await using d = daemonFor(generation);
    const text = (reason: string) =>
      head
        ? '{"error": "invalid token", "code": 401}\n'
        : `{"error": "invalid token: failed to parse token: ${reason}", "code": 401}\n`;
    await authError(
      d,
      '/v1/containers',
      { token: EXPIRED },
      text('token has invalid claims: token is expired'),
    );
    await authError(
      d,
      '/v1/containers',
      { token: 'aaa.bbb.ccc' },
      text('token signature is invalid: signature is invalid'),
    );
    await authError(
      d,
      '/v1/containers',
      { token: 'garbage' },
      text('token is malformed: token contains an invalid number of segments'),
    );
  });

  test('a rotated token replaces the old one', async () => {
    await using d = daemonFor(generation);
    d.state.token = 'new-token';
    expect((await call(d, 'GET', '/v1/containers')).status).toBe(401);
    expect((await call(d, 'GET', '/v1/containers', { token: 'new-token' })).status).toBe(200);
  });
});

describe('generation-specific behaviour', () => {
  test('v0.3: start/stop can reproduce the original 500 "not implemented yet"', async () => {
    await using d = daemonFor('v0.3', { v03StartStopUnimplemented: true });
    for (const action of ['start', 'stop']) {
      expect(await rpcError(d, 'POST', `/v1/containers/bob/${action}`, 500)).toBe(
        'rpc error: code = Unknown desc = not implemented yet',
      );
    }
  });

  test('v0.3: SSH-key routes were never implemented (unless asked)', async () => {
    await using d = daemonFor('v0.3');
    const error = await rpcError(d, 'POST', '/v1/containers/alice/ssh-keys', 500, {
      body: { sshPublicKey: KEY },
    });
    expect(error).toBe('rpc error: code = Unknown desc = not implemented yet');
    await using served = daemonFor('v0.3', { v03SshKeysImplemented: true });
    const added = await ok(
      served,
      'post',
      '/v1/containers/alice/ssh-keys',
      '/v1/containers/{username}/ssh-keys',
      {
        body: { sshPublicKey: KEY },
      },
    );
    expect(added.totalKeys).toBe(1);
  });

  test('HEAD: add and remove an SSH key (key URL-encoded in the path)', async () => {
    await using d = daemonFor('head');
    const added = await ok(
      d,
      'post',
      '/v1/containers/alice/ssh-keys',
      '/v1/containers/{username}/ssh-keys',
      {
        body: { ssh_public_key: KEY },
      },
    );
    expect(added).toEqual({ message: 'SSH key added successfully', totalKeys: 1 });
    expect(
      await rpcError(d, 'POST', '/v1/containers/alice/ssh-keys', 400, {
        body: { sshPublicKey: 'nope' },
      }),
    ).toContain('InvalidArgument');
    const path = `/v1/containers/alice/ssh-keys/${encodeURIComponent(KEY)}`;
    const removed = await ok(
      d,
      'delete',
      path,
      '/v1/containers/{username}/ssh-keys/{sshPublicKey}',
    );
    expect(removed).toEqual({ message: 'SSH key removed successfully', totalKeys: 0 });
    expect(d.requests.at(-1)?.path).toBe(path);
    expect(d.requests.at(-1)?.path).toContain('%2Fs%2BQ');
    await rpcError(d, 'DELETE', path, 404);
  });

  test('HEAD: another tenant’s container is 403 PermissionDenied', async () => {
    await using d = daemonFor('head', { forbiddenUsernames: ['bob'] });
    const res = await call(d, 'GET', '/v1/containers/bob');
    expect(res.status).toBe(403);
    expect(res.text).toBe(
      '{"code":403,"error":"rpc error: code = PermissionDenied desc = not authorized for this tenant"}\n',
    );
    await rpcError(d, 'POST', '/v1/containers', 403, { body: { username: 'bob' } });
    await ok(d, 'get', '/v1/containers/alice', '/v1/containers/{username}');
  });

  test('HEAD: system info is admin-only', async () => {
    await using d = daemonFor('head', { admin: false });
    expect(await rpcError(d, 'GET', '/v1/system/info', 403)).toBe(
      'rpc error: code = PermissionDenied desc = role required: admin',
    );
  });

  test('HEAD: repeated auth failures turn into 429', async () => {
    await using d = daemonFor('head', { authFailureLimit: 2 });
    await call(d, 'GET', '/v1/containers', { token: 'x' });
    await call(d, 'GET', '/v1/containers', { token: 'y' });
    const res = await call(d, 'GET', '/v1/containers');
    expect(res.status).toBe(429);
    expect(res.text).toBe(
      '{"error": "too many failed authentication attempts; try again later", "code": 429}\n',
    );
  });

  test('HEAD: get can carry metrics when asked', async () => {
    await using d = daemonFor('head', { headGetMetrics: true });
    const body = await ok(d, 'get', '/v1/containers/alice', '/v1/containers/{username}');
    expect(body.metrics).toMatchObject({ name: 'alice-container', processCount: 42 });
  });

  test('Go’s encoder escapes <, > and & in error strings', async () => {
    await using d = daemonFor('v0.3');
    d.fail('getContainer', { status: 500, body: { code: 500, error: 'a<b>&c' } });
    const res = await call(d, 'GET', '/v1/containers/alice');
    expect(res.text).toBe('{"code":500,"error":"a\\u003cb\\u003e\\u0026c"}\n');
  });
});

describe('test harness features', () => {
  test('records method, raw path, query, headers and parsed body', async () => {
    await using d = daemonFor('v0.3');
    await call(d, 'POST', '/v1/containers/alice/stop', { body: { force: true } });
    await call(d, 'GET', '/v1/containers/a%20b?x=1');
    const [stop, get] = d.requests;
    expect(stop).toMatchObject({
      method: 'POST',
      path: '/v1/containers/alice/stop',
      route: 'stopContainer',
      body: { force: true },
      status: 200,
      aborted: false,
    });
    expect(stop?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(get).toMatchObject({ path: '/v1/containers/a%20b', query: { x: '1' }, status: 500 });
  });

  test('latency delays responses, and an aborted request is recorded and changes nothing', async () => {
    await using d = daemonFor('v0.3', { latencyMs: 300 });
    const started = performance.now();
    await call(d, 'GET', '/v1/containers');
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    const attempt = fetch(`${d.url}/v1/containers`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ username: 'late' }),
      signal: AbortSignal.timeout(50),
    });
    await expect(attempt).rejects.toThrow();
    await until(async () => d.requests.at(-1)?.aborted === true);
    expect(d.requests.at(-1)?.status).toBeUndefined();
    await Bun.sleep(350);
    expect(d.state.container('late')).toBeUndefined();
    d.setLatency(0);
    const quick = performance.now();
    await call(d, 'GET', '/v1/containers');
    expect(performance.now() - quick).toBeLessThan(200);
  });

  test('fail() injects a one-shot response, then the route works again', async () => {
    await using d = daemonFor('head');
    d.fail('listContainers', { status: 503, body: 'upstream unavailable' });
    const failed = await call(d, 'GET', '/v1/containers');
    expect(failed.status).toBe(503);
    expect(failed.text).toBe('upstream unavailable');
    expect((await call(d, 'GET', '/v1/containers')).status).toBe(200);
    d.fail('*', { status: 502, body: { code: 502, error: 'bad gateway' } }, 2);
    expect((await call(d, 'GET', '/v1/metrics')).status).toBe(502);
    expect((await call(d, 'GET', '/v1/system/info')).status).toBe(502);
    expect((await call(d, 'GET', '/v1/system/info')).status).toBe(200);
  });

  test('a hanging route answers nothing until the client gives up', async () => {
    await using d = daemonFor('head');
    d.fail('getContainer', { hang: true });
    const started = performance.now();
    const attempt = fetch(`${d.url}/v1/containers/alice`, {
      headers: { authorization: `Bearer ${TOKEN}` },
      signal: AbortSignal.timeout(100),
    });
    await expect(attempt).rejects.toThrow();
    await until(async () => d.requests.at(-1)?.aborted === true);
    expect(performance.now() - started).toBeGreaterThanOrEqual(95);
  });

  test('close resets the connection without a response', async () => {
    await using d = daemonFor('v0.3');
    d.fail('getSystemInfo', { close: true });
    const error = await fetch(`${d.url}/v1/system/info`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((error as { code?: string } | undefined)?.code).toBe('ECONNRESET');
    expect((await call(d, 'GET', '/v1/system/info')).status).toBe(200);
  });

  test('stop() shuts the server and releases hanging requests', async () => {
    const d = daemonFor('v0.3');
    d.fail('listContainers', { hang: true });
    const pending = fetch(`${d.url}/v1/containers`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    }).catch(() => 'closed');
    await until(async () => d.requests.length === 1);
    await d.stop();
    await pending;
    await expect(fetch(`${d.url}/health`)).rejects.toThrow();
  });
});
