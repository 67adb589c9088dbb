// What the model reads: wire objects turned into plain structured data and compact text in human units.
import * as v from 'valibot';
import { cpuCount, formatBytes, parseSize } from '../shared/sizes.ts';
import type { Container, Metrics, SystemInfo } from '../shared/wire.ts';

// ---- Structured content: the tools' output schemas, and the types they define --------------------

export const ContainerOut = v.object({
  name: v.string(),
  username: v.string(),
  state: v.pipe(v.string(), v.description('running, stopped, frozen, creating, error or unknown')),
  cpu: v.string(),
  memory: v.string(),
  disk: v.string(),
  ipAddress: v.string(),
  image: v.string(),
  dockerEnabled: v.nullable(v.boolean()),
  sshKeys: v.array(v.string()),
  labels: v.record(v.string(), v.string()),
  createdAt: v.nullable(v.pipe(v.string(), v.description('ISO 8601; null when unknown'))),
  updatedAt: v.nullable(v.string()),
});

export const MetricsOut = v.object({
  name: v.string(),
  cpuPercent: v.nullable(
    v.pipe(
      v.number(),
      v.description('CPU used over about the last second, % of one core; null when not reported'),
    ),
  ),
  cpuLimitPercent: v.nullable(
    v.pipe(v.number(), v.description("The same as % of the container's CPU limit")),
  ),
  cpuSeconds: v.number(),
  memoryBytes: v.number(),
  memoryPeakBytes: v.number(),
  diskBytes: v.number(),
  networkRxBytes: v.number(),
  networkTxBytes: v.number(),
  processes: v.number(),
  memoryLimitBytes: v.nullable(v.number()),
  diskLimitBytes: v.nullable(v.number()),
});

export const SystemInfoOut = v.object({
  hostname: v.string(),
  os: v.string(),
  kernelVersion: v.string(),
  incusVersion: v.string(),
  daemonVersion: v.string(),
  totalCpus: v.nullable(v.number()),
  totalMemoryBytes: v.nullable(v.number()),
  availableMemoryBytes: v.nullable(v.number()),
  totalDiskBytes: v.nullable(v.number()),
  availableDiskBytes: v.nullable(v.number()),
  uptimeSeconds: v.nullable(v.number()),
  containersRunning: v.number(),
  containersStopped: v.number(),
  containersTotal: v.number(),
  cpuLoad: v.nullable(
    v.pipe(v.array(v.number()), v.description('Host load averages over 1, 5 and 15 minutes')),
  ),
  committedCpus: v.nullable(v.number()),
  committedMemoryBytes: v.nullable(v.number()),
  committedDiskBytes: v.nullable(v.number()),
});

export type ContainerView = v.InferOutput<typeof ContainerOut>;
export type MetricsView = v.InferOutput<typeof MetricsOut>;
export type SystemInfoView = v.InferOutput<typeof SystemInfoOut>;

/** "CONTAINER_STATE_RUNNING" → "running"; unknown names keep their last word. */
export function stateName(state: string): string {
  const word = state.replace(/^CONTAINER_STATE_/, '').toLowerCase();
  return word === 'unspecified' || word === '' ? 'unknown' : word;
}

/** Unix seconds → ISO date-time; 0, Go's zero time and nonsense read as unknown (null). */
export function timestamp(seconds: number): string | null {
  // Go's zero time.Time (-62135596800, "year 1") is negative too.
  if (!Number.isFinite(seconds) || seconds <= 0) return null;
  return new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');
}

export function containerView(c: Container): ContainerView {
  return {
    name: c.name,
    username: c.username,
    state: stateName(c.state),
    cpu: c.resources?.cpu ?? '',
    memory: c.resources?.memory ?? '',
    disk: c.resources?.disk ?? '',
    ipAddress: c.network?.ipAddress ?? '',
    image: c.image,
    dockerEnabled: c.dockerEnabled ?? c.podmanEnabled ?? null,
    sshKeys: c.sshKeys,
    labels: c.labels,
    createdAt: timestamp(c.createdAt),
    updatedAt: timestamp(c.updatedAt),
  };
}

/** "4 cores, 8 GB memory, 50 GB disk"; a limit the daemon did not report says so. */
export function resources(c: { cpu: string; memory: string; disk: string }): string {
  const part = (text: string, what: string) =>
    text ? `${limit(text)} ${what}` : `${what} not reported`;
  return `${c.cpu ? cores(c.cpu) : 'cores not reported'}, ${part(c.memory, 'memory')}, ${part(c.disk, 'disk')}`;
}

