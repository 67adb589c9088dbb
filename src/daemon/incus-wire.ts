// Incus instance JSON → the daemon's domain values (backend.ts), plus the image-name → Incus
// source rule.
// Pure functions over valibot-checked Incus shapes, so they are tested without Incus.
import * as v from 'valibot';
import { usernameOf } from '../shared/username.ts';
import type { Container, Image, Metrics, Snapshot, State } from './backend.ts';

/** The instance config keys that hold Containarium's own state (Incus is the only database). */
export const KEY = {
  username: 'user.containarium.username',
  labels: 'user.containarium.labels',
  sshKeys: 'user.containarium.ssh-keys',
  image: 'user.containarium.image',
  docker: 'user.containarium.docker',
  /** A template's extra apt packages (JSON), for a resumed create; absent when none. */
  packages: 'user.containarium.packages',
  status: 'user.containarium.status',
  error: 'user.containarium.error',
  /** A random id per create call: tells our own half-made instance from a racing create's. */
  createId: 'user.containarium.create-id',
  /** The daemon process working on a create ("<host> <pid> <start time>"), while it creates. */
  owner: 'user.containarium.create-owner',
  /** The image-cache image the container started from (its packages were in place already). */
  cachedImage: 'user.containarium.cached-image',
  /** Which daemon manages the instance (--daemon-id); written by create's first Incus call. */
  daemon: 'user.containarium.daemon',
} as const;

/** The daemon id when --daemon-id is not given; an instance without the key belongs to it. */
export const DEFAULT_DAEMON_ID = 'default';

const count = v.nullish(v.number(), 0);
const strings = v.nullish(v.record(v.string(), v.string()), {});
const devices = v.nullish(v.record(v.string(), v.record(v.string(), v.string())), {});

const NetworkInterface = v.object({
  addresses: v.nullish(
    v.array(v.object({ family: v.string(), address: v.string(), scope: v.string() })),
    [],
  ),
  counters: v.nullish(v.object({ bytes_received: count, bytes_sent: count }), {
    bytes_received: 0,
    bytes_sent: 0,
  }),
  hwaddr: v.nullish(v.string(), ''),
});

export const InstanceStateSchema = v.object({
  status: v.string(),
  cpu: v.nullish(v.object({ usage: count }), { usage: 0 }),
  memory: v.nullish(v.object({ usage: count, usage_peak: count }), { usage: 0, usage_peak: 0 }),
  disk: v.nullish(v.record(v.string(), v.object({ usage: count })), {}),
  network: v.nullish(v.record(v.string(), NetworkInterface), {}),
  processes: count,
});
export type InstanceState = v.InferOutput<typeof InstanceStateSchema>;

export const InstanceSchema = v.object({
  name: v.string(),
  type: v.nullish(v.string(), 'container'),
  status: v.string(),
  created_at: v.nullish(v.string(), ''),
  last_used_at: v.nullish(v.string(), ''),
  config: strings,
  expanded_config: strings,
  /** The instance's own devices (not its profiles'): what a change to one rewrites. */
  devices,
  expanded_devices: devices,
  state: v.nullish(InstanceStateSchema),
});
export type Instance = v.InferOutput<typeof InstanceSchema>;

/** One entry of GET /1.0/networks/<name>/leases. */
export const LeaseSchema = v.object({
  hostname: v.nullish(v.string(), ''),
  hwaddr: v.nullish(v.string(), ''),
  address: v.string(),
  type: v.nullish(v.string(), ''),
});
export type Lease = v.InferOutput<typeof LeaseSchema>;

// Host-level answers: server, resources, a pool's space, image aliases and one image.
export const ServerSchema = v.object({
  environment: v.object({
    server_version: v.optional(v.string(), ''),
    os_name: v.optional(v.string(), ''),
    kernel_version: v.optional(v.string(), ''),
    server_name: v.optional(v.string(), ''),
  }),
});
export const ResourcesSchema = v.object({
  cpu: v.object({ total: v.optional(v.number(), 0) }),
  memory: v.object({ used: v.optional(v.number(), 0), total: v.optional(v.number(), 0) }),
});
export const PoolResourcesSchema = v.object({
  space: v.object({ used: v.optional(v.number(), 0), total: v.optional(v.number(), 0) }),
});
export const AliasesSchema = v.array(
  v.object({ name: v.string(), target: v.optional(v.string(), '') }),
);
export const ImageSchema = v.object({
  fingerprint: v.nullish(v.string(), ''),
  type: v.nullish(v.string(), 'container'),
  architecture: v.nullish(v.string(), ''),
  size: v.nullish(v.number(), 0),
  created_at: v.nullish(v.string(), ''),
  aliases: v.nullish(v.array(v.object({ name: v.string() })), []),
  properties: strings,
});
export type IncusImage = v.InferOutput<typeof ImageSchema>;

/**
 * Instances this daemon manages: containers that carry our username key, named like upstream's
 * `<username>-container` after it, and our daemon id. Every create sets both keys in its first
 * Incus call, so even a half-made instance is ours; an instance someone else made with a name
 * like ours is not, nor one another daemon (another --daemon-id) manages on a shared Incus.
 * Instances made before the daemon key existed count as the default id's.
 */
