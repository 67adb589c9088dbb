// mcp-server against the project's own daemon app (over the in-memory backend), not the fake:
// both binaries' code on either side of a real HTTP connection, with real tokens. Every check
// depends on what crossed the wire: int64 strings read back as numbers, state names, labels,
// limits in the unit given, the daemon's error bodies turned into the tool's sentences.
import { describe, expect, test } from 'bun:test';
import { foreign, stillCreating } from '../../src/daemon/incus-instances.ts';
import { ED25519 } from '../support/keys.ts';
import { ASYNC_PHASES } from '../support/memory-backend.ts';
import { startOwnDaemon } from '../support/own-daemon.ts';

/** The own daemon with an admin's mcp-server connected. */
async function setup() {
  const d = await startOwnDaemon();
  const admin = await d.token('mcp-client', { roles: ['admin'] });
  const mcp = await d.connect(admin);
  return Object.assign(d, { mcp, admin });
}

/**
 * get_metrics' structured usage of a container: the memory backend's figures (sent as int64
 * strings, several past 32 bits) read back as numbers, beside the limits in bytes.
 */
/** The memory backend's figures; 25% of one core, shown too as a share of `cores`. */
const usage = (name: string, memoryLimitBytes: number, diskLimitBytes: number, cores = 4) => ({
  name,
  cpuPercent: 25,
  cpuLimitPercent: Math.round((25 / cores) * 10) / 10,
  cpuSeconds: 12,
  memoryBytes: 536870912,
  memoryPeakBytes: 1073741824,
  diskBytes: 5368709120,
  networkRxBytes: 104857600,
  networkTxBytes: 52428800,
  processes: 42,
  memoryLimitBytes,
  diskLimitBytes,
});

const NO_CONTAINER = (user: string) =>
  `No container exists for user ${user}. Call list_containers to see which containers exist.`;

