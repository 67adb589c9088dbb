// Every tool through a real MCP client against the fake daemon, in both wire generations:
// the happy path, invalid arguments (nothing sent), and each API error path.
import { describe, expect, test } from 'bun:test';
import { MAX_CONCURRENT_CALLS } from '../../src/mcp/slots.ts';
import { type Generation, startFakeDaemon } from '../support/fake-daemon.ts';
import { ED25519 } from '../support/keys.ts';
import { connectMcp, makeToken } from '../support/mcp.ts';

const token = await makeToken();

async function setup(
  generation: Generation,
  options: Partial<Parameters<typeof startFakeDaemon>[0]> = {},
  env: Record<string, string> = {},
) {
  const fake = startFakeDaemon({
    generation,
    token,
    containers: [
      { username: 'alice', memory: '8GB', disk: '50GB', labels: { team: 'demo' } },
      { username: 'bob', state: 'CONTAINER_STATE_STOPPED', ipAddress: '' },
    ],
    ...options,
  });
  const mcp = await connectMcp({
    CONTAINARIUM_SERVER_URL: `${fake.url}/`,
    CONTAINARIUM_JWT_TOKEN: token,
    ...env,
  });
  return {
    fake,
    mcp,
    async [Symbol.asyncDispose]() {
      await mcp[Symbol.asyncDispose]();
      await fake.stop();
    },
  };
}

const routes = (fake: { requests: { method: string; path: string }[] }) =>
  fake.requests.map((r) => `${r.method} ${r.path}`);

/** The last POST: a create is followed by the gets that poll it. */
const lastPost = (fake: { requests: { method: string; body: unknown }[] }) =>
  fake.requests.filter((r) => r.method === 'POST').at(-1)!;

