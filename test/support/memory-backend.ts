// An in-memory Backend for the daemon's HTTP tests: real state, recorded calls, injectable failures.
import type {
  Backend,
  Container,
  CreateRequest,
  CreateStatus,
  ExecOutcome,
  ExecRequest,
  Image,
  Images,
  ListFilter,
  LogsOutcome,
  LogsRequest,
  Metrics,
  ResizeRequest,
  Rollback,
  Snapshot,
  State,
  SystemInfo,
} from '../../src/daemon/backend.ts';
import { DaemonError } from '../../src/daemon/errors.ts';
import { fitDefaults, type HostCapacity, limitProblems } from '../../src/daemon/limits.ts';
import { sshAccess } from '../../src/daemon/ssh-access.ts';
import { stateOf } from '../../src/daemon/to-wire.ts';
import { formatBytes, parseSize } from '../../src/shared/sizes.ts';
import { containerName } from '../../src/shared/username.ts';
import type { ContainerState } from '../../src/shared/wire.ts';

/** A container's fields for seed(); state and times may also be given as they look on the wire. */
type Seed = Partial<Omit<Container, 'state' | 'createdAt' | 'updatedAt'>> & {
  state?: State | ContainerState;
  createdAt?: number | string;
  updatedAt?: number | string;
};

const ADDRESS = { ipAddress: '10.98.0.10', macAddress: '', interface: 'eth0', bridge: '' };

type Call = { method: keyof Backend; args: unknown[] };

/** The phases an async create shows, one per get, before it ends. */
export const ASYNC_PHASES = ['creating instance', 'installing packages', 'adding keys'];

export class MemoryBackend implements Backend {
  readonly containers = new Map<string, Container>();
  readonly calls: Call[] = [];
  /** When set, every call throws it (e.g. DaemonError('unavailable', ...)). */
  failWith: Error | undefined;
  reachable = true;
  /** The host creates are fitted to, as the Incus backend fits them (nothing known by default). */
  host: HostCapacity = {};
  /** The local images listImages reports, as a host built like this project's test host has. */
  images: Image[] = [
    {
      aliases: ['busybox'],
      fingerprint: '84369af496d8452222ece3d180b23a690d46f6865ac784eb4fc54b097dec8992',
      description: 'BusyBox (static), built locally',
      os: 'busybox',
      release: 'v1.35.0',
      architecture: 'x86_64',
      sizeBytes: 1032826,
      createdAt: 1_764_391_473,
    },
    {
      aliases: ['debian/12'],
      fingerprint: 'f65374fb3ca9680731113f1ce4b3d161a1c37439a818118b11de1f5aff797f31',
      description: 'Debian 12 (bookworm) minbase, built locally',
      os: 'Debian',
      release: 'bookworm',
      architecture: 'x86_64',
      sizeBytes: 56487170,
      createdAt: 1_764_391_472,
    },
  ];
  /**
   * What get reports of each user's create. An async create runs through ASYNC_PHASES, one per
   * get, then ends running (or in ERROR with `asyncFailure`, when set), as the Incus backend's would.
   */
  readonly creates = new Map<string, CreateStatus & { left: string[] }>();
  asyncFailure: string | undefined;
  /** What exec answers: by default the command's words, as `echo` would print them. */
  execAnswer: (username: string, request: ExecRequest) => ExecOutcome = (_username, request) => ({
    exitCode: 0,
    stdout: `${[request.command].flat().join(' ')}\n`,
    stderr: '',
    stdoutCut: false,
    stderrCut: false,
    timedOut: false,
  });
  /** The journal (or console log) every container has; logs answers its last `lines` lines. */
  logAnswer: LogsOutcome = { source: 'journal', text: '', cut: false };
  /** Each user's snapshots, oldest first. */
  readonly snapshots = new Map<string, Snapshot[]>();
  /** Act like a storage driver that restores only the newest snapshot (ZFS). */
  newestOnly = false;
  private clock = 1_736_930_000;
  /** Each stopped container's address, back when it starts (Incus reports one only while running). */
  private parked = new Map<string, Container['network']>();

