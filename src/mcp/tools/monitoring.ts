// Monitoring tools: container metrics and host information.
import * as v from 'valibot';
import { formatBytes } from '../../shared/sizes.ts';
import { CONTAINER } from '../errors.ts';
import {
  type ContainerView,
  containerView,
  duration,
  MetricsOut,
  metricsView,
  percentOf,
  SystemInfoOut,
  systemInfoText,
  systemInfoView,
  table,
} from '../format.ts';
import { defineTool, username } from './define.ts';

const getMetrics = defineTool({
  name: 'get_metrics',
  title: 'Get metrics',
  description:
    'Get current resource usage of one container or of all of them: CPU time, memory (and peak), disk, network traffic and processes, with memory and disk as a share of their limits. Leave username empty for all containers; use it to find the heaviest users.',
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
  }),
  output: v.object({ metrics: v.array(MetricsOut) }),
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
    const metrics = (response.metrics ?? []).map((m) => metricsView(m, byName.get(m.name)));
    if (metrics.length === 0) {
      // Some daemons answer [] for a user without a container: the lookup says why, as get_container does.
      if (one && lookupError !== undefined) throw lookupError;
      return {
        text: one
          ? `No metrics for ${one}'s container (is it running?).`
          : 'No metrics available: no containers are running.',
        structured: { metrics },
      };
    }
    const rows = metrics.map((m) => [
      m.name,
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
      'CPU TIME',
      'MEMORY',
      'MEM%',
      'PEAK',
      'DISK',
      'DISK%',
      'NET IN/OUT',
      'PROCS',
    ];
    return {
      text: `Usage of ${metrics.length} ${metrics.length === 1 ? 'container' : 'containers'} (% of limit):\n${table(header, rows)}`,
      structured: { metrics },
    };
  },
});

const getSystemInfo = defineTool({
  name: 'get_system_info',
  title: 'Get system info',
  description:
    'Get information about the Containarium host: host name, OS, kernel and Incus versions, how many containers are running and stopped, and host CPU, memory and disk where the daemon reports them.',
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