for (const generation of ['v0.3', 'head'] as const) {
  describe(`against a ${generation} daemon`, () => {
    test('create_container leaves unset limits and image to the daemon and reports what it applied', async () => {
      await using t = await setup(generation);
      const result = await t.mcp.call('create_container', {
        username: 'carol',
        ssh_keys: [ED25519],
      });
      expect(result.isError).toBeFalsy();
      expect(result.text).toContain('Created carol-container for carol: running.');
      // The daemon's defaults, read from its answer (v0.3 reports neither disk nor image).
      expect(result.text).toContain(
        generation === 'head'
          ? 'Resources: 4 cores, 4 GB memory, 50 GB disk\nImage: images:ubuntu/24.04'
          : "Resources: 4 cores, 4 GB memory, disk not reported\nImage: the daemon's default (not reported)",
      );
      expect(result.text).toMatch(/SSH: ssh carol@10\.0\.3\.\d+/);
      const posts = t.fake.requests.filter((r) => r.method === 'POST');
      const last = posts.at(-1)!;
      expect(last.headers.authorization).toBe(`Bearer ${token}`);
      expect(last.headers['user-agent']).toMatch(/^containarium-mcp\/\d+\.\d+\.\d+/);
      const body = last.body as Record<string, unknown>;
      expect(body.username).toBe('carol');
      // Nothing the user did not give: empty is unset to every daemon, which applies its defaults.
      expect(body.resources).toEqual({});
      expect(body.sshKeys).toEqual([ED25519]);
      expect('image' in body).toBe(false);
      if (generation === 'v0.3') {
        expect(posts.length).toBe(1);
        expect(body.enableDocker).toBe(true);
        // For daemons between the rename and the strict parser, which ignore enableDocker.
        expect(body.enablePodman).toBe(true);
      } else {
        // HEAD rejects enableDocker with 400; the client switches to enablePodman once.
        expect(posts.length).toBe(2);
        expect(posts[0]!.status).toBe(400);
        expect(body.enablePodman).toBe(true);
        expect(body.enableDocker).toBeUndefined();
        const again = await t.mcp.call('create_container', { username: 'dave' });
        expect(again.isError).toBeFalsy();
        expect(t.fake.requests.filter((r) => r.method === 'POST').length).toBe(3);
      }
      const structured = result.structuredContent as {
        container: { username: string; state: string; memory: string };
      };
      expect(structured.container).toMatchObject({
        username: 'carol',
        state: 'running',
        memory: '4GB',
      });
    });

    test('create_container sends only the limits given; the daemon fills in the rest', async () => {
      await using t = await setup(generation);
      const result = await t.mcp.call('create_container', { username: 'fred', memory: '2GB' });
      expect(result.isError).toBeFalsy();
      const body = lastPost(t.fake).body as Record<string, unknown>;
      expect(body.resources).toEqual({ memory: '2GB' });
      expect(result.text).toContain(
        `Resources: 4 cores, 2 GB memory, ${generation === 'head' ? '50 GB disk' : 'disk not reported'}`,
      );
    });

    test('create_container passes limits in the unit given and leaves docker out when false', async () => {
      await using t = await setup(generation);
      const result = await t.mcp.call('create_container', {
        username: 'erin',
        cpu: 8,
        memory: '512mib',
        disk: '100GB',
        enable_docker: false,
        image: 'debian/12',
      });
      expect(result.isError).toBeFalsy();
      const body = lastPost(t.fake).body as Record<string, unknown>;
      expect(body.resources).toEqual({ cpu: '8', memory: '512MiB', disk: '100GB' });
      expect(body.image).toBe('debian/12');
      expect('enableDocker' in body || 'enablePodman' in body).toBe(false);
      expect('sshKeys' in body).toBe(false);
    });

    test('create_container refuses bad arguments before sending anything', async () => {
      await using t = await setup(generation);
      for (const [args, field] of [
        [{}, '"username" is required (Linux user name that owns the container, e.g. "alice")'],
        [{ username: '../admin' }, '"username" must be 1 to 32 characters'],
        [{ username: 'Alice' }, '"username" must be 1 to 32 characters'],
        [{ username: 'root' }, '"username" must not be a system account'],
        [
          { username: 'frank', memory: 'lots' },
          '"memory" must be a size of at least 1MiB with a unit',
        ],
        [{ username: 'frank', memory: '-1GB' }, '"memory" must be a size of at least 1MiB'],
        [{ username: 'frank', disk: '0' }, '"disk" must be a size of at least 1MiB'],
        [{ username: 'frank', cpu: '0' }, '"cpu" must be a whole number'],
        [
          { username: 'frank', ssh_keys: ['not a key'] },
          '"ssh_keys.0" must be one OpenSSH public key',
        ],
        [{ username: 'frank', ssh_keys: [`${ED25519}\n${ED25519}`] }, '"ssh_keys.0"'],
        [{ username: 'frank', enable_docker: 'yes' }, '"enable_docker" must be true or false'],
        [{ username: 'frank', colour: 'blue' }, '"colour" is not an argument'],
      ] as const) {
        const result = await t.mcp.call('create_container', args);
        expect(result.isError).toBe(true);
        expect(result.text).toContain(field);
        expect(result.text).toContain('Nothing was changed');
      }
      expect(t.fake.requests.length).toBe(0);
    });

    test('create_container for an existing user says so', async () => {
      await using t = await setup(generation);
      const result = await t.mcp.call('create_container', {
        username: 'alice',
        enable_docker: false,
      });
      expect(result.isError).toBe(true);
      expect(result.text).toContain('A container for user alice already exists');
      expect(result.text).toContain('get_container');
    });

    test('create_container while an async create of that user runs says to wait, not "already exists"', async () => {
      await using t = await setup(generation, {
        containers: [{ username: 'gina', pending: 'creating' }],
      });
      const result = await t.mcp.call('create_container', { username: 'gina' });
      expect(result.isError).toBe(true);
      // HEAD answers 409 AlreadyExists; v0.3 wraps the same words in a 500.
      expect(result.text).toBe(
        `The container for user gina is still being created, so the daemon could not create the container for gina (${generation === 'head' ? '409: container creation already in progress for user gina' : '500: failed to create container: container creation already in progress for user gina'}). Wait until it is ready: call get_container for gina to follow it, then try again.`,
      );
    });

    test('list_containers shows a table of every container', async () => {
      await using t = await setup(generation);
      const result = await t.mcp.call('list_containers');
      expect(result.isError).toBeFalsy();
      const lines = result.text.split('\n');
      expect(lines[0]).toBe('2 containers (1 running, 1 stopped):');
      expect(lines[1]).toMatch(/^NAME +USER +STATE +CPUS +MEMORY +DISK +IP +CREATED$/);
      expect(result.text).toMatch(/alice-container +alice +running +4 +8GB/);
      expect(result.text).toMatch(/bob-container +bob +stopped/);
      expect((result.structuredContent as { totalCount: number }).totalCount).toBe(2);
      expect(routes(t.fake)).toEqual(['GET /v1/containers']);
    });

    test('get_container shows details and usage as a share of the limit', async () => {
      await using t = await setup(generation);
      const result = await t.mcp.call('get_container', { username: 'alice' });
      expect(result.isError).toBeFalsy();
      expect(result.text).toContain('alice-container (user alice): running');
      // v0.3 daemons never filled labels or the disk size (CONTAINARIUM-API.md §1.3).
      if (generation === 'head') expect(result.text).toContain('Labels: team=demo');
      expect(result.text).toContain(
        generation === 'head' ? '8 GB memory, 50 GB disk' : '8 GB memory, disk not reported',
      );
      expect(result.text).toContain('memory 512 MiB of 7.5 GiB (7%)');
      expect(result.text).toContain('Created: 2025-01-15');
      const structured = result.structuredContent as { metrics: { memoryBytes: number } | null };
      expect(structured.metrics?.memoryBytes).toBe(536870912);
      expect(routes(t.fake).sort()).toEqual(['GET /v1/containers/alice', 'GET /v1/metrics/alice']);
    });

    test('get_container of a missing user names it and suggests list_containers', async () => {
      await using t = await setup(generation);
      const result = await t.mcp.call('get_container', { username: 'nobody-here' });
      expect(result.isError).toBe(true);
      expect(result.text).toBe(
        'No container exists for user nobody-here. Call list_containers to see which containers exist.',
      );
    });

    test('delete_container passes force and reports the deletion', async () => {
      await using t = await setup(generation);
      const result = await t.mcp.call('delete_container', { username: 'bob' });
      expect(result.isError).toBeFalsy();
      expect(result.text).toBe('Deleted bob-container (user bob).');
      expect(t.fake.requests[0]!.query).toEqual({ force: 'false' });
      await t.mcp.call('delete_container', { username: 'alice', force: true });
      expect(t.fake.requests[1]!.query).toEqual({ force: 'true' });
      // null, as some clients send for an argument left out, means the default.
      const unset = await t.mcp.call('delete_container', { username: 'nobody', force: null });
      expect(unset.text).toContain('No container exists for user nobody');
      expect(t.fake.requests[2]!.query).toEqual({ force: 'false' });
      const gone = await t.mcp.call('delete_container', { username: 'bob' });
      expect(gone.isError).toBe(true);
      expect(gone.text).toContain('No container exists for user bob');
    });

    test('stop_container and start_container read the state, then report the new one', async () => {
      await using t = await setup(generation);
      const stop = await t.mcp.call('stop_container', { username: 'alice', force: true });
      expect(stop.isError).toBeFalsy();
      expect(stop.text).toBe('Stopped the container for alice: stopped.');
      expect(t.fake.requests[1]!.body).toEqual({ force: true });
      const start = await t.mcp.call('start_container', { username: 'alice' });
      expect(start.isError).toBeFalsy();
      expect(start.text).toMatch(/^Started the container for alice: running/);
      expect(routes(t.fake)).toEqual([
        'GET /v1/containers/alice',
        'POST /v1/containers/alice/stop',
        'GET /v1/containers/alice',
        'POST /v1/containers/alice/start',
      ]);
    });

    test('a stop or start that changes nothing says the container already was so', async () => {
      await using t = await setup(generation);
      const stop = await t.mcp.call('stop_container', { username: 'bob' });
      expect(stop.isError).toBeFalsy();
      expect(stop.text).toBe('The container for bob was already stopped; nothing changed.');
      expect((stop.structuredContent as { container: { state: string } }).container.state).toBe(
        'stopped',
      );
      const start = await t.mcp.call('start_container', { username: 'alice' });
      expect(start.isError).toBeFalsy();
      expect(start.text).toStartWith(
        'The container for alice was already running; nothing changed.',
      );
      expect(routes(t.fake).filter((r) => r.startsWith('POST'))).toEqual([]);
    });

    test("when the state cannot be read first, the daemon's refusal says it already was so", async () => {
      await using t = await setup(generation);
      t.fake.fail('getContainer', {
        status: 500,
        body: { code: 500, error: 'rpc error: code = Unknown desc = busy' },
      });
      const start = await t.mcp.call('start_container', { username: 'alice' });
      expect(start.isError).toBeFalsy();
      expect(start.text).toBe('The container for alice was already running; nothing changed.');
      expect(routes(t.fake)).toEqual([
        'GET /v1/containers/alice',
        'POST /v1/containers/alice/start',
      ]);
    });

    test('a read refused for the token is the answer: no change is tried with it', async () => {
      await using t = await setup(generation);
      t.fake.state.token = await makeToken({ username: 'someone-else' });
      const refused = await t.mcp.call('stop_container', { username: 'alice' });
      expect(refused.text).toContain('The daemon rejected the API token (401');
      t.fake.state.token = token;
      const missing = await t.mcp.call('start_container', { username: 'nobody' });
      expect(missing.text).toContain('No container exists for user nobody');
      // Upstream reports a missing container as a 500, not certain enough to skip the change.
      expect(routes(t.fake).filter((r) => r.startsWith('POST'))).toEqual([
        'POST /v1/containers/nobody/start',
      ]);
    });

    test('get_metrics covers all containers or one', async () => {
      await using t = await setup(generation);
      const all = await t.mcp.call('get_metrics');
      expect(all.isError).toBeFalsy();
      expect(all.text).toMatch(/^Usage of \d+ containers? \(CPU: % of one core .*of each limit\):/);
      // Upstream daemons report no CPU share: unknown, and the text says so.
      expect(all.text).toMatch(/alice-container +\? +- +12s +512 MiB +7%/);
      expect(all.text).toContain('CPU % is not reported by this daemon');
      const one = await t.mcp.call('get_metrics', { username: 'alice' });
      expect(one.text).toContain('Usage of 1 container');
      expect(routes(t.fake)).toContain('GET /v1/metrics/alice');
      const everyone = await t.mcp.call('get_metrics', { username: null });
      expect(everyone.text).toMatch(/^Usage of 2 containers/);
      const bad = await t.mcp.call('get_metrics', { username: 'BAD NAME' });
      expect(bad.isError).toBe(true);
      expect(bad.text).toContain('"username"');
    });

    test('get_system_info reports the host', async () => {
      await using t = await setup(generation, {
        systemInfo: { hostname: 'myhost', incusVersion: '6.20' },
      });
      const result = await t.mcp.call('get_system_info');
      expect(result.isError).toBeFalsy();
      expect(result.text).toContain('Host myhost:');
      expect(result.text).toContain('Incus 6.20');
      expect(result.text).toMatch(/Containers: 1 running, 1 stopped, 2 total/);
    });

    test('a token signed with another secret is a 401 the model can act on', async () => {
      await using t = await setup(generation);
      t.fake.state.token = await makeToken({ username: 'someone-else' });
      const result = await t.mcp.call('list_containers');
      expect(result.isError).toBe(true);
      expect(result.text).toContain('The daemon rejected the API token (401');
      expect(result.text).toContain('containarium token generate');
      expect(result.text).not.toContain(token);
    });

    test('an expired token says it expired, with the date', async () => {
      const expired = await makeToken({ expiresIn: Math.floor(Date.now() / 1000) - 60 });
      const fake = startFakeDaemon({ generation, token, expiredToken: expired });
      await using mcp = await connectMcp({
        CONTAINARIUM_SERVER_URL: fake.url,
        CONTAINARIUM_JWT_TOKEN: expired,
      });
      const result = await mcp.call('list_containers');
      await fake.stop();
      expect(result.isError).toBe(true);
      expect(result.text).toMatch(/^The API token expired at \d{4}-\d\d-\d\dT/);
    });

    test('start and stop on a daemon that never implemented them', async () => {
      await using t = await setup(generation, { v03StartStopUnimplemented: true });
      const result = await t.mcp.call('start_container', { username: 'bob' });
      if (generation === 'v0.3') {
        expect(result.isError).toBe(true);
        expect(result.text).toContain('Upgrade the Containarium daemon');
      } else {
        expect(result.isError).toBeFalsy();
      }
    });
  });
}

