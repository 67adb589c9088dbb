// The daemon's cache of provisioned images. The first create from a local image with a given
// package set provisions as always; once it has finished, a separate builder instance made from
// the same source image gets the packages, is sealed (no SSH host keys, an empty machine id, no
// user) and published as a local image under the alias containarium-cache/<key>. Later creates
// from that image start from the cached one and only add the user, keys and limits.
// The key is a hash of the daemon id, the source image's fingerprint and the package set, so a
// source alias moved to a new image misses and builds anew; entries older than the max age are not
// used and rebuilt. An Incus may be shared: each daemon id has its own entries and builders, and
// reads, uses and deletes only those.
import { createHash } from 'node:crypto';
import type { Clock } from './clock.ts';
import { DaemonError } from './errors.ts';
import type { IncusClient } from './incus.ts';
import type { ImageSource, IncusImage } from './incus-wire.ts';
import type { Logger } from './log.ts';
import { ownerAlive } from './owner.ts';
import { prepareImage } from './provision.ts';
import { message, type Retry } from './retry.ts';

export const CACHE_ALIAS_PREFIX = 'containarium-cache/';
/** Builder instances are named this plus the key; never `<user>-container`, so never a user's. */
export const BUILDER_PREFIX = 'containarium-cache-';
/** The builder instance's config key holding the owner tag of the daemon process building it. */
export const BUILDER_KEY = 'user.containarium.cache-build';
/** The builder instance's config key holding the --daemon-id whose entry it builds. */
export const BUILDER_DAEMON_KEY = 'user.containarium.cache-daemon';

/** The properties that mark an image as a cache entry of ours, and describe it. */
export const PROP = {
  marker: 'containarium.cache',
  key: 'containarium.cache.key',
  sourceImage: 'containarium.cache.source-image',
  sourceFingerprint: 'containarium.cache.source-fingerprint',
  packages: 'containarium.cache.packages',
  built: 'containarium.cache.built',
  daemon: 'containarium.cache.daemon',
} as const;

/**
 * The entry key: the daemon id, the source image's fingerprint and the canonical (sorted, unique)
 * package set. With the id in it, two daemons on one Incus never share an alias or a builder name.
 */
export function cacheKey(
  daemonId: string,
  fingerprint: string,
  packages: readonly string[],
): string {
  const canonical = [...new Set(packages)].sort().join(' ');
  return createHash('sha256')
    .update(`${daemonId}\n${fingerprint}\n${canonical}`)
    .digest('hex')
    .slice(0, 16);
}

export type CacheEntry = {
  alias: string;
  fingerprint: string;
  key: string;
  sourceImage: string;
  sourceFingerprint: string;
  packages: string[];
  /** Epoch milliseconds; 0 when unknown (such an entry counts as old). */
  builtAt: number;
  sizeBytes: number;
  daemon: string;
};

/** The images carrying our marker; other images are never read as, or changed as, cache entries. */
export function cacheEntries(images: readonly IncusImage[]): CacheEntry[] {
  return images
    .filter((image) => image.properties[PROP.marker] === 'true')
    .map((image) => {
      const said = (key: string) => image.properties[key] ?? '';
      const key = said(PROP.key);
      return {
        alias:
          image.aliases.find((a) => a.name.startsWith(CACHE_ALIAS_PREFIX))?.name ??
          '(none: unfinished)',
        fingerprint: image.fingerprint,
        key,
        sourceImage: said(PROP.sourceImage),
        sourceFingerprint: said(PROP.sourceFingerprint),
        packages: said(PROP.packages).split(' ').filter(Boolean),
        builtAt: Date.parse(said(PROP.built)) || 0,
        sizeBytes: image.size,
        daemon: said(PROP.daemon),
      };
    });
}

/** The entries of one daemon id among these images; another id's are never read as its own. */
export const entriesOf = (images: readonly IncusImage[], daemonId: string) =>
  cacheEntries(images).filter((entry) => entry.daemon === daemonId);

/** The cache entries of one daemon id on this Incus. */
export const listCache = async (client: IncusClient, daemonId: string) =>
  entriesOf(await client.images(), daemonId);

