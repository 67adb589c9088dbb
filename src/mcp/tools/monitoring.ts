// Monitoring tools: container metrics and host information.
import * as v from 'valibot';
import { formatBytes } from '../../shared/sizes.ts';
import { CONTAINER } from '../errors.ts';
import {
  type ContainerView,
  containerView,
  duration,
  MetricsOut,
  type MetricsView,
  metricsView,
  percentOf,
  SystemInfoOut,
  systemInfoText,
  systemInfoView,
  table,
  withinBudget,
} from '../format.ts';
import { defineTool, limit, username } from './define.ts';

const SORTS = ['cpu', 'memory', 'disk'] as const;

/** Heaviest first: CPU by its recent share (by CPU time where the daemon reports none). */
const ORDER: Record<(typeof SORTS)[number], (a: MetricsView, b: MetricsView) => number> = {
  cpu: (a, b) => (b.cpuPercent ?? -1) - (a.cpuPercent ?? -1) || b.cpuSeconds - a.cpuSeconds,
  memory: (a, b) => b.memoryBytes - a.memoryBytes,
  disk: (a, b) => b.diskBytes - a.diskBytes,
};

const getMetrics = defineTool({
  name: 'get_metrics',
  title: 'Get metrics',
  description:
    'Get resource usage of one container or all (username empty): CPU as % of a core and of its limit, CPU time, memory, disk, network and processes; sort_by and limit give the heaviest few.',
  effect: 'read',
  toolset: 'monitoring',
  resource: CONTAINER,
  input: v.strictObject({
    // Empty or absent (null too: see server.ts) means every container.
    username: v.optional(
      v.union(
        [v.literal(''), username('User whose container to measure; empty for all containers.')],
        'must be empty or a username',
      ),
      '',
    ),
    sort_by: v.optional(
      v.pipe(
        v.picklist(SORTS, `must be one of ${SORTS.join(', ')}`),
        v.description('Heaviest first by this; without it, by name.'),
      ),
    ),
    limit: limit('At most this many containers (with sort_by: the heaviest).'),
  }),
  output: v.object({ metrics: v.array(MetricsOut), totalCount: v.number() }),
  action: (input) =>
    input.username ? `get metrics for ${input.username}` : 'get metrics for all containers',
  async handle(input, { client, signal }) {
    const one = input.username || undefined;
    // Limits come from the container records; without them usage is still shown, just not as a share.
    let lookupError: unknown;
    const [response, limits] = await Promise.all([
      client.getMetrics(one, { signal }),
      (one
        ? client.getContainer(one, { signal }).then((r) => (r.container ? [r.container] : []))
        : client.listContainers({ signal }).then((r) => r.containers ?? [])
      ).catch((error: unknown) => {
        lookupError = error;
        return [];
      }),
    ]);
    const byName = new Map<string, ContainerView>(
      limits.map((c) => [c.name, containerView(c)] as const),
    );
    const all = (response.metrics ?? []).map((m) => metricsView(m, byName.get(m.name)));
    if (all.length === 0) {
      // Some daemons answer [] for a user without a container: the lookup says why, as get_container does.
      if (one && lookupError !== undefined) throw lookupError;
      return {
        text: one
          ? `No metrics for ${one}'s container (is it running?).`
          : 'No metrics available: no containers are running.',
        structured: { metrics: all, totalCount: 0 },
      };
    }
    const sorted = input.sort_by ? [...all].sort(ORDER[input.sort_by]) : all;
    const metrics = sorted.slice(0, input.limit ?? sorted.length);
    const rows = metrics.map((m) => [
      m.name,
      m.cpuPercent === null ? '?' : `${m.cpuPercent}%`,
      m.cpuLimitPercent === null ? '-' : `${m.cpuLimitPercent}%`,
      duration(m.cpuSeconds),
      formatBytes(m.memoryBytes),
      percentOf(m.memoryBytes, m.memoryLimitBytes) ?? '-',
      formatBytes(m.memoryPeakBytes),
      formatBytes(m.diskBytes),
      percentOf(m.diskBytes, m.diskLimitBytes) ?? '-',
      `${formatBytes(m.networkRxBytes)}/${formatBytes(m.networkTxBytes)}`,
      String(m.processes),
    ]);
    const header = [
      'NAME',
      'CPU',
      'CPU%',
      'CPU TIME',
      'MEMORY',
      'MEM%',
      'PEAK',
      'DISK',
      'DISK%',
      'NET IN/OUT',
      'PROCS',
    ];
    const [head = '', ...lines] = table(header, rows).split('\n');
    const noun = (n: number) => `${n} ${n === 1 ? 'container' : 'containers'}`;
    const which =
      metrics.length < all.length
        ? `the ${metrics.length} of ${all.length} containers${input.sort_by ? ` using the most ${input.sort_by}` : ''}`
        : `${noun(all.length)}${input.sort_by ? `, most ${input.sort_by} first` : ''}`;
    const unknown = all.some((m) => m.cpuPercent === null)
      ? '\nCPU % is not reported by this daemon (CPU TIME is since boot).'
      : '';
    const { text, shown } = withinBudget(
      `Usage of ${which} (CPU: % of one core over the last second; CPU%, MEM%, DISK%: of each limit):${unknown}\n${head}`,
      lines,
      (left) =>
        `… ${left} more not shown (the answer's size limit); ask again with sort_by and a smaller limit for the heaviest.`,
    );
    return {
      text,
      structured: { metrics: metrics.slice(0, shown), totalCount: all.length },
    };
  },
});

const getSystemInfo = defineTool({
  name: 'get_system_info',
  title: 'Get system info',
  description:
    "Get information about the Containarium host: versions, container counts, host CPU, memory and disk, load average, and how much of them the containers' limits commit (overcommit).",
  effect: 'read',
  toolset: 'monitoring',
  resource: null,
  input: v.strictObject({}),
  output: v.object({ info: SystemInfoOut }),
  action: () => 'get system information',
  async handle(_input, { client, signal }) {
    const response = await client.getSystemInfo({ signal });
    if (!response.info) throw new Error('the daemon returned no system information');
    const info = systemInfoView(response.info);
    return { text: systemInfoText(info), structured: { info } };
  },
});

export default [getMetrics, getSystemInfo];
