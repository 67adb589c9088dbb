// The Incus backend against a fake Incus: error mapping, call counts and restart behaviour that
// real Incus cannot show on demand (no internet, no daemon restart mid-create).
import { describe, expect, test } from 'bun:test';
import { serve } from '../../src/daemon/app.ts';
import { createAuthenticator } from '../../src/daemon/auth.ts';
import { createIncusClient } from '../../src/daemon/incus.ts';
import { createIncusBackend } from '../../src/daemon/incus-backend.ts';
import { ownerTag } from '../../src/daemon/owner.ts';
import { signToken } from '../../src/shared/jwt.ts';
import { MAX_SSH_KEYS } from '../../src/shared/ssh-key.ts';
import { createRequest } from '../support/create-request.ts';
import { fakeClock } from '../support/fake-clock.ts';
import { rejection } from '../support/rejection.ts';
import { failure, fakeIncus, finished, fixture, started, sync } from './incus-fake.ts';

const request = createRequest;

const quiet = () => undefined;

/** The recorded list with extra instances that are not ours, and a second container of ours. */
async function instances() {
  const [ours] = await fixture('instances-recursion2');
  const stopped = structuredClone(ours);
  Object.assign(stopped, { name: 'bob-container', status: 'Stopped' });
  stopped.state = { ...stopped.state, status: 'Stopped', network: null };
  stopped.config['user.containarium.labels'] = '{"team":"web"}';
  stopped.expanded_config['user.containarium.labels'] = '{"team":"web"}';
  stopped.config['user.containarium.username'] = 'bob';
  const vm = { ...structuredClone(ours), name: 'carol-container', type: 'virtual-machine' };
  const other = { ...structuredClone(ours), name: 'ci-runner' };
  return [ours, stopped, vm, other, foreignInstance(ours, 'dave')];
}

/** Someone else's running instance named like ours, without our keys. */
function foreignInstance(ours: Record<string, unknown>, username: string) {
  const config = { 'limits.cpu': '1', 'user.owner': 'another tool' };
  return {
    ...structuredClone(ours),
    name: `${username}-container`,
    config,
    expanded_config: config,
  };
}

