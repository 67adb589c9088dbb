// The Incus backend against a fake Incus: error mapping, call counts and restart behaviour that
// real Incus cannot show on demand (no internet, no daemon restart mid-create).
import { describe, expect, test } from 'bun:test';
import type { CreateRequest } from '../../src/daemon/backend.ts';
import { createIncusClient } from '../../src/daemon/incus.ts';
import { createIncusBackend } from '../../src/daemon/incus-backend.ts';
import { rejection } from '../support/rejection.ts';
import { failure, fakeIncus, finished, fixture, started, sync } from './incus-fake.ts';

const request = (over: Partial<CreateRequest> = {}): CreateRequest => ({
  username: 'alice',
  cpu: 2,
  memory: '1GB',
  disk: '5GB',
  sshKeys: [],
  labels: {},
  image: 'images:ubuntu/24.04',
  enableDocker: false,
  ...over,
});

const quiet = () => undefined;

/** The recorded list with extra instances that are not ours, and a second container of ours. */
async function instances() {
  const [ours] = await fixture('instances-recursion2');
  const stopped = structuredClone(ours);
  Object.assign(stopped, { name: 'bob-container', status: 'Stopped' });
  stopped.state = { ...stopped.state, status: 'Stopped', network: null };
  stopped.config['user.containarium.labels'] = '{"team":"web"}';
  stopped.expanded_config['user.containarium.labels'] = '{"team":"web"}';
  const vm = { ...structuredClone(ours), name: 'carol-container', type: 'virtual-machine' };
  const other = { ...structuredClone(ours), name: 'ci-runner' };
  return [ours, stopped, vm, other];
}

