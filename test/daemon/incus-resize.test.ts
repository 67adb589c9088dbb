// Resize on the real Incus of this machine (busybox containers, random names, removed afterwards):
// CPU and memory change live, the disk grows, and a disk smaller than what the container holds is
// refused before Incus is asked (btrfs would half-apply it and leave the container stuck).
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { existsSync } from 'node:fs';
import { DaemonError } from '../../src/daemon/errors.ts';
import { createIncusClient, INCUS_SOCKET } from '../../src/daemon/incus.ts';
import { createIncusBackend } from '../../src/daemon/incus-backend.ts';
import { KEY } from '../../src/daemon/incus-wire.ts';
import { ownerTag } from '../../src/daemon/owner.ts';
import { createRequest } from '../support/create-request.ts';
import { rejection } from '../support/rejection.ts';

const present = existsSync(INCUS_SOCKET);
const ci = process.env.CI === 'true' || process.env.CI === '1';
const run = Math.random().toString(36).slice(2, 7);

describe.skipIf(!present && !ci)('resize on real Incus', () => {
  const client = createIncusClient({ socket: INCUS_SOCKET });
  const backend = createIncusBackend(client, { daemonId: `test-${run}`, log: () => undefined });
  const alice = `r${run}a`;
  const name = `${alice}-container`;
  const foreign = `r${run}f`;
  /** Instances made straight through Incus, removed through Incus afterwards. */
  const made = [`${foreign}-container`];
  const config = async () => (await client.instance(name)).expanded_config;
  const rootSize = async () => {
    const devices = (await client.instance(name)).expanded_devices;
    return Object.values(devices).find((d) => d.path === '/')?.size;
  };
  /** The memory the container sees now (lxcfs shows its cgroup limit as MemTotal), in kB. */
  const memTotal = async () =>
    /MemTotal:\s+(\d+) kB/.exec((await client.exec(name, ['cat', '/proc/meminfo'])).stdout)?.[1];

  beforeAll(async () => {
    await backend.create(
      createRequest({ username: alice, cpu: 1, memory: '128MB', disk: '1GB', image: 'busybox' }),
      { async: false },
    );
  }, 180_000);

  afterAll(async () => {
    await backend.delete(alice, { force: true }).catch(() => undefined);
    for (const other of made) {
      await client.changeState(other, 'stop', { force: true }).catch(() => undefined);
      await client.deleteInstance(other).catch(() => undefined);
    }
  }, 120_000);

  test('cpu and memory change on the running container, without a restart', async () => {
    expect(await memTotal()).toBe(String(128_000_000 / 1024));
    const container = await backend.resize(alice, { cpu: 2, memory: '256MB' });
    expect(container).toMatchObject({
      state: 'running',
      resources: { cpu: '2', memory: '256MB', disk: '1GB' },
    });
    expect(await config()).toMatchObject({ 'limits.cpu': '2', 'limits.memory': '256MB' });
    expect(await memTotal()).toBe(String(256_000_000 / 1024));
    expect((await client.instance(name)).status).toBe('Running');
  }, 60_000);

  test('the disk grows; a disk below what the container holds is refused and nothing changes', async () => {
    expect((await backend.resize(alice, { disk: '2GB' })).resources?.disk).toBe('2GB');
    expect(await rootSize()).toBe('2GB');
    const error = await rejection(backend.resize(alice, { disk: '2MB', memory: '192MB' }));
    expect(error.kind).toBe('invalid');
    expect(error.message).toMatch(
      new RegExp(
        `^invalid disk: "2MB" is less than the container for user ${alice} uses \\([\\d.]+ (KiB|MiB)\\) plus room to keep working; give at least "\\d+MiB"$`,
      ),
    );
    expect(await rootSize()).toBe('2GB');
    expect((await config())['limits.memory']).toBe('256MB');
    // At the floor it names, the smaller disk is taken, live.
    const floor = /give at least "(\d+MiB)"/.exec(error.message)?.[1] as string;
    expect((await backend.resize(alice, { disk: floor })).resources?.disk).toBe(floor);
    expect(await rootSize()).toBe(floor);
    expect((await client.instance(name)).status).toBe('Running');
  }, 120_000);

  test("a stopped container's disk grows, but shrinking it waits until it runs", async () => {
    await backend.stop(alice, { force: true });
    expect((await backend.resize(alice, { disk: '1GB', cpu: 1 })).resources).toMatchObject({
      cpu: '1',
      disk: '1GB',
    });
    const error = await rejection(backend.resize(alice, { disk: '500MB' }));
    expect(error.message).toBe(
      `invalid disk: the container for user ${alice} is stopped, so the daemon cannot measure what its disk holds; start it to shrink the disk (a larger disk can be given while it is stopped)`,
    );
    expect(await rootSize()).toBe('1GB');
    await backend.start(alice);
  }, 120_000);

  test("create's host rules hold: no more CPUs than the host has", async () => {
    const cpus = (await client.resources()).cpu.total;
    const error = await rejection(backend.resize(alice, { cpu: cpus + 1 }));
    expect(error.message).toBe(
      `cpu ${cpus + 1} is more than this host has (${cpus} CPUs); ask for at most ${cpus}`,
    );
    expect((await config())['limits.cpu']).toBe('1');
  }, 60_000);

  test('a container another daemon process is still creating is not touched (409)', async () => {
    const creating = `${foreign}c`;
    made.push(`${creating}-container`);
    await client.createInstance(
      {
        name: `${creating}-container`,
        type: 'container',
        source: { type: 'image', alias: 'busybox' },
        config: {
          'limits.memory': '64MB',
          [KEY.username]: creating,
          [KEY.daemon]: `test-${run}`,
          [KEY.status]: 'creating',
          [KEY.owner]: ownerTag(),
        },
      },
      120,
    );
    const error = await rejection(backend.resize(creating, { memory: '128MB' }));
    expect(error.kind).toBe('conflict');
    expect(error.message).toBe(
      `container for user ${creating} is still being created; try again when it is ready`,
    );
    expect((await client.instance(`${creating}-container`)).config['limits.memory']).toBe('64MB');
  }, 120_000);

  test('an instance this daemon did not make is not found, and left as it is', async () => {
    const other = `${foreign}-container`;
    await client.createInstance(
      {
        name: other,
        type: 'container',
        source: { type: 'image', alias: 'busybox' },
        config: { 'limits.memory': '64MB' },
      },
      120,
    );
    const error = await rejection(backend.resize(foreign, { memory: '128MB' }));
    expect(error).toBeInstanceOf(DaemonError);
    expect(error.message).toBe(`container for user ${foreign} not found`);
    expect((await client.instance(other)).config['limits.memory']).toBe('64MB');
  }, 120_000);
});