/**
 * Deletes one daemon id's cache entries and any builder instance of that id left behind; nothing
 * without our marker, nothing of another id. Returns what was removed, for the command's output.
 */
export async function clearCache(
  client: IncusClient,
  daemonId: string,
): Promise<{ images: number; builders: number }> {
  const entries = await listCache(client, daemonId);
  for (const entry of entries) await client.deleteImage(entry.fingerprint);
  const builders = (await client.instances(1)).filter(
    (i) =>
      i.name.startsWith(BUILDER_PREFIX) &&
      i.config[BUILDER_KEY] !== undefined &&
      i.config[BUILDER_DAEMON_KEY] === daemonId,
  );
  for (const builder of builders) {
    await client.changeState(builder.name, 'stop', { force: true }).catch(() => undefined);
    await client.deleteInstance(builder.name);
  }
  return { images: entries.length, builders: builders.length };
}

/** What a create learnt from the cache: an image to start from, or the entry to build after it. */
export type CachePick =
  | { use: { alias: string; fingerprint: string } }
  | { build: BuildPlan }
  | undefined;

export type BuildPlan = {
  key: string;
  sourceImage: string;
  sourceFingerprint: string;
  packages: string[];
  /** Extra config for the builder instance (Docker's nesting keys). */
  config: Record<string, string>;
};

export type ImageCacheOptions = {
  /** Entries older than this are not used and are rebuilt; 0 turns the cache off. */
  maxAgeMs: number;
  pool: string;
  daemonId: string;
  /** This process's owner tag, stored on its builder instances. */
  owner: string;
  log: Logger;
  clock: Clock;
  retry: Retry;
  /** Starts an instance and waits until it has an address. */
  start(name: string): Promise<void>;
  /** Force-stops and deletes an instance. */
  remove(name: string): Promise<void>;
};

export type ImageCache = ReturnType<typeof imageCache>;

