// Many containers through a real MCP client: list_containers' state filter and paging,
// get_metrics' sort_by and limit, the text budget, and the CPU share and host commitments this
// project's daemon reports (upstream daemons do not: the text says so).
import { describe, expect, test } from 'bun:test';
import { TEXT_BUDGET } from '../../../src/mcp/format.ts';
import { type Generation, type SeedContainer, startFakeDaemon } from '../../support/fake-daemon.ts';
import { connectMcp, makeToken } from '../../support/mcp.ts';
import { startOwnDaemon } from '../../support/own-daemon.ts';

const token = await makeToken();

const user = (i: number) => `user-${String(i).padStart(4, '0')}`;

async function setup(generation: Generation, containers: SeedContainer[]) {
  const fake = startFakeDaemon({ generation, token, containers });
  const mcp = await connectMcp({
    CONTAINARIUM_SERVER_URL: `${fake.url}/`,
    CONTAINARIUM_JWT_TOKEN: token,
  });
  return {
    fake,
    mcp,
    routes: () => fake.requests.map((r) => `${r.method} ${r.path}`),
    async [Symbol.asyncDispose]() {
      await mcp[Symbol.asyncDispose]();
      await fake.stop();
    },
  };
}

type Listed = {
  containers: { name: string; state: string }[];
  totalCount: number;
  nextCursor: string | null;
};

const many = (n: number): SeedContainer[] =>
  Array.from({ length: n }, (_, i) => ({
    username: user(i),
    state: i % 3 ? 'CONTAINER_STATE_RUNNING' : 'CONTAINER_STATE_STOPPED',
    ipAddress: i % 3 ? `10.0.${Math.floor(i / 250)}.${(i % 250) + 2}` : '',
    memory: '4GB',
    metrics: { memoryUsageBytes: ((i * 7919) % 1000) * 1_000_000, cpuUsageSeconds: i },
  }));

