// The seam between the daemon's HTTP layer (routes, auth) and its Incus layer (containers).
// It speaks the daemon's own values: numbers for counts, bytes and times, short state names.
// Only to-wire.ts turns them into upstream's JSON (int64 strings, CONTAINER_STATE_* names).
// Every method throws DaemonError for expected failures; input arrives already validated.
import * as v from 'valibot';

export const STATES = ['unspecified', 'running', 'stopped', 'frozen', 'creating', 'error'] as const;
export type State = (typeof STATES)[number];

const Whole = v.pipe(v.number(), v.integer(), v.minValue(0));

export const ContainerSchema = v.object({
  /** `<username>-container` */
  name: v.string(),
  username: v.string(),
  state: v.picklist(STATES),
  /** The limits as Incus spells them ("4", "4GB", "50GB"); null when unknown. */
  resources: v.nullable(v.object({ cpu: v.string(), memory: v.string(), disk: v.string() })),
  sshKeys: v.array(v.string()),
  /** The primary IPv4 interface while running, else null. */
  network: v.nullable(
    v.object({
      ipAddress: v.string(),
      macAddress: v.string(),
      interface: v.string(),
      bridge: v.string(),
    }),
  ),
  /** Unix seconds; 0 when unknown. */
  createdAt: Whole,
  updatedAt: Whole,
  labels: v.record(v.string(), v.string()),
  image: v.string(),
  dockerEnabled: v.boolean(),
});
export type Container = v.InferOutput<typeof ContainerSchema>;

export const MetricsSchema = v.object({
  name: v.string(),
  cpuUsageSeconds: Whole,
  memoryUsageBytes: Whole,
  memoryPeakBytes: Whole,
  diskUsageBytes: Whole,
  networkRxBytes: Whole,
  networkTxBytes: Whole,
  processCount: Whole,
});
export type Metrics = v.InferOutput<typeof MetricsSchema>;

export const SystemInfoSchema = v.object({
  incusVersion: v.string(),
  os: v.string(),
  kernelVersion: v.string(),
  totalCpus: Whole,
  totalMemoryBytes: Whole,
  availableMemoryBytes: Whole,
  totalDiskBytes: Whole,
  availableDiskBytes: Whole,
  containersRunning: Whole,
  containersStopped: Whole,
  containersTotal: Whole,
  hostname: v.string(),
  uptimeSeconds: Whole,
});
export type SystemInfo = v.InferOutput<typeof SystemInfoSchema>;

/** A local image: what create takes without a download. */
export const ImageSchema = v.object({
  /** Local aliases, sorted; create takes any of them as `image` ("debian/12"). */
  aliases: v.array(v.string()),
  fingerprint: v.string(),
  description: v.string(),
  /** As the image's properties say ("Debian", "bookworm"); "" when it does not say. */
  os: v.string(),
  release: v.string(),
  architecture: v.string(),
  sizeBytes: Whole,
  /** Unix seconds; 0 when unknown. */
  createdAt: Whole,
});
export type Image = v.InferOutput<typeof ImageSchema>;

/** The images the host has, and the image servers ("remotes") a create may name instead. */
export type Images = { images: Image[]; remotes: string[] };

export type CreateRequest = {
  username: string;
  /** Whole cores, validated by parseCpu. */
  cpu: number;
  /** Incus spellings from parseSize (e.g. "4GB"), exactly what the user asked for. */
  memory: string;
  disk: string;
  /** Normalised by normalizeSshKey. */
  sshKeys: string[];
  labels: Record<string, string>;
  /** "images:ubuntu/24.04", "ubuntu:24.04", or a local alias like "debian/12". */
  image: string;
  enableDocker: boolean;
  /**
   * Fields the caller left empty, so upstream's defaults: resources may be lowered to fit the
   * host, and the image may be replaced by the daemon's own default (--default-image).
   */
  defaulted?: readonly ('cpu' | 'memory' | 'disk' | 'image')[];
  /** Extra apt packages provisioning installs (a template's); none when absent. */
  packages?: readonly string[];
};

/** The limits a resize changes (validated like create's); what it leaves out stays as it is. */
export type ResizeRequest = Partial<Pick<CreateRequest, 'cpu' | 'memory' | 'disk'>>;

export type CreateResult = { container: Container; message: string; sshCommand: string };

/**
 * A container with the SSH command that logs into it now: only while it runs with an address and
 * its user's account has at least one key, else '' (see ssh-access.ts). Create, get and start
 * answer the same command.
 */
export type Reachable = { container: Container; sshCommand: string };

export type ListFilter = {
  username?: string;
  /** Never "unspecified": that is no filter. */
  state?: State;
  labels?: Record<string, string>;
};

export interface Backend {
  /** Sync: returns once the container is running and provisioned. Async: returns creating at once. */
  create(request: CreateRequest, options: { async: boolean }): Promise<CreateResult>;
  list(filter: ListFilter): Promise<Container[]>;
  /** Throws not_found when the user has no container. */
  get(username: string): Promise<Reachable & { metrics: Metrics | null }>;
  delete(username: string, options: { force: boolean }): Promise<{ containerName: string }>;
  start(username: string): Promise<Reachable>;
  stop(username: string, options: { force: boolean; timeout?: number }): Promise<Container>;
  /** All containers when username is undefined (a constant number of Incus calls). */
  metrics(username?: string): Promise<Metrics[]>;
  systemInfo(): Promise<SystemInfo>;
  /** Local container images that have an alias (sorted by it), and the configured remotes. */
  listImages(): Promise<Images>;
  addSshKey(username: string, key: string): Promise<{ totalKeys: number }>;
  removeSshKey(username: string, key: string): Promise<{ totalKeys: number }>;
  /**
   * Changes the limits, live on a running container. A disk never shrinks below what the
   * container uses (400 naming the use). Returns the container as it is afterwards.
   */
  resize(username: string, change: ResizeRequest): Promise<Container>;
  /** True when Incus answers; used by /health. */
  ping(): Promise<boolean>;
}
