// The Incus REST client (ky over the local unix socket, or HTTPS with a client certificate):
// envelopes checked with valibot, async operations awaited, errors turned into DaemonErrors.
import { existsSync } from 'node:fs';
import ky, { type KyInstance, type Options, TimeoutError } from 'ky';
import * as v from 'valibot';
import { BodyTooLargeError, boundedResponse, MAX_RESPONSE_BYTES } from '../shared/bounded-body.ts';
import { clip } from '../shared/clip.ts';
import { errorText } from '../shared/error-text.ts';
import { formatBytes } from '../shared/sizes.ts';
import { DaemonError } from './errors.ts';
import {
  AliasesSchema,
  ImageSchema,
  IncusSnapshotSchema,
  InstanceSchema,
  InstanceStateSchema,
  LeaseSchema,
  PoolResourcesSchema,
  ResourcesSchema,
  ServerSchema,
} from './incus-wire.ts';
import type { ExecOptions, ExecResult, FileContent, FileOptions, Guest } from './provision.ts';

export const INCUS_SOCKET = '/var/lib/incus/unix.socket';
export const LXD_SOCKET = '/var/lib/lxd/unix.socket';

export type IncusClientOptions = (
  | { socket?: string }
  | { url: string; cert: string; key: string; ca?: string }
) & {
  /** The fetch to send through; the benchmark passes one that counts calls. */
  fetch?: typeof fetch;
};

const Envelope = v.object({
  type: v.picklist(['sync', 'async', 'error']),
  status: v.optional(v.string(), ''),
  status_code: v.optional(v.number(), 0),
  operation: v.optional(v.string(), ''),
  metadata: v.optional(v.unknown()),
  error: v.optional(v.string(), ''),
  error_code: v.optional(v.number(), 0),
});

export const OperationSchema = v.object({
  id: v.string(),
  status: v.string(),
  status_code: v.number(),
  err: v.optional(v.string(), ''),
  metadata: v.nullish(v.record(v.string(), v.unknown()), {}),
});
export type Operation = v.InferOutput<typeof OperationSchema>;

/** GET /1.0/operations?recursion=1: operations by status; only running ones are read. */
const RunningOperationsSchema = v.object({
  running: v.nullish(
    v.array(
      v.object({
        description: v.optional(v.string(), ''),
        resources: v.nullish(v.object({ instances: v.nullish(v.array(v.string())) }), {}),
      }),
    ),
  ),
});

const ExecResultSchema = v.object({
  return: v.number(),
  output: v.nullish(v.record(v.string(), v.string()), {}),
});

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
type RequestOptions = {
  json?: unknown;
  body?: string;
  headers?: Record<string, string>;
  /** Seconds before the HTTP call itself gives up. */
  timeout?: number;
};

export type IncusClient = ReturnType<typeof createIncusClient>;

/** The API path of one instance, its name encoded. */
export const instancePath = (name: string) => `1.0/instances/${encodeURIComponent(name)}`;

/** The socket a local daemon should use: Incus's, else LXD's if only that one exists. */
export function defaultSocket(candidates: string[] = [INCUS_SOCKET, LXD_SOCKET]): string {
  return candidates.find((socket) => existsSync(socket)) ?? candidates[0] ?? INCUS_SOCKET;
}