/** Limits for people: "4GB" → "4 GB", "8GiB" → "8 GiB", "" → "?". */
export function limit(text: string): string {
  if (!text) return '?';
  const match = /^(\d+(?:\.\d+)?)\s*([A-Za-z]+)$/.exec(text.trim());
  return match ? `${match[1]} ${match[2]}` : text;
}

export const cores = (cpu: string): string =>
  !cpu ? '? cores' : /^\d+$/.test(cpu) ? `${cpu} ${cpu === '1' ? 'core' : 'cores'}` : `cpus ${cpu}`;

const day = (iso: string | null) => iso?.slice(0, 10) ?? 'unknown';

export function limitBytes(text: string): number | null {
  return parseSize(text)?.bytes ?? null;
}

/** A share to one decimal place. */
const oneDecimal = (n: number) => Math.round(n * 10) / 10;

export function metricsView(m: Metrics, container?: ContainerView): MetricsView {
  const cores = container ? cpuCount(container.cpu) : undefined;
  const cpu = m.cpuUsagePercent;
  return {
    name: m.name,
    cpuPercent: cpu,
    cpuLimitPercent: cpu !== null && cores ? oneDecimal(cpu / cores) : null,
    cpuSeconds: m.cpuUsageSeconds,
    memoryBytes: m.memoryUsageBytes,
    memoryPeakBytes: m.memoryPeakBytes,
    diskBytes: m.diskUsageBytes,
    networkRxBytes: m.networkRxBytes,
    networkTxBytes: m.networkTxBytes,
    processes: m.processCount,
    memoryLimitBytes: container ? limitBytes(container.memory) : null,
    diskLimitBytes: container ? limitBytes(container.disk) : null,
  };
}

/** "1234" seconds → "20m 34s". */
export function duration(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  return `${m}m ${s}s`;
}

/** "42%" of a known limit, or undefined. */
export const percentOf = (used: number, total: number | null): string | undefined =>
  total ? `${Math.round((used / total) * 100)}%` : undefined;

const share = (used: number, total: number | null) =>
  total ? ` of ${formatBytes(total)} (${percentOf(used, total)})` : '';

// ---- Text -------------------------------------------------------------------------------------

/** The container as text; `fromDaemon` is the daemon's SSH command, when it sent one. */
export function containerText(c: ContainerView, fromDaemon?: string | null): string {
  const lines = [`${c.name} (user ${c.username}): ${c.state}`, `Resources: ${resources(c)}`];
  if (c.ipAddress) lines.push(`IP: ${c.ipAddress}`);
  const ssh = sshLine(sshCommand(c, c.sshKeys.length, fromDaemon));
  if (ssh) lines.push(ssh);
  if (c.image) lines.push(`Image: ${c.image}`);
  if (c.dockerEnabled !== null) lines.push(`Docker: ${c.dockerEnabled ? 'enabled' : 'disabled'}`);
  if (c.sshKeys.length > 0) {
    lines.push(`SSH keys (${c.sshKeys.length}): ${c.sshKeys.map(keySummary).join('; ')}`);
  }
  const labels = Object.entries(c.labels);
  if (labels.length > 0) lines.push(`Labels: ${labels.map(([k, v]) => `${k}=${v}`).join(', ')}`);
  lines.push(`Created: ${day(c.createdAt)}${c.updatedAt ? `, updated ${day(c.updatedAt)}` : ''}`);
  return lines.join('\n');
}

/** Addresses only reachable from the local network: RFC 1918, CGNAT, link-local, loopback, ULA. */
export function isPrivateAddress(address: string): boolean {
  const v4 = /^(\d+)\.(\d+)\.\d+\.\d+$/.exec(address);
  if (v4) {
    const [a, b] = [Number(v4[1]), Number(v4[2])];
    return (
      a === 10 ||
      a === 127 ||
      (a === 172 && b >= 16 && b <= 31) ||
      (a === 192 && b === 168) ||
      (a === 100 && b >= 64 && b <= 127) ||
      (a === 169 && b === 254)
    );
  }
  const v6 = address.toLowerCase();
  return v6 === '::1' || /^f[cd][0-9a-f]{0,2}:/.test(v6) || /^fe[89ab][0-9a-f]?:/.test(v6);
}

/**
 * How to log in, or "". A daemon that sent a command (`fromDaemon`, even "") knows: it made the
 * account, or withheld the command because it made none, and it may go through a jump host
 * (`ssh -J host user@address`). Only a daemon that sent nothing gets one built here, and only
 * for a running container with an address and at least one key.
 */