describe('listImages', () => {
  test('one Incus call: aliased container images sorted by alias, and the known remotes', async () => {
    const real = await fixture('images-recursion1');
    const [first] = real;
    const vm = { ...structuredClone(first), type: 'virtual-machine', aliases: [{ name: 'vm/1' }] };
    const cached = { ...structuredClone(first), aliases: [], cached: true };
    await using incus = fakeIncus({
      'GET /1.0/images': () => sync([...real, vm, cached]),
    });
    const backend = createIncusBackend(createIncusClient({ socket: incus.socket }), { log: quiet });
    const { images, remotes } = await backend.listImages();
    expect(images.map((i) => i.aliases)).toEqual([['busybox'], ['debian/12']]);
    expect(remotes).toEqual(['images', 'ubuntu', 'ubuntu-daily']);
    expect(incus.seen.map((s) => `${s.method} ${s.path}${s.search}`)).toEqual([
      'GET /1.0/images?recursion=1',
    ]);
  });
});

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
        'user.containarium.create-owner': expect.stringMatching(
          new RegExp(` ${process.pid} \\d+$`),
        ),
        'user.containarium.daemon': 'default',
        'security.nesting': 'true',
        'security.syscalls.intercept.mknod': 'true',
        'security.syscalls.intercept.setxattr': 'true',
      },
      devices: { root: { type: 'disk', path: '/', pool: 'fast', size: '7GB' } },
    });
  });

  test('--default-image replaces the image only of a create that named none', async () => {
    await using incus = fakeIncus({
      'GET /1.0/images/aliases': () => sync([{ name: 'busybox' }, { name: 'debian/12' }]),
      'POST /1.0/instances': () => failure(500, 'stop here'),
    });
    const backend = createIncusBackend(createIncusClient({ socket: incus.socket }), {
      log: quiet,
      defaultImage: 'debian/12',
    });
    const unnamed = request({ image: 'images:ubuntu/24.04', defaulted: ['image'] });
    await rejection(backend.create(unnamed, { async: false }));
    await rejection(backend.create(request({ image: 'busybox' }), { async: false }));
    const sent = incus
      .calls('POST', '/1.0/instances')
      .map((call) => JSON.parse(call.body ?? '{}'))
      .map((body) => [body.source, body.config['user.containarium.image']]);
    expect(sent).toEqual([
      [{ type: 'image', alias: 'debian/12' }, 'debian/12'],
      [{ type: 'image', alias: 'busybox' }, 'busybox'],
    ]);
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
        left.config['user.containarium.username'] = 'alice';
        return sync({ ...left, name: 'alice-container', status: 'Stopped' });
      },
      'PUT /1.0/instances/alice-container/state': () =>
        failure(400, 'The instance is already stopped'),
      'DELETE /1.0/instances/alice-container': () => started('del'),
      'GET /1.0/operations/del/wait': () => finished('del'),
    });
    const backend = createIncusBackend(createIncusClient({ socket: incus.socket }), {
      log: quiet,
      clock: fakeClock(),
    });
    const error = await rejection(backend.create(request({ image: 'busybox' }), { async: false }));
    expect(error.kind).toBe('internal');
    expect(error.message).toBe(
      'failed to create container alice-container: Failed to unpack image',
    );
    expect(incus.calls('DELETE', '/').length).toBe(own ? 1 : 0);
  });

  test('a container that gets no address fails after the timeout on the clock, and is removed', async () => {
    const [ours] = await instances();
    let made = false;
    await using incus = fakeIncus({
      'GET /1.0/images/aliases': () => sync([{ name: 'busybox' }]),
      'POST /1.0/instances': () => {
        made = true;
        return started('op');
      },
      'GET /1.0/operations/op/wait': () => finished('op'),
      'GET /1.0/instances/alice-container': () => {
        if (!made) return failure(404, 'Instance not found');
        const left = structuredClone(ours);
        left.config['user.containarium.username'] = 'alice';
        return sync({ ...left, name: 'alice-container', status: 'Stopped' });
      },
      'PUT /1.0/instances/alice-container/state': () => sync({}),
      'GET /1.0/instances/alice-container/state': () =>
        sync({ status: 'Running', network: { eth0: { addresses: [] } }, processes: 1 }),
      'DELETE /1.0/instances/alice-container': () => started('del'),
      'GET /1.0/operations/del/wait': () => finished('del'),
    });
    const clock = fakeClock();
    const backend = createIncusBackend(createIncusClient({ socket: incus.socket }), {
      log: quiet,
      clock,
      ipTimeoutSeconds: 5,
    });
    const error = await rejection(backend.create(request({ image: 'busybox' }), { async: false }));
    expect(error.message).toBe('container alice-container got no IPv4 address within 5 s');
    // Polled every 300 ms of the clock's time until past the deadline, then removed (stopped
    // for a second of the clock's time first).
    expect(clock.slept.filter((ms) => ms === 300).length).toBe(17);
    expect(incus.calls('DELETE', '/1.0/instances/alice-container').length).toBe(1);
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
    expect(result.container.state).toBe('creating');
    await backend.settled();
    expect((await backend.get('alice')).container.state).toBe('error');
    expect((await backend.list({})).map((c) => [c.name, c.state])).toEqual([
      ['alice-container', 'error'],
    ]);
    expect(await backend.delete('alice', { force: false })).toEqual({
      containerName: 'alice-container',
    });
    expect((await rejection(backend.get('alice'))).kind).toBe('not_found');
  });
});

