// The Containarium REST wire format (CONTAINARIUM-API.md §1): the exact shapes the daemon emits,
// and lenient valibot schemas the client parses them with.
//
// Emitting: lowerCamelCase, every field present, int64 as JSON strings, int32 as numbers,
// enums by their full names, unset messages as null.
// Parsing: accept int64 as string or number, null for any message, missing fields from older
// daemons, and ignore fields from newer ones (HEAD adds podmanEnabled, backendId, osType, ...).
import * as v from 'valibot';

export const CONTAINER_STATES = [
  'CONTAINER_STATE_UNSPECIFIED',
  'CONTAINER_STATE_RUNNING',
  'CONTAINER_STATE_STOPPED',
  'CONTAINER_STATE_FROZEN',
  'CONTAINER_STATE_CREATING',
  'CONTAINER_STATE_ERROR',
] as const;
export type ContainerState = (typeof CONTAINER_STATES)[number];

// ---- Emitted shapes: what the daemon writes, field by field in proto order --------------------

/** An int64 on the wire: a decimal string. */
export const Int64Schema = v.pipe(v.string(), v.regex(/^-?\d+$/));
export type Int64 = v.InferOutput<typeof Int64Schema>;
const Int32Schema = v.pipe(v.number(), v.integer());
const DoubleSchema = v.pipe(v.number(), v.finite());

export const WireResourcesSchema = v.strictObject({
  cpu: v.string(),
  memory: v.string(),
  disk: v.string(),
});
export type WireResources = v.InferOutput<typeof WireResourcesSchema>;

export const WireNetworkSchema = v.strictObject({
  ipAddress: v.string(),
  macAddress: v.string(),
  interface: v.string(),
  bridge: v.string(),
});
export type WireNetwork = v.InferOutput<typeof WireNetworkSchema>;

export const WireContainerSchema = v.strictObject({
  name: v.string(),
  username: v.string(),
  state: v.picklist(CONTAINER_STATES),
  resources: v.nullable(WireResourcesSchema),
  sshKeys: v.array(v.string()),
  network: v.nullable(WireNetworkSchema),
  createdAt: Int64Schema,
  updatedAt: Int64Schema,
  labels: v.record(v.string(), v.string()),
  image: v.string(),
  dockerEnabled: v.boolean(),
});
export type WireContainer = v.InferOutput<typeof WireContainerSchema>;

export const WireMetricsSchema = v.strictObject({
  name: v.string(),
  cpuUsageSeconds: Int64Schema,
  /** This project's addition (api/containarium.openapi.json): percent of one core, lately. */
  cpuUsagePercent: DoubleSchema,
  memoryUsageBytes: Int64Schema,
  memoryPeakBytes: Int64Schema,
  diskUsageBytes: Int64Schema,
  networkRxBytes: Int64Schema,
  networkTxBytes: Int64Schema,
  processCount: Int32Schema,
});
export type WireMetrics = v.InferOutput<typeof WireMetricsSchema>;

export const WireSystemInfoSchema = v.strictObject({
  incusVersion: v.string(),
  os: v.string(),
  kernelVersion: v.string(),
  totalCpus: Int32Schema,
  totalMemoryBytes: Int64Schema,
  availableMemoryBytes: Int64Schema,
  totalDiskBytes: Int64Schema,
  availableDiskBytes: Int64Schema,
  containersRunning: Int32Schema,
  containersStopped: Int32Schema,
  containersTotal: Int32Schema,
  hostname: v.string(),
  uptimeSeconds: Int64Schema,
  /** HEAD's load averages; the committed limits are this project's addition. */
  cpuLoad1min: DoubleSchema,
  cpuLoad5min: DoubleSchema,
  cpuLoad15min: DoubleSchema,
  committedCpus: Int32Schema,
  committedMemoryBytes: Int64Schema,
  committedDiskBytes: Int64Schema,
});
export type WireSystemInfo = v.InferOutput<typeof WireSystemInfoSchema>;

// ---- Lenient parsing -------------------------------------------------------------------------

/** int64 or int32: a decimal string or a number; null or absent read as 0. */
const int = v.pipe(
  v.union([v.pipe(v.string(), v.regex(/^-?\d+$/)), v.pipe(v.number(), v.integer())]),
  v.transform(Number),
);
export const integer = v.nullish(int, 0);
/** int64 or int32 that only newer daemons send: absent or null reads as unknown (null). */
const knownInteger = v.nullish(int, null);
/** A string; null or absent read as "". */
export const text = v.nullish(v.string(), '');
const flag = v.nullish(v.boolean());
/** A number only newer daemons send; absent, null or not a finite number reads as unknown (null). */
const known = v.nullish(v.pipe(v.number(), v.finite()), null);

