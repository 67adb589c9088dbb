import { describe, expect, test } from 'bun:test';
import * as v from 'valibot';
import { type AppOptions, serve, withoutPaths } from '../../src/daemon/app.ts';
import { createAuthenticator } from '../../src/daemon/auth.ts';
import { DaemonError } from '../../src/daemon/errors.ts';
import { WireImagesSchema } from '../../src/daemon/routes/images.ts';
import { signToken } from '../../src/shared/jwt.ts';
import { MAX_SSH_KEYS } from '../../src/shared/ssh-key.ts';
import { MemoryBackend } from '../support/memory-backend.ts';

const SECRET = 'k8Q2v9ZrX4mN7pL1sT6wY3bH5jD0gF2c';
const ED25519 =
  'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq5sFq2wA0hB3xG8cW1Wq2lXzQ2l0cO0z9d3vP6e7Gk alice@laptop';

const token = async (username: string, roles: string[]) =>
  (await signToken({ username, roles, lifetimeMs: 3_600_000, secret: SECRET })).token;

type Options = Partial<Omit<AppOptions, 'backend' | 'auth'>>;

async function startDaemon(options: Options = {}) {
  const backend = new MemoryBackend();
  const lines: string[] = [];
  const log = (line: string) => lines.push(line);
  const auth = createAuthenticator({ secret: SECRET, log });
  const server = serve({ backend, auth, hostname: '127.0.0.1', port: 0, log, ...options });
  const base = `http://127.0.0.1:${server.port}`;
  const admin = await token('mcp-client', ['admin']);
  const alice = await token('alice', ['user']);
  /** Calls the API as `as` (a token), with a JSON body when given (a string is sent as is). */
  const call = (method: string, path: string, body?: unknown, as = admin, headers = {}) =>
    fetch(`${base}${path}`, {
      method,
      headers: { Authorization: `Bearer ${as}`, 'Content-Type': 'application/json', ...headers },
      ...(body === undefined
        ? {}
        : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
  return {
    backend,
    lines,
    base,
    admin,
    alice,
    call,
    [Symbol.asyncDispose]: () => server.stop(true),
  };
}

/** A JSON error response: honest status, `{"code","error"}` with upstream's "rpc error" text. */
async function expectError(
  response: Response,
  status: number,
  grpc: string,
  desc: RegExp | string,
) {
  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')).toBe('application/json');
  const body = (await response.json()) as { code: number; error: string };
  expect(Object.keys(body)).toEqual(['code', 'error']);
  expect(body.code).toBe(status);
  const prefix = `rpc error: code = ${grpc} desc = `;
  expect(body.error.startsWith(prefix)).toBe(true);
  const rest = body.error.slice(prefix.length);
  if (typeof desc === 'string') expect(rest).toBe(desc);
  else expect(rest).toMatch(desc);
}

async function ok(response: Response): Promise<Record<string, unknown>> {
  if (response.status !== 200) throw new Error(`${response.status}: ${await response.text()}`);
  expect(response.headers.get('content-type')).toBe('application/json');
  return (await response.json()) as Record<string, unknown>;
}

const CONTAINER_KEYS = [
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
  'dockerEnabled',
];
const METRICS_KEYS = [
  'name',
  'cpuUsageSeconds',
  // This project's addition: a number, percent of one core.
  'cpuUsagePercent',
  'memoryUsageBytes',
  'memoryPeakBytes',
  'diskUsageBytes',
  'networkRxBytes',
  'networkTxBytes',
  'processCount',
];

/** GET /v1/containers/{username} and start add one field to upstream's container, at the end. */
const REACHABLE_KEYS = [...CONTAINER_KEYS, 'sshCommand'];
/** GET's container also says what the daemon knows of its create (ContainerCreateStatus). */
const GET_KEYS = [...REACHABLE_KEYS, 'phase', 'error', 'createMessage'];

function expectWireContainer(c: unknown, keys = CONTAINER_KEYS) {
  const container = c as Record<string, unknown>;
  expect(Object.keys(container)).toEqual(keys);
  expect(container.createdAt).toBeTypeOf('string');
  expect(container.updatedAt).toBeTypeOf('string');
  expect(container.state).toMatch(/^CONTAINER_STATE_[A-Z]+$/);
}

describe('health and routing', () => {
  test('/health needs no token and reports Incus', async () => {
    await using d = await startDaemon();
    const response = await fetch(`${d.base}/health`);
    expect(await ok(response)).toEqual({ status: 'healthy', incus: 'reachable' });
    d.backend.reachable = false;
    expect(await ok(await fetch(`${d.base}/health`))).toEqual({
      status: 'healthy',
      incus: 'unreachable',
    });
  });

  test('unknown route is a JSON 404, a known path with the wrong method a 405', async () => {
    await using d = await startDaemon();
    await expectError(
      await d.call('GET', '/v1/nothing'),
      404,
      'NotFound',
      'no route for GET /v1/nothing',
    );
    await expectError(await d.call('GET', '/v1/containers/'), 404, 'NotFound', /no route/);
    // Without a token nothing under /v1 is found or not found: 401, as upstream's middleware does.
    const anonymousCalls: Array<[string, string]> = [
      ['GET', '/v1/nothing'],
      ['PUT', '/v1/system/info'],
    ];
    for (const [method, path] of anonymousCalls) {
      const anonymous = await fetch(`${d.base}${path}`, { method });
      expect(anonymous.status).toBe(401);
      expect(await anonymous.text()).toBe(
        '{"error": "missing authorization header", "code": 401}\n',
      );
    }
    const wrong = await d.call('PUT', '/v1/system/info');
    expect(wrong.headers.get('allow')).toBe('GET');
    await expectError(wrong, 405, 'Unimplemented', /method PUT not allowed; use GET/);
  });

  test('one log line per request: address, method, path, status, ms, user; never the token', async () => {
    await using d = await startDaemon();
    await ok(await d.call('GET', '/v1/containers?username=alice'));
    const line = d.lines.find((l) => l.includes('GET /v1/containers'));
    expect(line).toMatch(/^127\.0\.0\.1 GET \/v1\/containers 200 \d+ms user=mcp-client$/);
    expect(d.lines.join('\n')).not.toContain(d.admin.split('.')[1] as string);
  });
});

describe('POST /v1/containers', () => {
  test('camelCase body: validated, normalised, passed to the backend, answered in wire shape', async () => {
    await using d = await startDaemon();
    const body = await ok(
      await d.call('POST', '/v1/containers', {
        username: 'alice',
        resources: { cpu: '8', memory: '16gb', disk: '100GiB' },
        sshKeys: [`  ${ED25519}  `],
        labels: { team: 'ml' },
        image: 'debian/12',
        enableDocker: true,
        someFutureField: { ignored: true },
      }),
    );
    expect(Object.keys(body)).toEqual(['container', 'message', 'sshCommand']);
    expectWireContainer(body.container);
    expect(body.message).toBe('Container alice-container created successfully');
    expect(body.sshCommand).toBe('ssh alice@10.98.0.10');
    expect(d.backend.calls).toEqual([
      {
        method: 'create',
        args: [
          {
            username: 'alice',
            cpu: 8,
            memory: '16GB',
            disk: '100GiB',
            sshKeys: [ED25519],
            labels: { team: 'ml' },
            image: 'debian/12',
            enableDocker: true,
          },
          { async: false },
        ],
      },
    ]);
  });

  test("snake_case names work, and the defaults are upstream's", async () => {
    await using d = await startDaemon();
    await ok(
      await d.call('POST', '/v1/containers', {
        username: 'bob',
        ssh_keys: [ED25519],
        enable_docker: true,
        async: true,
      }),
    );
    await ok(await d.call('POST', '/v1/containers', { username: 'carol' }));
    const [bob, carol] = d.backend.calls.map((c) => c.args);
    expect(bob).toEqual([
      {
        username: 'bob',
        cpu: 4,
        memory: '4GB',
        disk: '50GB',
        sshKeys: [ED25519],
        labels: {},
        image: 'images:ubuntu/24.04',
        enableDocker: true,
        defaulted: ['cpu', 'memory', 'disk', 'image'],
      },
      { async: true },
    ]);
    // Empty strings and nulls mean "default", as protojson reads them.
    expect(carol?.[0]).toMatchObject({ cpu: 4, memory: '4GB', disk: '50GB', enableDocker: false });
  });

  test('empty strings mean defaults; cpu may be a number', async () => {
    await using d = await startDaemon();
    await ok(
      await d.call('POST', '/v1/containers', {
        username: 'dave',
        resources: { cpu: 2, memory: '', disk: null },
        image: '',
        labels: null,
      }),
    );
    expect(d.backend.calls[0]?.args[0]).toMatchObject({
      cpu: 2,
      memory: '4GB',
      disk: '50GB',
      image: 'images:ubuntu/24.04',
      // So a small host may lower these two, never the cpu that was asked for; and the empty
      // image is the daemon's --default-image.
      defaulted: ['memory', 'disk', 'image'],
    });
    await ok(
      await d.call('POST', '/v1/containers', {
        username: 'erin',
        resources: { cpu: '4', memory: '4GB', disk: '50GB' },
        image: 'images:ubuntu/24.04',
      }),
    );
    expect(d.backend.calls[1]?.args[0]).not.toHaveProperty('defaulted');
  });

  test.each([
    ['enablePodman: true', { enablePodman: true }, true],
    ['enable_podman: true', { enable_podman: true }, true],
    ['enablePodman: false', { enablePodman: false }, false],
    ['neither', {}, false],
  ])('enablePodman is a synonym of enableDocker (%s)', async (_name, flags, expected) => {
    await using d = await startDaemon();
    await ok(await d.call('POST', '/v1/containers', { username: 'erin', ...flags }));
    expect(d.backend.calls[0]?.args[0]).toMatchObject({ enableDocker: expected });
  });

  test('a key whose comment holds shell text is a valid key, stored verbatim', async () => {
    await using d = await startDaemon();
    const key = `${ED25519.split(' ').slice(0, 2).join(' ')} $(rm -rf /); \`reboot\` && echo 'x' | sh`;
    const body = await ok(
      await d.call('POST', '/v1/containers', { username: 'frank', sshKeys: [key] }),
    );
    expect((body.container as { sshKeys: string[] }).sshKeys).toEqual([key]);
  });

  const invalid: Array<[string, unknown, RegExp]> = [
    [
      'no username',
      { resources: { cpu: '4' } },
      /^username is required: expected 1 to 32 characters/,
    ],
    [
      'capital letters',
      { username: 'Alice' },
      /^invalid username: expected 1 to 32 characters of lowercase/,
    ],
    ['path characters', { username: '../admin' }, /^invalid username/],
    ['too long', { username: 'a'.repeat(33) }, /^invalid username/],
    [
      'a system account',
      { username: 'root' },
      /^invalid username: expected a name that is not a system account/,
    ],
    ['username a number', { username: 42 }, /^invalid username/],
    [
      'memory without unit',
      { username: 'alice', resources: { memory: '4' } },
      /^invalid resources\.memory: expected a size .*with a unit/,
    ],
    [
      'disk nonsense',
      { username: 'alice', resources: { disk: 'lots' } },
      /^invalid resources\.disk: expected a size/,
    ],
    [
      'cpu zero',
      { username: 'alice', resources: { cpu: '0' } },
      /^invalid resources\.cpu: expected a whole number of CPU cores/,
    ],
    ['cpu fraction', { username: 'alice', resources: { cpu: 1.5 } }, /^invalid resources\.cpu/],
    [
      'resources a string',
      { username: 'alice', resources: '4 cores' },
      /^invalid resources: expected an object/,
    ],
    [
      'key with newline',
      { username: 'alice', sshKeys: [`${ED25519}\nssh-ed25519 AAAA evil`] },
      /^invalid sshKeys\[0\]: expected one OpenSSH public key on one line/,
    ],
    [
      'second key bad',
      { username: 'alice', ssh_keys: [ED25519, 'ssh-rsa notbase64!'] },
      /^invalid ssh_keys\[1\]: expected one OpenSSH/,
    ],
    [
      'keys not a list',
      { username: 'alice', sshKeys: ED25519 },
      /^invalid sshKeys: expected an array/,
    ],
    [
      'image with space',
      { username: 'alice', image: 'debian/12 --privileged' },
      /^invalid image: expected an image name/,
    ],
    ['image with option shape', { username: 'alice', image: '-x' }, /^invalid image/],
    [
      'image too long',
      { username: 'alice', image: `a${'b'.repeat(300)}` },
      /^invalid image: expected an image name like .* at most 255 characters\)$/,
    ],
    [
      'image with shell characters',
      { username: 'alice', image: 'debian/12;reboot' },
      /^invalid image: expected an image name like "images:ubuntu\/24\.04"/,
    ],
    ['image with a quote', { username: 'alice', image: 'debian/12"' }, /^invalid image/],
    [
      'too many keys',
      { username: 'alice', sshKeys: Array.from({ length: MAX_SSH_KEYS + 1 }, () => ED25519) },
      new RegExp(`^invalid sshKeys: expected at most ${MAX_SSH_KEYS} keys$`),
    ],
    [
      'label value not a string',
      { username: 'alice', labels: { team: 1 } },
      /^invalid labels\.team: expected a string value/,
    ],
    [
      'label name odd',
      { username: 'alice', labels: { 'bad key': 'x' } },
      /^invalid labels: expected label names/,
    ],
    [
      'too many labels',
      {
        username: 'alice',
        labels: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])),
      },
      /^invalid labels: expected at most 64 labels/,
    ],
    [
      'enableDocker a string',
      { username: 'alice', enableDocker: 'true' },
      /^invalid enableDocker: expected true or false/,
    ],
    [
      'both names given',
      { username: 'alice', sshKeys: [ED25519], ssh_keys: [ED25519] },
      /give either sshKeys or ssh_keys, not both/,
    ],
    [
      'docker and podman disagree',
      { username: 'alice', enableDocker: true, enablePodman: false },
      /disagree/,
    ],
    ['body an array', [{ username: 'alice' }], /^the request body must be a JSON object$/],
  ];

  test.each(invalid)('400 for %s, and nothing is created', async (_name, body, message) => {
    await using d = await startDaemon();
    await expectError(
      await d.call('POST', '/v1/containers', body),
      400,
      'InvalidArgument',
      message,
    );
    expect(d.backend.calls).toEqual([]);
  });

  test('malformed JSON is a 400 InvalidArgument', async () => {
    await using d = await startDaemon();
    await expectError(
      await d.call('POST', '/v1/containers', '{"username": "alice",'),
      400,
      'InvalidArgument',
      /^malformed JSON body/,
    );
    expect(d.backend.calls).toEqual([]);
  });

  test('a body over 1 MiB is bad input: 400 with the reason, without being read whole', async () => {
    await using d = await startDaemon();
    const big = JSON.stringify({ username: 'alice', labels: { a: 'x'.repeat(2 * 1024 * 1024) } });
    const refused = await d.call('POST', '/v1/containers', big);
    // The rest of the body is never read, so the connection cannot serve another request.
    expect(refused.headers.get('connection')).toBe('close');
    await expectError(refused, 400, 'InvalidArgument', 'request body larger than 1 MiB');
    // Far over the limit too (past Bun's own cap, which would answer 413 itself).
    const huge = JSON.stringify({ username: 'alice', labels: { a: 'x'.repeat(8 * 1024 * 1024) } });
    await expectError(
      await d.call('POST', '/v1/containers', huge),
      400,
      'InvalidArgument',
      'request body larger than 1 MiB',
    );
    // Without a Content-Length (streamed), the limit holds too.
    const stream = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 3; i++)
          controller.enqueue(new TextEncoder().encode(' '.repeat(512 * 1024)));
        controller.close();
      },
    });
    const streamed = await fetch(`${d.base}/v1/containers`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${d.admin}` },
      body: stream,
    });
    await expectError(streamed, 400, 'InvalidArgument', 'request body larger than 1 MiB');
    expect(d.backend.calls).toEqual([]);
  });

  test('an existing container is 409 AlreadyExists', async () => {
    await using d = await startDaemon();
    d.backend.seed('alice');
    await expectError(
      await d.call('POST', '/v1/containers', { username: 'alice' }),
      409,
      'AlreadyExists',
      'container alice-container already exists',
    );
  });
});

/** A raw HTTP/1.1 connection: what the server sent, and whether it closed the connection. */
async function rawConnection(base: string) {
  const { hostname, port } = new URL(base);
  const seen = { text: '', closed: false };
  const socket = await Bun.connect({
    hostname,
    port: Number(port),
    socket: {
      data(_socket, data) {
        seen.text += data.toString();
      },
      close() {
        seen.closed = true;
      },
    },
  });
  return { seen, socket };
}

/**
 * POSTs to `path` with a 200-byte Content-Length, then sends one byte every 50 ms (10 s for the
 * whole body) until the server closes the connection; `sent` is how many bytes went.
 */
async function trickle(base: string, path: string, token: string) {
  const { seen, socket } = await rawConnection(base);
  const length = 200;
  socket.write(
    `POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`,
  );
  let sent = 0;
  while (!seen.closed && sent < length) {
    await Bun.sleep(50);
    if (!seen.closed) socket.write(' ');
    sent += 1;
  }
  return { ...seen, complete: sent === length };
}

describe('bodies arrive within a deadline', () => {
  test('a body trickled slower than the deadline is answered 408 and its connection closed', async () => {
    await using d = await startDaemon({ bodyDeadlineMs: 200 });
    d.backend.seed('alice', { state: 'CONTAINER_STATE_STOPPED' });
    // The server gives up long before the trickle would end.
    const seen = await trickle(d.base, '/v1/containers/alice/stop', d.admin);
    expect(seen.closed).toBe(true);
    expect(seen.complete).toBe(false);
    expect(seen.text).toStartWith('HTTP/1.1 408 ');
    expect(seen.text.toLowerCase()).toContain('connection: close');
    expect(seen.text).toContain(
      '{"code":408,"error":"rpc error: code = DeadlineExceeded desc = request body did not arrive within 200 ms"}',
    );
    expect(d.backend.calls).toEqual([]);
    expect(
      d.lines.some((l) => /POST \/v1\/containers\/alice\/stop 408 \d+ms user=mcp-client$/.test(l)),
    ).toBe(true);
  }, 15_000);

  test('a request refused before its body is read closes its connection too', async () => {
    await using d = await startDaemon({ bodyDeadlineMs: 200 });
    const seen = await trickle(d.base, '/v1/containers', 'not-a-token');
    expect(seen.closed).toBe(true);
    expect(seen.complete).toBe(false);
    expect(seen.text).toStartWith('HTTP/1.1 401 ');
  }, 15_000);

  test('a body that comes at once works, and its operation may run past the deadline', async () => {
    await using d = await startDaemon({ bodyDeadlineMs: 200 });
    d.backend.seed('alice', { state: 'CONTAINER_STATE_RUNNING' });
    const { seen, socket } = await rawConnection(d.base);
    const body = '{"force":true}';
    socket.write(
      `POST /v1/containers/alice/stop HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${d.admin}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    );
    while (!seen.text.includes('}')) await Bun.sleep(20);
    expect(seen.text).toStartWith('HTTP/1.1 200 ');
    expect(seen.closed).toBe(false);
    socket.end();

    // An operation longer than the deadline keeps its connection once the body is in.
    const stop = d.backend.stop.bind(d.backend);
    d.backend.stop = async (username, options) => {
      await Bun.sleep(600);
      return stop(username, options);
    };
    await ok(await d.call('POST', '/v1/containers/alice/stop', { force: true }));
    expect(d.backend.calls.filter((c) => c.method === 'stop').length).toBe(2);
  });
});