describe('create errors', () => {
  test('an unreachable image server is unavailable, naming the server and the local images, and leaves nothing', async () => {
    const err =
      'Failed getting remote image info: Get "https://images.linuxcontainers.org/streams/v1/index.json": dial tcp: lookup images.linuxcontainers.org on 10.0.0.2:53: no such host';
    await using incus = fakeIncus({
      'GET /1.0/images/aliases': () => sync([{ name: 'busybox' }]),
      'POST /1.0/instances': () => started('op'),
      'GET /1.0/operations/op/wait': () => failure(500, err),
    });
    const backend = createIncusBackend(createIncusClient({ socket: incus.socket }), { log: quiet });
    const error = await rejection(backend.create(request(), { async: false }));
    expect(error.kind).toBe('unavailable');
    expect(error.message).toBe(
      `image "images:ubuntu/24.04" could not be fetched: the image server https://images.linuxcontainers.org is unreachable (${err}); local images: busybox`,
    );
    const [post] = incus.calls('POST', '/1.0/instances');
    expect(JSON.parse(post?.body ?? '{}').source).toEqual({
      type: 'image',
      alias: 'ubuntu/24.04',
      mode: 'pull',
      server: 'https://images.linuxcontainers.org',
      protocol: 'simplestreams',
    });
    // Incus had nothing left by that name, so nothing was deleted.
    expect(incus.calls('DELETE', '/').length).toBe(0);
    // And the same user may try again at once: no stale claim turns the retry into a conflict.
    expect((await rejection(backend.create(request(), { async: false }))).kind).toBe('unavailable');
  });

  test('an image missing on the server is invalid', async () => {
    await using incus = fakeIncus({
      'GET /1.0/images/aliases': () => sync([]),
      'POST /1.0/instances': () => started('op'),
      'GET /1.0/operations/op/wait': () =>
        failure(500, "Failed getting remote image info: The requested image couldn't be found"),
    });
    const backend = createIncusBackend(createIncusClient({ socket: incus.socket }), { log: quiet });
    const error = await rejection(
      backend.create(request({ image: 'ubuntu:99.04' }), { async: false }),
    );
    expect(error.kind).toBe('invalid');
    expect(error.message).toBe(
      `image "ubuntu:99.04" could not be fetched: https://cloud-images.ubuntu.com/releases has no such image (Failed getting remote image info: The requested image couldn't be found); local images: none`,
    );
  });

  test('an unknown local image is invalid before anything is created', async () => {
    await using incus = fakeIncus({
      'GET /1.0/images/aliases': () => sync([{ name: 'debian/12' }, { name: 'busybox' }]),
    });
    const backend = createIncusBackend(createIncusClient({ socket: incus.socket }), { log: quiet });
    const error = await rejection(backend.create(request({ image: 'nosuch' }), { async: false }));
    expect(error.kind).toBe('invalid');
    expect(error.message).toBe(
      'image "nosuch" could not be fetched: it is not a local image and names no image server; local images: busybox, debian/12',
    );
    // An unknown remote is named as such (Incus would only say the alias does not exist).
    const remote = await rejection(backend.create(request({ image: 'foo:bar' }), { async: false }));
    expect(remote.message).toBe(
      'image "foo:bar" could not be fetched: "foo" is not a known image server (known: images, ubuntu, ubuntu-daily); local images: busybox, debian/12',
    );
    expect(incus.calls('POST', '/').length).toBe(0);
  });

  test('the config and root disk Incus receives are exactly what was asked for', async () => {
    await using incus = fakeIncus({
      'GET /1.0/images/aliases': () => sync([{ name: 'busybox' }]),
      'POST /1.0/instances': () => failure(500, 'stop here'),
    });
    const backend = createIncusBackend(createIncusClient({ socket: incus.socket }), {
      log: quiet,
      pool: 'fast',
    });
    const asked = request({
      image: 'busybox',
      cpu: 3,
      memory: '512MiB',
      disk: '7GB',
      enableDocker: true,
      labels: { team: 'ml' },
      sshKeys: ['ssh-ed25519 AAAA x'],
    });
    await rejection(backend.create(asked, { async: false }));
    const body = JSON.parse(incus.calls('POST', '/1.0/instances')[0]?.body ?? '{}');
    expect(body).toEqual({
      name: 'alice-container',
      type: 'container',
      source: { type: 'image', alias: 'busybox' },
      config: {
        'limits.cpu': '3',
        'limits.memory': '512MiB',
        'boot.autostart': 'true',
        'user.containarium.username': 'alice',
        'user.containarium.labels': '{"team":"ml"}',
        'user.containarium.ssh-keys': '["ssh-ed25519 AAAA x"]',
        'user.containarium.image': 'busybox',
        'user.containarium.docker': 'true',
        'user.containarium.status': 'creating',
        'user.containarium.create-id': expect.stringMatching(/^[0-9a-f-]{36}$/),
        'security.nesting': 'true',
        'security.syscalls.intercept.mknod': 'true',
        'security.syscalls.intercept.setxattr': 'true',
      },
      devices: { root: { type: 'disk', path: '/', pool: 'fast', size: '7GB' } },
    });
  });

  test('an existing container is a conflict, and nothing is deleted', async () => {
    const [ours] = await instances();
    await using incus = fakeIncus({
      'GET /1.0/instances/fixture-container': () => sync(ours),
    });
    const backend = createIncusBackend(createIncusClient({ socket: incus.socket }), { log: quiet });
    const error = await rejection(
      backend.create(request({ username: 'fixture' }), { async: false }),
    );
    expect(error.kind).toBe('conflict');
    expect(error.message).toBe('container for user fixture already exists');
    expect(incus.calls('DELETE', '/').length).toBe(0);
  });

  test.each([
    'Failed creating instance record: Add instance info to the database: Failed to create "instances" entry: UNIQUE constraint failed: instances.project_id, instances.name',
    'Failed creating instance record: Instance is busy running a "create" operation',
  ])(
    "losing a create race to another process is a conflict and keeps the winner's container (%p)",
    async (err) => {
      const [ours] = await instances();
      await using incus = fakeIncus({
        'GET /1.0/images/aliases': () => sync([{ name: 'busybox' }]),
        'POST /1.0/instances': () => started('op'),
        'GET /1.0/operations/op/wait': () => failure(500, err),
        'GET /1.0/instances/alice-container': () => sync({ ...ours, name: 'alice-container' }),
      });
      const backend = createIncusBackend(createIncusClient({ socket: incus.socket }), {
        log: quiet,
      });
      const error = await rejection(
        backend.create(request({ image: 'busybox' }), { async: false }),
      );
      expect(error.kind).toBe('conflict');
      expect(incus.calls('DELETE', '/').length + incus.calls('PUT', '/').length).toBe(0);
    },
  );

  test.each([
    ['its own', true],
    ["a racing create's", false],
  ])('a failed create removes a half-made instance only when it is %s', async (_, own) => {
    const [ours] = await instances();
    let createId = '';
    await using incus = fakeIncus({
      'GET /1.0/images/aliases': () => sync([{ name: 'busybox' }]),
      'POST /1.0/instances': (seen) => {
        createId = JSON.parse(seen.body).config['user.containarium.create-id'];
        return started('op');
      },
      'GET /1.0/operations/op/wait': () => failure(500, 'Failed to unpack image'),
      'GET /1.0/instances/alice-container': () => {
        if (!createId) return failure(404, 'Instance not found');
        const left = structuredClone(ours);
        left.config['user.containarium.create-id'] = own ? createId : 'someone-else';
        return sync({ ...left, name: 'alice-container', status: 'Stopped' });
      },
      'PUT /1.0/instances/alice-container/state': () =>
        failure(400, 'The instance is already stopped'),
      'DELETE /1.0/instances/alice-container': () => started('del'),
      'GET /1.0/operations/del/wait': () => finished('del'),
    });
    const backend = createIncusBackend(createIncusClient({ socket: incus.socket }), { log: quiet });
    const error = await rejection(backend.create(request({ image: 'busybox' }), { async: false }));
    expect(error.kind).toBe('internal');
    expect(error.message).toBe(
      'failed to create container alice-container: Failed to unpack image',
    );
    expect(incus.calls('DELETE', '/').length).toBe(own ? 1 : 0);
  });

  test('an async create that fails before its instance exists reads ERROR until deleted', async () => {
    await using incus = fakeIncus({
      'GET /1.0/images/aliases': () => sync([]),
      'POST /1.0/instances': () => started('op'),
      'GET /1.0/operations/op/wait': () => failure(500, 'dial tcp: i/o timeout'),
      'GET /1.0/instances': () => sync([]),
    });
    const backend = createIncusBackend(createIncusClient({ socket: incus.socket }), { log: quiet });
    const result = await backend.create(request(), { async: true });
    expect(result.container.state).toBe('CONTAINER_STATE_CREATING');
    let state = result.container.state;
    for (let i = 0; i < 50 && state === 'CONTAINER_STATE_CREATING'; i++) {
      await Bun.sleep(20);
      state = (await backend.get('alice')).container.state;
    }
    expect(state).toBe('CONTAINER_STATE_ERROR');
    expect((await backend.list({})).map((c) => [c.name, c.state])).toEqual([
      ['alice-container', 'CONTAINER_STATE_ERROR'],
    ]);
    expect(await backend.delete('alice', { force: false })).toEqual({
      containerName: 'alice-container',
    });
    expect((await rejection(backend.get('alice'))).kind).toBe('not_found');
  });
});