describe('API errors', () => {
  test('403 with an admin token points at the administrator', async () => {
    await using t = await setup('head', { forbiddenUsernames: ['alice'] });
    const result = await t.mcp.call('get_container', { username: 'alice' });
    expect(result.isError).toBe(true);
    expect(result.text).toContain('not allowed to get the container for alice (403');
    expect(result.text).toContain("ask the server's administrator");
  });

  test("403 with a user's token names its own container and never says to escalate", async () => {
    const user = await makeToken({ username: 'alice', roles: ['user'] });
    await using fake = startFakeDaemon({
      generation: 'head',
      token: user,
      admin: false,
      forbiddenUsernames: ['bob'],
      containers: [{ username: 'alice' }, { username: 'bob' }],
    });
    await using mcp = await connectMcp({
      CONTAINARIUM_SERVER_URL: fake.url,
      CONTAINARIUM_JWT_TOKEN: user,
    });
    const result = await mcp.call('get_container', { username: 'bob' });
    expect(result.isError).toBe(true);
    expect(result.text).toContain(
      "It is the token of user alice, without the admin role, so it may act only on alice's container",
    );
    expect(result.text).not.toMatch(/use a token with the admin role|--roles admin/i);
  });

  test('409 for a busy container says to wait and retry, not that it already exists', async () => {
    await using t = await setup('head');
    t.fake.fail('stopContainer', {
      status: 409,
      body: {
        code: 409,
        error:
          'rpc error: code = Aborted desc = the container is busy: Incus is running a start operation on it; try again when it has finished',
      },
    });
    const result = await t.mcp.call('stop_container', { username: 'alice' });
    expect(result.isError).toBe(true);
    expect(result.text).toStartWith('The container for user alice is busy with another operation');
    expect(result.text).toContain('Wait a few seconds and call the tool again.');
    expect(result.text).not.toContain('already exists');
  });

  test('an image that is not found is not a missing container', async () => {
    await using t = await setup('head');
    t.fake.fail('createContainer', {
      status: 400,
      body: {
        code: 400,
        error: 'rpc error: code = InvalidArgument desc = image "nope/1" not found',
      },
    });
    const invalid = await t.mcp.call('create_container', { username: 'carol', image: 'nope/1' });
    expect(invalid.text).toStartWith(
      'The image "nope/1" could not be fetched, so nothing was created for user carol (400: image "nope/1" not found).',
    );
    t.fake.fail('createContainer', {
      status: 500,
      body: {
        code: 500,
        error: 'rpc error: code = Unknown desc = failed to create container: Image not found',
      },
    });
    const upstream = await t.mcp.call('create_container', { username: 'carol', image: 'nope/1' });
    expect(upstream.isError).toBe(true);
    expect(upstream.text).not.toContain('No container exists');
    expect(upstream.text).toContain('Image not found');
  });

  test('503 points at Incus', async () => {
    await using t = await setup('head');
    t.fake.fail('deleteContainer', {
      status: 503,
      body: { code: 503, error: 'rpc error: code = Unavailable desc = incus is not reachable' },
    });
    const result = await t.mcp.call('delete_container', { username: 'alice' });
    expect(result.isError).toBe(true);
    expect(result.text).toContain('could not reach its container backend');
    expect(result.text).toContain('incus is not reachable');
    expect(t.fake.requests.length).toBe(1);
  });

  test('429 says to fix the token and wait, at once whatever Retry-After says', async () => {
    await using t = await setup('head');
    t.fake.fail(
      'listContainers',
      {
        status: 429,
        contentType: 'text/plain; charset=utf-8',
        headers: { 'retry-after': '60' },
        body: '{"error": "too many failed authentication attempts; try again later", "code": 429}\n',
      },
      3,
    );
    const result = await t.mcp.call('list_containers');
    expect(result.isError).toBe(true);
    expect(result.text).toContain('after repeated failed logins (429)');
    expect(t.fake.requests.length).toBe(1);
  });

  test('reads are retried after a passing failure; changes are not', async () => {
    await using t = await setup('head');
    t.fake.fail('listContainers', {
      status: 503,
      body: { code: 503, error: 'rpc error: code = Unavailable desc = busy' },
    });
    const list = await t.mcp.call('list_containers');
    expect(list.isError).toBeFalsy();
    expect(routes(t.fake)).toEqual(['GET /v1/containers', 'GET /v1/containers']);
    t.fake.fail('stopContainer', {
      status: 503,
      body: { code: 503, error: 'rpc error: code = Unavailable desc = busy' },
    });
    const stop = await t.mcp.call('stop_container', { username: 'alice' });
    expect(stop.isError).toBe(true);
    expect(routes(t.fake).filter((r) => r.endsWith('/stop')).length).toBe(1);
  });

  test('a create that times out is not retried, and the model is told to check first', async () => {
    await using t = await setup('v0.3', {}, { CONTAINARIUM_TIMEOUT: '1' });
    t.fake.fail('createContainer', { hang: true });
    const result = await t.mcp.call('create_container', { username: 'slow' });
    expect(result.isError).toBe(true);
    expect(result.text).toContain('the outcome is unknown');
    expect(result.text).toContain('Call get_container for slow before trying again');
    expect(t.fake.requests.filter((r) => r.method === 'POST').length).toBe(1);
  });

  test('a daemon that is not running: connection refused names the URL', async () => {
    const fake = startFakeDaemon({ generation: 'head', token });
    const url = fake.url;
    await fake.stop();
    await using mcp = await connectMcp({
      CONTAINARIUM_SERVER_URL: url,
      CONTAINARIUM_JWT_TOKEN: token,
    });
    const result = await mcp.call('get_system_info');
    expect(result.isError).toBe(true);
    expect(result.text).toBe(
      `The Containarium daemon is not reachable at ${url} (connection refused). Start it with \`containarium daemon --rest\`, or fix the port in CONTAINARIUM_SERVER_URL.`,
    );
  });

  test('a server that is not a Containarium daemon is named as such', async () => {
    await using server = Bun.serve({
      port: 0,
      hostname: '127.0.0.1',
      fetch: () => Response.json({ containers: 'nope' }),
    });
    await using mcp = await connectMcp({
      CONTAINARIUM_SERVER_URL: server.url.href,
      CONTAINARIUM_JWT_TOKEN: token,
    });
    const result = await mcp.call('list_containers');
    expect(result.isError).toBe(true);
    expect(result.text).toContain('is not a Containarium API response');
  });
});

