// The daemon's half of `bun run bench`: list and all-container metrics for 200 containers, side by
// side with `incus list --format csv` on the same host, with the Incus calls each request costs.
// Needs a local Incus (see scripts/incus-setup.sh) with the busybox image. The containers are
// made here under a random name and daemon id, and only they are ever changed or removed: other
// users' instances may appear or vanish on the shared Incus meanwhile.
import { existsSync } from 'node:fs';
import * as v from 'valibot';
import { createIncusClient, INCUS_SOCKET } from '../src/daemon/incus.ts';
import { createIncusBackend } from '../src/daemon/incus-backend.ts';
import { KEY } from '../src/daemon/incus-wire.ts';
import { countingFetch } from '../test/support/counting-fetch.ts';

type Report = (what: string, measured: string, target: string, ok: boolean | undefined) => void;

const COUNT = Number(process.env.BENCH_CONTAINERS ?? 200);
const RUNNING = 10;
const RUN = Math.random().toString(36).slice(2, 7);
/** The daemon id the bench's containers carry: the backend here sees them and nothing else. */
const DAEMON = `bench-${RUN}`;
const username = (i: number) => `b${RUN}-${String(i).padStart(3, '0')}`;

/** Runs tasks with at most `width` in flight. */
async function pool<T>(items: T[], width: number, task: (item: T) => Promise<unknown>) {
  const queue = [...items];
  await Promise.all(
    Array.from({ length: width }, async () => {
      for (let item = queue.shift(); item !== undefined; item = queue.shift()) await task(item);
    }),
  );
}

const median = (xs: number[]) =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

/** `incus list --format csv`, the comparison, run as a person would. */
async function incusList(): Promise<void> {
  const proc = Bun.spawn(['incus', 'list', '--format', 'csv'], {
    stdout: 'ignore',
    stderr: 'pipe',
  });
  if ((await proc.exited) !== 0) {
    throw new Error(`incus list failed: ${await new Response(proc.stderr).text()}`);
  }
}

export async function benchIncus(report: Report): Promise<void> {
  if (!existsSync(INCUS_SOCKET)) {
    report(
      `Incus figures: skipped, no Incus at ${INCUS_SOCKET} (run scripts/incus-setup.sh)`,
      '',
      '',
      undefined,
    );
    return;
  }
  // Every HTTP call to Incus, counted here rather than in the daemon's code.
  const incus = countingFetch();
  const client = createIncusClient({ socket: INCUS_SOCKET, fetch: incus.fetch });
  const backend = createIncusBackend(client, { daemonId: DAEMON, log: () => {} });
  const users = Array.from({ length: COUNT }, (_, i) => username(i));
  const name = (user: string) => `${user}-container`;
  // What makes an instance the daemon's: its username and daemon id (incus-wire.ts isOurs).
  const config = (user: string) => ({ [KEY.username]: user, [KEY.daemon]: DAEMON });
  const made: string[] = [];
  /** Removes only what this run made; a failure to remove one is reported, not thrown. */
  const remove = async () => {
    const left: string[] = [];
    await pool([...made], 4, async (n) => {
      await client.changeState(n, 'stop', { force: true }).catch(() => {});
      await client.deleteInstance(n).catch((error: unknown) => {
        if (!/not found/i.test(String(error))) left.push(n);
      });
    });
    if (left.length > 0) {
      report(`Incus: could not remove ${left.join(', ')}`, '', '', false);
    }
  };

  const started = performance.now();
  try {
    const [first, ...rest] = users as [string, ...string[]];
    made.push(name(first));
    await client.operate('POST', '1.0/instances', {
      json: {
        name: name(first),
        type: 'container',
        source: { type: 'image', alias: 'busybox' },
        config: config(first),
      },
    });
    // Copies of the first are quicker than creates; each gets its own username key.
    await pool(rest, 4, async (user) => {
      made.push(name(user));
      await client.operate('POST', '1.0/instances', {
        json: {
          name: name(user),
          type: 'container',
          source: { type: 'copy', source: name(first) },
          config: config(user),
        },
      });
    });
    await pool(users.slice(0, RUNNING), 4, (user) => client.changeState(name(user), 'start'));
    const listed = await backend.list({});
    if (listed.length !== COUNT) {
      throw new Error(`the daemon lists ${listed.length} of the ${COUNT} bench containers`);
    }
    report(
      `Incus: made ${COUNT} busybox containers (${RUNNING} running)`,
      `${((performance.now() - started) / 1000).toFixed(1)} s`,
      '',
      undefined,
    );

    /** Median time and Incus calls of `run`, alternated with `incus list` so both see one load. */
    const sideBySide = async (run: () => Promise<unknown>, rounds: number) => {
      await run();
      await incusList();
      const ours: number[] = [];
      const theirs: number[] = [];
      let calls = 0;
      for (let i = 0; i < rounds; i++) {
        const before = incus.calls;
        let start = performance.now();
        await run();
        ours.push(performance.now() - start);
        calls = Math.max(calls, incus.calls - before);
        start = performance.now();
        await incusList();
        theirs.push(performance.now() - start);
      }
      return { ours: median(ours), theirs: median(theirs), calls };
    };
    const total = (await client.instances(1)).length;
    const list = await sideBySide(() => backend.list({}), 7);
    // One call where Incus narrows recursion=2 to addresses; else config and status plus the
    // bridge's leases: two, whatever the number of containers.
    report(
      `Incus list, ${COUNT} containers (${total} instances on the host): daemon`,
      `${list.calls} Incus calls, ${list.ours.toFixed(1)} ms`,
      `≤ incus list --format csv, ${list.theirs.toFixed(1)} ms; ≤ 2 calls`,
      list.ours <= list.theirs && list.calls <= 2,
    );
    const metrics = await sideBySide(() => backend.metrics(), 5);
    // Metrics read every container's state twice, a second apart, for the CPU share.
    const work = metrics.ours - 1000;
    report(
      `Incus all-container metrics, ${COUNT} containers: daemon`,
      `${metrics.calls} Incus calls, ${metrics.ours.toFixed(1)} ms (${work.toFixed(1)} ms + 1 s CPU window)`,
      `2 calls; ${work.toFixed(1)} ms vs incus list --format csv, ${metrics.theirs.toFixed(1)} ms`,
      metrics.calls === 2,
    );
    // The strategy the daemon avoids: ask for each of the bench's containers on its own.
    const perContainer = await sideBySide(
      () =>
        pool(users, 8, (user) =>
          client.get(`1.0/instances/${encodeURIComponent(name(user))}?recursion=1`, v.unknown()),
        ),
      3,
    );
    report(
      `Incus list, ${COUNT} containers: one call per container`,
      `${perContainer.calls} Incus calls, ${perContainer.ours.toFixed(1)} ms`,
      '',
      undefined,
    );
  } finally {
    await remove();
  }
}