describe('mcp-server against its own daemon', () => {
  test('create_container: limits in the unit given, keys and docker reach the daemon; one async create, followed to the end', async () => {
    await using d = await setup();
    const result = await d.mcp.call('create_container', {
      username: 'carol',
      cpu: 2,
      memory: '512mib',
      disk: '20GB',
      ssh_keys: [ED25519],
      image: 'debian/12',
    });
    expect(result.isError).toBeFalsy();
    expect(result.text).toBe(
      [
        'Created carol-container for carol: running.',
        'Resources: 2 cores, 512 MiB memory, 20 GB disk',
        'Image: debian/12',
        'IP: 10.98.0.10',
        "SSH: ssh carol@10.98.0.10 (10.98.0.10 is a private address, reachable from the daemon's host)",
        'Daemon: Container carol-container created successfully',
      ].join('\n'),
    );
    // One POST: the daemon took enableDocker (mcp-server's first dialect), so no second try;
    // then a get per phase of the async create, and one that finds it running.
    expect(d.routes()).toEqual([
      'POST /v1/containers',
      ...Array(ASYNC_PHASES.length + 1).fill('GET /v1/containers/carol'),
    ]);
    expect(d.requests[0]?.status).toBe(200);
    const [call] = d.backend.calls;
    expect(call).toEqual({
      method: 'create',
      args: [
        {
          username: 'carol',
          cpu: 2,
          memory: '512MiB',
          disk: '20GB',
          sshKeys: [ED25519],
          labels: {},
          image: 'debian/12',
          enableDocker: true,
        },
        { async: true },
      ],
    });
    const created = d.backend.containers.get('carol');
    expect(created?.createdAt).toBe(1_736_930_000);
    // The int64 string "1736930000" read back as the same second.
    expect(result.structuredContent).toEqual({
      container: {
        name: 'carol-container',
        username: 'carol',
        state: 'running',
        cpu: '2',
        memory: '512MiB',
        disk: '20GB',
        ipAddress: '10.98.0.10',
        image: 'debian/12',
        dockerEnabled: true,
        sshKeys: [ED25519],
        labels: {},
        createdAt: '2025-01-15T08:33:20Z',
        updatedAt: null,
      },
      message: 'Container carol-container created successfully',
      sshCommand: 'ssh carol@10.98.0.10',
    });
  });

  test("create_container with the defaults and no key: upstream's limits, docker off, no SSH line", async () => {
    await using d = await setup();
    const result = await d.mcp.call('create_container', {
      username: 'dave',
      enable_docker: false,
    });
    expect(result.isError).toBeFalsy();
    expect(result.text).toBe(
      [
        'Created dave-container for dave: running.',
        'Resources: 4 cores, 4 GB memory, 50 GB disk',
        'Image: images:ubuntu/24.04',
        'IP: 10.98.0.10',
        'Daemon: Container dave-container created successfully',
      ].join('\n'),
    );
    // Left empty, so the daemon knows they are its defaults (and may lower them to fit).
    expect(d.backend.calls[0]?.args[0]).toMatchObject({
      defaulted: ['cpu', 'memory', 'disk', 'image'],
    });
    expect(d.backend.containers.get('dave')).toMatchObject({
      resources: { cpu: '4', memory: '4GB', disk: '50GB' },
      sshKeys: [],
      image: 'images:ubuntu/24.04',
      dockerEnabled: false,
    });
    const info = await d.mcp.call('get_container', { username: 'dave' });
    expect(info.text).toContain('Docker: disabled');
    expect(info.text).toContain('Image: images:ubuntu/24.04');
  });

  test('create_container with no limits on a small host: the daemon lowers its defaults and says so', async () => {
    await using d = await setup();
    d.backend.host = {
      cpus: 2,
      memoryBytes: 3 * 2 ** 30,
      pool: { name: 'default', bytes: 10 * 2 ** 30 },
    };
    const result = await d.mcp.call('create_container', { username: 'alice' });
    expect(result.isError).toBeFalsy();
    expect(result.text).toBe(
      [
        'Created alice-container for alice: running.',
        'Resources: 2 cores, 3 GiB memory, 10 GiB disk',
        'Image: images:ubuntu/24.04',
        'IP: 10.98.0.10',
        'Daemon: Container alice-container created successfully (defaults lowered to what this host has: cpu 2, memory "3GiB", disk "10GiB")',
      ].join('\n'),
    );
    // What the user gave is never lowered: too much is refused, naming the field and the most.
    const big = await d.mcp.call('create_container', { username: 'bob', disk: '50GB' });
    expect(big.isError).toBe(true);
    expect(big.text).toBe(
      'The daemon rejected the request to create the container for bob as invalid: resources.disk "50GB" is larger than storage pool "default" (10 GiB); ask for at most "10GiB". Correct the arguments and try again.',
    );
  });

  test('create_container for a user who has one: the 409 becomes "already exists"', async () => {
    await using d = await setup();
    d.backend.seed('alice');
    const result = await d.mcp.call('create_container', { username: 'alice' });
    expect(result.isError).toBe(true);
    expect(result.text).toBe(
      'A container for user alice already exists. Call get_container to inspect it, or delete_container first if it should be replaced.',
    );
    expect(d.requests.map((r) => r.status)).toEqual([409]);
  });

  test("a container still being created: the daemon's 409 says to wait, not that it exists", async () => {
    await using d = await setup();
    d.backend.failWith = stillCreating('dave');
    const result = await d.mcp.call('delete_container', { username: 'dave' });
    expect(result.isError).toBe(true);
    expect(result.text).toBe(
      'The container for user dave is still being created, so the daemon could not delete the container for dave (409: container for user dave is still being created; try again when it is ready). Wait until it is ready: call get_container for dave to follow it, then try again.',
    );
    expect(d.requests.map((r) => r.status)).toEqual([409]);
  });

  test("an Incus instance this daemon did not make: the daemon's words and advice, no get/delete hint", async () => {
    await using d = await setup();
    d.backend.failWith = foreign('dave-container');
    const result = await d.mcp.call('create_container', { username: 'dave' });
    expect(result.isError).toBe(true);
    expect(result.text).toBe(
      "The daemon could not create the container for dave (409: an instance named dave-container already exists in Incus but was not made by this daemon, which does not manage it; choose another username, or rename or remove that instance in Incus). get_container and delete_container cannot see that instance, so choose another username, or ask the server's administrator to rename or remove it in Incus.",
    );
    expect(result.text).not.toContain('Call get_container to inspect it');
  });

  test('list_containers: every state name, limits, dates and labels as the daemon holds them', async () => {
    await using d = await setup();
    d.backend.seed('alice', { labels: { team: 'ml', tier: 'gpu' } });
    d.backend.seed('bob', {
      state: 'stopped',
      resources: { cpu: '1', memory: '512MiB', disk: '10GiB' },
    });
    d.backend.seed('carol', { state: 'frozen', updatedAt: 1_767_225_600 });
    d.backend.seed('dave', { state: 'creating' });
    d.backend.seed('erin', { state: 'error', resources: null });
    const result = await d.mcp.call('list_containers');
    expect(result.isError).toBeFalsy();
    expect(result.text).toBe(
      [
        '5 containers (1 running, 1 stopped, 1 frozen, 1 creating, 1 error):',
        'NAME            USER  STATE    CPUS MEMORY DISK  IP         CREATED',
        'alice-container alice running  4    4GB    50GB  10.98.0.10 2025-01-15',
        'bob-container   bob   stopped  1    512MiB 10GiB -          2025-01-15',
        'carol-container carol frozen   4    4GB    50GB  -          2025-01-15',
        'dave-container  dave  creating 4    4GB    50GB  -          2025-01-15',
        'erin-container  erin  error    ?    ?      ?     -          2025-01-15',
      ].join('\n'),
    );
    const { containers, totalCount } = result.structuredContent as {
      containers: Array<{
        username: string;
        labels: Record<string, string>;
        createdAt: string;
        updatedAt: string | null;
      }>;
      totalCount: number;
    };
    expect(totalCount).toBe(5);
    expect(containers.map((c) => c.labels)).toEqual([{ team: 'ml', tier: 'gpu' }, {}, {}, {}, {}]);
    // Seeded one second apart from 1736930000; updatedAt 0 is "unknown", 1767225600 is 2026.
    expect(containers.map((c) => c.createdAt)).toEqual([
      '2025-01-15T08:33:20Z',
      '2025-01-15T08:33:21Z',
      '2025-01-15T08:33:22Z',
      '2025-01-15T08:33:23Z',
      '2025-01-15T08:33:24Z',
    ]);
    expect(containers.map((c) => c.updatedAt)).toEqual([
      null,
      null,
      '2026-01-01T00:00:00Z',
      null,
      null,
    ]);
    expect(d.routes()).toEqual(['GET /v1/containers']);
  });

  test('get_container: details, labels, keys and usage as a share of the limit', async () => {
    await using d = await setup();
    d.backend.seed('alice', {
      resources: { cpu: '2', memory: '1GiB', disk: '20GB' },
      labels: { team: 'ml' },
      sshKeys: [ED25519],
      dockerEnabled: true,
      updatedAt: 1_767_225_600,
    });
    const result = await d.mcp.call('get_container', { username: 'alice' });
    expect(result.isError).toBeFalsy();
    expect(result.text).toBe(
      [
        'alice-container (user alice): running',
        'Resources: 2 cores, 1 GiB memory, 20 GB disk',
        'IP: 10.98.0.10',
        "SSH: ssh alice@10.98.0.10 (10.98.0.10 is a private address, reachable from the daemon's host)",
        'Image: images:ubuntu/24.04',
        'Docker: enabled',
        'SSH keys (1): ssh-ed25519 AAAAC3Nz…P6e7Gk alice@laptop',
        'Labels: team=ml',
        'Created: 2025-01-15, updated 2026-01-01',
        // 536870912 of 1 GiB; 5368709120 (past 32 bits) of 20 GB.
        'Usage: CPU time 12s, CPU 25% of one core (12.5% of its limit) over the last second, memory 512 MiB of 1 GiB (50%), peak 1 GiB, disk 5 GiB of 18.6 GiB (27%), network ↓100 MiB ↑50 MiB, 42 processes',
      ].join('\n'),
    );
    expect((result.structuredContent as { metrics: unknown }).metrics).toEqual(
      usage('alice-container', 1073741824, 20_000_000_000, 2),
    );
    expect(d.routes().sort()).toEqual(['GET /v1/containers/alice', 'GET /v1/metrics/alice']);
  });

  test('get_metrics: all containers and one, numbers from int64 strings', async () => {
    await using d = await setup();
    d.backend.seed('alice');
    d.backend.seed('bob', { resources: { cpu: '1', memory: '1GiB', disk: '10GiB' } });
    const all = await d.mcp.call('get_metrics');
    expect(all.isError).toBeFalsy();
    expect(all.text).toBe(
      [
        'Usage of 2 containers (CPU: % of one core over the last second; CPU%, MEM%, DISK%: of each limit):',
        'NAME            CPU CPU% CPU TIME MEMORY  MEM% PEAK  DISK  DISK% NET IN/OUT     PROCS',
        'alice-container 25% 6.3% 12s      512 MiB 13%  1 GiB 5 GiB 11%   100 MiB/50 MiB 42',
        'bob-container   25% 25%  12s      512 MiB 50%  1 GiB 5 GiB 50%   100 MiB/50 MiB 42',
      ].join('\n'),
    );
    const one = await d.mcp.call('get_metrics', { username: 'bob' });
    expect(one.text).toStartWith('Usage of 1 container (CPU: % of one core');
    expect(one.text).toContain('bob-container 25% 25%  12s      512 MiB 50%');
    expect(one.structuredContent).toEqual({
      metrics: [usage('bob-container', 1073741824, 10737418240, 1)],
      totalCount: 1,
    });
    expect(d.routes().sort()).toEqual([
      'GET /v1/containers',
      'GET /v1/containers/bob',
      'GET /v1/metrics',
      'GET /v1/metrics/bob',
    ]);
  });

  test('get_system_info: host figures past 32 bits and container counts', async () => {
    await using d = await setup();
    d.backend.seed('alice');
    d.backend.seed('bob', { state: 'stopped' });
    d.backend.seed('carol', { state: 'stopped' });
    const result = await d.mcp.call('get_system_info');
    expect(result.isError).toBeFalsy();
    expect(result.text).toBe(
      [
        'Host testhost: Debian GNU/Linux, kernel 6.1.0-test, Incus 6.0.4',
        'Containers: 1 running, 2 stopped, 3 total',
        'Host resources: 2 CPUs, memory 2 GiB free of 4 GiB, disk 5 GiB free of 10 GiB, up 1h 0m',
        'Load average: 0.5, 0.25, 0.125 (1, 5, 15 min) on 2 CPUs',
        'Committed by container limits (above 1.0× is overcommitted): CPU 4 CPUs of 2 CPUs (2.0×), memory 3.7 GiB of 4 GiB (0.9×), disk 140 GiB of 10 GiB (14.0×)',
      ].join('\n'),
    );
    expect((result.structuredContent as { info: unknown }).info).toEqual({
      hostname: 'testhost',
      os: 'Debian GNU/Linux',
      kernelVersion: '6.1.0-test',
      incusVersion: '6.0.4',
      daemonVersion: '',
      totalCpus: 2,
      totalMemoryBytes: 4294967296,
      availableMemoryBytes: 2147483648,
      totalDiskBytes: 10737418240,
      availableDiskBytes: 5368709120,
      uptimeSeconds: 3600,
      containersRunning: 1,
      containersStopped: 2,
      containersTotal: 3,
      cpuLoad: [0.5, 0.25, 0.125],
      committedCpus: 4,
      committedMemoryBytes: 4e9,
      committedDiskBytes: 150e9,
    });
  });

  test('stop_container and start_container change the state, then say when nothing changed', async () => {
    await using d = await setup();
    d.backend.seed('alice', { sshKeys: [ED25519] });
    const stop = await d.mcp.call('stop_container', { username: 'alice', force: true });
    expect(stop.isError).toBeFalsy();
    expect(stop.text).toBe('Stopped the container for alice: stopped.');
    expect(d.backend.calls.filter((c) => c.method === 'stop')).toEqual([
      { method: 'stop', args: ['alice', { force: true }] },
    ]);
    expect((stop.structuredContent as { message: string }).message).toBe(
      'Container for user alice stopped successfully',
    );
    const list = await d.mcp.call('list_containers');
    expect(list.text).toMatch(/alice-container alice stopped 4 +4GB +50GB +- +2025-01-15/);
    const again = await d.mcp.call('stop_container', { username: 'alice' });
    expect(again.isError).toBeFalsy();
    expect(again.text).toBe('The container for alice was already stopped; nothing changed.');
    const start = await d.mcp.call('start_container', { username: 'alice' });
    expect(start.isError).toBeFalsy();
    expect(start.text).toBe(
      [
        'Started the container for alice: running, IP 10.98.0.10.',
        "SSH: ssh alice@10.98.0.10 (10.98.0.10 is a private address, reachable from the daemon's host)",
      ].join('\n'),
    );
    const started = await d.mcp.call('start_container', { username: 'alice' });
    expect(started.text).toStartWith(
      'The container for alice was already running; nothing changed.',
    );
    expect(d.routes()).toEqual([
      'GET /v1/containers/alice',
      'POST /v1/containers/alice/stop',
      'GET /v1/containers',
      'GET /v1/containers/alice',
      'GET /v1/containers/alice',
      'POST /v1/containers/alice/start',
      'GET /v1/containers/alice',
    ]);
    expect(d.backend.containers.get('alice')?.state).toBe('running');
  });

  test('delete_container passes force and removes the container', async () => {
    await using d = await setup();
    d.backend.seed('alice');
    d.backend.seed('bob', { state: 'stopped' });
    const bob = await d.mcp.call('delete_container', { username: 'bob' });
    expect(bob.isError).toBeFalsy();
    expect(bob.text).toBe('Deleted bob-container (user bob).');
    expect(bob.structuredContent).toEqual({
      username: 'bob',
      containerName: 'bob-container',
      message: 'Container for user bob deleted successfully',
    });
    const alice = await d.mcp.call('delete_container', { username: 'alice', force: true });
    expect(alice.text).toBe('Deleted alice-container (user alice).');
    expect(d.routes()).toEqual([
      'DELETE /v1/containers/bob?force=false',
      'DELETE /v1/containers/alice?force=true',
    ]);
    expect(d.backend.calls.map((c) => c.args)).toEqual([
      ['bob', { force: false }],
      ['alice', { force: true }],
    ]);
    expect([...d.backend.containers.keys()]).toEqual([]);
    const gone = await d.mcp.call('get_container', { username: 'alice' });
    expect(gone.isError).toBe(true);
    expect(gone.text).toBe(NO_CONTAINER('alice'));
  });

  test('a missing container is the no-container sentence for every tool that names one; no change is tried', async () => {
    await using d = await setup();
    d.backend.seed('alice');
    for (const [tool, args] of [
      ['get_container', {}],
      ['get_metrics', {}],
      ['start_container', {}],
      ['stop_container', { force: true }],
      ['delete_container', {}],
    ] as const) {
      const result = await d.mcp.call(tool, { username: 'nobody', ...args });
      expect(result.isError).toBe(true);
      expect(result.text).toBe(NO_CONTAINER('nobody'));
    }
    // The 404 of the read is the answer: start and stop send no POST.
    expect(d.routes().filter((r) => r.startsWith('POST'))).toEqual([]);
    expect(d.requests.every((r) => r.status === 404)).toBe(true);
    expect(d.backend.containers.get('alice')?.state).toBe('running');
  });
});

