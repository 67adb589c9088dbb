import { describe, expect, test } from 'bun:test';
import * as v from 'valibot';
import {
  containerState,
  ImageSchema,
  type Instance,
  InstanceSchema,
  InstanceStateSchema,
  imageSource,
  incusState,
  isInnerInterface,
  isOurs,
  KEY,
  primaryAddress,
  toContainer,
  toImage,
  toMetrics,
  unixSeconds,
} from '../../src/daemon/incus-wire.ts';

// Real answers captured from Incus 6.0 on this project's machine (a busybox container).
const fixture = async (name: string) =>
  (await Bun.file(`${import.meta.dir}/../fixtures/incus/${name}.json`).json()).metadata;
const instance = async (name: string): Promise<Instance> =>
  v.parse(InstanceSchema, await fixture(name));

describe('toContainer', () => {
  test('a running instance maps field by field, every field present', async () => {
    const container = toContainer(await instance('instance-running'));
    expect(container).toEqual({
      name: 'fixture-container',
      username: 'fixture',
      state: 'running',
      resources: { cpu: '1', memory: '64MB', disk: '1GB' },
      sshKeys: [
        'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq5sFq2wA0hB3xG8cW1Wq2lXzQ2l0cO0z9d3vP6e7Gk alice@laptop',
      ],
      network: {
        ipAddress: '10.98.0.81',
        macAddress: '10:66:6a:f3:0d:a1',
        interface: 'eth0',
        bridge: 'incusbr0',
      },
      createdAt: Math.floor(Date.parse('2026-11-21T16:29:57.575759572Z') / 1000),
      updatedAt: Math.floor(Date.parse('2026-11-21T16:29:57.733440478Z') / 1000),
      labels: { team: 'ml' },
      image: 'busybox',
      dockerEnabled: true,
    });
  });

  test('"creating" with an owner reads CREATING (it is worked on or resumed); without one, ERROR', async () => {
    const running = await instance('instance-running');
    running.config[KEY.status] = 'creating';
    expect(toContainer(running).state).toBe('error');
    running.config[KEY.owner] = 'host 123 456';
    expect(toContainer(running).state).toBe('creating');
  });

  test('a stopped instance has no network and reads STOPPED once ready', async () => {
    const stopped = await instance('instance-stopped');
    const container = toContainer(stopped);
    expect(container.state).toBe('stopped');
    expect(container.network).toBeNull();
    expect(container.resources).toEqual({ cpu: '1', memory: '64MB', disk: '1GB' });
  });

  test('an instance made elsewhere (no user.* keys) still maps, docker from security.nesting', async () => {
    const running = await instance('instance-running');
    for (const key of Object.values(KEY)) delete running.expanded_config[key];
    delete running.config[KEY.status];
    const container = toContainer(running);
    expect(container.state).toBe('running');
    expect(container.labels).toEqual({});
    expect(container.sshKeys).toEqual([]);
    expect(container.image).toBe('');
    expect(container.dockerEnabled).toBe(true);
    delete running.expanded_config['security.nesting'];
    expect(toContainer(running).dockerEnabled).toBe(false);
  });

  test('broken user.* JSON reads as empty, not as a crash', async () => {
    const running = await instance('instance-running');
    running.expanded_config[KEY.labels] = '{not json';
    running.expanded_config[KEY.sshKeys] = '[1,2]';
    expect(toContainer(running).labels).toEqual({});
    expect(toContainer(running).sshKeys).toEqual([]);
  });

  test('a running instance without a global IPv4 has network null', async () => {
    const running = await instance('instance-running');
    const eth0 = running.state?.network.eth0;
    if (eth0) eth0.addresses = eth0.addresses.filter((a) => a.family !== 'inet');
    expect(toContainer(running).network).toBeNull();
  });
});

describe('states and times', () => {
  test.each([
    ['Running', 'running'],
    ['Stopped', 'stopped'],
    ['Frozen', 'frozen'],
    ['Error', 'unspecified'],
    ['Starting', 'unspecified'],
  ])('Incus %p is %p', (status, state) => {
    expect(incusState(status)).toBe(state as ReturnType<typeof incusState>);
  });

  test('an error status wins over Incus status', async () => {
    const running = await instance('instance-running');
    running.config[KEY.status] = 'error';
    running.config[KEY.owner] = 'host 123 456';
    expect(containerState(running)).toBe('error');
    running.config[KEY.status] = 'ready';
    expect(containerState(running)).toBe('running');
  });

  test('timestamps are unix seconds; Go zero time and junk are 0', () => {
    expect(unixSeconds('2026-01-15T08:33:20Z')).toBe(1768466000);
    expect(unixSeconds('0001-01-01T00:00:00Z')).toBe(0);
    expect(unixSeconds('')).toBe(0);
    expect(unixSeconds('yesterday')).toBe(0);
  });
});