export function createIncusClient(options: IncusClientOptions = {}) {
  const remote = 'url' in options ? options : undefined;
  const socket = remote ? undefined : ('socket' in options && options.socket) || defaultSocket();
  const target = remote ? remote.url : (socket as string);

  // ky forwards options it does not know (Bun's `unix` and `tls`) to fetch as its second argument.
  const transport = remote
    ? { tls: { cert: remote.cert, key: remote.key, ...(remote.ca ? { ca: remote.ca } : {}) } }
    : { unix: socket };
  const http: KyInstance = ky.create({
    prefix: remote ? remote.url : 'http://incus/',
    retry: 0,
    throwHttpErrors: false,
    // Every answer is read whole here, at most MAX_RESPONSE_BYTES, within the call's timeout.
    fetch: async (input, init) =>
      boundedResponse(await (options.fetch ?? globalThis.fetch)(input, init), MAX_RESPONSE_BYTES),
    ...(transport as Options),
  });

  const unreachable = (error: unknown): DaemonError => {
    if (error instanceof DaemonError) return error;
    if (error instanceof TimeoutError) {
      return new DaemonError('unavailable', `Incus at ${target} did not answer in time`);
    }
    const cause = error instanceof Error ? (error.cause ?? error) : error;
    const text = errorText(cause);
    return new DaemonError('unavailable', `Incus is not reachable at ${target}: ${text}`);
  };

  /** One HTTP call; returns the raw Response (files and logs are not JSON). */
  async function send(method: Method, path: string, options: RequestOptions = {}) {
    try {
      return await http(path.replace(/^\/+/, ''), {
        method,
        timeout: (options.timeout ?? 30) * 1000,
        ...(options.json !== undefined ? { json: options.json } : {}),
        ...(options.body !== undefined ? { body: options.body } : {}),
        ...(options.headers ? { headers: options.headers } : {}),
      });
    } catch (error) {
      if (error instanceof BodyTooLargeError) {
        throw new DaemonError(
          'internal',
          `Incus answered ${method} ${path} with more than ${formatBytes(error.limit)}, the most the daemon reads of one Incus response`,
        );
      }
      throw unreachable(error);
    }
  }

  /**
   * A log file's text (exec output, console): with `tail`, only its last `tail` bytes, asked
   * for with a suffix Range (Incus serves these files with ranges), `cut` when more came before.
   */
  async function readTail(
    path: string,
    tail?: number,
    { orEmpty = false } = {},
  ): Promise<{ text: string; cut: boolean }> {
    const response = await send('GET', path, tail ? { headers: { range: `bytes=-${tail}` } } : {});
    if (!response.ok && orEmpty) return { text: '', cut: false };
    if (!response.ok) {
      const body = v.safeParse(Envelope, await response.json().catch(() => ({})));
      throw incusError(response.status, body.success ? body.output.error : response.statusText);
    }
    // An empty console log comes as an empty body (typed JSON, oddly): no text either way.
    const text = await response.text();
    // "bytes 23863-23892/23893": the first byte sent, from the file's start.
    const range = /^bytes (\d+)-/.exec(response.headers.get('content-range') ?? '');
    const cut = response.status === 206 && Number(range?.[1] ?? 0) > 0;
    return { text, cut };
  }

  /** One call that answers with an Incus envelope; error envelopes become DaemonErrors. */
  async function request(method: Method, path: string, options: RequestOptions = {}) {
    const response = await send(method, path, options);
    const text = await response.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new DaemonError(
        'internal',
        `Incus answered ${method} ${path} with HTTP ${response.status} and no JSON: ${clip(text, 200)}`,
      );
    }
    const parsed = v.safeParse(Envelope, body);
    if (!parsed.success) {
      throw new DaemonError('internal', `Incus answered ${method} ${path} with an unknown shape`);
    }
    const envelope = parsed.output;
    if (envelope.type === 'error' || response.status >= 400) {
      throw incusError(
        envelope.error_code || response.status,
        envelope.error || response.statusText,
      );
    }
    return envelope;
  }

  /** GET and validate the metadata. */
  async function get<S extends v.GenericSchema>(path: string, schema: S) {
    const envelope = await request('GET', path);
    return parseMetadata(schema, envelope.metadata, path);
  }

  /** Waits for an operation; a failed or cancelled one throws with Incus's message. */
  async function wait(id: string, timeoutSeconds: number): Promise<Operation> {
    const path = `1.0/operations/${encodeURIComponent(id)}/wait?timeout=${timeoutSeconds}`;
    const envelope = await request('GET', path, { timeout: timeoutSeconds + 15 }).catch(
      (error: unknown) => {
        // Incus 6.0 answers a wait that runs out with an error: "context deadline exceeded".
        if (error instanceof DaemonError && DEADLINE.test(error.message)) {
          throw new NotFinished(timeoutSeconds);
        }
        throw error;
      },
    );
    const operation = parseMetadata(OperationSchema, envelope.metadata, path);
    if (operation.status_code === 200) return operation;
    if (operation.status_code === 103 || operation.status_code === 105) {
      throw new NotFinished(timeoutSeconds);
    }
    // Failure (400) or Cancelled (401): the operation's own error text is the useful part.
    const text = operation.err || `Incus operation ${operation.status}`;
    throw busyError(text) ?? new DaemonError('internal', text);
  }

  /** A call that starts an async operation, then waits for it. Sync answers pass through. */
  async function operate(
    method: Method,
    path: string,
    options: RequestOptions & { wait?: number } = {},
  ): Promise<Operation | undefined> {
    const envelope = await request(method, path, options);
    if (envelope.type !== 'async') return undefined;
    return wait(operationId(envelope, method, path), options.wait ?? 60);
  }

  /** The id of the operation an async answer started. */
  function operationId(envelope: v.InferOutput<typeof Envelope>, method: Method, path: string) {
    const id = v.safeParse(v.object({ id: v.string() }), envelope.metadata);
    const opId = id.success ? id.output.id : envelope.operation.split('/').pop();
    if (!opId)
      throw new DaemonError('internal', `Incus gave no operation id for ${method} ${path}`);
    return opId;
  }

  const instance = (name: string) => instancePath(name);

  // Whether Incus can narrow a recursion=2 list to some state fields (LXD's
  // instances_state_selective_recursion; Incus 6.0 cannot): unknown until its first answer.
  let selective: boolean | undefined;

  const client = {
    /** The socket path or URL, for messages. */
    target,
    /** True when Incus runs on this host (so host facts like /proc/uptime are Incus's). */
    local: !remote,
    request,
    get,
    operate,
    wait,

    // ---- Named calls: the only place the daemon spells Incus paths --------------------------

    /** GET /1.0: true when Incus answers at all. */
    async ping(): Promise<void> {
      await request('GET', '1.0');
    },
    /** The server's version, OS, kernel and name. */
    server: () => get('1.0', ServerSchema),
    /** The host's CPUs and memory. */
    resources: () => get('1.0/resources', ResourcesSchema),
    /** A storage pool's used and total space. */
    poolResources: (pool: string) =>
      get(`1.0/storage-pools/${encodeURIComponent(pool)}/resources`, PoolResourcesSchema),
    /** Local image aliases with their targets. */
    imageAliases: () => get('1.0/images/aliases?recursion=1', AliasesSchema),
    /** Every local image, with its aliases and properties. */
    images: () => get('1.0/images?recursion=1', v.array(ImageSchema)),
    /** One local image by fingerprint. */
    image: (fingerprint: string) =>
      get(`1.0/images/${encodeURIComponent(fingerprint)}`, ImageSchema),
    /** Publishes a stopped instance as a local image with these properties; its fingerprint. */
    async publishImage(instanceName: string, properties: Record<string, string>): Promise<string> {
      const operation = await operate('POST', '1.0/images', {
        json: { source: { type: 'instance', name: instanceName }, properties, public: false },
        wait: 900,
      });
      const fingerprint = operation?.metadata.fingerprint;
      if (typeof fingerprint !== 'string' || !fingerprint) {
        throw new DaemonError(
          'internal',
          `Incus published ${instanceName} but gave no fingerprint`,
        );
      }
      return fingerprint;
    },
    /** Deletes a local image by fingerprint. */
    async deleteImage(fingerprint: string): Promise<void> {
      await operate('DELETE', `1.0/images/${encodeURIComponent(fingerprint)}`);
    },
    /** Points an alias at an image: made when missing (conflict when it exists), else moved. */
    async setAlias(name: string, target: string, { move }: { move: boolean }): Promise<void> {
      if (move) {
        await request('PUT', `1.0/images/aliases/${encodeURIComponent(name)}`, {
          json: { target, description: '' },
        });
      } else {
        await request('POST', '1.0/images/aliases', { json: { name, target } });
      }
    },
    /** Every instance: recursion 1 is config and status, 2 adds live state (a look inside each). */
    instances: (recursion: 1 | 2) =>
      get(`1.0/instances?recursion=${recursion}`, v.array(InstanceSchema)),
    /**
     * Every instance with only these costly state fields ("state.network"), or undefined where
     * Incus cannot narrow recursion=2 (learnt from its first answer, then not asked again).
     */
    async narrowedInstances(fields: readonly string[]) {
      if (selective === false) return undefined;
      const query = encodeURIComponent(`2;fields=${fields.join(',')}`);
      const answer = await get(
        `1.0/instances?recursion=${query}`,
        v.union([v.array(v.string()), v.array(InstanceSchema)]),
      );
      // An Incus without the selection reads "2;fields=…" as no recursion: a list of URLs.
      const urls = answer.some((item) => typeof item === 'string');
      if (answer.length > 0) selective = !urls;
      return urls ? undefined : (answer as v.InferOutput<typeof InstanceSchema>[]);
    },
    /** A managed network's DHCP leases (and static allocations): one call for every instance on it. */
    leases: (network: string) =>
      get(`1.0/networks/${encodeURIComponent(network)}/leases`, v.array(LeaseSchema)),
    /** One instance, with its live state when `withState`; not_found when Incus has none. */
    instance: (name: string, { withState = false }: { withState?: boolean } = {}) =>
      get(`${instance(name)}${withState ? '?recursion=1' : ''}`, InstanceSchema),
    /** One instance's live state (addresses, usage). */
    instanceState: (name: string) => get(`${instance(name)}/state`, InstanceStateSchema),
    /** Creates an instance from its full Incus definition and waits up to `wait` seconds. */
    createInstance: (definition: Record<string, unknown>, wait: number) =>
      operate('POST', '1.0/instances', { json: definition, wait }),
    /**
     * The descriptions of operations still running on an instance ("Creating instance", ...).
     * Changing an instance's config while Incus still creates it breaks its storage volume (Incus
     * then cannot delete it), so a resumed create waits until there are none.
     */
    async runningOperations(name: string): Promise<string[]> {
      const running = await get('1.0/operations?recursion=1', RunningOperationsSchema);
      const path = `/${instance(name)}`;
      return (running.running ?? [])
        .filter((op) => op.resources.instances?.some((r) => r === path || r.startsWith(`${path}?`)))
        .map((op) => op.description);
    },
    /** Merges these keys into an instance's config. */
    async setConfig(name: string, config: Record<string, string>): Promise<void> {
      await request('PATCH', instance(name), { json: { config } });
    },
    /**
     * Merges config keys and whole devices (each given device replaces the one of that name) in
     * one change: Incus applies all of it to a running instance, or none.
     */
    async patchInstance(
      name: string,
      change: { config?: Record<string, string>; devices?: Record<string, Record<string, string>> },
    ): Promise<void> {
      await request('PATCH', instance(name), { json: change });
    },
    /** start, stop, unfreeze...; waits for the change to finish (`timeout` plus 30 s). */
    changeState(
      name: string,
      action: string,
      options: { force?: boolean; timeout?: number } = {},
    ): Promise<Operation | undefined> {
      const timeout = options.timeout ?? 30;
      return operate('PUT', `${instance(name)}/state`, {
        json: { action, timeout, ...options },
        wait: timeout + 30,
      });
    },
    /** Deletes a (stopped) instance. */
    async deleteInstance(name: string): Promise<void> {
      await operate('DELETE', instance(name));
    },

    /** An instance's snapshots, oldest first as Incus lists them. */
    snapshots: (name: string) =>
      get(`${instance(name)}/snapshots?recursion=1`, v.array(IncusSnapshotSchema)),
    /** Takes a (stateless) snapshot of an instance's disk. */
    async createSnapshot(name: string, snapshot: string): Promise<void> {
      await operate('POST', `${instance(name)}/snapshots`, {
        json: { name: snapshot, stateful: false },
        wait: 300,
      });
    },
    /** Deletes one snapshot; not_found when there is none of that name. */
    async deleteSnapshot(name: string, snapshot: string): Promise<void> {
      await operate('DELETE', `${instance(name)}/snapshots/${encodeURIComponent(snapshot)}`, {
        wait: 300,
      });
    },
    /** Restores an instance's disk to a snapshot; Incus stops a running one and starts it again. */
    async restoreSnapshot(name: string, snapshot: string): Promise<void> {
      await operate('PUT', instance(name), { json: { restore: snapshot }, wait: 300 });
    },

    /**
     * Runs argv inside an instance and collects its output; never a shell string. `as` runs it
     * as that account (uid, gid, working directory); `tail` reads only the last that many bytes
     * of each stream, and marks a stream whose start was left unread as cut.
     */
    /**
     * Runs argv and reads both output logs, deleting them on every path. A command that exits
     * 126 or 127 (Incus fails the operation: "Command not found") is still a result; one still
     * running when the wait runs out is cancelled where Incus allows it and answers timedOut.
     */
    async exec(name: string, command: string[], options: ExecOptions = {}): Promise<ExecResult> {
      const as = options.as;
      const path = `${instancePath(name)}/exec`;
      const started = await request('POST', path, {
        json: {
          command,
          environment: options.environment ?? {},
          interactive: false,
          'wait-for-websocket': false,
          'record-output': true,
          ...(as ? { user: as.uid, group: as.gid, cwd: as.cwd } : {}),
        },
      });
      const opId = operationId(started, 'POST', path);
      // Where Incus records the output (also named in the finished operation's metadata).
      const logPath = (stream: string) =>
        `${instancePath(name)}/logs/exec-output/exec_${opId}.${stream}`;
      const log = async (path: string) => {
        // An output log Incus cannot hand over reads as empty, as it always has here.
        const read = await readTail(path, options.tail, { orEmpty: true });
        // Logs stay on the host until deleted; failing to delete one is not worth failing for.
        await send('DELETE', path).catch(() => undefined);
        return read;
      };
      let exitCode: number;
      let timedOut = false;
      let output: Record<string, string> = {};
      try {
        const operation = await wait(opId, options.timeout ?? 120);
        const result = parseMetadata(ExecResultSchema, operation.metadata, 'exec');
        exitCode = result.return;
        output = result.output;
      } catch (error) {
        const failed =
          error instanceof DaemonError ? EXIT_OF_FAILURE.get(error.message) : undefined;
        if (error instanceof NotFinished) {
          await send('DELETE', `1.0/operations/${encodeURIComponent(opId)}`).catch(() => undefined);
          exitCode = 124;
          timedOut = true;
        } else if (failed !== undefined) {
          exitCode = failed;
        } else {
          await Promise.all(
            ['stdout', 'stderr'].map((s) => log(logPath(s)).catch(() => undefined)),
          );
          throw error;
        }
      }
      const [stdout, stderr] = await Promise.all([
        log(output['1'] ?? logPath('stdout')),
        log(output['2'] ?? logPath('stderr')),
      ]);
      return {
        exitCode,
        stdout: stdout.text,
        stderr: stderr.text,
        ...(stdout.cut || stderr.cut ? { cut: { stdout: stdout.cut, stderr: stderr.cut } } : {}),
        ...(timedOut ? { timedOut } : {}),
      };
    },

    /**
     * The instance's console log, at most its last `tail` bytes. For a running container Incus
     * hands over what the console printed since the previous read; for a stopped one, all of it.
     */
    consoleLog: (name: string, tail?: number) =>
      readTail(`${instancePath(name)}/console?type=log`, tail),

    /** Writes a file (overwriting) with the given owner and mode. */
    async writeFile(name: string, path: string, content: string, file: FileOptions) {
      await request('POST', `${instancePath(name)}/files?path=${encodeURIComponent(path)}`, {
        body: content,
        headers: fileHeaders(file, 'file'),
      });
    },

    /** Creates a directory, or updates its owner and mode when it exists. */
    async makeDirectory(name: string, path: string, file: FileOptions) {
      await request('POST', `${instancePath(name)}/files?path=${encodeURIComponent(path)}`, {
        headers: fileHeaders(file, 'directory'),
      });
    },

    /** Reads a file with its owner and mode; not_found when it does not exist. */
    async readFile(name: string, path: string): Promise<FileContent> {
      const response = await send(
        'GET',
        `${instancePath(name)}/files?path=${encodeURIComponent(path)}`,
      );
      if (!response.ok) {
        const body = v.safeParse(Envelope, await response.json().catch(() => ({})));
        throw incusError(response.status, body.success ? body.output.error : response.statusText);
      }
      const header = (key: string) =>
        response.headers.get(`x-incus-${key}`) ?? response.headers.get(`x-lxd-${key}`) ?? '';
      return {
        content: await response.text(),
        uid: Number(header('uid') || -1),
        gid: Number(header('gid') || -1),
        mode: Number.parseInt(header('mode') || '0', 8),
      };
    },

    /** One instance as provisioning sees it: exec and files, nothing else. */
    guest(name: string): Guest {
      return {
        name,
        exec: (argv, options) => client.exec(name, argv, options),
        writeFile: (path, content, file) => client.writeFile(name, path, content, file),
        makeDirectory: (path, file) => client.makeDirectory(name, path, file),
        readFile: (path) => client.readFile(name, path),
        consoleLog: (tail) => client.consoleLog(name, tail),
      };
    },
  };
  return client;
}