describe("a user's token", () => {
  async function asAlice() {
    const d = await startOwnDaemon();
    d.backend.seed('alice', { labels: { team: 'ml' } });
    d.backend.seed('bob', { state: 'stopped' });
    const mcp = await d.connect(await d.token('alice', { roles: ['user'] }));
    return Object.assign(d, { mcp });
  }

  const DENIED =
    "It is the token of user alice, without the admin role, so it may act only on alice's container (and list and metrics show only that one).";

  test('sees only its own container in list and metrics', async () => {
    await using d = await asAlice();
    const list = await d.mcp.call('list_containers');
    expect(list.isError).toBeFalsy();
    expect(list.text).toStartWith('1 container (1 running):');
    expect(list.text).toContain('alice-container alice running');
    expect(list.text).not.toContain('bob');
    expect(list.structuredContent).toMatchObject({
      containers: [{ username: 'alice', labels: { team: 'ml' } }],
      totalCount: 1,
    });
    const metrics = await d.mcp.call('get_metrics');
    expect(metrics.text).toStartWith('Usage of 1 container (CPU: % of one core');
    expect(metrics.text).toContain('alice-container');
    expect(metrics.text).not.toContain('bob');
    const own = await d.mcp.call('get_container', { username: 'alice' });
    expect(own.isError).toBeFalsy();
    expect(own.text).toStartWith('alice-container (user alice): running');
  });

  test("gets the 403 sentence for another user's container, and changes nothing", async () => {
    await using d = await asAlice();
    const get = await d.mcp.call('get_container', { username: 'bob' });
    expect(get.isError).toBe(true);
    expect(get.text).toBe(
      `The API token is not allowed to get the container for bob (403: not authorized for user bob). ${DENIED}`,
    );
    const start = await d.mcp.call('start_container', { username: 'bob' });
    expect(start.text).toBe(
      `The API token is not allowed to start the container for bob (403: not authorized for user bob). ${DENIED}`,
    );
    const del = await d.mcp.call('delete_container', { username: 'bob', force: true });
    expect(del.text).toBe(
      `The API token is not allowed to delete the container for bob (403: not authorized for user bob). ${DENIED}`,
    );
    const create = await d.mcp.call('create_container', { username: 'carol' });
    expect(create.text).toBe(
      `The API token is not allowed to create the container for carol (403: not authorized for user carol). ${DENIED}`,
    );
    const metrics = await d.mcp.call('get_metrics', { username: 'bob' });
    expect(metrics.text).toBe(
      `The API token is not allowed to get metrics for bob (403: not authorized for user bob). ${DENIED}`,
    );
    const info = await d.mcp.call('get_system_info');
    expect(info.text).toBe(
      `The API token is not allowed to get system information (403: role required: admin). ${DENIED}`,
    );
    // Refused at the door: the read before start sends no POST, and the backend did nothing.
    expect(d.routes().filter((r) => r.includes('/start'))).toEqual([]);
    expect(d.backend.calls).toEqual([]);
    expect(d.backend.containers.get('bob')?.state).toBe('stopped');
  });
});