describe('response size cap', () => {
  test('a daemon answer over 16 MiB is refused, and the tool says so', async () => {
    await using t = await setup('head');
    t.fake.fail('getContainer', {
      status: 200,
      contentType: 'application/json',
      body: JSON.stringify({ container: { name: 'x'.repeat(17 * 2 ** 20) } }),
    });
    const result = await t.mcp.call('get_container', { username: 'alice' });
    expect(result.isError).toBe(true);
    expect(result.text).toBe(
      "The daemon's response exceeded 16 MiB, the most mcp-server reads of one response, while trying to get the container for alice. Ask for less (one user's container or metrics), or check that CONTAINARIUM_SERVER_URL points at a Containarium daemon.",
    );
    // Not a passing failure: a read is not retried for it.
    expect(t.fake.requests.filter((r) => r.path === '/v1/containers/alice').length).toBe(1);
  });

  test('without a Content-Length the cap holds, and the stream is not read to its end', async () => {
    const chunk = new TextEncoder().encode(' '.repeat(2 ** 20));
    let pulled = 0;
    await using server = Bun.serve({
      port: 0,
      hostname: '127.0.0.1',
      fetch: () =>
        new Response(
          new ReadableStream({
            pull(controller) {
              // 64 MiB on offer; mcp-server stops soon after 16.
              if (pulled++ < 64) controller.enqueue(chunk);
              else controller.close();
            },
          }),
          { headers: { 'content-type': 'application/json' } },
        ),
    });
    await using mcp = await connectMcp({
      CONTAINARIUM_SERVER_URL: server.url.href,
      CONTAINARIUM_JWT_TOKEN: token,
    });
    const result = await mcp.call('create_container', { username: 'carol' });
    expect(result.isError).toBe(true);
    expect(result.text).toBe(
      "The daemon's response exceeded 16 MiB, the most mcp-server reads of one response, so the outcome of the create is unknown. Call get_container for carol before trying again; do not create it twice.",
    );
    expect(pulled).toBeLessThan(64);
  });
});