describe('reading containers', () => {
  test('list: {containers, totalCount} with every field, filters passed through', async () => {
    await using d = await startDaemon();
    expect(await ok(await d.call('GET', '/v1/containers'))).toEqual({
      containers: [],
      totalCount: 0,
    });
    d.backend.seed('alice', { labels: { team: 'ml' } });
    d.backend.seed('bob', { state: 'CONTAINER_STATE_STOPPED', resources: null, network: null });
    const all = await ok(await d.call('GET', '/v1/containers'));
    expect(all.totalCount).toBe(2);
    const containers = all.containers as Array<Record<string, unknown>>;
    for (const c of containers) expectWireContainer(c);
    expect(containers[1]).toMatchObject({ resources: null, network: null });
    const running = await ok(await d.call('GET', '/v1/containers?state=CONTAINER_STATE_RUNNING'));
    expect(running.totalCount).toBe(1);
    const labelled = await ok(await d.call('GET', '/v1/containers?labelFilter[team]=ml'));
    expect((labelled.containers as Array<{ username: string }>).map((c) => c.username)).toEqual([
      'alice',
    ]);
    expect(d.backend.calls.at(-1)?.args[0]).toEqual({ labels: { team: 'ml' } });
    await expectError(
      await d.call('GET', '/v1/containers?state=RUNNING'),
      400,
      'InvalidArgument',
      /^invalid state "RUNNING": expected one of CONTAINER_STATE_UNSPECIFIED/,
    );
  });

  test('get: {container, metrics}; int64 as strings even if the backend slips', async () => {
    await using d = await startDaemon();
    d.backend.seed('alice', { createdAt: 1736930000 as unknown as string });
    const body = await ok(await d.call('GET', '/v1/containers/alice'));
    expect(Object.keys(body)).toEqual(['container', 'metrics']);
    expectWireContainer(body.container, GET_KEYS);
    expect(body.container).toMatchObject({
      name: 'alice-container',
      username: 'alice',
      createdAt: '1736930000',
      updatedAt: '0',
      // No key, so no SSH command.
      sshCommand: '',
    });
    d.backend.seed('bob', { sshKeys: [ED25519] });
    const bob = await ok(await d.call('GET', '/v1/containers/bob'));
    expect(bob.container).toMatchObject({ sshCommand: 'ssh bob@10.98.0.10' });
    // The list keeps upstream's container exactly.
    const list = await ok(await d.call('GET', '/v1/containers'));
    for (const c of list.containers as unknown[]) expectWireContainer(c);
    expect(body.metrics).toBeNull();
    await expectError(
      await d.call('GET', '/v1/containers/nobody'),
      404,
      'NotFound',
      'container for user nobody not found',
    );
  });

  test.each(['%2E%2E%2Fadmin', 'Alice', 'a_b', '%ZZ', 'x'.repeat(40)])(
    'a path username %p is a 400 that never reaches the backend',
    async (segment) => {
      await using d = await startDaemon();
      await expectError(
        await d.call('GET', `/v1/containers/${segment}`),
        400,
        'InvalidArgument',
        /^invalid username ".*": expected 1 to 32/,
      );
      await expectError(
        await d.call('DELETE', `/v1/containers/${segment}`),
        400,
        'InvalidArgument',
        /^invalid username/,
      );
      await expectError(
        await d.call('GET', `/v1/metrics/${segment}`),
        400,
        'InvalidArgument',
        /^invalid username/,
      );
      expect(d.backend.calls).toEqual([]);
    },
  );

  test('metrics: all and one, int64 strings, processCount a number', async () => {
    await using d = await startDaemon();
    expect(await ok(await d.call('GET', '/v1/metrics'))).toEqual({ metrics: [] });
    d.backend.seed('alice');
    d.backend.seed('bob');
    const all = await ok(await d.call('GET', '/v1/metrics'));
    const metrics = all.metrics as Array<Record<string, unknown>>;
    expect(metrics).toHaveLength(2);
    expect(Object.keys(metrics[0] as object)).toEqual(METRICS_KEYS);
    expect(metrics[0]).toMatchObject({
      cpuUsageSeconds: '12',
      memoryUsageBytes: '536870912',
      processCount: 42,
    });
    const one = await ok(await d.call('GET', '/v1/metrics/bob'));
    expect((one.metrics as Array<{ name: string }>).map((m) => m.name)).toEqual(['bob-container']);
    const byQuery = await ok(await d.call('GET', '/v1/metrics?username=alice'));
    expect((byQuery.metrics as Array<{ name: string }>).map((m) => m.name)).toEqual([
      'alice-container',
    ]);
  });

  test('system info: {info} with every field, int64 strings', async () => {
    await using d = await startDaemon();
    d.backend.seed('alice');
    const body = await ok(await d.call('GET', '/v1/system/info'));
    expect(body.info).toEqual({
      incusVersion: '6.0.4',
      os: 'Debian GNU/Linux',
      kernelVersion: '6.1.0-test',
      totalCpus: 2,
      totalMemoryBytes: '4294967296',
      availableMemoryBytes: '2147483648',
      totalDiskBytes: '10737418240',
      availableDiskBytes: '5368709120',
      containersRunning: 1,
      containersStopped: 0,
      containersTotal: 1,
      hostname: 'testhost',
      uptimeSeconds: '3600',
      // HEAD's load averages as numbers; the committed limits (an addition) as int32 / int64.
      cpuLoad1min: 0.5,
      cpuLoad5min: 0.25,
      cpuLoad15min: 0.125,
      committedCpus: 4,
      committedMemoryBytes: '4000000000',
      committedDiskBytes: '50000000000',
    });
  });
});