  private enter(method: keyof Backend, ...args: unknown[]) {
    this.calls.push({ method, args });
    if (this.failWith) throw this.failWith;
  }

  private find(username: string): Container {
    const container = this.containers.get(username);
    if (!container) throw new DaemonError('not_found', `container for user ${username} not found`);
    return container;
  }

  /** Adds a container directly, as if created earlier. */
  seed(username: string, { state, createdAt, updatedAt, ...overrides }: Seed = {}): Container {
    const domainState = state?.startsWith('CONTAINER_STATE_')
      ? stateOf(state as ContainerState)
      : ((state as State | undefined) ?? 'running');
    const container: Container = {
      name: containerName(username),
      username,
      state: domainState,
      resources: { cpu: '4', memory: '4GB', disk: '50GB' },
      sshKeys: [],
      // As the Incus backend reports it: an address only while running.
      network: domainState === 'running' ? ADDRESS : null,
      createdAt: createdAt === undefined ? this.clock++ : Number(createdAt),
      updatedAt: Number(updatedAt ?? 0),
      labels: {},
      image: 'images:ubuntu/24.04',
      dockerEnabled: false,
      ...overrides,
    };
    this.containers.set(username, container);
    return container;
  }

  async create(asked: CreateRequest, options: { async: boolean }) {
    this.enter('create', asked, options);
    // The daemon's own rules: defaults lowered to fit the host, anything asked beyond it refused.
    const { request, lowered } = fitDefaults(asked, this.host);
    const problems = limitProblems(request, this.host);
    if (problems.length > 0) throw new DaemonError('invalid', problems.join('; '));
    if (this.containers.has(request.username)) {
      throw new DaemonError(
        'conflict',
        `container ${containerName(request.username)} already exists`,
      );
    }
    const container = this.seed(request.username, {
      state: options.async ? 'creating' : 'running',
      resources: { cpu: String(request.cpu), memory: request.memory, disk: request.disk },
      sshKeys: [...request.sshKeys],
      labels: { ...request.labels },
      image: request.image,
      dockerEnabled: request.enableDocker,
    });
    const message = `Container ${container.name} created successfully${lowered.length ? ` (defaults lowered to what this host has: ${lowered.join(', ')})` : ''}`;
    if (options.async) {
      this.creates.set(request.username, {
        phase: '',
        error: '',
        message,
        left: [...ASYNC_PHASES],
      });
      return {
        container: { ...container },
        message: `Container creation started for user ${request.username}. Poll GET /v1/containers/${request.username} to check status.`,
        sshCommand: '',
      };
    }
    return {
      container,
      message,
      // No key, no account to log in to: the Incus backend sends no command then either.
      sshCommand: request.sshKeys.length > 0 ? `ssh ${request.username}@${ADDRESS.ipAddress}` : '',
    };
  }

  async list(filter: ListFilter) {
    this.enter('list', filter);
    return [...this.containers.values()].filter(
      (c) =>
        (filter.username === undefined || c.username === filter.username) &&
        (filter.state === undefined || c.state === filter.state) &&
        Object.entries(filter.labels ?? {}).every(([k, v]) => c.labels[k] === v),
    );
  }

  async get(username: string): ReturnType<Backend['get']> {
    this.enter('get', username);
    const container = this.find(username);
    const create = this.advance(container);
    return { container, metrics: null, sshCommand: this.sshCommand(container), create };
  }

  /** One step of an async create, as a get sees it: the next phase, or its end. */
  private advance(container: Container): CreateStatus {
    const status = this.creates.get(container.username);
    if (!status) return { phase: '', error: '', message: '' };
    if (container.state !== 'creating')
      return { phase: '', error: status.error, message: status.message };
    const phase = status.left.shift();
    if (phase) return { phase, error: '', message: '' };
    if (this.asyncFailure) {
      container.state = 'error';
      status.error = this.asyncFailure;
      return { phase: '', error: status.error, message: '' };
    }
    container.state = 'running';
    container.network = ADDRESS;
    return { phase: '', error: '', message: status.message };
  }