describe('concurrency and cancellation', () => {
  test('calls overlap: a slow create does not hold up a list', async () => {
    await using t = await setup('v0.3');
    t.fake.fail('createContainer', { hang: true });
    const create = t.mcp.call('create_container', { username: 'slow', enable_docker: false });
    for (let i = 0; i < 100 && t.fake.requests.length === 0; i++) await Bun.sleep(10);
    const list = await t.mcp.call('list_containers');
    expect(list.isError).toBeFalsy();
    expect(routes(t.fake)).toEqual(['POST /v1/containers', 'GET /v1/containers']);
    await t.fake.stop();
    await create.catch(() => undefined);
  });

  test('many calls are in flight at once', async () => {
    await using t = await setup('head');
    t.fake.fail('getContainer', { hang: true }, 10);
    const controller = new AbortController();
    const calls = Array.from({ length: 10 }, () =>
      t.mcp
        .call('get_container', { username: 'alice' }, { signal: controller.signal })
        .catch(() => undefined),
    );
    for (
      let i = 0;
      i < 300 && t.fake.requests.filter((r) => r.path === '/v1/containers/alice').length < 10;
      i++
    ) {
      await Bun.sleep(10);
    }
    // A sequential server would have at most one of them pending at the daemon.
    expect(t.fake.requests.filter((r) => r.path === '/v1/containers/alice').length).toBe(10);
    controller.abort();
    await Promise.all(calls);
  });

  test(`at most ${MAX_CONCURRENT_CALLS} calls reach the daemon at once; the rest queue and are all answered`, async () => {
    await using t = await setup('head', { latencyMs: 20 });
    const results = await Promise.all(
      // list_containers is one request per call.
      Array.from({ length: 100 }, () => t.mcp.call('list_containers')),
    );
    expect(results.filter((r) => r.isError)).toEqual([]);
    expect(t.fake.requests.length).toBe(100);
    expect(t.fake.peakInFlight).toBeLessThanOrEqual(MAX_CONCURRENT_CALLS);
    expect(t.fake.peakInFlight).toBeGreaterThan(1);
  });

  test('a queued call can be cancelled before it reaches the daemon', async () => {
    await using t = await setup('head');
    t.fake.fail('getContainer', { hang: true }, MAX_CONCURRENT_CALLS);
    const running = new AbortController();
    const held = Array.from({ length: MAX_CONCURRENT_CALLS }, () =>
      t.mcp
        .call('get_container', { username: 'alice' }, { signal: running.signal })
        .catch(() => 'cancelled'),
    );
    const atDaemon = () => t.fake.requests.filter((r) => r.path === '/v1/containers/alice').length;
    for (let i = 0; i < 500 && atDaemon() < MAX_CONCURRENT_CALLS; i++) await Bun.sleep(10);
    expect(atDaemon()).toBe(MAX_CONCURRENT_CALLS);
    const queued = new AbortController();
    const waiting = t.mcp.call('get_container', { username: 'bob' }, { signal: queued.signal });
    await Bun.sleep(100);
    queued.abort();
    await expect(waiting).rejects.toThrow();
    running.abort();
    expect(await Promise.all(held)).toEqual(Array(MAX_CONCURRENT_CALLS).fill('cancelled'));
    // The queued call never went out; the freed slots serve the next call at once.
    expect(t.fake.requests.some((r) => r.path === '/v1/containers/bob')).toBe(false);
    const next = await t.mcp.call('get_container', { username: 'bob' });
    expect(next.isError).toBeFalsy();
  });

  test('notifications/cancelled aborts the HTTP request', async () => {
    await using t = await setup('head');
    t.fake.fail('listContainers', { hang: true });
    const controller = new AbortController();
    const call = t.mcp.call('list_containers', {}, { signal: controller.signal });
    for (let i = 0; i < 100 && t.fake.requests.length === 0; i++) await Bun.sleep(10);
    controller.abort();
    await expect(call).rejects.toThrow();
    for (let i = 0; i < 100 && !t.fake.requests[0]?.aborted; i++) await Bun.sleep(10);
    expect(t.fake.requests[0]?.aborted).toBe(true);
  });
});

