// The seam between the daemon's HTTP layer (routes, auth) and its Incus layer (containers).
// It speaks the daemon's own values: numbers for counts, bytes and times, short state names.
// Only to-wire.ts turns them into upstream's JSON (int64 strings, CONTAINER_STATE_* names).
// Every method throws DaemonError for expected failures; input arrives already validated.
import * as v from 'valibot';

export const STATES = ['unspecified', 'running', 'stopped', 'frozen', 'creating', 'error'] as const;
export type State = (typeof STATES)[number];

const Whole = v.pipe(v.number(), v.integer(), v.minValue(0));
const Share = v.pipe(v.number(), v.minValue(0));

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
  /**
   * CPU used over a short window (two readings about a second apart), in percent of one core
   * (200 = two cores busy); 0 when stopped or when the window could not tell.
   */
  cpuUsagePercent: Share,
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
  /** The host's load averages (runnable tasks) over 1, 5 and 15 minutes; 0 when unknown. */
  cpuLoad1min: Share,
  cpuLoad5min: Share,
  cpuLoad15min: Share,
  /**
   * What the containers' limits add up to, to set against the totals: CPUs and memory of the
   * running ones, root disks of all. A container without a limit counts as the whole host's.
   */
  committedCpus: Whole,
  committedMemoryBytes: Whole,
  committedDiskBytes: Whole,
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

/** A snapshot of a container's root disk. */
export const SnapshotSchema = v.object({
  name: v.string(),
  /** Space the snapshot holds of its own, as the storage driver reports it; 0 when unknown. */
  usedBytes: Whole,
  /** Space the snapshot refers to, shared or not; 0 when the driver does not say (Incus does not). */
  referencedBytes: Whole,
  /** Unix seconds; 0 when unknown. */
  createdAt: Whole,
});
export type Snapshot = v.InferOutput<typeof SnapshotSchema>;

/** What a rollback did: whether it stopped the container (to start it again), and what it removed. */
export type Rollback = { containerStopped: boolean; destroyedSnapshots: string[] };

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

/**
 * What get knows of the user's create, this daemon's addition to upstream's answer ('' for what
 * does not apply): the step it is at while CREATING, why it failed once ERROR, and the message a
 * sync create would have answered once an async one is done.
 */
export type CreateStatus = { phase: string; error: string; message: string };

export type ListFilter = {
  username?: string;
  /** Never "unspecified": that is no filter. */
  state?: State;
  labels?: Record<string, string>;
};

/** A command to run: argv as given, or a string for `sh -c`. */
export type ExecRequest = { command: string[] | string; user: string; timeoutSeconds: number };

export type ExecOutcome = {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** The stream's start was left unread (only its tail came back). */
  stdoutCut: boolean;
  stderrCut: boolean;
  timedOut: boolean;
};

export type LogsRequest = {
  /** The last this many journal entries. */
  lines: number;
  /** Unix seconds: only entries since then (the journal only). */
  since?: number;
};

export type LogsOutcome = { source: 'journal' | 'console'; text: string; cut: boolean };

export interface Backend {
  /** Sync: returns once the container is running and provisioned. Async: returns creating at once. */
  create(request: CreateRequest, options: { async: boolean }): Promise<CreateResult>;
  list(filter: ListFilter): Promise<Container[]>;
  /** Throws not_found when the user has no container. */
  get(username: string): Promise<Reachable & { metrics: Metrics | null; create?: CreateStatus }>;
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
  /** Runs a command in the running container; its output raw (the route cleans and caps it). */
  exec(username: string, request: ExecRequest): Promise<ExecOutcome>;
  /** The running container's journal, or its console log when it has none; raw text. */
  logs(username: string, request: LogsRequest): Promise<LogsOutcome>;
  /** Oldest first. */
  listSnapshots(username: string): Promise<Snapshot[]>;
  /** Throws conflict when the name is taken. */
  createSnapshot(username: string, name: string): Promise<Snapshot>;
  /** Throws not_found when there is no such snapshot; freedBytes is its own size. */
  deleteSnapshot(username: string, name: string): Promise<{ freedBytes: number }>;
  /**
   * Restores the container's disk to the snapshot. A running container only with force (it is
   * stopped for it and started again); newer snapshots are deleted only with destroyNewer, and a
   * storage driver that can restore only the newest snapshot is refused without it.
   */
  rollbackSnapshot(
    username: string,
    name: string,
    options: { force: boolean; destroyNewer: boolean },
  ): Promise<Rollback>;
  /** True when Incus answers; used by /health. */
  ping(): Promise<boolean>;
}