  /** The Incus backend's rule, with the account made at create: a key and a running address. */
  private sshCommand(container: Container): string {
    return sshAccess({
      username: container.username,
      address: container.state === 'running' ? (container.network?.ipAddress ?? '') : '',
      keys: container.sshKeys.length,
      account: true,
    }).sshCommand;
  }

  async delete(username: string, options: { force: boolean }) {
    this.enter('delete', username, options);
    const container = this.find(username);
    this.containers.delete(username);
    this.creates.delete(username);
    return { containerName: container.name };
  }

  async start(username: string) {
    this.enter('start', username);
    const container = this.find(username);
    container.state = 'running';
    container.network ??= this.parked.get(username) ?? ADDRESS;
    this.parked.delete(username);
    return { container, sshCommand: this.sshCommand(container) };
  }

  async stop(username: string, options: { force: boolean; timeout?: number }) {
    this.enter('stop', username, options);
    const container = this.find(username);
    container.state = 'stopped';
    if (container.network) this.parked.set(username, container.network);
    container.network = null;
    return container;
  }

  async metrics(username?: string): Promise<Metrics[]> {
    this.enter('metrics', username);
    const containers =
      username === undefined ? [...this.containers.values()] : [this.find(username)];
    return containers.map((c) => ({
      name: c.name,
      cpuUsageSeconds: 12,
      cpuUsagePercent: c.state === 'running' ? 25 : 0,
      memoryUsageBytes: 536870912,
      memoryPeakBytes: 1073741824,
      diskUsageBytes: 5368709120,
      networkRxBytes: 104857600,
      networkTxBytes: 52428800,
      processCount: 42,
    }));
  }

  async systemInfo(): Promise<SystemInfo> {
    this.enter('systemInfo');
    const all = [...this.containers.values()];
    const running = all.filter((c) => c.state === 'running').length;
    return {
      incusVersion: '6.0.4',
      os: 'Debian GNU/Linux',
      kernelVersion: '6.1.0-test',
      totalCpus: 2,
      totalMemoryBytes: 4294967296,
      availableMemoryBytes: 2147483648,
      totalDiskBytes: 10737418240,
      availableDiskBytes: 5368709120,
      containersRunning: running,
      containersStopped: all.length - running,
      containersTotal: all.length,
      hostname: 'testhost',
      uptimeSeconds: 3600,
      cpuLoad1min: 0.5,
      cpuLoad5min: 0.25,
      cpuLoad15min: 0.125,
      committedCpus: 4 * running,
      committedMemoryBytes: 4e9 * running,
      committedDiskBytes: 50e9 * all.length,
    };
  }

  async listImages(): Promise<Images> {
    this.enter('listImages');
    return { images: this.images, remotes: ['images', 'ubuntu', 'ubuntu-daily'] };
  }

  async addSshKey(username: string, key: string) {
    this.enter('addSshKey', username, key);
    const container = this.find(username);
    if (!container.sshKeys.includes(key)) container.sshKeys.push(key);
    return { totalKeys: container.sshKeys.length };
  }

  async removeSshKey(username: string, key: string) {
    this.enter('removeSshKey', username, key);
    const container = this.find(username);
    const before = container.sshKeys.length;
    container.sshKeys = container.sshKeys.filter((k) => k !== key);
    if (container.sshKeys.length === before) {
      throw new DaemonError('not_found', `that key is not authorized for user ${username}`);
    }
    return { totalKeys: container.sshKeys.length };
  }

  /** The disk use a shrink is checked against, as the Incus backend measures it. */
  diskUsedBytes = 1_000_000_000;