// Another JWT, shaped like one the daemon or a proxy might echo (not the configured token).
const foreign = await makeToken({ username: 'someone-else' });

describe('secrets never reach the model', () => {
  const leaks = (result: unknown, secret: string) => JSON.stringify(result).includes(secret);

  test('error bodies that echo the request headers are redacted, whatever the status', async () => {
    await using t = await setup('head');
    for (const status of [400, 401, 403, 404, 500, 502, 503]) {
      t.fake.fail(
        'listContainers',
        {
          status,
          body: {
            code: status,
            error: `rpc error: code = Unknown desc = proxy said: authorization: Bearer ${token}; forwarded ${foreign}`,
          },
        },
        3,
      );
      const result = await t.mcp.call('list_containers');
      expect(result.isError).toBe(true);
      expect(result.text).toContain('[redacted]');
      expect(leaks(result, token)).toBe(false);
      expect(leaks(result, foreign)).toBe(false);
    }
  });

  test('a long error is cut between words, so no piece of a token slips past redaction', async () => {
    await using t = await setup('head');
    // The token straddles the length limit: a cut inside it would leave a fragment no rule matches.
    const desc = `${'word '.repeat(98)}Bearer ${token} and more words after it`;
    t.fake.fail('deleteContainer', {
      status: 500,
      body: { code: 500, error: `rpc error: code = Unknown desc = ${desc}` },
    });
    const result = await t.mcp.call('delete_container', { username: 'alice' });
    expect(result.isError).toBe(true);
    const payload = token.split('.')[1]!;
    expect(result.text).not.toContain(payload.slice(0, 12));
    expect(result.text).toContain('word word Bearer…). Retry');
  });

  test('structured content and tool text are redacted too', async () => {
    await using t = await setup('head', {
      containers: [{ username: 'alice', labels: { note: token, other: foreign } }],
    });
    const result = await t.mcp.call('get_container', { username: 'alice' });
    expect(result.isError).toBeFalsy();
    expect(result.text).toContain('note=[redacted]');
    expect(result.structuredContent).toMatchObject({
      container: { labels: { note: '[redacted]', other: '[redacted]' } },
    });
    expect(leaks(result, token)).toBe(false);
    expect(leaks(result, foreign)).toBe(false);
  });
});