describe('tokens the daemon refuses', () => {
  test('a token signed with another secret gets the 401 sentence, and never shows the token', async () => {
    await using d = await startOwnDaemon();
    d.backend.seed('alice');
    const forged = await d.token('mcp-client', {
      roles: ['admin'],
      secret: 'another-secret-of-at-least-32-bytes!!',
    });
    const mcp = await d.connect(forged);
    const sentence =
      "The daemon rejected the API token (401: invalid token). It was probably signed with a different secret than the daemon's, or is malformed; generate a new token with `containarium token generate` using the daemon's secret and update CONTAINARIUM_JWT_TOKEN.";
    for (const [tool, args] of [
      ['list_containers', {}],
      ['stop_container', { username: 'alice' }],
      ['get_system_info', {}],
    ] as const) {
      const result = await mcp.call(tool, args);
      expect(result.isError).toBe(true);
      expect(result.text).toBe(sentence);
      expect(result.text).not.toContain(forged);
    }
    expect(d.routes()).toEqual([
      'GET /v1/containers',
      'GET /v1/containers/alice',
      'GET /v1/system/info',
    ]);
    expect(d.requests.every((r) => r.status === 401)).toBe(true);
    expect(d.backend.calls).toEqual([]);
  });

  test('after ten refused tokens the daemon answers 429, which mcp-server reports and does not retry', async () => {
    await using d = await startOwnDaemon();
    d.backend.seed('alice');
    const forged = await d.connect(
      await d.token('mcp-client', { secret: 'another-secret-of-at-least-32-bytes!!' }),
    );
    for (let i = 0; i < 10; i++) {
      expect((await forged.call('list_containers')).text).toStartWith(
        'The daemon rejected the API token (401: invalid token).',
      );
    }
    const locked = await forged.call('list_containers');
    expect(locked.isError).toBe(true);
    expect(locked.text).toBe(
      'The daemon is refusing requests with a bad token for a while, after repeated failed logins (429) from this client, its network or anywhere. Fix the token, then retry in a minute.',
    );
    // A valid token from the same address still passes.
    const admin = await d.connect(await d.token('mcp-client', { roles: ['admin'] }));
    expect((await admin.call('list_containers')).text).toStartWith('1 container (1 running):');
    expect(d.requests.map((r) => r.status)).toEqual([...Array(10).fill(401), 429, 200]);
  });

  test('an expired token says when it expired', async () => {
    await using d = await startOwnDaemon();
    const now = new Date(Date.now() - 2 * 3_600_000);
    const old = await d.token('mcp-client', { roles: ['admin'], now, lifetimeMs: 3_600_000 });
    const mcp = await d.connect(old);
    const result = await mcp.call('list_containers');
    expect(result.isError).toBe(true);
    const expiry = new Date((Math.floor(now.getTime() / 1000) + 3600) * 1000).toISOString();
    expect(result.text).toBe(
      `The API token expired at ${expiry}. Generate a new one with \`containarium token generate\` and update CONTAINARIUM_JWT_TOKEN.`,
    );
    expect(d.requests.map((r) => r.status)).toEqual([401]);
  });
});