function fileHeaders(file: FileOptions, type: 'file' | 'directory'): Record<string, string> {
  const headers: Record<string, string> = {
    uid: String(file.uid),
    gid: String(file.gid),
    mode: `0${file.mode.toString(8)}`,
    type,
    write: 'overwrite',
  };
  return {
    // Any form-like content type makes Incus read the body as a form and write an empty file.
    'content-type': 'application/octet-stream',
    // LXD (the socket fallback) spells the same headers X-LXD-*.
    ...Object.fromEntries(Object.entries(headers).map(([k, v]) => [`x-incus-${k}`, v])),
    ...Object.fromEntries(Object.entries(headers).map(([k, v]) => [`x-lxd-${k}`, v])),
  };
}

function parseMetadata<S extends v.GenericSchema>(schema: S, metadata: unknown, what: string) {
  const parsed = v.safeParse(schema, metadata);
  if (parsed.success) return parsed.output as v.InferOutput<S>;
  const issue = parsed.issues[0];
  const where = issue?.path?.map((p) => String(p.key)).join('.') ?? '';
  throw new DaemonError(
    'internal',
    `Incus answered ${what} with an unexpected shape (${where ? `${where}: ` : ''}${issue?.message ?? ''})`,
  );
}

/** Incus's HTTP-like status codes to our error kinds; the message stays Incus's own. */
/** How Incus 6.0 words a wait that ran out. */
const DEADLINE = /context deadline exceeded/i;