export function imageCache(client: IncusClient, options: ImageCacheOptions) {
  const { maxAgeMs, log, clock, daemonId } = options;
  /** Builds in flight in this process, by key: concurrent first creates build once. */
  const building = new Map<string, Promise<void>>();

  const fresh = (entry: CacheEntry) => clock.now() - entry.builtAt < maxAgeMs;

  /**
   * The cached image for this source and package set, or the plan to build one. Only local
   * images are cached (a remote one has no fingerprint here before it is downloaded).
   */
  async function pick(
    source: ImageSource,
    packages: string[],
    config: Record<string, string>,
  ): Promise<CachePick> {
    if (maxAgeMs <= 0 || 'server' in source) return undefined;
    const images = await client.images();
    const from = images.find((i) => i.aliases.some((a) => a.name === source.alias));
    if (!from?.fingerprint || from.properties[PROP.marker] === 'true') return undefined;
    const key = cacheKey(daemonId, from.fingerprint, packages);
    const entry = entriesOf(images, daemonId).find((e) => e.alias === CACHE_ALIAS_PREFIX + key);
    if (entry && fresh(entry)) {
      return { use: { alias: entry.alias, fingerprint: entry.fingerprint } };
    }
    const sorted = [...new Set(packages)].sort();
    return {
      build: {
        key,
        sourceImage: source.alias,
        sourceFingerprint: from.fingerprint,
        packages: sorted,
        config,
      },
    };
  }

  /** Starts the entry's build in the background unless one runs already; never throws. */
  function refresh(plan: BuildPlan): void {
    if (building.has(plan.key)) return;
    const job = build(plan)
      .catch((error) =>
        log(`image cache: building ${plan.sourceImage} (${plan.key}) failed: ${message(error)}`),
      )
      .finally(() => building.delete(plan.key));
    building.set(plan.key, job);
  }

  /** A builder instance (marked with this process's tag and the daemon id) from an image. */
  const builderFrom = (name: string, fingerprint: string, config: Record<string, string>) =>
    client.createInstance(
      {
        name,
        type: 'container',
        source: { type: 'image', fingerprint },
        config: { ...config, [BUILDER_KEY]: options.owner, [BUILDER_DAEMON_KEY]: daemonId },
        devices: { root: { type: 'disk', path: '/', pool: options.pool } },
      },
      600,
    );

  /**
   * Makes the builder instance; false when another daemon process (or this one) is building the
   * same entry. A builder of this daemon id whose process is gone is removed and made again.
   */
  async function makeBuilder(name: string, plan: BuildPlan): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      try {
        await builderFrom(name, plan.sourceFingerprint, plan.config);
        return true;
      } catch (error) {
        if (!(/already exists|UNIQUE constraint/i.test(message(error)) || isConflict(error))) {
          throw error;
        }
        const other = await client.instance(name).catch(() => undefined);
        const tag = other?.config[BUILDER_KEY];
        const ours = other?.config[BUILDER_DAEMON_KEY] === daemonId;
        if (attempt > 1 || tag === undefined || !ours || ownerAlive(tag)) return false;
        log(`image cache: removing ${name}, left by a builder that is gone`);
        await options.remove(name);
      }
    }
  }

  async function build(plan: BuildPlan): Promise<void> {
    const name = BUILDER_PREFIX + plan.key;
    const alias = CACHE_ALIAS_PREFIX + plan.key;
    // Another create (or daemon process with this id) may have built it since this create looked.
    const now = entriesOf(await client.images(), daemonId).find((e) => e.alias === alias);
    if (now && fresh(now)) return;
    if (!(await makeBuilder(name, plan))) return;
    log(`image cache: building ${alias} from ${plan.sourceImage} (${plan.packages.join(', ')})`);
    let published: string | undefined;
    try {
      await options.start(name);
      await prepareImage(client.guest(name), plan.packages, options.retry);
      await client.changeState(name, 'stop', { timeout: 60 });
      published = await client.publishImage(name, {
        [PROP.marker]: 'true',
        [PROP.key]: plan.key,
        [PROP.sourceImage]: plan.sourceImage,
        [PROP.sourceFingerprint]: plan.sourceFingerprint,
        [PROP.packages]: plan.packages.join(' '),
        [PROP.built]: new Date(clock.now()).toISOString(),
        [PROP.daemon]: daemonId,
        description: `Containarium cache: ${plan.sourceImage} with ${plan.packages.join(', ')}`,
      });
      // The alias is the entry: made, or moved from the old image in one call, only now.
      const before = entriesOf(await client.images(), daemonId).find((e) => e.alias === alias);
      await client.setAlias(alias, published, { move: before !== undefined });
      const image = published;
      published = undefined;
      log(`image cache: ${alias} is ${image}`);
      if (before && before.fingerprint !== image) await client.deleteImage(before.fingerprint);
      await dropStale(client, daemonId, log);
      // Incus unpacks an image into the pool when it is first used: here, not in the next create.
      await options.remove(name);
      await builderFrom(name, image, {});
    } catch (error) {
      if (published) await client.deleteImage(published).catch(() => undefined);
      throw error;
    } finally {
      await options
        .remove(name)
        .catch((error) => log(`image cache: could not remove ${name}: ${message(error)}`));
    }
  }

  return {
    pick,
    refresh,
    /** Resolves once no build runs in this process. */
    idle: async () => {
      while (building.size > 0) await Promise.all(building.values());
    },
  };
}

/**
 * Deletes this daemon id's entries whose source image no alias names any more: no create can use
 * them again. Another id's entries are left to that daemon, stale or not.
 */
export async function dropStale(client: IncusClient, daemonId: string, log: Logger) {
  const images = await client.images();
  const named = new Set(
    images
      .filter((i) => i.properties[PROP.marker] !== 'true' && i.aliases.length > 0)
      .map((i) => i.fingerprint),
  );
  for (const entry of entriesOf(images, daemonId)) {
    if (entry.alias.startsWith(CACHE_ALIAS_PREFIX) && !named.has(entry.sourceFingerprint)) {
      log(`image cache: dropping ${entry.alias}, its source image ${entry.sourceImage} changed`);
      await client.deleteImage(entry.fingerprint).catch(() => undefined);
    }
  }
}

const isConflict = (error: unknown) => error instanceof DaemonError && error.kind === 'conflict';