describe('an image that cannot be fetched', () => {
  const cases = [
    // This repository's daemon: a 400 naming the image, the reason and the local images.
    {
      status: 400,
      desc: 'image "images:debian/12" could not be fetched: Get "https://images.linuxcontainers.org/streams/v1/index.json": dial tcp: connect: network is unreachable; local images: debian/12, busybox',
    },
    // Upstream daemons pass Incus's words through a 500 (v0.3) or a 503.
    {
      status: 500,
      desc: 'failed to create container: Failed getting remote image info: Failed getting image: The requested image couldn\'t be found for fingerprint "images:debian/12"',
    },
    { status: 503, desc: "failed to create container: Couldn't find the requested image" },
    { status: 500, desc: 'failed to create container: The remote "images" doesn\'t exist' },
    // This repository's daemon before it said "could not be fetched".
    {
      status: 400,
      desc: 'image "images:debian/12" not found: it is not a local image alias (local aliases: busybox, debian/12) and names no image server',
    },
  ];
  for (const { status, desc } of cases) {
    test(`says so and suggests a local image (${status}: ${desc.slice(0, 40)})`, async () => {
      await using t = await setup('head');
      t.fake.fail('createContainer', {
        status,
        body: { code: status, error: `rpc error: code = Unknown desc = ${desc}` },
      });
      const result = await t.mcp.call('create_container', {
        username: 'carol',
        image: 'images:debian/12',
        enable_docker: false,
      });
      expect(result.isError).toBe(true);
      expect(result.text).toStartWith(
        'The image "images:debian/12" could not be fetched, so nothing was created for user carol',
      );
      expect(result.text).toContain('an image the server already has locally');
      expect(result.text).not.toMatch(/Incus is running|No container exists|Correct the arguments/);
      if (/local (images|aliases)/.test(desc)) {
        expect(result.text).toMatch(/local (images|aliases): /);
        expect(result.text).toContain('(the daemon names them)');
      } else {
        expect(result.text).toContain('such as a local alias');
      }
    });
  }

  test('a long image error is cut after a whole word', async () => {
    await using t = await setup('head');
    const images = Array.from({ length: 80 }, (_, i) => `image-number-${i}`).join(', ');
    t.fake.fail('createContainer', {
      status: 400,
      body: {
        code: 400,
        error: `rpc error: code = InvalidArgument desc = image "x/1" could not be fetched: no route to host; local images: ${images}`,
      },
    });
    const result = await t.mcp.call('create_container', { username: 'carol', image: 'x/1' });
    const said = /\(400: (.*)\)\. Call/.exec(result.text)?.[1] ?? '';
    expect(said).toEndWith('…');
    // Every name before the cut is whole.
    const names = said.replace(/…$/, '').split('local images: ')[1]!.split(', ');
    for (const name of names) expect(name).toMatch(/^image-number-\d+$/);
  });
});

test('an argument too long to quote is described, not cut mid-word', async () => {
  await using t = await setup('head');
  const result = await t.mcp.call('get_container', { username: 'a'.repeat(100) });
  expect(result.isError).toBe(true);
  expect(result.text).toContain('(got a string of 100 characters)');
  expect(result.text).not.toContain('aaaa');
  const list = await t.mcp.call('create_container', {
    username: 'carol',
    ssh_keys: Array.from({ length: 3 }, (_, i) => `not a key number ${i} ${'x'.repeat(50)}`),
  });
  expect(list.text).toContain('"ssh_keys.0" must be one OpenSSH public key');
  expect(list.text).toContain('(got a string of 69 characters)');
});

