// The image cache on the real Incus of this machine: the first create builds an entry, later
// creates start from it; a moved source alias, an old entry, concurrent first creates, a failed
// build and the clear command. Each test gets its own source image (a busybox copy with a random
// file, so its own fingerprint and key); one debian/12 test proves the account, keys and host keys.
// The Incus may be shared: this file uses its own random daemon ids and looks only at their entries.
import { afterAll, describe, expect, test } from 'bun:test';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { CreateRequest } from '../../src/daemon/backend.ts';
import { systemClock } from '../../src/daemon/clock.ts';
import {
  BUILDER_DAEMON_KEY,
  BUILDER_KEY,
  BUILDER_PREFIX,
  cacheKey,
  clearCache,
  listCache,
} from '../../src/daemon/image-cache.ts';
import { createIncusClient, INCUS_SOCKET, type IncusClient } from '../../src/daemon/incus.ts';
import { createIncusBackend, type IncusBackend } from '../../src/daemon/incus-backend.ts';
import { KEY } from '../../src/daemon/incus-wire.ts';
import { packageList } from '../../src/daemon/provision.ts';
import { retrying } from '../../src/daemon/retry.ts';
import { incusProxy } from '../support/incus-proxy.ts';
import { randomSshKey } from '../support/keys.ts';
import { failure } from './incus-fake.ts';

const present = existsSync(INCUS_SOCKET);
const ci = process.env.CI === 'true' || process.env.CI === '1';
if (!present && !ci) {
  console.warn(`image-cache.test.ts: SKIPPED — no Incus socket at ${INCUS_SOCKET}`);
}

const run = Math.random().toString(36).slice(2, 7);
const DAEMON = `test-${run}`;
/** A second daemon on the same Incus, whose entries this file's DAEMON must never touch. */
const OTHER = `test-${run}-other`;
const HOUR = 3_600_000;
const BUSYBOX_PACKAGES = packageList({ enableDocker: false }).sort();

/** Counts publishes (POST /1.0/images) among the Incus calls sent through its fetch. */
function countingPublishes() {
  let publishes = 0;
  const fetch = Object.assign(
    (
      input: Parameters<typeof globalThis.fetch>[0],
      init?: Parameters<typeof globalThis.fetch>[1],
    ) => {
      const url = String(input instanceof Request ? input.url : input);
      const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
      if (method === 'POST' && new URL(url).pathname === '/1.0/images') publishes++;
      return globalThis.fetch(input, init);
    },
    { preconnect: globalThis.fetch.preconnect },
  ) as typeof globalThis.fetch;
  return { fetch, count: () => publishes };
}