for (const generation of ['v0.3', 'head'] as const) {
  describe(`against a ${generation} daemon`, () => {
    test('list_containers state: only containers in that state, whether or not the daemon filters', async () => {
      await using t = await setup(generation, many(6));
      const result = await t.mcp.call('list_containers', { state: 'stopped' });
      expect(result.isError).toBeFalsy();
      const listed = result.structuredContent as Listed;
      expect(listed.containers.map((c) => c.name)).toEqual([
        `${user(0)}-container`,
        `${user(3)}-container`,
      ]);
      expect(listed.containers.every((c) => c.state === 'stopped')).toBe(true);
      expect(listed).toMatchObject({ totalCount: 2, nextCursor: null });
      expect(result.text).toStartWith('2 containers (2 stopped):');
      // The contract's enum name goes to the daemon (v0.3 ignores it; mcp-server filters anyway).
      expect(t.fake.requests.at(-1)?.query).toEqual({ state: 'CONTAINER_STATE_STOPPED' });
      const none = await t.mcp.call('list_containers', { state: 'frozen' });
      expect(none.text).toBe('No frozen containers found.');
    });

    test('list_containers limit and cursor page through every container once, in name order', async () => {
      await using t = await setup(generation, many(7));
      const first = await t.mcp.call('list_containers', { limit: 3 });
      const page1 = first.structuredContent as Listed;
      expect(page1.containers.map((c) => c.name)).toEqual(
        [0, 1, 2].map((i) => `${user(i)}-container`),
      );
      expect(page1.totalCount).toBe(7);
      expect(first.text).toStartWith('3 containers (1 stopped, 2 running), 1-3 of 7 containers:');
      expect(first.text).toEndWith(
        `4 more; call list_containers with cursor "${page1.nextCursor}" for the next page.`,
      );
      const second = await t.mcp.call('list_containers', { limit: 3, cursor: page1.nextCursor });
      const page2 = second.structuredContent as Listed;
      expect(page2.containers.map((c) => c.name)).toEqual(
        [3, 4, 5].map((i) => `${user(i)}-container`),
      );
      expect(second.text).toContain('4-6 of 7 containers');
      const third = await t.mcp.call('list_containers', { limit: 3, cursor: page2.nextCursor });
      const page3 = third.structuredContent as Listed;
      expect(page3.containers.map((c) => c.name)).toEqual([`${user(6)}-container`]);
      expect(page3.nextCursor).toBeNull();
      expect(third.text).not.toContain('cursor');
      // With a state the cursor pages within it, and the text says to pass the state again.
      const running = await t.mcp.call('list_containers', { state: 'running', limit: 2 });
      expect(running.text).toContain('and state "running" for the next page');
    });

    test('bad state, limit or cursor: an error naming the argument and its form, and nothing is asked', async () => {
      await using t = await setup(generation, many(2));
      const cases: [Record<string, unknown>, string][] = [
        [{ state: 'sleeping' }, 'must be one of running, stopped, frozen, error, creating'],
        [{ limit: 0 }, 'must be a whole number from 1 to 500'],
        [{ limit: 501 }, 'must be a whole number from 1 to 500'],
        [{ limit: 2.5 }, 'must be a whole number from 1 to 500'],
        [{ limit: '10' }, 'must be a whole number from 1 to 500'],
        [{ cursor: 'not-a-cursor' }, 'must be the nextCursor of an earlier list_containers answer'],
      ];
      for (const [args, form] of cases) {
        const result = await t.mcp.call('list_containers', args);
        expect(result.isError).toBe(true);
        expect(result.text).toContain(`"${Object.keys(args)[0]}"`);
        expect(result.text).toContain(form);
      }
      for (const [args, form] of [
        [{ sort_by: 'name' }, 'must be one of cpu, memory, disk'],
        [{ limit: 1000 }, 'must be a whole number from 1 to 500'],
      ] as const) {
        const result = await t.mcp.call('get_metrics', args);
        expect(result.isError).toBe(true);
        expect(result.text).toContain(`"${Object.keys(args)[0]}"`);
        expect(result.text).toContain(form);
      }
      expect(t.fake.requests).toHaveLength(0);
    });

    test('1,000 containers: the text keeps to the budget, says how many were left out, and its cursor goes on from there', async () => {
      await using t = await setup(generation, many(1000));
      const result = await t.mcp.call('list_containers');
      expect(result.text.length).toBeLessThanOrEqual(TEXT_BUDGET);
      const listed = result.structuredContent as Listed;
      const shown = listed.containers.length;
      expect(shown).toBeGreaterThan(100);
      expect(shown).toBeLessThan(1000);
      expect(result.text).toEndWith(
        `… ${1000 - shown} more not shown (the answer's size limit); call list_containers with cursor "${listed.nextCursor}" for the next ones, or give a smaller limit.`,
      );
      // Every container shown in the text is in the structured content, and no other.
      expect(result.text).toContain(`${user(shown - 1)}-container`);
      expect(result.text).not.toContain(`${user(shown)}-container`);
      const next = await t.mcp.call('list_containers', { cursor: listed.nextCursor, limit: 2 });
      expect((next.structuredContent as Listed).containers.map((c) => c.name)).toEqual([
        `${user(shown)}-container`,
        `${user(shown + 1)}-container`,
      ]);
      // get_metrics for all of them keeps to it too, and says how to ask for fewer.
      const metrics = await t.mcp.call('get_metrics');
      expect(metrics.text.length).toBeLessThanOrEqual(TEXT_BUDGET);
      expect(metrics.text).toMatch(/… \d+ more not shown .*sort_by and a smaller limit/);
    });

    test('"which container uses the most memory?" with 500 containers is one small answer', async () => {
      await using t = await setup(generation, many(500));
      const result = await t.mcp.call('get_metrics', { sort_by: 'memory', limit: 3 });
      expect(result.isError).toBeFalsy();
      const { metrics, totalCount } = result.structuredContent as {
        metrics: { name: string; memoryBytes: number }[];
        totalCount: number;
      };
      expect(totalCount).toBe(500);
      const memory = many(500).map((c, i) => ({
        name: `${user(i)}-container`,
        bytes: c.state === 'CONTAINER_STATE_RUNNING' ? (c.metrics?.memoryUsageBytes as number) : 0,
      }));
      const top = memory.sort((a, b) => b.bytes - a.bytes).slice(0, 3);
      expect(metrics.map((m) => m.name)).toEqual(top.map((m) => m.name));
      expect(result.text).toStartWith(
        'Usage of the 3 of 500 containers using the most memory (CPU: % of one core',
      );
      // The heading, the note that upstream daemons send no CPU share, the table's header and rows.
      expect(result.text.split('\n')).toHaveLength(6);
      expect(result.text.length).toBeLessThan(1000);
    });
  });
}

