// The seam between the daemon's HTTP layer (routes, auth) and its Incus layer (containers).
// Every method throws DaemonError for expected failures; input arrives already validated.
import type { ContainerState, WireContainer, WireMetrics, WireSystemInfo } from '../shared/wire.ts';

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
  /** Resources the caller left empty, so upstream's defaults; these may be lowered to fit the host. */
  defaulted?: readonly ('cpu' | 'memory' | 'disk')[];
};

export type CreateResult = { container: WireContainer; message: string; sshCommand: string };

export type ListFilter = {
  username?: string;
  state?: ContainerState;
  labels?: Record<string, string>;
};

export interface Backend {
  /** Sync: returns once the container is running and provisioned. Async: returns CREATING at once. */
  create(request: CreateRequest, options: { async: boolean }): Promise<CreateResult>;
  list(filter: ListFilter): Promise<WireContainer[]>;
  /** Throws not_found when the user has no container. */
  get(username: string): Promise<{ container: WireContainer; metrics: WireMetrics | null }>;
  delete(username: string, options: { force: boolean }): Promise<{ containerName: string }>;
  start(username: string): Promise<WireContainer>;
  stop(username: string, options: { force: boolean; timeout?: number }): Promise<WireContainer>;
  /** All containers when username is undefined (a constant number of Incus calls). */
  metrics(username?: string): Promise<WireMetrics[]>;
  systemInfo(): Promise<WireSystemInfo>;
  addSshKey(username: string, key: string): Promise<{ totalKeys: number }>;
  removeSshKey(username: string, key: string): Promise<{ totalKeys: number }>;
  /** True when Incus answers; used by /health. */
  ping(): Promise<boolean>;
}
