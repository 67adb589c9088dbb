// The create half of `bun run bench`: a debian/12 create with Docker through the daemon's Incus
// backend, cold (no cached image: packages installed by apt) and warm (from the image cache),
// beside a bare launch of the same image with the same limits that waits for an address; warm
// and bare runs interleaved. Needs a local Incus with the debian/12 image, which may be shared:
// the run has its own random daemon id, so its cache starts empty and no one else's entry is used
// or touched. Only the containers and cache entries made here are removed at the end.
import { existsSync } from 'node:fs';
import type { CreateRequest } from '../src/daemon/backend.ts';
import { clearCache } from '../src/daemon/image-cache.ts';
import { createIncusClient, INCUS_SOCKET } from '../src/daemon/incus.ts';
import { createIncusBackend } from '../src/daemon/incus-backend.ts';
import { primaryAddress } from '../src/daemon/incus-wire.ts';

type Report = (what: string, measured: string, target: string, ok: boolean | undefined) => void;

const IMAGE = process.env.BENCH_CREATE_IMAGE ?? 'debian/12';
const ROUNDS = Number(process.env.BENCH_CREATE_ROUNDS ?? 3);
const LIMITS = { cpu: 1, memory: '1GB', disk: '4GB' };
const DOCKER_CONFIG = {
  'security.nesting': 'true',
  'security.syscalls.intercept.mknod': 'true',
  'security.syscalls.intercept.setxattr': 'true',
};

const median = (xs: number[]) =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export async function benchCreate(report: Report): Promise<void> {
  if (!existsSync(INCUS_SOCKET)) {
    report(`create figures: skipped, no Incus at ${INCUS_SOCKET}`, '', '', undefined);
    return;
  }
  const client = createIncusClient({ socket: INCUS_SOCKET });
  const from = (await client.imageAliases()).find((a) => a.name === IMAGE);
  if (!from) {
    report(`create figures: skipped, no local image ${IMAGE}`, '', '', undefined);
    return;
  }
  const run = Math.random().toString(36).slice(2, 7);
  const daemonId = `bench-${run}`;
  const withCache = createIncusBackend(client, {
    daemonId,
    imageCacheMaxAgeMs: 7 * 86_400_000,
    log: () => {},
  });
  const users: string[] = [];
  const bare: string[] = [];
  const request = (tag: string): CreateRequest => {
    const username = `b${run}${tag}`;
    users.push(username);
    return { username, ...LIMITS, sshKeys: [], labels: {}, image: IMAGE, enableDocker: true };
  };
  const timed = async (work: () => Promise<unknown>) => {
    const start = performance.now();
    await work();
    return performance.now() - start;
  };
  /** `incus launch` of the image with the same limits, until eth0 has an IPv4 address. */
  const launch = async (tag: string) => {
    const name = `b${run}${tag}-bare`;
    bare.push(name);
    await client.createInstance(
      {
        name,
        type: 'container',
        source: { type: 'image', alias: IMAGE },
        config: {
          'limits.cpu': String(LIMITS.cpu),
          'limits.memory': LIMITS.memory,
          ...DOCKER_CONFIG,
        },
        devices: { root: { type: 'disk', path: '/', pool: 'default', size: LIMITS.disk } },
      },
      300,
    );
    await client.changeState(name, 'start');
    for (;;) {
      if (primaryAddress((await client.instanceState(name)).network)) return;
      await Bun.sleep(100);
    }
  };

  try {
    // Cold: the daemon's first create; its id is new, so its cache is empty.
    const cold = await timed(() => withCache.create(request('cold'), { async: false }));
    report(
      `create ${IMAGE} + Docker, cold (apt installs the packages), cache empty`,
      seconds(cold),
      '',
      undefined,
    );
    const built = await timed(() => withCache.cacheIdle());
    report(`image cache: building the ${IMAGE} + Docker entry`, seconds(built), '', undefined);

    const warm: number[] = [];
    const plain: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      warm.push(await timed(() => withCache.create(request(`w${round}`), { async: false })));
      plain.push(await timed(() => launch(`l${round}`)));
    }
    const ratio = median(warm) / median(plain);
    report(
      `create ${IMAGE} + Docker, warm (cached image), median`,
      seconds(median(warm)),
      '',
      undefined,
    );
    report(
      `bare incus launch, same limits, to an address, median`,
      seconds(median(plain)),
      '',
      undefined,
    );
    report(`warm create / bare launch`, `${ratio.toFixed(2)}x`, '≤ 2x', ratio <= 2);
    report(`cold create / warm create`, `${(cold / median(warm)).toFixed(1)}x`, '', undefined);
  } finally {
    await withCache.cacheIdle().catch(() => undefined);
    const cleaner = createIncusBackend(client, { daemonId });
    for (const username of users) {
      await cleaner.delete(username, { force: true }).catch(() => undefined);
    }
    for (const name of bare) {
      await client.changeState(name, 'stop', { force: true }).catch(() => undefined);
      await client.deleteInstance(name).catch(() => undefined);
    }
    // The entries (and any builder) of this run's daemon id go too; no other id's.
    await clearCache(client, daemonId).catch(() => undefined);
  }
}