describe('reads', () => {
  test('list is one Incus call, shows only <user>-container containers, and filters', async () => {
    const all = await instances();
    await using incus = fakeIncus({ 'GET /1.0/instances': () => sync(all) });
    const client = createIncusClient({ socket: incus.socket });
    const backend = createIncusBackend(client, { log: quiet });
    const names = async (filter: Parameters<typeof backend.list>[0]) =>
      (await backend.list(filter)).map((c) => c.name);
    expect(await names({})).toEqual(['bob-container', 'fixture-container']);
    expect(client.calls).toBe(1);
    expect(incus.seen[0]?.search).toBe('?recursion=2');
    expect(await names({ username: 'bob' })).toEqual(['bob-container']);
    expect(await names({ state: 'CONTAINER_STATE_RUNNING' })).toEqual(['fixture-container']);
    expect(await names({ labels: { team: 'web' } })).toEqual(['bob-container']);
    expect(await names({ labels: { team: 'web', x: 'y' } })).toEqual([]);
  });

  test('metrics for all containers is one Incus call', async () => {
    const all = await instances();
    await using incus = fakeIncus({ 'GET /1.0/instances': () => sync(all) });
    const client = createIncusClient({ socket: incus.socket });
    const metrics = await createIncusBackend(client, { log: quiet }).metrics();
    expect(metrics.map((m) => m.name)).toEqual(['bob-container', 'fixture-container']);
    expect(Number(metrics[1]?.memoryUsageBytes)).toBeGreaterThan(0);
    expect(client.calls).toBe(1);
  });

  test('get gives the container and, while running, its metrics', async () => {
    const [ours] = await instances();
    await using incus = fakeIncus({ 'GET /1.0/instances/fixture-container': () => sync(ours) });
    const backend = createIncusBackend(createIncusClient({ socket: incus.socket }), { log: quiet });
    const { container, metrics } = await backend.get('fixture');
    expect(container.state).toBe('CONTAINER_STATE_RUNNING');
    expect(metrics?.name).toBe('fixture-container');
    expect(metrics?.processCount).toBeGreaterThan(0);
  });

  test('a missing container is not_found in the words the API uses', async () => {
    await using incus = fakeIncus({});
    const backend = createIncusBackend(createIncusClient({ socket: incus.socket }), { log: quiet });
    for (const call of [backend.get('zed'), backend.metrics('zed'), backend.start('zed')]) {
      const error = await rejection(call);
      expect(error.kind).toBe('not_found');
      expect(error.message).toBe('container for user zed not found');
    }
  });

  test('metrics of a container still being created is an empty list, as get shows it', async () => {
    const release = Promise.withResolvers<void>();
    await using incus = fakeIncus({
      'GET /1.0/images/aliases': () => sync([]),
      'POST /1.0/instances': () => started('op'),
      // The image download is still going until the test lets it fail.
      'GET /1.0/operations/op/wait': async () => {
        await release.promise;
        return failure(500, 'stopped by the test');
      },
      'GET /1.0/instances': () => sync([]),
    });
    const backend = createIncusBackend(createIncusClient({ socket: incus.socket }), { log: quiet });
    await backend.create(request(), { async: true });
    expect((await backend.get('alice')).container.state).toBe('CONTAINER_STATE_CREATING');
    expect(await backend.metrics('alice')).toEqual([]);
    // Another user's missing container is still not found.
    expect((await rejection(backend.metrics('zed'))).kind).toBe('not_found');
    release.resolve();
    for (
      let i = 0;
      i < 50 && (await backend.get('alice')).container.state !== 'CONTAINER_STATE_ERROR';
      i++
    ) {
      await Bun.sleep(20);
    }
    expect((await backend.get('alice')).container.state).toBe('CONTAINER_STATE_ERROR');
    expect(await backend.metrics('alice')).toEqual([]);
    await backend.delete('alice', { force: false });
    expect((await rejection(backend.metrics('alice'))).kind).toBe('not_found');
  });

  test('a create left "creating" by an earlier daemon process reads as ERROR', async () => {
    const [ours] = await instances();
    ours.config['user.containarium.status'] = 'creating';
    await using incus = fakeIncus({
      'GET /1.0/instances/fixture-container': () => sync(ours),
      'GET /1.0/instances': () => sync([ours]),
    });
    const backend = createIncusBackend(createIncusClient({ socket: incus.socket }), { log: quiet });
    expect((await backend.get('fixture')).container.state).toBe('CONTAINER_STATE_ERROR');
    expect((await backend.list({}))[0]?.state).toBe('CONTAINER_STATE_ERROR');
  });

  test('system info combines server, resources, pool space and our containers', async () => {
    const all = await instances();
    const [server, resources, pool] = await Promise.all(
      ['server', 'resources', 'pool-resources'].map(fixture),
    );
    await using incus = fakeIncus({
      'GET /1.0': () => sync(server),
      'GET /1.0/resources': () => sync(resources),
      'GET /1.0/storage-pools/default/resources': () => sync(pool),
      'GET /1.0/instances': () => sync(all),
    });
    const client = createIncusClient({ socket: incus.socket });
    const info = await createIncusBackend(client, { log: quiet }).systemInfo();
    expect(info).toEqual({
      incusVersion: server.environment.server_version,
      os: 'Debian GNU/Linux',
      kernelVersion: server.environment.kernel_version,
      totalCpus: resources.cpu.total,
      totalMemoryBytes: String(resources.memory.total),
      availableMemoryBytes: String(resources.memory.total - resources.memory.used),
      totalDiskBytes: String(pool.space.total),
      availableDiskBytes: String(pool.space.total - pool.space.used),
      containersRunning: 1,
      containersStopped: 1,
      containersTotal: 2,
      hostname: 'vm',
      uptimeSeconds: expect.stringMatching(/^\d+$/),
    });
    expect(client.calls).toBe(4);
  });

  test('ping is false when Incus is down, true when it answers', async () => {
    const down = createIncusBackend(createIncusClient({ socket: '/nonexistent/unix.socket' }));
    expect(await down.ping()).toBe(false);
    await using incus = fakeIncus({ 'GET /1.0': () => sync({}) });
    expect(await createIncusBackend(createIncusClient({ socket: incus.socket })).ping()).toBe(true);
  });
});

