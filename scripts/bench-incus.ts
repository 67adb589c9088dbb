// The daemon's half of `bun run bench`: Incus calls and latency of list and all-container metrics
// with 200 containers, beside a one-call-per-container strategy. Needs a local Incus (see
// scripts/incus-setup.sh) with the busybox image; containers are stopped copies, made and removed here.
import { existsSync } from 'node:fs';
import * as v from 'valibot';
import { createIncusClient, INCUS_SOCKET } from '../src/daemon/incus.ts';
import { createIncusBackend } from '../src/daemon/incus-backend.ts';
import { countingFetch } from '../test/support/counting-fetch.ts';

type Report = (what: string, measured: string, target: string, ok: boolean | undefined) => void;

const COUNT = Number(process.env.BENCH_CONTAINERS ?? 200);
const RUNNING = 10;
const name = (i: number) => `bench-${String(i).padStart(3, '0')}-container`;

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
  const backend = createIncusBackend(client, { log: () => {} });
  const names = Array.from({ length: COUNT }, (_, i) => name(i));
  const remove = async () => {
    const existing = await client.get('1.0/instances', v.array(v.string()));
    const ours = existing
      .map((url) => url.split('/').pop()!)
      .filter((n) => /^bench-\d{3}-container$/.test(n));
    await pool(ours, 4, async (n) => {
      await client
        .operate('PUT', `1.0/instances/${n}/state`, { json: { action: 'stop', force: true } })
        .catch(() => {});
      await client.operate('DELETE', `1.0/instances/${n}`);
    });
  };
  await remove();
  const started = performance.now();
  await client.operate('POST', '1.0/instances', {
    json: { name: names[0], type: 'container', source: { type: 'image', alias: 'busybox' } },
  });
  await pool(names.slice(1), 4, (n) =>
    client.operate('POST', '1.0/instances', {
      json: { name: n, type: 'container', source: { type: 'copy', source: names[0] } },
    }),
  );
  await pool(names.slice(0, RUNNING), 4, (n) =>
    client.operate('PUT', `1.0/instances/${n}/state`, { json: { action: 'start' } }),
  );
  report(
    `Incus: made ${COUNT} busybox containers (${RUNNING} running)`,
    `${((performance.now() - started) / 1000).toFixed(1)} s`,
    '',
    undefined,
  );

  try {
    const measure = async (label: string, run: () => Promise<unknown>) => {
      await run();
      const times: number[] = [];
      let calls = 0;
      for (let i = 0; i < 5; i++) {
        const before = incus.calls;
        const start = performance.now();
        await run();
        times.push(performance.now() - start);
        calls = incus.calls - before;
      }
      return { label, calls, ms: median(times) };
    };
    // The strategy the daemon avoids: list names, then ask for each container on its own.
    const perContainer = {
      list: async () => {
        const urls = await client.get('1.0/instances', v.array(v.string()));
        await pool(urls, 8, (url) =>
          client.get(`${url.replace(/^\//, '')}?recursion=1`, v.unknown()),
        );
      },
      metrics: async () => {
        const urls = await client.get('1.0/instances', v.array(v.string()));
        await pool(urls, 8, (url) => client.get(`${url.replace(/^\//, '')}/state`, v.unknown()));
      },
    };
    for (const [what, ours, theirs] of [
      ['list', () => backend.list({}), perContainer.list],
      ['all-container metrics', () => backend.metrics(), perContainer.metrics],
    ] as const) {
      const a = await measure('daemon', ours);
      const b = await measure('per container', theirs);
      report(
        `Incus ${what}, ${COUNT} containers: daemon`,
        `${a.calls} Incus calls, ${a.ms.toFixed(1)} ms`,
        'constant calls',
        a.calls <= 3,
      );
      report(
        `Incus ${what}, ${COUNT} containers: one call per container`,
        `${b.calls} Incus calls, ${b.ms.toFixed(1)} ms`,
        '',
        undefined,
      );
    }
  } finally {
    await remove();
  }
}
