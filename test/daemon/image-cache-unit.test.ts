// The image cache's pure parts (the entry key, which images count as entries) and, against a fake
// Incus, that a daemon id only ever uses, drops or clears its own entries and builders.
import { describe, expect, test } from 'bun:test';
import {
  BUILDER_DAEMON_KEY,
  BUILDER_KEY,
  CACHE_ALIAS_PREFIX,
  cacheEntries,
  cacheKey,
  clearCache,
  dropStale,
  imageCache,
  listCache,
  PROP,
} from '../../src/daemon/image-cache.ts';
import { createIncusClient } from '../../src/daemon/incus.ts';
import type { IncusImage } from '../../src/daemon/incus-wire.ts';
import { fakeIncus, finished, started, sync } from './incus-fake.ts';

const image = (over: Partial<IncusImage>): IncusImage => ({
  fingerprint: 'ab'.repeat(32),
  type: 'container',
  architecture: 'x86_64',
  size: 1000,
  created_at: '',
  aliases: [],
  properties: {},
  ...over,
});

describe('image cache keys and entries', () => {
  test('the key is canonical in the package set and changes with the fingerprint or the packages', () => {
    const key = cacheKey('prod', 'f1', ['sudo', 'openssh-server']);
    expect(key).toMatch(/^[0-9a-f]{16}$/);
    expect(cacheKey('prod', 'f1', ['openssh-server', 'sudo', 'sudo'])).toBe(key);
    expect(cacheKey('prod', 'f2', ['openssh-server', 'sudo'])).not.toBe(key);
    expect(cacheKey('prod', 'f1', ['docker.io', 'openssh-server', 'sudo'])).not.toBe(key);
  });

  test('the key changes with the daemon id: two daemons never share an alias or a builder', () => {
    const packages = ['openssh-server', 'sudo'];
    expect(cacheKey('prod', 'f1', packages)).not.toBe(cacheKey('ci-7', 'f1', packages));
  });

  test('only images with our marker are entries, read from their properties', () => {
    const ours = image({
      fingerprint: 'c'.repeat(64),
      aliases: [{ name: 'containarium-cache/0123456789abcdef' }],
      properties: {
        [PROP.marker]: 'true',
        [PROP.key]: '0123456789abcdef',
        [PROP.sourceImage]: 'debian/12',
        [PROP.sourceFingerprint]: 'f1',
        [PROP.packages]: 'openssh-server sudo',
        [PROP.built]: '2026-11-29T07:00:00.000Z',
        [PROP.daemon]: 'prod',
      },
    });
    // Someone else's image with a look-alike alias but no marker is not ours.
    const theirs = image({ aliases: [{ name: 'containarium-cache/x' }], properties: {} });
    expect(cacheEntries([ours, theirs])).toEqual([
      {
        alias: 'containarium-cache/0123456789abcdef',
        fingerprint: 'c'.repeat(64),
        key: '0123456789abcdef',
        sourceImage: 'debian/12',
        sourceFingerprint: 'f1',
        packages: ['openssh-server', 'sudo'],
        builtAt: Date.parse('2026-11-29T07:00:00.000Z'),
        sizeBytes: 1000,
        daemon: 'prod',
      },
    ]);
  });
});