describe('changing containers', () => {
  test('delete: message and containerName; force from the query', async () => {
    await using d = await startDaemon();
    d.backend.seed('alice');
    const body = await ok(await d.call('DELETE', '/v1/containers/alice?force=true'));
    expect(body).toEqual({
      message: 'Container for user alice deleted successfully',
      containerName: 'alice-container',
    });
    expect(d.backend.calls[0]).toEqual({ method: 'delete', args: ['alice', { force: true }] });
    // Go's strconv.ParseBool spellings, as grpc-gateway reads query parameters.
    for (const [value, force] of [
      ['T', true],
      ['1', true],
      ['TRUE', true],
      ['F', false],
      ['0', false],
      ['', false],
    ] as const) {
      d.backend.seed('alice');
      await ok(await d.call('DELETE', `/v1/containers/alice?force=${value}`));
      expect(d.backend.calls.at(-1)).toEqual({ method: 'delete', args: ['alice', { force }] });
    }
    await expectError(
      await d.call('DELETE', '/v1/containers/alice?force=maybe'),
      400,
      'InvalidArgument',
      'invalid force "maybe": expected true or false',
    );
  });

  test('start with no body, with HEAD fields, and stop with force and a string timeout', async () => {
    await using d = await startDaemon();
    d.backend.seed('alice', { state: 'CONTAINER_STATE_STOPPED' });
    const started = await ok(await d.call('POST', '/v1/containers/alice/start'));
    // v0.3's StartContainerResponse, with sshCommand in its container.
    expect(Object.keys(started)).toEqual(['message', 'container']);
    expect(started.message).toBe('Container for user alice started successfully');
    expectWireContainer(started.container, REACHABLE_KEYS);
    expect(started.container).toMatchObject({ state: 'CONTAINER_STATE_RUNNING' });
    await ok(
      await d.call('POST', '/v1/containers/alice/start', {
        waitForReady: true,
        readyTimeoutSeconds: '30',
      }),
    );
    await ok(await d.call('POST', '/v1/containers/alice/start', { wait_for_ready: true }));
    const stopped = await ok(
      await d.call('POST', '/v1/containers/alice/stop', { force: true, timeout: '30' }),
    );
    expect(Object.keys(stopped)).toEqual(['message', 'container']);
    expect(stopped).toMatchObject({
      message: 'Container for user alice stopped successfully',
      container: { state: 'CONTAINER_STATE_STOPPED' },
    });
    expect(d.backend.calls.at(-1)).toEqual({
      method: 'stop',
      args: ['alice', { force: true, timeout: 30 }],
    });
    await ok(await d.call('POST', '/v1/containers/alice/stop', ''));
    expect(d.backend.calls.at(-1)).toEqual({ method: 'stop', args: ['alice', { force: false }] });
    await expectError(
      await d.call('POST', '/v1/containers/alice/stop', { force: 'yes' }),
      400,
      'InvalidArgument',
      'invalid force: expected true or false',
    );
    for (const timeout of [-1, 3601, 2 ** 31 - 1]) {
      await expectError(
        await d.call('POST', '/v1/containers/alice/stop', { timeout }),
        400,
        'InvalidArgument',
        'invalid timeout: expected a number of seconds from 0 to 3600',
      );
    }
    await expectError(
      await d.call('POST', '/v1/containers/alice/start', { readyTimeoutSeconds: 86_400 }),
      400,
      'InvalidArgument',
      'invalid readyTimeoutSeconds: expected a number of seconds from 0 to 3600',
    );
    // A refused request reaches nothing.
    expect(d.backend.calls.at(-1)).toEqual({ method: 'stop', args: ['alice', { force: false }] });
  });

  test('ssh keys: add from the body, remove by URL-encoded path; totals', async () => {
    await using d = await startDaemon();
    d.backend.seed('alice');
    const added = await ok(
      await d.call('POST', '/v1/containers/alice/ssh-keys', {
        sshPublicKey: ED25519,
        username: 'ignored',
      }),
    );
    expect(added).toEqual({
      message: 'SSH key added to the container of user alice',
      totalKeys: 1,
    });
    const removed = await ok(
      await d.call('DELETE', `/v1/containers/alice/ssh-keys/${encodeURIComponent(ED25519)}`),
    );
    expect(removed).toEqual({
      message: 'SSH key removed from the container of user alice',
      totalKeys: 0,
    });
    expect(d.backend.calls.map((c) => c.args)).toEqual([
      ['alice', ED25519],
      ['alice', ED25519],
    ]);
    await expectError(
      await d.call('POST', '/v1/containers/alice/ssh-keys', {}),
      400,
      'InvalidArgument',
      /^sshPublicKey is required/,
    );
    await expectError(
      await d.call('POST', '/v1/containers/alice/ssh-keys', {
        ssh_public_key: `${ED25519}\nssh-rsa AAAA`,
      }),
      400,
      'InvalidArgument',
      /^invalid ssh_public_key: expected one OpenSSH public key on one line/,
    );
    await expectError(
      await d.call('DELETE', '/v1/containers/alice/ssh-keys/not-a-key'),
      400,
      'InvalidArgument',
      /^invalid sshPublicKey/,
    );
    expect(d.backend.calls).toHaveLength(2);
  });
});