  async resize(username: string, change: ResizeRequest) {
    this.enter('resize', username, change);
    const container = this.find(username);
    const problems = limitProblems(change, this.host, '');
    if (problems.length > 0) throw new DaemonError('invalid', problems.join('; '));
    if (change.disk !== undefined && (parseSize(change.disk)?.bytes ?? 0) < this.diskUsedBytes) {
      throw new DaemonError(
        'invalid',
        `invalid disk: "${change.disk}" is less than the container for user ${username} uses (${formatBytes(this.diskUsedBytes)})`,
      );
    }
    const now = container.resources ?? { cpu: '', memory: '', disk: '' };
    container.resources = {
      cpu: change.cpu === undefined ? now.cpu : String(change.cpu),
      memory: change.memory ?? now.memory,
      disk: change.disk ?? now.disk,
    };
    return container;
  }

  /** The Incus backend's rule: exec and logs need a running container. */
  private running(username: string): Container {
    const container = this.find(username);
    if (container.state !== 'running') {
      throw new DaemonError(
        'invalid',
        `container ${container.name} is not running (${container.state}); start it first`,
      );
    }
    return container;
  }

  async exec(username: string, request: ExecRequest) {
    this.enter('exec', username, request);
    this.running(username);
    return this.execAnswer(username, request);
  }

  async logs(username: string, request: LogsRequest) {
    this.enter('logs', username, request);
    this.running(username);
    const lines = this.logAnswer.text.split('\n');
    if (lines.at(-1) === '') lines.pop();
    const text = lines.slice(-request.lines).join('\n');
    return { ...this.logAnswer, text: text && `${text}\n` };
  }

  async listSnapshots(username: string) {
    this.enter('listSnapshots', username);
    this.find(username);
    return [...(this.snapshots.get(username) ?? [])];
  }

  async createSnapshot(username: string, name: string) {
    this.enter('createSnapshot', username, name);
    this.find(username);
    const list = this.snapshots.get(username) ?? [];
    if (list.some((s) => s.name === name)) {
      throw new DaemonError('conflict', `snapshot "${name}" already exists`);
    }
    const snapshot = { name, usedBytes: 16384, referencedBytes: 0, createdAt: this.clock++ };
    this.snapshots.set(username, [...list, snapshot]);
    return snapshot;
  }

  /** The user's snapshots, and where `name` is in them (not_found when absent). */
  private snapshotOf(username: string, name: string) {
    this.find(username);
    const list = this.snapshots.get(username) ?? [];
    const index = list.findIndex((s) => s.name === name);
    if (index < 0) {
      throw new DaemonError(
        'not_found',
        `snapshot "${name}" not found in the container for user ${username}`,
      );
    }
    return { list, index, snapshot: list[index] as Snapshot };
  }

  async deleteSnapshot(username: string, name: string) {
    this.enter('deleteSnapshot', username, name);
    const { list, index, snapshot } = this.snapshotOf(username, name);
    this.snapshots.set(username, list.toSpliced(index, 1));
    return { freedBytes: snapshot.usedBytes };
  }

  async rollbackSnapshot(
    username: string,
    name: string,
    options: { force: boolean; destroyNewer: boolean },
  ): Promise<Rollback> {
    this.enter('rollbackSnapshot', username, name, options);
    const { list, index } = this.snapshotOf(username, name);
    const running = this.find(username).state === 'running';
    if (running && !options.force) {
      throw new DaemonError('invalid', `the container for user ${username} is running`);
    }
    const newer = list.slice(index + 1).map((s) => s.name);
    if (newer.length > 0 && this.newestOnly && !options.destroyNewer) {
      throw new DaemonError('invalid', `snapshot "${name}" is not the newest`);
    }
    if (options.destroyNewer) this.snapshots.set(username, list.slice(0, index + 1));
    return {
      containerStopped: running,
      destroyedSnapshots: options.destroyNewer ? newer.reverse() : [],
    };
  }

  async ping() {
    return this.reachable;
  }
}