export const ResourcesSchema = v.object({ cpu: text, memory: text, disk: text });

export const NetworkSchema = v.object({
  ipAddress: text,
  macAddress: text,
  interface: text,
  bridge: text,
});

export const ContainerSchema = v.object({
  name: text,
  username: text,
  state: v.nullish(v.string(), 'CONTAINER_STATE_UNSPECIFIED'),
  resources: v.nullish(ResourcesSchema, null),
  sshKeys: v.nullish(v.array(v.string()), []),
  network: v.nullish(NetworkSchema, null),
  createdAt: integer,
  updatedAt: integer,
  labels: v.nullish(v.record(v.string(), v.string()), {}),
  image: text,
  /** v0.3 */
  dockerEnabled: flag,
  /** HEAD (renamed in Feb 2026) */
  podmanEnabled: flag,
  /**
   * This project's daemon, in get and start answers: how to log in, "" when there is no way
   * (no account with a key, no address). Absent from upstream daemons.
   */
  sshCommand: v.nullish(v.string()),
  /**
   * This project's daemon, in get answers (ContainerCreateStatus): the step a create is at while
   * CREATING, why an async create failed, and a done one's create message. Absent from upstream.
   */
  phase: v.nullish(v.string()),
  error: v.nullish(v.string()),
  createMessage: v.nullish(v.string()),
});
export type Container = v.InferOutput<typeof ContainerSchema>;

export const MetricsSchema = v.object({
  name: text,
  cpuUsageSeconds: integer,
  /** This project's daemon: percent of one core over about a second; null from other daemons. */
  cpuUsagePercent: known,
  memoryUsageBytes: integer,
  memoryPeakBytes: integer,
  diskUsageBytes: integer,
  networkRxBytes: integer,
  networkTxBytes: integer,
  processCount: integer,
});
export type Metrics = v.InferOutput<typeof MetricsSchema>;

export const SystemInfoSchema = v.object({
  incusVersion: text,
  os: text,
  kernelVersion: text,
  totalCpus: integer,
  totalMemoryBytes: integer,
  availableMemoryBytes: integer,
  totalDiskBytes: integer,
  availableDiskBytes: integer,
  containersRunning: integer,
  containersStopped: integer,
  containersTotal: integer,
  hostname: text,
  uptimeSeconds: integer,
  /** HEAD only */
  daemonVersion: text,
  /** HEAD and this project's daemon: load averages; null from daemons that do not send them. */
  cpuLoad1min: known,
  cpuLoad5min: known,
  cpuLoad15min: known,
  /** This project's daemon: what the containers' limits add up to; null from other daemons. */
  committedCpus: known,
  committedMemoryBytes: knownInteger,
  committedDiskBytes: knownInteger,
});
export type SystemInfo = v.InferOutput<typeof SystemInfoSchema>;

export const CreateContainerResponseSchema = v.object({
  container: v.nullish(ContainerSchema, null),
  message: text,
  /** Sent by v0.3 and HEAD alike ("" for an async create); absent only from other daemons. */
  sshCommand: v.nullish(v.string()),
});
export const ListContainersResponseSchema = v.object({
  containers: v.nullish(v.array(ContainerSchema), []),
  totalCount: integer,
});
/** POST and DELETE /v1/containers/{username}/ssh-keys: the keys left afterwards. */
export const SshKeyResponseSchema = v.object({ message: text, totalKeys: integer });
export const GetContainerResponseSchema = v.object({
  container: v.nullish(ContainerSchema, null),
  metrics: v.nullish(MetricsSchema, null),
});
export const DeleteContainerResponseSchema = v.object({ message: text, containerName: text });
export const StartStopContainerResponseSchema = v.object({
  message: text,
  container: v.nullish(ContainerSchema, null),
});
export const GetMetricsResponseSchema = v.object({
  metrics: v.nullish(v.array(MetricsSchema), []),
});
export const GetSystemInfoResponseSchema = v.object({ info: v.nullish(SystemInfoSchema, null) });

/** Go's zero time.Time as unix seconds: a timestamp that means "unknown". */
export const ZERO_TIME = -62135596800;