/** An operation still running when its wait ran out: unavailable (503), and exec tells it apart. */
class NotFinished extends DaemonError {
  constructor(seconds: number) {
    super(
      'unavailable',
      `Incus operation did not finish within ${seconds} s; it may still complete`,
    );
  }
}

/** The errors Incus ends an exec operation with when the command exits 126 or 127. */
const EXIT_OF_FAILURE = new Map([
  ['Command not executable', 126],
  ['Command not found', 127],
]);

export function incusError(code: number, message: string): DaemonError {
  const busy = busyError(message);
  if (busy) return busy;
  const kind = code === 404 ? 'not_found' : code === 409 ? 'conflict' : 'internal';
  return new DaemonError(kind, message || `Incus error ${code}`);
}

/**
 * Incus refuses to act on an instance while another operation holds it ("Instance is busy
 * running a "start" operation"): it passes, so a 409 (Aborted, as gRPC names a lost race) with when to try again.
 */
export function busyError(message: string): DaemonError | undefined {
  const busy = /instance is busy running an? "?([\w-]+)"? operation/i.exec(message);
  if (!busy) return undefined;
  return new DaemonError(
    'busy',
    `the container is busy: Incus is running a ${busy[1]} operation on it; try again when it has finished (${clip(message, 300)})`,
  );
}
