// What the end-to-end tests read straight from Incus over its unix socket, independently of the
// daemon's own Incus client: instances, exec output and files. Never a container's IP address.

export const INCUS_SOCKET = '/var/lib/incus/unix.socket';

type Envelope = {
  type: 'sync' | 'async' | 'error';
  error_code?: number;
  error?: string;
  metadata?: unknown;
};

export type IncusInstance = {
  name: string;
  status: string;
  config: Record<string, string>;
  expanded_devices: Record<string, Record<string, string>>;
};

export type IncusState = {
  status: string;
  network: Record<
    string,
    { addresses: { family: string; address: string; scope: string }[] }
  > | null;
};

const call = (method: string, path: string, body?: unknown) =>
  fetch(`http://incus${path}`, {
    method,
    unix: INCUS_SOCKET,
    ...(body === undefined
      ? {}
      : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });

/** One Incus call: HTTP status and the envelope's metadata (or its error text). */
export async function incus<T = unknown>(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; metadata: T; error: string }> {
  const response = await call(method, path, body);
  const envelope = (await response.json()) as Envelope;
  return { status: response.status, metadata: envelope.metadata as T, error: envelope.error ?? '' };
}

/** Waits for an async operation; returns its final metadata. */
async function settle(operation: unknown, seconds = 120) {
  const id = (operation as { id?: string } | undefined)?.id;
  if (!id) return undefined;
  const done = await incus<{ status_code: number; err: string; metadata: unknown }>(
    'GET',
    `/1.0/operations/${id}/wait?timeout=${seconds}`,
  );
  return done.metadata;
}

export async function instance(name: string) {
  return incus<IncusInstance>('GET', `/1.0/instances/${encodeURIComponent(name)}`);
}

export async function instanceState(name: string): Promise<IncusState> {
  const found = await incus<IncusState>('GET', `/1.0/instances/${encodeURIComponent(name)}/state`);
  if (found.status !== 200) throw new Error(`Incus state of ${name}: ${found.error}`);
  return found.metadata;
}

/** eth0's IPv4 address as Incus sees it, or '' when it has none. */
export async function ipv4(name: string): Promise<string> {
  const state = await instanceState(name);
  return state.network?.eth0?.addresses.find((a) => a.family === 'inet')?.address ?? '';
}

/** Runs argv in the container (no shell) through the exec API with recorded output. */
export async function exec(name: string, command: string[]) {
  const started = await incus('POST', `/1.0/instances/${encodeURIComponent(name)}/exec`, {
    command,
    environment: {},
    interactive: false,
    'wait-for-websocket': false,
    'record-output': true,
  });
  if (started.status >= 400) throw new Error(`Incus exec in ${name}: ${started.error}`);
  const done = (await settle(started.metadata)) as
    | {
        status_code: number;
        err: string;
        metadata: { return: number; output: Record<string, string> };
      }
    | undefined;
  if (done?.status_code !== 200) {
    throw new Error(
      `Incus exec ${command.join(' ')} in ${name} failed: ${done?.err ?? 'no operation'}`,
    );
  }
  const read = async (path: string | undefined) => {
    if (!path) return '';
    const text = await (await call('GET', path)).text();
    await call('DELETE', path);
    return text;
  };
  return {
    exitCode: done.metadata.return,
    stdout: await read(done.metadata.output['1']),
    stderr: await read(done.metadata.output['2']),
  };
}

/** Reads a file with the owner and mode Incus reports for it. */
export async function readFile(name: string, path: string) {
  const response = await call(
    'GET',
    `/1.0/instances/${encodeURIComponent(name)}/files?path=${encodeURIComponent(path)}`,
  );
  if (!response.ok) throw new Error(`Incus file ${path} in ${name}: HTTP ${response.status}`);
  const header = (key: string) => response.headers.get(`x-incus-${key}`) ?? '';
  return {
    content: await response.text(),
    uid: Number(header('uid')),
    gid: Number(header('gid')),
    mode: Number.parseInt(header('mode'), 8),
  };
}

/** Force-stops and deletes an instance if it exists; for cleanup, so it never throws. */
export async function removeInstance(name: string): Promise<string | undefined> {
  const path = `/1.0/instances/${encodeURIComponent(name)}`;
  try {
    for (let attempt = 1; attempt <= 10; attempt++) {
      const found = await instance(name);
      if (found.status === 404) return undefined;
      if (found.metadata.status !== 'Stopped') {
        const stop = await incus('PUT', `${path}/state`, {
          action: 'stop',
          force: true,
          timeout: 30,
        });
        await settle(stop.metadata, 60);
      }
      const deleted = await incus('DELETE', path);
      const result = (await settle(deleted.metadata, 60)) as { status_code?: number } | undefined;
      if (deleted.status < 400 && (result === undefined || result.status_code === 200)) {
        return undefined;
      }
      await Bun.sleep(500);
    }
    return `could not delete ${name}`;
  } catch (error) {
    return `could not delete ${name}: ${error instanceof Error ? error.message : String(error)}`;
  }
}