describe('reads', () => {
  test('list is one Incus call asking only for addresses, shows only <user>-container containers, and filters', async () => {
    const all = await instances();
    await using incus = fakeIncus({ 'GET /1.0/instances': () => sync(all) });
    const client = createIncusClient({ socket: incus.socket });
    const backend = createIncusBackend(client, { log: quiet });
    const names = async (filter: Parameters<typeof backend.list>[0]) =>
      (await backend.list(filter)).map((c) => c.name);
    expect(await names({})).toEqual(['bob-container', 'fixture-container']);
    expect(incus.seen.length).toBe(1);
    // recursion=2;fields=state.network, the selection an Incus that has it answers in full.
    expect(decodeURIComponent(incus.seen[0]?.search ?? '')).toBe(
      '?recursion=2;fields=state.network',
    );
    expect(await names({ username: 'bob' })).toEqual(['bob-container']);
    expect(await names({ state: 'running' })).toEqual(['fixture-container']);
    expect(await names({ labels: { team: 'web' } })).toEqual(['bob-container']);
    expect(await names({ labels: { team: 'web', x: 'y' } })).toEqual([]);
  });

  test('an Incus without the field selection (it answers URLs): config and status, and the leases of the bridge, from then on', async () => {
    const all = await instances();
    const plain = all.map((i) => ({ ...i, state: null }));
    const [ours] = all;
    const lease = {
      hostname: ours.name,
      hwaddr: ours.config['volatile.eth0.hwaddr'].toUpperCase(),
      address: '10.98.0.81',
      type: 'dynamic',
    };
    await using incus = fakeIncus({
      // Incus 6.0 reads "2;fields=…" as no recursion at all.
      'GET /1.0/instances': (seen) =>
        sync(seen.search === '?recursion=1' ? plain : all.map((i) => `/1.0/instances/${i.name}`)),
      'GET /1.0/networks/incusbr0/leases': () =>
        sync([{ hostname: 'x', hwaddr: 'aa:bb:cc:dd:ee:ff', address: 'fd42::1' }, lease]),
    });
    const backend = createIncusBackend(createIncusClient({ socket: incus.socket }), { log: quiet });
    const first = await backend.list({});
    expect(first.map((c) => c.name)).toEqual(['bob-container', 'fixture-container']);
    expect(first[1]?.network).toEqual({
      ipAddress: '10.98.0.81',
      macAddress: ours.config['volatile.eth0.hwaddr'],
      interface: 'eth0',
      bridge: 'incusbr0',
    });
    expect(first[0]?.network).toBeNull();
    await backend.list({});
    expect(incus.seen.map((s) => `${s.path}${decodeURIComponent(s.search)}`)).toEqual([
      '/1.0/instances?recursion=2;fields=state.network',
      '/1.0/instances?recursion=1',
      '/1.0/networks/incusbr0/leases',
      '/1.0/instances?recursion=1',
      '/1.0/networks/incusbr0/leases',
    ]);
  });

  test('a running container without a lease (an unmanaged NIC, no address yet): the full state is read instead', async () => {
    const all = await instances();
    const plain = all.map((i) => ({ ...i, state: null }));
    await using incus = fakeIncus({
      'GET /1.0/instances': (seen) =>
        sync(
          seen.search === '?recursion=1'
            ? plain
            : seen.search === '?recursion=2'
              ? all
              : all.map((i) => `/1.0/instances/${i.name}`),
        ),
      'GET /1.0/networks/incusbr0/leases': () => sync([]),
    });
    const backend = createIncusBackend(createIncusClient({ socket: incus.socket }), { log: quiet });
    const [, running] = await backend.list({});
    expect(running?.network?.ipAddress).toBe(all[0].state.network.eth0.addresses[0].address);
    expect(incus.seen.map((s) => decodeURIComponent(s.search)).at(-1)).toBe('?recursion=2');
    expect(incus.seen).toHaveLength(4);
  });

  test('get of a container still being created (running in Incus) waits for no CPU reading', async () => {
    const [ours] = await instances();
    // Another live process (this one) is still creating it.
    ours.config['user.containarium.status'] = 'creating';
    ours.config['user.containarium.create-owner'] = ownerTag();
    await using incus = fakeIncus({ 'GET /1.0/instances/fixture-container': () => sync(ours) });
    const clock = fakeClock();
    const backend = createIncusBackend(createIncusClient({ socket: incus.socket }), {
      log: quiet,
      clock,
    });
    const { container, metrics } = await backend.get('fixture');
    expect(container.state).toBe('creating');
    expect(metrics).toBeNull();
    expect(clock.slept).toEqual([]);
    expect(incus.calls('GET', '/1.0/instances/fixture-container/state')).toHaveLength(0);
  });

  test('an instance that vanishes while Incus gathers the list (its 404) is skipped: the list is read again', async () => {
    const all = await instances();
    let calls = 0;
    await using incus = fakeIncus({
      'GET /1.0/instances': () => (++calls === 1 ? failure(404, 'Instance not found') : sync(all)),
    });
    const client = createIncusClient({ socket: incus.socket });
    const backend = createIncusBackend(client, { log: quiet, clock: fakeClock() });
    expect((await backend.list({})).map((c) => c.name)).toEqual([
      'bob-container',
      'fixture-container',
    ]);
    calls = 0;
    expect((await backend.metrics()).map((m) => m.name)).toEqual([
      'bob-container',
      'fixture-container',
    ]);
  });

  test('metrics for all containers is two Incus calls a second apart, whatever their number, with the CPU share between them', async () => {
    const all = await instances();
    const later = structuredClone(all);
    // Half a core busy for the second between the readings.
    later[0].state.cpu.usage += 0.5e9;
    await using incus = fakeIncus({
      'GET /1.0/instances': () => sync(incus.seen.length === 1 ? all : later),
    });
    const client = createIncusClient({ socket: incus.socket });
    const clock = fakeClock();
    const metrics = await createIncusBackend(client, { log: quiet, clock }).metrics();
    expect(metrics.map((m) => m.name)).toEqual(['bob-container', 'fixture-container']);
    expect(Number(metrics[1]?.memoryUsageBytes)).toBeGreaterThan(0);
    expect(metrics.map((m) => m.cpuUsagePercent)).toEqual([0, 50]);
    expect(incus.seen.map((s) => s.search)).toEqual(['?recursion=2', '?recursion=2']);
    expect(clock.slept).toEqual([1000]);
  });

  test("one container's metrics: two readings of its state; its CPU share is of one core", async () => {
    const [ours] = await instances();
    const state = ours.state;
    const busy = { ...structuredClone(state), cpu: { usage: state.cpu.usage + 1.5e9 } };
    await using incus = fakeIncus({
      'GET /1.0/instances/fixture-container': () => sync(ours),
      'GET /1.0/instances/fixture-container/state': () =>
        sync(
          incus.calls('GET', '/1.0/instances/fixture-container/state').length === 1 ? state : busy,
        ),
    });
    const backend = createIncusBackend(createIncusClient({ socket: incus.socket }), {
      log: quiet,
      clock: fakeClock(),
    });
    const [metrics] = await backend.metrics('fixture');
    expect(metrics?.cpuUsagePercent).toBe(150);
    expect(incus.calls('GET', '/1.0/instances/fixture-container/state')).toHaveLength(2);
    // get reads the instance with its state, then the state (busy) once more a second later.
    const { metrics: got } = await backend.get('fixture');
    expect(got?.cpuUsagePercent).toBe(150);
  });

  test('get gives the container and, while running, its metrics', async () => {
    const [ours] = await instances();
    await using incus = fakeIncus({ 'GET /1.0/instances/fixture-container': () => sync(ours) });
    const backend = createIncusBackend(createIncusClient({ socket: incus.socket }), { log: quiet });
    const { container, metrics } = await backend.get('fixture');
    expect(container.state).toBe('running');
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
    expect((await backend.get('alice')).container.state).toBe('creating');
    expect(await backend.metrics('alice')).toEqual([]);
    // Another user's missing container is still not found.
    expect((await rejection(backend.metrics('zed'))).kind).toBe('not_found');
    release.resolve();
    await backend.settled();
    expect((await backend.get('alice')).container.state).toBe('error');
    expect(await backend.metrics('alice')).toEqual([]);
    await backend.delete('alice', { force: false });
    expect((await rejection(backend.metrics('alice'))).kind).toBe('not_found');
  });

  test('a create left "creating" by a daemon version that recorded no owner reads as ERROR', async () => {
    const [ours] = await instances();
    ours.config['user.containarium.status'] = 'creating';
    await using incus = fakeIncus({
      'GET /1.0/instances/fixture-container': () => sync(ours),
      'GET /1.0/instances': () => sync([ours]),
    });
    const backend = createIncusBackend(createIncusClient({ socket: incus.socket }), { log: quiet });
    expect((await backend.get('fixture')).container.state).toBe('error');
    expect((await backend.list({}))[0]?.state).toBe('error');
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
      totalMemoryBytes: resources.memory.total,
      availableMemoryBytes: resources.memory.total - resources.memory.used,
      totalDiskBytes: pool.space.total,
      availableDiskBytes: pool.space.total - pool.space.used,
      containersRunning: 1,
      containersStopped: 1,
      containersTotal: 2,
      hostname: 'vm',
      uptimeSeconds: expect.any(Number),
      cpuLoad1min: expect.any(Number),
      cpuLoad5min: expect.any(Number),
      cpuLoad15min: expect.any(Number),
      // The running one's 1 CPU and 64MB; the 1GB root disks of both.
      committedCpus: 1,
      committedMemoryBytes: 64e6,
      committedDiskBytes: 2e9,
    });
    expect(incus.seen.length).toBe(4);
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
        current = { ...stopped, name: 'fixture-container', config: ours.config };
        return started('stop');
      },
      'GET /1.0/operations/stop/wait': () => finished('stop'),
    });
    const backend = createIncusBackend(createIncusClient({ socket: incus.socket }), { log: quiet });
    expect((await backend.stop('fixture', { force: false, timeout: 5 })).state).toBe('stopped');
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