describe('roles', () => {
  test('a non-admin acts only on its own container: 403 for others, exact body', async () => {
    await using d = await startDaemon();
    d.backend.seed('alice');
    d.backend.seed('bob');
    const others: Array<[string, string, unknown]> = [
      ['GET', '/v1/containers/bob', undefined],
      ['DELETE', '/v1/containers/bob', undefined],
      ['POST', '/v1/containers/bob/start', undefined],
      ['POST', '/v1/containers/bob/stop', undefined],
      ['POST', '/v1/containers/bob/ssh-keys', { sshPublicKey: ED25519 }],
      ['GET', '/v1/metrics/bob', undefined],
      ['POST', '/v1/containers', { username: 'bob' }],
    ];
    for (const [method, path, body] of others) {
      await expectError(
        await d.call(method, path, body, d.alice),
        403,
        'PermissionDenied',
        'not authorized for user bob',
      );
    }
    const denied = await d.call('GET', '/v1/containers/bob', undefined, d.alice);
    expect(await denied.text()).toBe(
      '{"code":403,"error":"rpc error: code = PermissionDenied desc = not authorized for user bob"}\n',
    );
    await expectError(
      await d.call('GET', '/v1/system/info', undefined, d.alice),
      403,
      'PermissionDenied',
      'role required: admin',
    );
    // Nothing of bob's was touched.
    expect(d.backend.calls).toEqual([]);
    expect(
      (await ok(await d.call('GET', '/v1/containers/alice', undefined, d.alice))).container,
    ).toMatchObject({ username: 'alice' });
  });

  test('list and metrics narrow silently to the caller', async () => {
    await using d = await startDaemon();
    d.backend.seed('alice');
    d.backend.seed('bob');
    const list = await ok(await d.call('GET', '/v1/containers', undefined, d.alice));
    expect((list.containers as Array<{ username: string }>).map((c) => c.username)).toEqual([
      'alice',
    ]);
    expect(list.totalCount).toBe(1);
    expect(
      await ok(await d.call('GET', '/v1/containers?username=bob', undefined, d.alice)),
    ).toEqual({ containers: [], totalCount: 0 });
    const metrics = await ok(await d.call('GET', '/v1/metrics', undefined, d.alice));
    expect((metrics.metrics as Array<{ name: string }>).map((m) => m.name)).toEqual([
      'alice-container',
    ]);
    expect(await ok(await d.call('GET', '/v1/metrics?username=bob', undefined, d.alice))).toEqual({
      metrics: [],
    });
    const carol = await token('carol', ['user']);
    expect(await ok(await d.call('GET', '/v1/metrics', undefined, carol))).toEqual({ metrics: [] });
    await ok(await d.call('POST', '/v1/containers', { username: 'carol' }, carol));
  });
  test('a non-admin token whose name is not a username owns nothing', async () => {
    await using d = await startDaemon();
    d.backend.seed('alice');
    const odd = await token('Mcp_Client', ['user']);
    expect(await ok(await d.call('GET', '/v1/containers', undefined, odd))).toEqual({
      containers: [],
      totalCount: 0,
    });
    expect(await ok(await d.call('GET', '/v1/metrics', undefined, odd))).toEqual({ metrics: [] });
    expect(d.backend.calls).toEqual([]);
  });
});