describe.skipIf(!present && !ci)('image cache on real Incus', () => {
  const client = createIncusClient({ socket: INCUS_SOCKET });
  /** The test's own looks inside a container, tried again after a transient Incus failure
   * ("Failed to retrieve PID of executing child process" under load), as the daemon's steps are. */
  const retry = retrying({ attempts: 4, delayMs: 500, clock: systemClock, log: () => {} });
  const guestOf = (name: string) => {
    const guest = client.guest(name);
    return {
      exec: (argv: string[]) => retry(`exec in ${name}`, () => guest.exec(argv)),
      readFile: (path: string) => retry(`read ${path} in ${name}`, () => guest.readFile(path)),
    };
  };
  /** Usernames this file created, with the daemon id that made them. */
  const users = new Map<string, string>();
  const backends: IncusBackend[] = [];
  /** Images (source copies) this file published. */
  const sources = new Map<string, string>();
  const otherInstances = new Set<string>();

  const backend = (maxAgeMs: number, over: { client?: IncusClient; daemonId?: string } = {}) => {
    const made = createIncusBackend(over.client ?? client, {
      daemonId: over.daemonId ?? DAEMON,
      imageCacheMaxAgeMs: maxAgeMs,
      log: () => undefined,
    });
    backends.push(made);
    return made;
  };
  const user = (tag: string, daemonId = DAEMON) => {
    const name = `c${run}${tag}`;
    users.set(name, daemonId);
    return name;
  };
  const request = (username: string, image: string, over: Partial<CreateRequest> = {}) => ({
    username,
    cpu: 1,
    memory: '256MB',
    disk: '1GB',
    sshKeys: [],
    labels: {},
    image,
    enableDocker: false,
    ...over,
  });

  /** A new local image with its own fingerprint: a busybox copy holding a random file. */
  async function publishSource(alias: string, move = false) {
    const name = `c${run}src${Math.random().toString(36).slice(2, 6)}`;
    otherInstances.add(name);
    await client.createInstance(
      { name, type: 'container', source: { type: 'image', alias: 'busybox' } },
      120,
    );
    await client.writeFile(name, '/etc/source-id', crypto.randomUUID(), {
      uid: 0,
      gid: 0,
      mode: 0o644,
    });
    const fingerprint = await client.publishImage(name, { description: `test source ${alias}` });
    sources.set(fingerprint, alias);
    await client.setAlias(alias, fingerprint, { move });
    await client.deleteInstance(name);
    otherInstances.delete(name);
    return fingerprint;
  }

  /** This file's entries (of DAEMON, unless said) built from one source image. */
  const entryOf = async (sourceFingerprint: string, daemonId = DAEMON) =>
    (await listCache(client, daemonId)).filter((e) => e.sourceFingerprint === sourceFingerprint);
  const instanceOf = (username: string) => client.instance(`${username}-container`);
  const builders = async () =>
    (await client.instances(1)).filter((i) => i.name.startsWith(BUILDER_PREFIX));

  afterAll(async () => {
    for (const made of backends) await made.cacheIdle();
    for (const [username, daemonId] of users) {
      const cleaner = createIncusBackend(client, { daemonId });
      await cleaner.delete(username, { force: true }).catch(() => undefined);
    }
    for (const name of otherInstances) {
      await client.changeState(name, 'stop', { force: true }).catch(() => undefined);
      await client.deleteInstance(name).catch(() => undefined);
    }
    // Every entry and builder of this file's daemon ids, and nothing of anyone else's.
    for (const daemonId of [DAEMON, OTHER]) {
      await clearCache(client, daemonId).catch(() => undefined);
    }
    for (const fingerprint of sources.keys()) {
      await client.deleteImage(fingerprint).catch(() => undefined);
    }
  }, 180_000);

  test('the first create builds the entry; the next starts from it', async () => {
    const source = `c${run}-first`;
    const fingerprint = await publishSource(source);
    const daemon = backend(HOUR);
    const first = user('a');
    await daemon.create(request(first, source), { async: false });
    expect((await instanceOf(first)).config[KEY.cachedImage]).toBeUndefined();
    await daemon.cacheIdle();

    const [entry, ...more] = await entryOf(fingerprint);
    expect(more).toEqual([]);
    expect(entry?.alias).toBe(
      `containarium-cache/${cacheKey(DAEMON, fingerprint, BUSYBOX_PACKAGES)}`,
    );
    expect(entry?.packages).toEqual(BUSYBOX_PACKAGES);
    expect(entry?.sourceImage).toBe(source);
    expect(entry?.daemon).toBe(DAEMON);
    expect((await builders()).map((b) => b.name)).not.toContain(`${BUILDER_PREFIX}${entry?.key}`);

    const second = user('b');
    const made = await daemon.create(request(second, source), { async: false });
    expect(made.container.image).toBe(source);
    const instance = await instanceOf(second);
    expect(instance.config['volatile.base_image']).toBe(entry?.fingerprint as string);
    expect(instance.config[KEY.cachedImage]).toBe(entry?.fingerprint as string);
    expect(instance.status).toBe('Running');
  }, 240_000);

  test('an async first create fills the cache too once it is running', async () => {
    const source = `c${run}-async`;
    const fingerprint = await publishSource(source);
    const daemon = backend(HOUR);
    const username = user('y');
    await daemon.create(request(username, source), { async: true });
    for (let i = 0; i < 240; i++) {
      if ((await daemon.get(username)).container.state !== 'creating') break;
      await Bun.sleep(250);
    }
    expect((await daemon.get(username)).container.state).toBe('running');
    await daemon.cacheIdle();
    expect((await entryOf(fingerprint)).map((e) => e.key)).toEqual([
      cacheKey(DAEMON, fingerprint, BUSYBOX_PACKAGES),
    ]);
  }, 240_000);

  test('concurrent first creates, in one daemon or two, build the entry once', async () => {
    const source = `c${run}-race`;
    const fingerprint = await publishSource(source);
    const publishes = countingPublishes();
    const counted = createIncusClient({ socket: INCUS_SOCKET, fetch: publishes.fetch });
    const one = backend(HOUR, { client: counted });
    const two = backend(HOUR, { client: counted });
    await Promise.all([
      one.create(request(user('r1'), source), { async: false }),
      one.create(request(user('r2'), source), { async: false }),
      two.create(request(user('r3'), source), { async: false }),
    ]);
    await Promise.all([one.cacheIdle(), two.cacheIdle()]);
    expect(publishes.count()).toBe(1);
    expect(await entryOf(fingerprint)).toHaveLength(1);
  }, 240_000);

  test('a build that fails leaves no entry, no image and no builder', async () => {
    const source = `c${run}-fail`;
    const fingerprint = await publishSource(source);
    // Incus refuses the alias, after the image was published: the image must go again.
    await using proxy = incusProxy(INCUS_SOCKET, (call) =>
      call.method === 'POST' && call.path === '/1.0/images/aliases'
        ? failure(500, 'injected alias failure')
        : undefined,
    );
    const publishes = countingPublishes();
    const faulty = createIncusClient({ socket: proxy.socket, fetch: publishes.fetch });
    const daemon = backend(HOUR, { client: faulty });
    await daemon.create(request(user('f'), source), { async: false });
    await daemon.cacheIdle();
    expect(publishes.count()).toBe(1);
    const marked = (await client.images()).filter(
      (i) => i.properties['containarium.cache.source-fingerprint'] === fingerprint,
    );
    expect(marked).toEqual([]);
    const key = cacheKey(DAEMON, fingerprint, BUSYBOX_PACKAGES);
    expect((await builders()).map((b) => b.name)).not.toContain(`${BUILDER_PREFIX}${key}`);
  }, 240_000);

  test('a source alias moved to a new image misses, builds anew and drops the old entry', async () => {
    const source = `c${run}-moved`;
    const before = await publishSource(source);
    const daemon = backend(HOUR);
    await daemon.create(request(user('m1'), source), { async: false });
    await daemon.cacheIdle();
    const [old] = await entryOf(before);
    expect(old).toBeDefined();

    const after = await publishSource(source, true);
    const next = user('m2');
    await daemon.create(request(next, source), { async: false });
    const instance = await instanceOf(next);
    expect(instance.config['volatile.base_image']).toBe(after);
    expect(instance.config[KEY.cachedImage]).toBeUndefined();
    await daemon.cacheIdle();
    expect(await entryOf(before)).toEqual([]);
    expect((await entryOf(after)).map((e) => e.key)).toEqual([
      cacheKey(DAEMON, after, BUSYBOX_PACKAGES),
    ]);
  }, 240_000);

  test('an entry older than the max age is not used and is rebuilt', async () => {
    const source = `c${run}-old`;
    const fingerprint = await publishSource(source);
    const daemon = backend(HOUR);
    await daemon.create(request(user('o1'), source), { async: false });
    await daemon.cacheIdle();
    const [first] = await entryOf(fingerprint);

    const strict = backend(1);
    const next = user('o2');
    await strict.create(request(next, source), { async: false });
    expect((await instanceOf(next)).config[KEY.cachedImage]).toBeUndefined();
    await strict.cacheIdle();
    const [rebuilt, ...more] = await entryOf(fingerprint);
    expect(more).toEqual([]);
    expect(rebuilt?.alias).toBe(first?.alias as string);
    expect(rebuilt?.fingerprint).not.toBe(first?.fingerprint as string);
    expect(rebuilt?.builtAt).toBeGreaterThan(first?.builtAt as number);
    const fingerprints = (await client.images()).map((i) => i.fingerprint);
    expect(fingerprints).not.toContain(first?.fingerprint as string);
  }, 240_000);

  test('max age 0 turns the cache off: no entry is built', async () => {
    const source = `c${run}-off`;
    const fingerprint = await publishSource(source);
    const publishes = countingPublishes();
    const daemon = backend(0, {
      client: createIncusClient({ socket: INCUS_SOCKET, fetch: publishes.fetch }),
    });
    await daemon.create(request(user('z'), source), { async: false });
    await daemon.cacheIdle();
    expect(publishes.count()).toBe(0);
    expect(await entryOf(fingerprint)).toEqual([]);
  }, 120_000);

  test('debian/12: a warm create has no apt run, the account and keys, and its own host keys', async () => {
    const daemon = backend(HOUR);
    const images = await client.images();
    const debian = images.find((i) => i.aliases.some((a) => a.name === 'debian/12'));
    const key = cacheKey(DAEMON, debian?.fingerprint as string, BUSYBOX_PACKAGES);
    const first = user('d1');
    await daemon.create(request(first, 'debian/12', { memory: '512MB', disk: '2GB' }), {
      async: false,
    });
    await daemon.cacheIdle();
    const entry = (await listCache(client, DAEMON)).find((e) => e.key === key);
    expect(entry).toBeDefined();

    const sshKey = randomSshKey(`warm@${run}`);
    const warm = user('d2');
    await daemon.create(
      request(warm, 'debian/12', { memory: '512MB', disk: '2GB', sshKeys: [sshKey] }),
      { async: false },
    );
    const instance = await instanceOf(warm);
    expect(instance.config['volatile.base_image']).toBe(entry?.fingerprint as string);
    const guest = guestOf(`${warm}-container`);
    const sh = async (...argv: string[]) => (await guest.exec(argv)).stdout.trim();
    // apt-get update never ran: the cached image's package lists were dropped when it was sealed.
    expect(await sh('find', '/var/lib/apt/lists', '-name', '*Packages*')).toBe('');
    expect((await guest.exec(['test', '-x', '/usr/sbin/sshd'])).exitCode).toBe(0);
    expect((await guest.readFile(`/home/${warm}/.ssh/authorized_keys`)).content).toBe(
      `${sshKey}\n`,
    );
    expect((await guest.readFile(`/etc/sudoers.d/${warm}`)).content).toBe(
      `${warm} ALL=(ALL) NOPASSWD:ALL\n`,
    );
    expect(await sh('systemctl', 'is-active', 'ssh')).toBe('active');
    // Its own host keys and machine id, not the cached image's nor the first container's.
    const other = guestOf(`${first}-container`);
    const hostKey = '/etc/ssh/ssh_host_ed25519_key.pub';
    const mine = (await guest.readFile(hostKey)).content;
    expect(mine).toStartWith('ssh-ed25519 ');
    expect(mine).not.toBe((await other.readFile(hostKey)).content);
    const id = (await guest.readFile('/etc/machine-id')).content.trim();
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(id).not.toBe((await other.readFile('/etc/machine-id')).content.trim());
    // No user of the builder's or the first create's in the image.
    expect((await guest.readFile('/etc/passwd')).content).not.toContain(first);
  }, 600_000);

  test('debian/12 with Docker: a warm create starts docker after the user is in, and enables it', async () => {
    const daemon = backend(HOUR);
    const images = await client.images();
    const debian = images.find((i) => i.aliases.some((a) => a.name === 'debian/12'));
    const packages = packageList({ enableDocker: true });
    const key = cacheKey(DAEMON, debian?.fingerprint as string, packages);
    const limits = { memory: '1GB', disk: '4GB', enableDocker: true };
    await daemon.create(request(user('w1'), 'debian/12', limits), { async: false });
    await daemon.cacheIdle();
    const entry = (await listCache(client, DAEMON)).find((e) => e.key === key);
    expect(entry).toBeDefined();

    const warm = user('w2');
    await daemon.create(request(warm, 'debian/12', limits), { async: false });
    expect((await instanceOf(warm)).config[KEY.cachedImage]).toBe(entry?.fingerprint as string);
    const guest = guestOf(`${warm}-container`);
    let active = '';
    for (let i = 0; i < 240 && active !== 'active'; i++) {
      active = (await guest.exec(['systemctl', 'is-active', 'docker'])).stdout.trim();
      if (active !== 'active') await Bun.sleep(500);
    }
    expect(active).toBe('active');
    expect((await guest.exec(['systemctl', 'is-enabled', 'docker'])).stdout.trim()).toBe('enabled');
    expect((await guest.exec(['docker', 'info', '--format', '{{.ServerVersion}}'])).exitCode).toBe(
      0,
    );
    expect((await guest.exec(['id', '-nG', warm])).stdout).toContain('docker');
  }, 600_000);

  test("containarium image-cache list and clear see only their --daemon-id's entries and builders", async () => {
    const source = `c${run}-clear`;
    const fingerprint = await publishSource(source);
    // The same image and packages cached by two daemons: this file's and another one.
    const mine = backend(HOUR);
    const theirs = backend(HOUR, { daemonId: OTHER });
    const kept = user('k');
    await mine.create(request(kept, source), { async: false });
    await theirs.create(request(user('t', OTHER), source), { async: false });
    await Promise.all([mine.cacheIdle(), theirs.cacheIdle()]);
    const [entry] = await entryOf(fingerprint);
    const [other] = await entryOf(fingerprint, OTHER);
    expect(other).toBeDefined();
    expect(other?.alias).not.toBe(entry?.alias as string);
    // A builder instance of each id, as a build cut short leaves one.
    const builderOf = async (daemonId: string, tag: string) => {
      const name = `${BUILDER_PREFIX}${run}${tag}`;
      otherInstances.add(name);
      await client.createInstance(
        {
          name,
          type: 'container',
          source: { type: 'image', alias: 'busybox' },
          config: { [BUILDER_KEY]: 'gone 1 1', [BUILDER_DAEMON_KEY]: daemonId },
        },
        120,
      );
      return name;
    };
    const myBuilder = await builderOf(DAEMON, 'a');
    const theirBuilder = await builderOf(OTHER, 'b');

    const binary = join(import.meta.dir, '../../dist/containarium');
    const cli = (action: string) =>
      Bun.spawnSync(
        [binary, 'image-cache', action, '--incus-socket', INCUS_SOCKET, '--daemon-id', DAEMON],
        { stdout: 'pipe', stderr: 'pipe' },
      );
    const list = cli('list');
    expect(list.exitCode).toBe(0);
    expect(list.stdout.toString()).toContain(`${entry?.alias}  from ${source} `);
    expect(list.stdout.toString()).not.toContain(other?.alias as string);

    const count = (await listCache(client, DAEMON)).length;
    const clear = cli('clear');
    expect(clear.stderr.toString()).toBe('');
    expect(clear.exitCode).toBe(0);
    expect(clear.stdout.toString()).toBe(
      `removed ${count} cached image(s) and 1 unfinished build instance(s) of daemon id ${DAEMON}\n`,
    );
    expect(await listCache(client, DAEMON)).toEqual([]);
    // The other daemon's entry and builder, the source image (not marked) and the user's
    // container stay.
    expect((await entryOf(fingerprint, OTHER)).map((e) => e.fingerprint)).toEqual([
      other?.fingerprint as string,
    ]);
    const instances = (await client.instances(1)).map((i) => i.name);
    expect(instances).not.toContain(myBuilder);
    expect(instances).toContain(theirBuilder);
    const images = (await client.images()).map((i) => i.fingerprint);
    expect(images).toContain(fingerprint);
    expect((await instanceOf(kept)).status).toBe('Running');
    expect(cli('list').stdout.toString()).toBe(`no cached images of daemon id ${DAEMON}\n`);
  }, 240_000);
});