test('bad arguments are refused by mcp-server before anything reaches the daemon', async () => {
  await using d = await setup();
  d.backend.seed('alice');
  for (const [tool, args, field] of [
    ['create_container', { username: 'carol', memory: 'lots' }, '"memory"'],
    ['create_container', { username: 'carol', cpu: '0' }, '"cpu"'],
    ['create_container', { username: 'root' }, '"username" must not be a system account'],
    ['create_container', { username: 'carol', ssh_keys: ['not a key'] }, '"ssh_keys.0"'],
    ['create_container', { username: 'carol', image: 'no spaces allowed' }, '"image"'],
    ['get_container', { username: '../admin' }, '"username"'],
    ['get_metrics', { username: 'Alice' }, '"username"'],
    ['stop_container', { username: 'alice', force: 'yes' }, '"force"'],
    ['start_container', { username: 'alice', now: true }, '"now" is not an argument'],
    ['delete_container', {}, '"username" is required'],
    ['list_containers', { state: 'sleeping' }, '"state" must be one of running, stopped'],
    ['list_containers', { sort_by: 'memory' }, '"sort_by" is not an argument'],
    ['get_system_info', { verbose: true }, '"verbose" is not an argument'],
  ] as const) {
    const result = await d.mcp.call(tool, args);
    expect(result.isError).toBe(true);
    expect(result.text).toContain(field);
    expect(result.text).toContain('Nothing was changed');
  }
  expect(d.requests).toEqual([]);
  expect(d.backend.calls).toEqual([]);
});