describe('changes', () => {
  test('deleting a running container without force is refused and deletes nothing', async () => {
    const [ours] = await instances();
    await using incus = fakeIncus({ 'GET /1.0/instances/fixture-container': () => sync(ours) });
    const backend = createIncusBackend(createIncusClient({ socket: incus.socket }), { log: quiet });
    const error = await rejection(backend.delete('fixture', { force: false }));
    expect(error.kind).toBe('invalid');
    expect(error.message).toBe(
      'container fixture-container is running; stop it first or delete with force',
    );
    expect(incus.calls('DELETE', '/').length + incus.calls('PUT', '/').length).toBe(0);
  });

  test('stop passes force and timeout to Incus; stopping a stopped container changes nothing', async () => {
    const [ours, stopped] = await instances();
    let current = ours;
    await using incus = fakeIncus({
      'GET /1.0/instances/fixture-container': () => sync(current),
      'PUT /1.0/instances/fixture-container/state': () => {
        current = { ...stopped, name: 'fixture-container' };
        return started('stop');
      },
      'GET /1.0/operations/stop/wait': () => finished('stop'),
    });
    const backend = createIncusBackend(createIncusClient({ socket: incus.socket }), { log: quiet });
    expect((await backend.stop('fixture', { force: false, timeout: 5 })).state).toBe(
      'CONTAINER_STATE_STOPPED',
    );
    expect(JSON.parse(incus.calls('PUT', '/')[0]?.body ?? '{}')).toEqual({
      action: 'stop',
      timeout: 5,
      force: false,
    });
    await backend.stop('fixture', { force: true });
    expect(incus.calls('PUT', '/').length).toBe(1);
    // Only the answer needs the live state; the lookup before acting reads status alone.
    const lookups = incus.seen
      .filter((s) => s.method === 'GET' && s.path === '/1.0/instances/fixture-container')
      .map((s) => s.search);
    expect(lookups).toEqual(['', '?recursion=1', '', '?recursion=1']);
  });
});