export function isOurs(
  instance: Pick<Instance, 'name' | 'type' | 'config'>,
  daemonId: string,
): boolean {
  const username = instance.config[KEY.username];
  return (
    instance.type === 'container' &&
    !!username &&
    instance.name === `${username}-container` &&
    (instance.config[KEY.daemon] ?? DEFAULT_DAEMON_ID) === daemonId
  );
}

export function incusState(status: string): State {
  switch (status) {
    case 'Running':
      return 'running';
    case 'Stopped':
      return 'stopped';
    case 'Frozen':
      return 'frozen';
    default:
      return 'unspecified';
  }
}

/**
 * The create status first (creating/error), then Incus's own status. A create still marked
 * "creating" is being worked on or waits to be resumed by the next daemon start; only one without
 * an owner (left by a daemon version that resumed nothing) can never finish, so it is an error.
 */
export function containerState(instance: Instance): State {
  const status = instance.config[KEY.status];
  if (status === 'creating') {
    return instance.config[KEY.owner] ? 'creating' : 'error';
  }
  if (status === 'error') return 'error';
  return incusState(instance.status);
}

/** Unix seconds of an Incus timestamp; Go's zero time and junk are 0. */
export function unixSeconds(timestamp: string): number {
  const ms = Date.parse(timestamp);
  return Number.isFinite(ms) && ms > 0 ? Math.floor(ms / 1000) : 0;
}

function json<T>(text: string | undefined, schema: v.GenericSchema<unknown, T>, fallback: T): T {
  if (!text) return fallback;
  try {
    const parsed = v.safeParse(schema, JSON.parse(text));
    return parsed.success ? parsed.output : fallback;
  } catch {
    return fallback;
  }
}

export const sshKeysOf = (config: Record<string, string>): string[] =>
  json(config[KEY.sshKeys], v.array(v.string()), []);

export const packagesOf = (config: Record<string, string>): string[] =>
  json(config[KEY.packages], v.array(v.string()), []);

export const labelsOf = (config: Record<string, string>): Record<string, string> =>
  json(config[KEY.labels], v.record(v.string(), v.string()), {});

/** The size of the disk device mounted at / (usually "root", from the profile or the instance). */
export function rootDiskSize(expandedDevices: Record<string, Record<string, string>>): string {
  const root = Object.values(expandedDevices).find((d) => d.type === 'disk' && d.path === '/');
  return root?.size ?? '';
}

/**
 * Interfaces that carry no traffic of the container's own: loopback, and Docker's bridges and
 * veths inside it, whose bytes also cross eth0 (upstream counted them two or three times).
 */
export const isInnerInterface = (iface: string): boolean =>
  iface === 'lo' || /^(?:docker|veth|br-)/.test(iface);

/** eth0's global IPv4 first, then any other interface's (not lo, not Docker's bridges). */
export function primaryAddress(
  network: InstanceState['network'],
): { iface: string; address: string } | undefined {
  const names = Object.keys(network).filter((n) => !isInnerInterface(n));
  names.sort((a, b) => (a === 'eth0' ? -1 : b === 'eth0' ? 1 : a.localeCompare(b)));
  for (const iface of names) {
    const ipv4 = network[iface]?.addresses.find((a) => a.family === 'inet' && a.scope === 'global');
    if (ipv4) return { iface, address: ipv4.address };
  }
  return undefined;
}

export function networkOf(instance: Instance): Container['network'] {
  const network = instance.state?.network ?? {};
  const primary = primaryAddress(network);
  if (!primary) return null;
  const nic = instance.expanded_devices[primary.iface];
  return {
    ipAddress: primary.address,
    macAddress:
      instance.config[`volatile.${primary.iface}.hwaddr`] ?? network[primary.iface]?.hwaddr ?? '',
    interface: primary.iface,
    bridge: nic?.network ?? nic?.parent ?? '',
  };
}

/** The instance's NICs on Incus-managed networks, by device name ("eth0" → "incusbr0"). */
export function managedNics(instance: Instance): Record<string, string> {
  const nics: Record<string, string> = {};
  for (const [device, d] of Object.entries(instance.expanded_devices)) {
    if (d.type === 'nic' && d.network) nics[device] = d.network;
  }
  return nics;
}

/**
 * The instance with the address its NIC's DHCP lease gives (matched by the NIC's MAC address) as
 * its only live state, read as networkOf reads a real one; undefined when no NIC has a lease.
 */