export function sshCommand(c: ContainerView, keyCount: number, fromDaemon?: string | null): string {
  if (typeof fromDaemon === 'string') return fromDaemon;
  if (keyCount === 0) return '';
  return c.state === 'running' && c.ipAddress ? `ssh ${c.username}@${c.ipAddress}` : '';
}

/** "SSH: ssh alice@10.0.3.5 (…private address…)", or undefined when there is no command. */
export function sshLine(command: string): string | undefined {
  if (!command) return undefined;
  const address = /@\[?([^\s@\]]+)\]?\s*$/.exec(command)?.[1] ?? '';
  // Through a jump host (-J), a private address is reached from that host, not only the daemon's.
  const note =
    !/\s-J\s/.test(command) && isPrivateAddress(address)
      ? ` (${address} is a private address, reachable from the daemon's host)`
      : '';
  return `SSH: ${command}${note}`;
}

/** "ssh-ed25519 AAAA…xyz alice@laptop": type, the blob's ends, and the comment. */
function keySummary(key: string): string {
  const [type = '', blob = '', ...comment] = key.split(' ');
  const short = blob.length > 16 ? `${blob.slice(0, 8)}…${blob.slice(-6)}` : blob;
  return [type, short, ...comment].join(' ').trim();
}

/** "37.5% of one core (19% of its limit)"; says so when the daemon does not report it. */
export function cpuShare(m: MetricsView): string {
  if (m.cpuPercent === null) return 'CPU % not reported by this daemon (only CPU time)';
  const limit = m.cpuLimitPercent === null ? '' : ` (${m.cpuLimitPercent}% of its limit)`;
  return `CPU ${m.cpuPercent}% of one core${limit} over the last second`;
}

export function metricsLine(m: MetricsView): string {
  return [
    `CPU time ${duration(m.cpuSeconds)}`,
    cpuShare(m),
    `memory ${formatBytes(m.memoryBytes)}${share(m.memoryBytes, m.memoryLimitBytes)}, peak ${formatBytes(m.memoryPeakBytes)}`,
    `disk ${formatBytes(m.diskBytes)}${share(m.diskBytes, m.diskLimitBytes)}`,
    `network ↓${formatBytes(m.networkRxBytes)} ↑${formatBytes(m.networkTxBytes)}`,
    `${m.processes} ${m.processes === 1 ? 'process' : 'processes'}`,
  ].join(', ');
}

/** A table: one header, one row per container; columns padded to the widest cell. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join(' ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** The most characters of text a tool answers with; a longer list is cut and says how to page. */
export const TEXT_BUDGET = 20_000;

/**
 * `head`, then as many of `lines` as fit in `budget` characters; when some do not, a last line
 * from `rest(left)` says how many were left out and how to see them. `shown` counts the lines kept.
 */
export function withinBudget(
  head: string,
  lines: string[],
  rest: (left: number) => string,
  budget = TEXT_BUDGET,
): { text: string; shown: number } {
  const whole = [head, ...lines].join('\n');
  if (whole.length <= budget) return { text: whole, shown: lines.length };
  // Room for the closing line at its longest (every line left out).
  let used = head.length + 1 + rest(lines.length).length;
  let shown = 0;
  for (const line of lines) {
    if (used + line.length + 1 > budget) break;
    used += line.length + 1;
    shown += 1;
  }
  const build = () => [head, ...lines.slice(0, shown), rest(lines.length - shown)].join('\n');
  // The closing line may name the last line kept (a cursor), so its length is only known now.
  let text = build();
  while (text.length > budget && shown > 0) {
    shown -= 1;
    text = build();
  }
  return { text, shown };
}

/** The list_containers table: a header line, then one line per container. */
export function listLines(containers: ContainerView[]): { header: string; rows: string[] } {
  const rows = containers.map((c) => [
    c.name,
    c.username,
    c.state,
    c.cpu || '?',
    limit(c.memory).replace(' ', ''),
    limit(c.disk).replace(' ', ''),
    c.ipAddress || '-',
    day(c.createdAt),
  ]);
  const [header = '', ...lines] = table(
    ['NAME', 'USER', 'STATE', 'CPUS', 'MEMORY', 'DISK', 'IP', 'CREATED'],
    rows,
  ).split('\n');
  return { header, rows: lines };
}