describe('the SSH command', () => {
  test('create_container without keys shows no SSH command: there is no account to log in to', async () => {
    await using t = await setup('head');
    const result = await t.mcp.call('create_container', { username: 'carol' });
    expect(result.isError).toBeFalsy();
    expect(result.text).toContain('IP: 10.0.3.');
    expect(result.text).not.toContain('SSH');
    expect((result.structuredContent as { sshCommand: string }).sshCommand).toBe('');
  });

  test('with a key it names the private address as reachable from the daemon host', async () => {
    await using t = await setup('head');
    const result = await t.mcp.call('create_container', { username: 'carol', ssh_keys: [ED25519] });
    const ip = (result.structuredContent as { container: { ipAddress: string } }).container
      .ipAddress;
    expect(result.text).toContain(
      `SSH: ssh carol@${ip} (${ip} is a private address, reachable from the daemon's host)`,
    );
    expect((result.structuredContent as { sshCommand: string }).sshCommand).toBe(`ssh carol@${ip}`);
  });

  /** A create answer for carol, with the daemon's sshCommand, or without the field. */
  const created = (sshCommand?: string, sshKeys = [ED25519]) => ({
    status: 200,
    body: {
      container: {
        name: 'carol-container',
        username: 'carol',
        state: 'CONTAINER_STATE_RUNNING',
        sshKeys,
        network: { ipAddress: '10.98.0.94' },
        createdAt: '1736930000',
      },
      message: 'Container carol-container created successfully',
      ...(sshCommand === undefined ? {} : { sshCommand }),
    },
  });

  test("the daemon's own command is used as it is, a jump host included", async () => {
    await using t = await setup('head');
    const command = 'ssh -J containarium.example.com carol@10.98.0.94';
    t.fake.fail('createContainer', created(command));
    const result = await t.mcp.call('create_container', { username: 'carol', ssh_keys: [ED25519] });
    // Through the jump host it works from anywhere: no note that it works only from the daemon's host.
    expect(result.text).toContain(`SSH: ${command}\n`);
    expect((result.structuredContent as { sshCommand: string }).sshCommand).toBe(command);
  });

  test('a create whose daemon withheld the command ("": no account was made) shows none, key or not', async () => {
    await using t = await setup('head');
    t.fake.fail('createContainer', created(''));
    const result = await t.mcp.call('create_container', {
      username: 'carol',
      image: 'busybox',
      ssh_keys: [ED25519],
    });
    expect(result.isError).toBeFalsy();
    expect(result.text).toContain('IP: 10.98.0.94');
    expect(result.text).not.toContain('SSH');
    expect((result.structuredContent as { sshCommand: string }).sshCommand).toBe('');
  });

  test('a daemon that never sends the field gets one built, only with a key', async () => {
    await using t = await setup('head');
    t.fake.fail('createContainer', created());
    const result = await t.mcp.call('create_container', { username: 'carol', ssh_keys: [ED25519] });
    expect(result.text).toContain('SSH: ssh carol@10.98.0.94 (10.98.0.94 is a private address');
    t.fake.fail('createContainer', created(undefined, []));
    const none = await t.mcp.call('create_container', { username: 'carol' });
    expect(none.text).not.toContain('SSH');
  });

  test("get_container and start_container use the container's own sshCommand verbatim, even when empty", async () => {
    await using t = await setup('head');
    const alice = (sshCommand: string, state = 'CONTAINER_STATE_RUNNING') => ({
      name: 'alice-container',
      username: 'alice',
      state,
      sshKeys: [ED25519],
      network: { ipAddress: '10.98.0.5' },
      sshCommand,
    });
    t.fake.fail('getContainer', { status: 200, body: { container: alice('') } });
    const withheld = await t.mcp.call('get_container', { username: 'alice' });
    expect(withheld.text).toContain('IP: 10.98.0.5');
    expect(withheld.text).not.toContain('SSH:');
    const jump = 'ssh -J admin@gw.example.com alice@10.98.0.5';
    t.fake.fail('getContainer', { status: 200, body: { container: alice(jump) } });
    const got = await t.mcp.call('get_container', { username: 'alice' });
    expect(got.text).toContain(`SSH: ${jump}\n`);
    t.fake.fail('getContainer', {
      status: 200,
      body: { container: alice('', 'CONTAINER_STATE_STOPPED') },
    });
    t.fake.fail('startContainer', {
      status: 200,
      body: { message: 'Container for user alice started successfully', container: alice('') },
    });
    const started = await t.mcp.call('start_container', { username: 'alice' });
    expect(started.text).toStartWith('Started the container for alice: running');
    expect(started.text).not.toContain('SSH:');
    t.fake.fail('getContainer', { status: 200, body: { container: alice(jump) } });
    const already = await t.mcp.call('start_container', { username: 'alice' });
    expect(already.text).toContain('already running');
    expect(already.text).toEndWith(`SSH: ${jump}`);
  });

  test('get_container and start_container show it when running, with an address and a key', async () => {
    await using t = await setup('head', {
      containers: [
        { username: 'alice', sshKeys: [ED25519], ipAddress: '203.0.113.7' },
        { username: 'bob', state: 'CONTAINER_STATE_STOPPED', ipAddress: '', sshKeys: [ED25519] },
        { username: 'dana' },
      ],
    });
    const alice = await t.mcp.call('get_container', { username: 'alice' });
    // A public address needs no note.
    expect(alice.text).toContain('SSH: ssh alice@203.0.113.7\n');
    const dana = await t.mcp.call('get_container', { username: 'dana' });
    expect(dana.text).toContain('IP: 10.0.3.');
    expect(dana.text).not.toContain('SSH:');
    const stopped = await t.mcp.call('get_container', { username: 'bob' });
    expect(stopped.text).not.toContain('SSH:');
    const started = await t.mcp.call('start_container', { username: 'bob' });
    expect(started.text).toMatch(
      /^Started the container for bob: running, IP (10\.0\.3\.\d+)\.\nSSH: ssh bob@\1 \(\1 is a private address, reachable from the daemon's host\)$/,
    );
    const again = await t.mcp.call('start_container', { username: 'bob' });
    expect(again.text).toContain('already running');
    expect(again.text).toContain('SSH: ssh bob@10.0.3.');
    const noKey = await t.mcp.call('start_container', { username: 'dana' });
    expect(noKey.text).not.toContain('SSH:');
  });
});

test('get_metrics for a user without a container says no container exists', async () => {
  for (const generation of ['v0.3', 'head'] as const) {
    await using t = await setup(generation);
    // Whether the daemon fails the metrics call or answers with an empty list.
    const failed = await t.mcp.call('get_metrics', { username: 'nobody' });
    t.fake.fail('getMetrics', { status: 200, body: { metrics: [] } });
    const empty = await t.mcp.call('get_metrics', { username: 'nobody' });
    for (const result of [failed, empty]) {
      expect(result.isError).toBe(true);
      expect(result.text).toBe(
        'No container exists for user nobody. Call list_containers to see which containers exist.',
      );
    }
  }
});
