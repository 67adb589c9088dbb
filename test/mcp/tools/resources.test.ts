// resize_container and get_quota through a real MCP client: against this project's daemon (its HTTP
// app over the memory backend), against the fake v0.3 daemon (which has neither route), and against
// a daemon whose 404 must be read to tell a missing container from a missing route.
import { describe, expect, test } from 'bun:test';
import { DaemonError } from '../../../src/daemon/errors.ts';
import { startFakeDaemon } from '../../support/fake-daemon.ts';
import { connectMcp, makeToken } from '../../support/mcp.ts';
import { startOwnDaemon } from '../../support/own-daemon.ts';

const RESIZE_UNSUPPORTED =
  "This daemon does not support resizing containers (it has no PUT /v1/containers/{username}/resize route); upgrade the Containarium daemon (this project's `containarium daemon --rest` serves it). The other tools still work.";

describe("resize_container against this project's daemon", () => {
  test('changes the limits given and shows each old → new', async () => {
    await using d = await startOwnDaemon();
    d.backend.seed('alice');
    const mcp = await d.connect(await d.token('ops', { roles: ['admin'] }));
    const result = await mcp.call('resize_container', { username: 'alice', cpu: 4, memory: '8GB' });
    expect(result.isError).toBeFalsy();
    expect(result.text).toBe(
      'Resized alice-container (user alice): cpu 4 (unchanged); memory 4GB → 8GB. State: running.',
    );
    expect(result.structuredContent).toMatchObject({
      username: 'alice',
      changes: [
        { limit: 'cpu', from: '4', to: '4' },
        { limit: 'memory', from: '4GB', to: '8GB' },
      ],
      container: { cpu: '4', memory: '8GB', disk: '50GB' },
      message: 'Container for user alice resized successfully',
    });
    expect(d.backend.calls.at(-1)).toEqual({
      method: 'resize',
      args: ['alice', { cpu: 4, memory: '8GB' }],
    });
  });

  test('bad arguments are refused by name before anything is sent', async () => {
    await using d = await startOwnDaemon();
    d.backend.seed('alice');
    const mcp = await d.connect(await d.token('ops', { roles: ['admin'] }));
    const none = await mcp.call('resize_container', { username: 'alice' });
    expect(none.isError).toBe(true);
    expect(none.text).toBe(
      'Invalid arguments: give at least one of "cpu", "memory" or "disk" to change. Nothing was changed; correct the arguments and call the tool again.',
    );
    const bad = await mcp.call('resize_container', { username: 'alice', memory: 'lots', cpu: 0 });
    expect(bad.text).toContain('"cpu" must be a whole number of CPU cores from 1 to 1024');
    expect(bad.text).toContain('"memory" must be a size of at least 1MiB with a unit');
    expect(d.routes()).toEqual([]);
  });

  test("the daemon's refusals: host limits (400), another user's quota (403), no container (404)", async () => {
    await using d = await startOwnDaemon();
    d.backend.seed('alice');
    d.backend.host = { cpus: 2 };
    const admin = await d.connect(await d.token('ops', { roles: ['admin'] }));
    const host = await admin.call('resize_container', { username: 'alice', cpu: '3' });
    expect(host.text).toBe(
      'The daemon rejected the request to resize the container for alice as invalid: cpu 3 is more than this host has (2 CPUs); ask for at most 2. Correct the arguments and try again.',
    );
    const missing = await admin.call('resize_container', { username: 'bob', disk: '60GB' });
    expect(missing.text).toBe(
      'No container exists for user bob. Call list_containers to see which containers exist.',
    );
    const alice = await d.connect(await d.token('alice'));
    const over = await alice.call('resize_container', { username: 'alice', memory: '20GB' });
    expect(over.isError).toBe(true);
    expect(over.text).toBe(
      'The daemon refused to resize the container for alice: quota exceeded for alice: memory 3.7 GiB used + 14.9 GiB asked > 14.9 GiB quota (16GB); ask for less, or ask an administrator to raise the quota (403). Call get_quota to see the quota and what is used of it.',
    );
    expect(d.backend.containers.get('alice')?.resources?.memory).toBe('4GB');
  });
});