describe('metrics', () => {
  test('state maps to metrics, lo left out of network', async () => {
    const state = v.parse(InstanceStateSchema, await fixture('state-running'));
    const raw = await fixture('state-running');
    const metrics = toMetrics('fixture-container', state);
    expect(metrics).toEqual({
      name: 'fixture-container',
      cpuUsageSeconds: Math.floor(raw.cpu.usage / 1e9),
      cpuUsagePercent: 0,
      memoryUsageBytes: raw.memory.usage,
      memoryPeakBytes: raw.memory.usage_peak,
      diskUsageBytes: raw.disk.root.usage,
      networkRxBytes: raw.network.eth0.counters.bytes_received,
      networkTxBytes: raw.network.eth0.counters.bytes_sent,
      processCount: raw.processes,
    });
    expect(Number(metrics.memoryUsageBytes)).toBeGreaterThan(0);
  });

  test("Docker's bridges and veths inside the container are not counted again", async () => {
    // Recorded from Incus 6.0: a debian/12 container with docker0, a compose network bridge and a
    // veth on each, as Docker makes them, after traffic between them.
    const raw = await fixture('state-docker');
    const state = v.parse(InstanceStateSchema, raw);
    expect(Object.keys(state.network).sort()).toEqual([
      'br-3f1c2a9b7d4e',
      'docker0',
      'eth0',
      'lo',
      'veth5d2e1a0',
      'veth9b07c4f',
    ]);
    for (const iface of ['docker0', 'br-3f1c2a9b7d4e', 'veth5d2e1a0', 'veth9b07c4f']) {
      expect(state.network[iface]?.counters.bytes_received).toBeGreaterThan(0);
    }
    expect(toMetrics('x', state)).toMatchObject({
      networkRxBytes: raw.network.eth0.counters.bytes_received,
      networkTxBytes: raw.network.eth0.counters.bytes_sent,
    });
  });

  test.each([
    ['lo', true],
    ['docker0', true],
    ['docker_gwbridge', true],
    ['br-3f1c2a9b7d4e', true],
    ['veth5d2e1a0', true],
    ['eth0', false],
    ['eth1', false],
    ['bridge0', false],
  ])('%s is an inner interface: %p', (iface, inner) => {
    expect(isInnerInterface(iface)).toBe(inner);
  });

  test("sums the container's own interfaces, truncates CPU seconds", () => {
    const state = v.parse(InstanceStateSchema, {
      status: 'Running',
      cpu: { usage: 12_999_999_999 },
      memory: { usage: 5, usage_peak: 7 },
      disk: {},
      network: {
        lo: { addresses: [], counters: { bytes_received: 1000, bytes_sent: 1000 } },
        eth0: { addresses: [], counters: { bytes_received: 10, bytes_sent: 20 } },
        eth1: { addresses: [], counters: { bytes_received: 1, bytes_sent: 2 } },
        docker0: { addresses: [], counters: { bytes_received: 100, bytes_sent: 200 } },
      },
      processes: -1,
    });
    expect(toMetrics('x', state)).toMatchObject({
      cpuUsageSeconds: 12,
      diskUsageBytes: 0,
      networkRxBytes: 11,
      networkTxBytes: 22,
      processCount: 0,
    });
  });

  test('a stopped instance (network null) has zero metrics', async () => {
    const stopped = await instance('instance-stopped');
    expect(stopped.state).toBeTruthy();
    const metrics = toMetrics(stopped.name, stopped.state as NonNullable<Instance['state']>);
    expect(metrics.memoryUsageBytes).toBe(0);
    expect(metrics.networkRxBytes).toBe(0);
  });
});