describe('image cache entries belong to a daemon id', () => {
  const PACKAGES = ['openssh-server', 'sudo'];
  const SOURCE = 'f'.repeat(64);
  const NOW = Date.parse('2026-11-29T08:00:00.000Z');

  /** A fresh cache entry of `daemon`, built from `source` with PACKAGES, under its key's alias. */
  const entry = (daemon: string, fingerprint: string, source = SOURCE) => {
    const key = cacheKey(daemon, source, PACKAGES);
    return image({
      fingerprint,
      aliases: [{ name: CACHE_ALIAS_PREFIX + key }],
      properties: {
        [PROP.marker]: 'true',
        [PROP.key]: key,
        [PROP.sourceImage]: 'debian/12',
        [PROP.sourceFingerprint]: source,
        [PROP.packages]: PACKAGES.join(' '),
        [PROP.built]: new Date(NOW - 60_000).toISOString(),
        [PROP.daemon]: daemon,
      },
    });
  };
  const builder = (name: string, daemon: string | undefined) => ({
    name,
    type: 'container',
    status: 'Stopped',
    config: {
      [BUILDER_KEY]: 'host 1 1',
      ...(daemon === undefined ? {} : { [BUILDER_DAEMON_KEY]: daemon }),
    },
    expanded_config: {},
    devices: {},
    expanded_devices: {},
  });

  /** A fake Incus holding these images and instances; deletes remove them and are recorded. */
  function incusWith(images: IncusImage[], instances: ReturnType<typeof builder>[] = []) {
    const deleted: string[] = [];
    const routes: Parameters<typeof fakeIncus>[0] = {
      'GET /1.0/images': () => sync(images.filter((i) => !deleted.includes(i.fingerprint))),
      'GET /1.0/instances': () => sync(instances.filter((i) => !deleted.includes(i.name))),
      'GET /1.0/operations/gone/wait': () => finished('gone'),
    };
    for (const { fingerprint } of images) {
      routes[`DELETE /1.0/images/${fingerprint}`] = () => {
        deleted.push(fingerprint);
        return started('gone');
      };
    }
    for (const { name } of instances) {
      routes[`PUT /1.0/instances/${name}/state`] = () => started('gone');
      routes[`DELETE /1.0/instances/${name}`] = () => {
        deleted.push(name);
        return started('gone');
      };
    }
    const incus = fakeIncus(routes);
    return { incus, deleted, client: createIncusClient({ socket: incus.socket }) };
  }

  const cacheFor = (client: ReturnType<typeof createIncusClient>, daemonId: string) =>
    imageCache(client, {
      maxAgeMs: 3_600_000,
      pool: 'default',
      daemonId,
      owner: 'host 1 1',
      log: () => undefined,
      clock: { now: () => NOW, sleep: async () => undefined },
      retry: (_what, step) => step(),
      start: async () => undefined,
      remove: async () => undefined,
    });

  const source = image({ fingerprint: SOURCE, aliases: [{ name: 'debian/12' }] });

  test("pick ignores another daemon id's fresh entry for the same image and packages", async () => {
    // Even one that carries this id's alias: the id on the entry decides, not its name.
    const impostor = entry('other', 'd'.repeat(64));
    impostor.aliases = [{ name: CACHE_ALIAS_PREFIX + cacheKey('mine', SOURCE, PACKAGES) }];
    const { incus, client } = incusWith([source, entry('other', 'b'.repeat(64)), impostor]);
    await using _ = incus;
    const pick = await cacheFor(client, 'mine').pick(
      { type: 'image', alias: 'debian/12' },
      PACKAGES,
      {},
    );
    expect(pick).toEqual({
      build: {
        key: cacheKey('mine', SOURCE, PACKAGES),
        sourceImage: 'debian/12',
        sourceFingerprint: SOURCE,
        packages: PACKAGES,
        config: {},
      },
    });
  });

  test('pick uses an entry of its own daemon id', async () => {
    const own = entry('mine', 'c'.repeat(64));
    const { incus, client } = incusWith([source, entry('other', 'b'.repeat(64)), own]);
    await using _ = incus;
    const pick = await cacheFor(client, 'mine').pick(
      { type: 'image', alias: 'debian/12' },
      PACKAGES,
      {},
    );
    expect(pick).toEqual({
      use: { alias: own.aliases[0]?.name as string, fingerprint: 'c'.repeat(64) },
    });
  });

  test("dropStale deletes only its own id's stale entries, never another id's", async () => {
    // Both entries come from an image no alias names any more: stale for either daemon.
    const gone = 'e'.repeat(64);
    const { incus, deleted, client } = incusWith([
      entry('mine', 'c'.repeat(64), gone),
      entry('other', 'b'.repeat(64), gone),
    ]);
    await using _ = incus;
    await dropStale(client, 'mine', () => undefined);
    expect(deleted).toEqual(['c'.repeat(64)]);
    expect(incus.calls('DELETE', '/1.0/images/')).toHaveLength(1);
  });

  test("list and clear see only their own id's entries and builders", async () => {
    const { incus, deleted, client } = incusWith(
      [source, entry('mine', 'c'.repeat(64)), entry('other', 'b'.repeat(64))],
      [
        builder('containarium-cache-1111111111111111', 'mine'),
        builder('containarium-cache-2222222222222222', 'other'),
        builder('containarium-cache-3333333333333333', undefined),
      ],
    );
    await using _ = incus;
    expect((await listCache(client, 'mine')).map((e) => e.fingerprint)).toEqual(['c'.repeat(64)]);
    expect(await clearCache(client, 'mine')).toEqual({ images: 1, builders: 1 });
    expect(deleted).toEqual(['c'.repeat(64), 'containarium-cache-1111111111111111']);
    expect((await listCache(client, 'other')).map((e) => e.fingerprint)).toEqual(['b'.repeat(64)]);
  });
});