describe('resize_container against daemons without the route', () => {
  test('a v0.3 daemon: this daemon does not support resizing, never "no container"', async () => {
    const token = await makeToken();
    await using fake = startFakeDaemon({
      generation: 'v0.3',
      token,
      containers: [{ username: 'alice' }],
    });
    await using mcp = await connectMcp({
      CONTAINARIUM_SERVER_URL: fake.url,
      CONTAINARIUM_JWT_TOKEN: token,
    });
    const result = await mcp.call('resize_container', { username: 'alice', memory: '8GB' });
    expect(result.isError).toBe(true);
    expect(result.text).toBe(RESIZE_UNSUPPORTED);
    // A user without a container is still told so: the read before the resize finds none.
    const missing = await mcp.call('resize_container', { username: 'bob', memory: '8GB' });
    expect(missing.text).toBe(
      'No container exists for user bob. Call list_containers to see which containers exist.',
    );
  });

  test('a 404 is read: a missing container is said so, any other 404 or a 501 is a missing route', async () => {
    const container = {
      name: 'alice-container',
      username: 'alice',
      state: 'CONTAINER_STATE_RUNNING',
    };
    let answer = { status: 404, error: 'container for user alice not found' };
    const server = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      fetch: (request) =>
        request.method === 'GET'
          ? Response.json({ container, metrics: null })
          : Response.json(
              { code: answer.status, error: `rpc error: code = NotFound desc = ${answer.error}` },
              { status: answer.status },
            ),
    });
    try {
      await using mcp = await connectMcp({
        CONTAINARIUM_SERVER_URL: server.url.href,
        CONTAINARIUM_JWT_TOKEN: await makeToken(),
      });
      const call = () => mcp.call('resize_container', { username: 'alice', cpu: '2' });
      expect((await call()).text).toBe(
        'No container exists for user alice. Call list_containers to see which containers exist.',
      );
      answer = { status: 404, error: 'Not Found' };
      expect((await call()).text).toBe(RESIZE_UNSUPPORTED);
      answer = { status: 501, error: 'method ResizeContainer not implemented' };
      expect((await call()).text).toBe(RESIZE_UNSUPPORTED);
    } finally {
      await server.stop(true);
    }
  });
});

describe('get_quota', () => {
  test("a user's token shows its own quota against its use by default", async () => {
    await using d = await startOwnDaemon();
    d.backend.seed('alice');
    const mcp = await d.connect(await d.token('alice'));
    const result = await mcp.call('get_quota');
    expect(result.isError).toBeFalsy();
    expect(result.text).toBe(
      [
        'Quota of alice: containers 1 of 3; cpus 4 of 8; memory 3.7 GiB of 16GB (14.9 GiB); disk 46.6 GiB of 100GB (93.1 GiB); at most 10 snapshots per container.',
        'Use is the sum of the limits of the containers; creates and resizes by tokens without the admin role cannot go past the quota, admin tokens are not held to it.',
      ].join('\n'),
    );
    expect(result.structuredContent).toMatchObject({
      username: 'alice',
      containers: { used: 1, quota: 3 },
      cpus: { used: 4, quota: 8 },
      memoryBytes: { used: 4e9, quota: 16e9 },
      diskBytes: { used: 50e9, quota: 100e9 },
      snapshotsPerContainer: 10,
    });
    expect(d.routes()).toEqual(['GET /v1/quotas/alice']);
    const other = await mcp.call('get_quota', { username: 'bob' });
    expect(other.isError).toBe(true);
    expect(other.text).toStartWith(
      'The API token is not allowed to get the quota of bob (403: not authorized for user bob).',
    );
  });

  test('an admin names the user; without one it is told to', async () => {
    await using d = await startOwnDaemon();
    const mcp = await d.connect(await d.token('ops', { roles: ['admin'] }));
    const unnamed = await mcp.call('get_quota');
    expect(unnamed.isError).toBe(true);
    expect(unnamed.text).toBe(
      'Could not get the quota: an admin token is held to no quota; give the username whose quota to show.',
    );
    expect(d.routes()).toEqual([]);
    const bob = await mcp.call('get_quota', { username: 'bob' });
    expect(bob.text).toStartWith('Quota of bob: containers 0 of 3; cpus 0 of 8;');
    const bad = await mcp.call('get_quota', { username: 'Bob!' });
    expect(bad.text).toStartWith('Invalid arguments: "username" must be');
  });

  test('a daemon without the route: quotas are not supported; Incus down is not that', async () => {
    const token = await makeToken({ username: 'alice', roles: ['user'] });
    await using fake = startFakeDaemon({ generation: 'v0.3', token, containers: [] });
    await using mcp = await connectMcp({
      CONTAINARIUM_SERVER_URL: fake.url,
      CONTAINARIUM_JWT_TOKEN: token,
    });
    expect((await mcp.call('get_quota')).text).toStartWith(
      'This daemon does not support quotas (it has no GET /v1/quotas/alice route)',
    );
    await using d = await startOwnDaemon();
    d.backend.failWith = new DaemonError('unavailable', 'Incus is not reachable');
    const own = await d.connect(await d.token('alice'));
    expect((await own.call('get_quota')).text).toStartWith(
      'The daemon could not reach its container backend',
    );
  });
});