export function withLeaseAddress(instance: Instance, leases: Lease[]): Instance | undefined {
  const devices = Object.keys(managedNics(instance)).sort((a, b) =>
    a === 'eth0' ? -1 : b === 'eth0' ? 1 : a.localeCompare(b),
  );
  for (const device of devices) {
    const mac = instance.config[`volatile.${device}.hwaddr`]?.toLowerCase();
    const lease =
      mac && leases.find((l) => l.hwaddr.toLowerCase() === mac && l.address.includes('.'));
    if (!lease) continue;
    const address = { family: 'inet', address: lease.address, scope: 'global' };
    const nic = {
      addresses: [address],
      counters: { bytes_received: 0, bytes_sent: 0 },
      hwaddr: mac,
    };
    return {
      ...instance,
      state: v.parse(InstanceStateSchema, { status: instance.status, network: { [device]: nic } }),
    };
  }
  return undefined;
}

export function toContainer(instance: Instance): Container {
  const config = instance.expanded_config;
  const docker = config[KEY.docker] ?? config['security.nesting'];
  return {
    name: instance.name,
    username: usernameOf(instance.name),
    state: containerState(instance),
    resources: {
      cpu: config['limits.cpu'] ?? '',
      memory: config['limits.memory'] ?? '',
      disk: rootDiskSize(instance.expanded_devices),
    },
    sshKeys: sshKeysOf(config),
    network: instance.status === 'Running' ? networkOf(instance) : null,
    createdAt: unixSeconds(instance.created_at),
    updatedAt: unixSeconds(instance.last_used_at),
    labels: labelsOf(config),
    image: config[KEY.image] ?? '',
    dockerEnabled: docker === 'true',
  };
}

/** A count or size as a whole, non-negative number. */
const whole = (n: number) => Math.max(0, Math.floor(n));

/** Metrics from one reading of the state; `cpuUsagePercent` comes from two (usage.ts). */
export function toMetrics(name: string, state: InstanceState, cpuUsagePercent = 0): Metrics {
  let rx = 0;
  let tx = 0;
  for (const [iface, data] of Object.entries(state.network)) {
    if (isInnerInterface(iface)) continue;
    rx += data.counters.bytes_received;
    tx += data.counters.bytes_sent;
  }
  return {
    name,
    cpuUsageSeconds: whole(state.cpu.usage / 1e9),
    cpuUsagePercent,
    memoryUsageBytes: whole(state.memory.usage),
    memoryPeakBytes: whole(state.memory.usage_peak),
    diskUsageBytes: whole(state.disk.root?.usage ?? 0),
    networkRxBytes: whole(rx),
    networkTxBytes: whole(tx),
    processCount: whole(state.processes),
  };
}

/**
 * A local image a create can use: a container image with an alias (create names images by
 * alias); undefined for the rest (virtual-machine images, images cached without one).
 */
export function toImage(image: IncusImage): Image | undefined {
  const aliases = image.aliases.map((a) => a.name).sort();
  if (image.type !== 'container' || aliases.length === 0) return undefined;
  const said = (key: string) => image.properties[key] ?? '';
  return {
    aliases,
    fingerprint: image.fingerprint,
    description: said('description'),
    os: said('os'),
    release: said('release'),
    architecture: image.architecture || said('architecture'),
    sizeBytes: whole(image.size),
    createdAt: unixSeconds(image.created_at),
  };
}

/** GET /1.0/instances/<name>/snapshots?recursion=1, one item. */
export const IncusSnapshotSchema = v.object({
  name: v.string(),
  created_at: v.nullish(v.string(), ''),
  /** Bytes the snapshot holds of its own (Incus 5.x and later; -1 or absent when unknown). */
  size: v.nullish(v.number(), 0),
});
export type IncusSnapshot = v.InferOutput<typeof IncusSnapshotSchema>;

export const toSnapshot = (snapshot: IncusSnapshot): Snapshot => ({
  name: snapshot.name,
  usedBytes: whole(snapshot.size),
  referencedBytes: 0,
  createdAt: unixSeconds(snapshot.created_at),
});

// ---- Image sources ---------------------------------------------------------------------------

export const REMOTES: Record<string, string> = {
  images: 'https://images.linuxcontainers.org',
  ubuntu: 'https://cloud-images.ubuntu.com/releases',
  'ubuntu-daily': 'https://cloud-images.ubuntu.com/daily',
};

export type ImageSource =
  | { type: 'image'; alias: string }
  | { type: 'image'; alias: string; mode: 'pull'; server: string; protocol: 'simplestreams' };

/**
 * Upstream's rule: `images:`/`ubuntu:`/`ubuntu-daily:` name a remote; a local alias wins over
 * the `distro/version` shorthand for the images server; anything else is a local alias.
 */
export function imageSource(image: string, localAliases: ReadonlySet<string>): ImageSource {
  const colon = image.indexOf(':');
  const server = colon > 0 ? REMOTES[image.slice(0, colon)] : undefined;
  if (server) return remoteSource(image.slice(colon + 1), server);
  if (localAliases.has(image)) return { type: 'image', alias: image };
  if (colon < 0 && /^[^/]+\/[^/]+/.test(image)) {
    return remoteSource(image, REMOTES.images as string);
  }
  return { type: 'image', alias: image };
}

const remoteSource = (alias: string, server: string): ImageSource => ({
  type: 'image',
  alias,
  mode: 'pull',
  server,
  protocol: 'simplestreams',
});