describe('instances we list', () => {
  test('containers <user>-container that carry our username key for <user> only', () => {
    const config = { [KEY.username]: 'alice' };
    const ours = (instance: Parameters<typeof isOurs>[0]) => isOurs(instance, 'default');
    expect(ours({ name: 'alice-container', type: 'container', config })).toBe(true);
    expect(ours({ name: 'alice-container', type: 'virtual-machine', config })).toBe(false);
    expect(ours({ name: 'build-runner', type: 'container', config })).toBe(false);
    // Someone else's instance with a name like ours: no key, or a key for another user.
    expect(ours({ name: 'alice-container', type: 'container', config: {} })).toBe(false);
    expect(
      ours({ name: 'alice-container', type: 'container', config: { [KEY.username]: 'bob' } }),
    ).toBe(false);
    expect(
      ours({ name: 'alice-container', type: 'container', config: { 'user.other': 'alice' } }),
    ).toBe(false);
  });

  test("only our daemon id's instances; one without the key is the default id's", () => {
    const made = (daemon?: string) => ({
      name: 'alice-container',
      type: 'container',
      config: { [KEY.username]: 'alice', ...(daemon ? { [KEY.daemon]: daemon } : {}) },
    });
    expect(isOurs(made('ci-7'), 'ci-7')).toBe(true);
    expect(isOurs(made('ci-7'), 'default')).toBe(false);
    expect(isOurs(made('default'), 'ci-7')).toBe(false);
    expect(isOurs(made(), 'default')).toBe(true);
    expect(isOurs(made(), 'ci-7')).toBe(false);
  });

  test("eth0 is preferred; lo and Docker's bridges never count", () => {
    const iface = (address: string) => ({
      addresses: [{ family: 'inet', address, scope: 'global' }],
      counters: { bytes_received: 0, bytes_sent: 0 },
      hwaddr: '',
    });
    expect(primaryAddress({ docker0: iface('172.17.0.1'), eth1: iface('10.1.0.2') })).toEqual({
      iface: 'eth1',
      address: '10.1.0.2',
    });
    expect(primaryAddress({ eth1: iface('10.1.0.2'), eth0: iface('10.98.0.5') })?.address).toBe(
      '10.98.0.5',
    );
    expect(
      primaryAddress({ 'br-3f1c2a9b7d4e': iface('172.18.0.1'), eth1: iface('10.1.0.2') })?.iface,
    ).toBe('eth1');
  });
});

describe('toImage', () => {
  const images = async () => v.parse(v.array(ImageSchema), await fixture('images-recursion1'));

  test('a local container image with an alias maps field by field', async () => {
    const debian = (await images()).find((i) => i.aliases[0]?.name === 'debian/12');
    expect(toImage(debian!)).toEqual({
      aliases: ['debian/12'],
      fingerprint: debian!.fingerprint,
      description: 'Debian 12 (bookworm) minbase, built locally',
      os: 'debian',
      release: 'bookworm',
      architecture: 'x86_64',
      sizeBytes: debian!.size,
      createdAt: unixSeconds(debian!.created_at),
    });
    expect(debian!.size).toBeGreaterThan(1_000_000);
  });

  test('aliases are sorted; a missing property or time reads as "" and 0', () => {
    const image = v.parse(ImageSchema, {
      fingerprint: 'abc',
      aliases: [{ name: 'zeta' }, { name: 'alpha' }],
      created_at: '0001-01-01T00:00:00Z',
    });
    expect(toImage(image)).toMatchObject({
      aliases: ['alpha', 'zeta'],
      os: '',
      release: '',
      description: '',
      sizeBytes: 0,
      createdAt: 0,
    });
  });

  test('a create cannot use a virtual-machine image or one without an alias: none', async () => {
    const [one] = await images();
    expect(toImage({ ...one!, type: 'virtual-machine' })).toBeUndefined();
    expect(toImage({ ...one!, aliases: [] })).toBeUndefined();
  });
});

describe('imageSource', () => {
  const local = new Set(['debian/12', 'busybox']);
  const remote = (alias: string, server: string) => ({
    type: 'image',
    alias,
    mode: 'pull',
    server,
    protocol: 'simplestreams',
  });

  test.each([
    ['images:ubuntu/24.04', remote('ubuntu/24.04', 'https://images.linuxcontainers.org')],
    ['ubuntu:24.04', remote('24.04', 'https://cloud-images.ubuntu.com/releases')],
    ['ubuntu-daily:noble', remote('noble', 'https://cloud-images.ubuntu.com/daily')],
    ['alpine/3.20', remote('alpine/3.20', 'https://images.linuxcontainers.org')],
    ['debian/12', { type: 'image', alias: 'debian/12' }],
    ['busybox', { type: 'image', alias: 'busybox' }],
    ['my-golden', { type: 'image', alias: 'my-golden' }],
    ['other:thing', { type: 'image', alias: 'other:thing' }],
  ])('%p', (image, source) => {
    expect(imageSource(image, local)).toEqual(source as ReturnType<typeof imageSource>);
  });
});