test('any other answer keeps to the budget too (a container with 40 KB of labels)', async () => {
  const labels = Object.fromEntries(
    Array.from({ length: 40 }, (_, i) => [`label${i}`, 'x'.repeat(1000)]),
  );
  await using t = await setup('head', [{ username: 'alice', labels }]);
  const result = await t.mcp.call('get_container', { username: 'alice' });
  expect(result.isError).toBeFalsy();
  expect(result.text.length).toBeLessThanOrEqual(TEXT_BUDGET);
  expect(result.text).toStartWith('alice-container (user alice): running');
});

describe("this project's daemon", () => {
  test('get_metrics and get_container show CPU as a share of one core and of the limit; sort_by cpu uses it', async () => {
    await using d = await startOwnDaemon();
    d.backend.seed('alice');
    d.backend.seed('bob', { state: 'stopped' });
    const mcp = await d.connect(await d.token('admin', { roles: ['admin'] }));
    const all = await mcp.call('get_metrics', { sort_by: 'cpu' });
    // The memory backend reports 25% of one core for a running container, 4 cores of limit.
    expect(all.text).toMatch(/\nalice-container +25% +6\.3% +12s/);
    expect(all.text).not.toContain('not reported');
    expect((all.structuredContent as { metrics: unknown[] }).metrics[0]).toMatchObject({
      name: 'alice-container',
      cpuPercent: 25,
      cpuLimitPercent: 6.3,
    });
    const one = await mcp.call('get_container', { username: 'alice' });
    expect(one.text).toContain(
      'Usage: CPU time 12s, CPU 25% of one core (6.3% of its limit) over the last second, memory',
    );
  });

  test('get_system_info shows the load and what the limits commit of the host', async () => {
    await using d = await startOwnDaemon();
    d.backend.seed('alice');
    const mcp = await d.connect(await d.token('admin', { roles: ['admin'] }));
    const result = await mcp.call('get_system_info');
    expect(result.text).toContain('Load average: 0.5, 0.25, 0.125 (1, 5, 15 min) on 2 CPUs');
    // One running container of 4 CPUs, 4GB and 50GB on a host of 2 CPUs, 4 GiB and 10 GiB.
    expect(result.text).toContain(
      'Committed by container limits (above 1.0× is overcommitted): CPU 4 CPUs of 2 CPUs (2.0×), memory 3.7 GiB of 4 GiB (0.9×), disk 46.6 GiB of 10 GiB (4.7×)',
    );
    expect((result.structuredContent as { info: object }).info).toMatchObject({
      cpuLoad: [0.5, 0.25, 0.125],
      committedCpus: 4,
      committedMemoryBytes: 4e9,
      committedDiskBytes: 50e9,
    });
  });

  test('an upstream daemon reports neither: the text says so', async () => {
    await using t = await setup('v0.3', many(1));
    const result = await t.mcp.call('get_system_info');
    expect(result.text).toContain('Load average: not reported by this daemon');
    expect(result.text).toContain('Committed by container limits: not reported by this daemon');
  });
});