describe('through the REST API', () => {
  const SECRET = 'k8Q2v9ZrX4mN7pL1sT6wY3bH5jD0gF2c';

  /** The daemon's HTTP API on port 0 over the Incus backend and a fake Incus; calls as admin. */
  async function daemon(socket: string) {
    const log = quiet;
    const server = serve({
      backend: createIncusBackend(createIncusClient({ socket }), { log }),
      auth: createAuthenticator({ secret: SECRET, log }),
      hostname: '127.0.0.1',
      port: 0,
      log,
    });
    const { token } = await signToken({
      username: 'admin',
      roles: ['admin'],
      lifetimeMs: 60_000,
      secret: SECRET,
    });
    return {
      call: (method: string, path: string, body?: unknown) =>
        fetch(`http://127.0.0.1:${server.port}${path}`, {
          method,
          headers: { authorization: `Bearer ${token}` },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        }),
      [Symbol.asyncDispose]: () => server.stop(true),
    };
  }

  test('adding a key past 32 is refused with 400 and changes nothing', async () => {
    const [ours] = await instances();
    const full = structuredClone(ours);
    const keys = Array.from({ length: MAX_SSH_KEYS }, (_, i) => `ssh-ed25519 AAAA${i} k${i}`);
    full.config['user.containarium.ssh-keys'] = JSON.stringify(keys);
    await using incus = fakeIncus({ 'GET /1.0/instances/fixture-container': () => sync(full) });
    await using d = await daemon(incus.socket);
    const response = await d.call('POST', '/v1/containers/fixture/ssh-keys', {
      sshPublicKey:
        'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq5sFq2wA0hB3xG8cW1Wq2lXzQ2l0cO0z9d3vP6e7Gk alice@laptop',
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({
      code: 400,
      error:
        'rpc error: code = InvalidArgument desc = invalid sshPublicKey: the container for user fixture already has 32 SSH keys, the most it takes; remove one first',
    });
    expect(incus.seen.filter((s) => s.method !== 'GET')).toEqual([]);
  });

  test('an Incus answer over 16 MiB is a 500 naming Incus and the cap', async () => {
    const name = 'x'.repeat(17 * 2 ** 20);
    await using incus = fakeIncus({
      'GET /1.0/instances': () => new Response(JSON.stringify({ type: 'sync', metadata: [name] })),
    });
    await using d = await daemon(incus.socket);
    const response = await d.call('GET', '/v1/containers');
    expect(response.status).toBe(500);
    expect(await response.json()).toEqual({
      code: 500,
      error:
        'rpc error: code = Internal desc = Incus answered GET 1.0/instances?recursion=2%3Bfields%3Dstate.network with more than 16 MiB, the most the daemon reads of one Incus response',
    });
  });
});

describe("someone else's instance named like ours", () => {
  test('is invisible to every call, a create for that name is a 409 saying so, and nothing touches it', async () => {
    const all = await instances();
    const dave = all.at(-1);
    await using incus = fakeIncus({
      'GET /1.0/instances': () => sync(all),
      'GET /1.0/instances/dave-container': () => sync(dave),
      'GET /1.0/instances/dave-container/state': () => sync(dave?.state),
      'GET /1.0/images/aliases': () => sync([{ name: 'busybox' }]),
    });
    const backend = createIncusBackend(createIncusClient({ socket: incus.socket }), { log: quiet });
    for (const call of [
      backend.get('dave'),
      backend.metrics('dave'),
      backend.start('dave'),
      backend.stop('dave', { force: true }),
      backend.delete('dave', { force: true }),
      backend.addSshKey('dave', 'ssh-ed25519 AAAA x'),
    ]) {
      const error = await rejection(call);
      expect(error.kind).toBe('not_found');
      expect(error.message).toBe('container for user dave not found');
    }
    expect((await backend.list({})).map((c) => c.name)).not.toContain('dave-container');
    expect((await backend.metrics()).map((m) => m.name)).not.toContain('dave-container');
    const error = await rejection(
      backend.create(request({ username: 'dave', image: 'busybox' }), { async: false }),
    );
    expect(error.kind).toBe('conflict');
    expect(error.message).toBe(
      'an instance named dave-container already exists in Incus but was not made by this daemon, which does not manage it; choose another username, or rename or remove that instance in Incus',
    );
    // Only reads reached Incus: it was neither adopted, changed nor deleted.
    expect(incus.seen.filter((s) => s.method !== 'GET')).toEqual([]);
  });
});