/** "2 containers (1 running, 1 stopped)". */
export function countText(containers: ContainerView[]): string {
  const counts = new Map<string, number>();
  for (const c of containers) counts.set(c.state, (counts.get(c.state) ?? 0) + 1);
  const summary = [...counts].map(([state, n]) => `${n} ${state}`).join(', ');
  return `${containers.length} ${containers.length === 1 ? 'container' : 'containers'} (${summary})`;
}

export function listText(containers: ContainerView[]): string {
  if (containers.length === 0) return 'No containers found.';
  const { header, rows } = listLines(containers);
  return `${countText(containers)}:\n${header}\n${rows.join('\n')}`;
}

/** v0.3 daemons declare the host figures but send 0: those read as unknown (null). */
export function systemInfoView(info: SystemInfo): SystemInfoView {
  const known = (n: number) => (n > 0 ? n : null);
  return {
    hostname: info.hostname,
    os: info.os,
    kernelVersion: info.kernelVersion,
    incusVersion: info.incusVersion,
    daemonVersion: info.daemonVersion,
    totalCpus: known(info.totalCpus),
    totalMemoryBytes: known(info.totalMemoryBytes),
    availableMemoryBytes: known(info.availableMemoryBytes),
    totalDiskBytes: known(info.totalDiskBytes),
    availableDiskBytes: known(info.availableDiskBytes),
    uptimeSeconds: known(info.uptimeSeconds),
    containersRunning: info.containersRunning,
    containersStopped: info.containersStopped,
    containersTotal: info.containersTotal,
    cpuLoad:
      info.cpuLoad1min === null || info.cpuLoad5min === null || info.cpuLoad15min === null
        ? null
        : [info.cpuLoad1min, info.cpuLoad5min, info.cpuLoad15min],
    committedCpus: info.committedCpus,
    committedMemoryBytes: info.committedMemoryBytes,
    committedDiskBytes: info.committedDiskBytes,
  };
}

/** "6 CPUs of 2 (3.0×)": what limits commit against what the host has. */
function commitment(committed: number | null, total: number | null, show: (n: number) => string) {
  if (committed === null || !total) return undefined;
  return `${show(committed)} of ${show(total)} (${(committed / total).toFixed(1)}×)`;
}

export function systemInfoText(s: SystemInfoView): string {
  const or = (text: string) => text || 'unknown';
  const lines = [
    `Host ${or(s.hostname)}: ${or(s.os)}, kernel ${or(s.kernelVersion)}, Incus ${or(s.incusVersion)}${s.daemonVersion ? `, daemon ${s.daemonVersion}` : ''}`,
    `Containers: ${s.containersRunning} running, ${s.containersStopped} stopped, ${s.containersTotal} total`,
  ];
  const host: string[] = [];
  if (s.totalCpus !== null) host.push(`${s.totalCpus} CPUs`);
  if (s.totalMemoryBytes !== null) {
    host.push(
      `memory ${s.availableMemoryBytes !== null ? `${formatBytes(s.availableMemoryBytes)} free of ` : ''}${formatBytes(s.totalMemoryBytes)}`,
    );
  }
  if (s.totalDiskBytes !== null) {
    host.push(
      `disk ${s.availableDiskBytes !== null ? `${formatBytes(s.availableDiskBytes)} free of ` : ''}${formatBytes(s.totalDiskBytes)}`,
    );
  }
  if (s.uptimeSeconds !== null) host.push(`up ${duration(s.uptimeSeconds)}`);
  lines.push(
    host.length > 0
      ? `Host resources: ${host.join(', ')}`
      : 'Host resources: not reported by this daemon',
  );
  lines.push(
    s.cpuLoad
      ? `Load average: ${s.cpuLoad.join(', ')} (1, 5, 15 min)${s.totalCpus ? ` on ${s.totalCpus} CPUs` : ''}`
      : 'Load average: not reported by this daemon',
  );
  const commits = [
    commitment(s.committedCpus, s.totalCpus, (n) => `${n} CPUs`),
    commitment(s.committedMemoryBytes, s.totalMemoryBytes, formatBytes),
    commitment(s.committedDiskBytes, s.totalDiskBytes, formatBytes),
  ];
  const [cpu, memory, disk] = commits;
  lines.push(
    commits.some(Boolean)
      ? `Committed by container limits (above 1.0× is overcommitted): CPU ${cpu ?? 'not reported'}, memory ${memory ?? 'not reported'}, disk ${disk ?? 'not reported'}`
      : 'Committed by container limits: not reported by this daemon',
  );
  return lines.join('\n');
}