describe('backend failures and CORS', () => {
  test('Incus unreachable is 503, an unexpected error 500 (and logged)', async () => {
    await using d = await startDaemon();
    d.backend.failWith = new DaemonError(
      'unavailable',
      'Incus is not reachable at /var/lib/incus/unix.socket',
    );
    await expectError(
      await d.call('GET', '/v1/containers'),
      503,
      'Unavailable',
      'Incus is not reachable at /var/lib/incus/unix.socket',
    );
    d.backend.failWith = new Error('boom');
    await expectError(await d.call('GET', '/v1/system/info'), 500, 'Internal', 'boom');
    expect(d.lines.some((l) => l.includes('error: GET /v1/system/info: boom'))).toBe(true);
  });

  test("an internal error: Incus's whole message in the log, the 500 body without host paths", async () => {
    await using d = await startDaemon();
    d.backend.seed('alice');
    const incus =
      "Failed creating instance from image: open /var/lib/incus/storage-pools/default/images/9457f3/rootfs: no such file or directory (image 'debian/12' from https://images.linuxcontainers.org)";
    d.backend.failWith = new DaemonError('internal', incus);
    await expectError(
      await d.call('GET', '/v1/containers/alice'),
      500,
      'Internal',
      "Failed creating instance from image: open <path>: no such file or directory (image 'debian/12' from https://images.linuxcontainers.org)",
    );
    expect(d.lines).toContain(`error: GET /v1/containers/alice: ${incus}`);
  });

  test.each([
    ['/var/lib/incus/unix.socket is gone', '<path> is gone'],
    ["open '/proc/uptime' failed", "open '<path>' failed"],
    ['path=/home/alice/.ssh', 'path=<path>'],
    ['no such file /etc/containarium/jwt.secret.', 'no such file <path>.'],
    [
      '"apt-get update" failed in alice-container (exit 100)',
      '"apt-get update" failed in alice-container (exit 100)',
    ],
    [
      'GET 1.0/instances/alice-container and images:ubuntu/24.04',
      'GET 1.0/instances/alice-container and images:ubuntu/24.04',
    ],
    [
      'from https://cloud-images.ubuntu.com/releases',
      'from https://cloud-images.ubuntu.com/releases',
    ],
  ])('withoutPaths(%p)', (message, expected) => {
    expect(withoutPaths(message)).toBe(expected);
  });

  test('preflight answered without auth for listed origins only, never "*"', async () => {
    await using d = await startDaemon({ corsOrigins: ['https://admin.example.com'] });
    const preflight = (origin: string) =>
      fetch(`${d.base}/v1/containers`, {
        method: 'OPTIONS',
        headers: {
          Origin: origin,
          'Access-Control-Request-Method': 'POST',
          'Access-Control-Request-Headers': 'authorization,content-type',
        },
      });
    const allowed = await preflight('https://admin.example.com');
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://admin.example.com');
    expect(allowed.headers.get('access-control-allow-headers')).toContain('Authorization');
    const other = await preflight('https://evil.example');
    expect(other.status).toBe(204);
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    const real = await d.call('GET', '/v1/containers', undefined, d.admin, {
      Origin: 'https://admin.example.com',
    });
    expect(real.headers.get('access-control-allow-origin')).toBe('https://admin.example.com');
    const unauthorized = await fetch(`${d.base}/v1/containers`, {
      headers: { Origin: 'https://evil.example' },
    });
    expect(unauthorized.headers.get('access-control-allow-origin')).toBeNull();
  });

  test('no CORS headers at all by default', async () => {
    await using d = await startDaemon();
    const response = await d.call('GET', '/v1/containers', undefined, d.admin, {
      Origin: 'https://admin.example.com',
    });
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('GET /v1/images (a route this project adds)', () => {
  test('any authenticated caller gets the local images and the remotes, int64 as strings', async () => {
    await using d = await startDaemon();
    for (const as of [d.admin, d.alice]) {
      const body = await ok(await d.call('GET', '/v1/images', undefined, as));
      expect(v.is(WireImagesSchema, body)).toBe(true);
      expect(body).toEqual({
        images: d.backend.images.map((i) => ({
          aliases: i.aliases,
          fingerprint: i.fingerprint,
          description: i.description,
          os: i.os,
          release: i.release,
          architecture: i.architecture,
          sizeBytes: String(i.sizeBytes),
          createdAt: String(i.createdAt),
        })),
        remotes: ['images', 'ubuntu', 'ubuntu-daily'],
      });
    }
    expect(d.backend.calls.map((c) => c.method)).toEqual(['listImages', 'listImages']);
  });

  test('no token is a 401, another method a 405, and Incus down a 503', async () => {
    await using d = await startDaemon();
    expect((await fetch(`${d.base}/v1/images`)).status).toBe(401);
    const wrong = await d.call('POST', '/v1/images', {});
    expect(wrong.headers.get('allow')).toBe('GET');
    await expectError(wrong, 405, 'Unimplemented', /method POST not allowed; use GET/);
    d.backend.failWith = new DaemonError('unavailable', 'Incus is not reachable');
    await expectError(
      await d.call('GET', '/v1/images'),
      503,
      'Unavailable',
      'Incus is not reachable',
    );
  });
});
