import { describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as v from 'valibot';
import type { DaemonError } from '../../src/daemon/errors.ts';
import { createIncusClient, defaultSocket, instancePath } from '../../src/daemon/incus.ts';
import { countingFetch } from '../support/counting-fetch.ts';
import { rejection } from '../support/rejection.ts';
import { failure, fakeIncus, finished, fixture, started, sync } from './incus-fake.ts';

describe('instance paths', () => {
  test('one builder for the client and the backend: the name is encoded as one segment', () => {
    expect(instancePath('alice-container')).toBe('1.0/instances/alice-container');
    expect(instancePath('a/b?c#d')).toBe('1.0/instances/a%2Fb%3Fc%23d');
  });
});

describe('envelopes and errors', () => {
  test('sync metadata is validated and returned; every call goes through the fetch given', async () => {
    await using incus = fakeIncus({ 'GET /1.0': async () => sync(await fixture('server')) });
    const counting = countingFetch();
    const client = createIncusClient({ socket: incus.socket, fetch: counting.fetch });
    const server = await client.get(
      '1.0',
      v.object({ environment: v.object({ server_name: v.string() }) }),
    );
    expect(server.environment.server_name).toBe('vm');
    await client.request('GET', '/1.0');
    expect(counting.calls).toBe(2);
    expect(incus.seen.map((s) => s.path)).toEqual(['/1.0', '/1.0']);
  });

  test.each([
    [404, 'Instance not found', 'not_found'],
    [409, 'Instance "a-container" already exists', 'conflict'],
    [500, 'Failed to load instance', 'internal'],
    [403, 'not authorized', 'internal'],
  ])('Incus %p becomes %p with Incus message', async (code, message, kind) => {
    await using incus = fakeIncus({ 'GET /1.0/instances/a': () => failure(code, message) });
    const client = createIncusClient({ socket: incus.socket });
    const error = await rejection(client.request('GET', '1.0/instances/a'));
    expect(error.kind).toBe(kind as DaemonError['kind']);
    expect(error.message).toBe(message);
  });

  test('Incus busy with another operation is a 409 Aborted to retry, sync or as an operation', async () => {
    const busy = 'Instance is busy running a "start" operation';
    await using incus = fakeIncus({
      'PATCH /1.0/instances/a': () =>
        failure(500, `Failed to create instance update operation: ${busy}`),
      'DELETE /1.0/instances/a': () => started('op'),
      'GET /1.0/operations/op/wait': () =>
        sync({
          id: 'op',
          status: 'Failure',
          status_code: 400,
          err: `Failed to create instance delete operation: ${busy}`,
          metadata: null,
        }),
    });
    const client = createIncusClient({ socket: incus.socket });
    for (const call of [
      client.request('PATCH', '1.0/instances/a', { json: {} }),
      client.operate('DELETE', '1.0/instances/a'),
    ]) {
      const error = await rejection(call);
      expect(error.kind).toBe('busy');
      expect(error.status).toBe(409);
      expect(error.message).toStartWith(
        'the container is busy: Incus is running a start operation on it; try again when it has finished (Failed to create instance ',
      );
    }
  });

  test('the real not-found body maps to not_found', async () => {
    const body = await Bun.file(`${import.meta.dir}/../fixtures/incus/error-not-found.json`).json();
    await using incus = fakeIncus({
      'GET /1.0/instances/x': () => Response.json(body, { status: 404 }),
    });
    const error = await rejection(
      createIncusClient({ socket: incus.socket }).request('GET', '1.0/instances/x'),
    );
    expect(error.kind).toBe('not_found');
  });

  test('a body that is not an Incus envelope is an internal error naming the call', async () => {
    await using incus = fakeIncus({
      'GET /1.0': () => new Response('<html>proxy</html>', { status: 502 }),
    });
    const error = await rejection(
      createIncusClient({ socket: incus.socket }).request('GET', '1.0'),
    );
    expect(error.kind).toBe('internal');
    expect(error.message).toContain('GET 1.0');
    expect(error.message).toContain('502');
  });

  test('metadata of the wrong shape is an internal error, not a crash later', async () => {
    await using incus = fakeIncus({ 'GET /1.0': () => sync({ environment: 'nope' }) });
    const client = createIncusClient({ socket: incus.socket });
    const error = await rejection(client.get('1.0', v.object({ environment: v.object({}) })));
    expect(error.kind).toBe('internal');
    expect(error.message).toContain('environment');
  });
});

describe('response size cap', () => {
  /** A valid envelope of 17 MiB: a list with one long name. */
  const huge = () =>
    JSON.stringify({ type: 'sync', metadata: [{ name: 'x'.repeat(17 * 2 ** 20) }] });

  test('an answer over 16 MiB is an internal error naming Incus, the call and the cap', async () => {
    await using incus = fakeIncus({ 'GET /1.0/instances': () => new Response(huge()) });
    const error = await rejection(
      createIncusClient({ socket: incus.socket }).request('GET', '1.0/instances?recursion=2'),
    );
    expect(error.kind).toBe('internal');
    expect(error.message).toBe(
      'Incus answered GET 1.0/instances?recursion=2 with more than 16 MiB, the most the daemon reads of one Incus response',
    );
  });

  test('without a Content-Length the cap holds too, and the stream is not read to its end', async () => {
    const chunk = new TextEncoder().encode('x'.repeat(2 ** 20));
    let pulled = 0;
    await using incus = fakeIncus({
      'GET /1.0/instances/a/files': () =>
        new Response(
          new ReadableStream({
            pull(controller) {
              // 64 MiB on offer; the client stops soon after 16.
              if (pulled++ < 64) controller.enqueue(chunk);
              else controller.close();
            },
          }),
        ),
    });
    const client = createIncusClient({ socket: incus.socket });
    const error = await rejection(client.readFile('a', '/var/log/big'));
    expect(error.kind).toBe('internal');
    expect(error.message).toStartWith('Incus answered GET 1.0/instances/a/files?path=');
    expect(error.message).toEndWith(
      'with more than 16 MiB, the most the daemon reads of one Incus response',
    );
    expect(pulled).toBeLessThan(64);
  });
});

describe('socket choice', () => {
  test("Incus's socket when it exists, else LXD's when that exists, else Incus's", () => {
    const dir = mkdtempSync(join(tmpdir(), 'incus-sockets-'));
    const [incus, lxd] = [join(dir, 'incus.socket'), join(dir, 'lxd.socket')];
    try {
      expect(defaultSocket([incus, lxd])).toBe(incus);
      writeFileSync(lxd, '');
      expect(defaultSocket([incus, lxd])).toBe(lxd);
      writeFileSync(incus, '');
      expect(defaultSocket([incus, lxd])).toBe(incus);
      expect(createIncusClient({ socket: lxd }).target).toBe(lxd);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('unreachable Incus', () => {
  test('a missing socket is unavailable, naming the socket', async () => {
    const socket = join(tmpdir(), `no-incus-${process.pid}`, 'unix.socket');
    const counting = countingFetch();
    const client = createIncusClient({ socket, fetch: counting.fetch });
    const error = await rejection(client.request('GET', '1.0'));
    expect(error.kind).toBe('unavailable');
    expect(error.message).toStartWith(`Incus is not reachable at ${socket}: `);
    expect(counting.calls).toBe(1);
  });

  test('a path that is not a listening socket is unavailable too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'incus-stale-'));
    const socket = join(dir, 'unix.socket');
    writeFileSync(socket, '');
    try {
      const error = await rejection(createIncusClient({ socket }).request('GET', '1.0'));
      expect(error.kind).toBe('unavailable');
      expect(error.message).toContain(socket);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a refused HTTPS connection is unavailable, naming the URL', async () => {
    const url = 'https://127.0.0.1:1';
    const error = await rejection(
      createIncusClient({ url, cert: 'x', key: 'y' }).request('GET', '1.0'),
    );
    expect(error.kind).toBe('unavailable');
    expect(error.message).toStartWith(`Incus is not reachable at ${url}: `);
  });
});

describe('operations', () => {
  test('an async call is waited for with a timeout', async () => {
    await using incus = fakeIncus({
      'PUT /1.0/instances/a/state': () => started('op1'),
      'GET /1.0/operations/op1/wait': () => finished('op1'),
    });
    const client = createIncusClient({ socket: incus.socket });
    const operation = await client.operate('PUT', '1.0/instances/a/state', {
      json: { action: 'start' },
      wait: 7,
    });
    expect(operation?.status).toBe('Success');
    expect(incus.calls('GET', '/1.0/operations/op1/wait')[0]?.search).toBe('?timeout=7');
    expect(JSON.parse(incus.seen[0]?.body ?? '')).toEqual({ action: 'start' });
  });

  test("a failed operation throws the operation's error text", async () => {
    // What Incus 6.0 really answers when waiting on a failed create (captured on this machine).
    const err =
      'Failed creating instance record: Add instance info to the database: Failed to create "instances" entry: UNIQUE constraint failed: instances.project_id, instances.name';
    await using incus = fakeIncus({
      'POST /1.0/instances': () => started('op2'),
      'GET /1.0/operations/op2/wait': () => failure(500, err),
    });
    const error = await rejection(
      createIncusClient({ socket: incus.socket }).operate('POST', '1.0/instances', { json: {} }),
    );
    expect(error.message).toBe(err);
  });

  test('an operation still running after the wait is reported as not finished', async () => {
    await using incus = fakeIncus({
      'POST /1.0/instances': () => started('op3'),
      'GET /1.0/operations/op3/wait': () =>
        sync({ id: 'op3', status: 'Running', status_code: 103, err: '', metadata: null }),
    });
    const error = await rejection(
      createIncusClient({ socket: incus.socket }).operate('POST', '1.0/instances', { wait: 1 }),
    );
    expect(error.kind).toBe('unavailable');
    expect(error.message).toContain('did not finish within 1 s');
  });
});

describe('exec and files', () => {
  test('exec posts argv without websockets, reads both logs, then deletes them', async () => {
    const op = await fixture('exec-operation');
    const [stdoutPath, stderrPath] = [op.metadata.output['1'], op.metadata.output['2']];
    await using incus = fakeIncus({
      'POST /1.0/instances/zprobe1-container/exec': () => started(op.id),
      [`GET /1.0/operations/${op.id}/wait`]: () => sync(op),
      [`GET ${stdoutPath}`]: () => new Response('hi\n'),
      [`GET ${stderrPath}`]: () => new Response('err\n'),
      [`DELETE ${stdoutPath}`]: () => sync({}),
      [`DELETE ${stderrPath}`]: () => sync({}),
    });
    const client = createIncusClient({ socket: incus.socket });
    const result = await client.exec('zprobe1-container', ['sh', '-c', 'exit 3'], {
      environment: { A: 'b' },
    });
    expect(result).toEqual({ exitCode: 3, stdout: 'hi\n', stderr: 'err\n' });
    expect(JSON.parse(incus.seen[0]?.body ?? '')).toEqual({
      command: ['sh', '-c', 'exit 3'],
      environment: { A: 'b' },
      interactive: false,
      'wait-for-websocket': false,
      'record-output': true,
    });
    expect(incus.calls('DELETE', '/1.0/instances/zprobe1-container/logs').length).toBe(2);
    expect(incus.seen.length).toBe(6);
  });

  test('files are written raw with owner, mode, type and overwrite headers', async () => {
    await using incus = fakeIncus({ 'POST /1.0/instances/a/files': () => sync({}) });
    const client = createIncusClient({ socket: incus.socket });
    await client.writeFile('a', '/home/u/.ssh/authorized_keys', 'key\n', {
      uid: 1000,
      gid: 1001,
      mode: 0o600,
    });
    await client.makeDirectory('a', '/home/u/.ssh', { uid: 1000, gid: 1001, mode: 0o700 });
    const [file, dir] = incus.seen;
    expect(file?.search).toBe(`?path=${encodeURIComponent('/home/u/.ssh/authorized_keys')}`);
    expect(file?.body).toBe('key\n');
    expect(
      Object.fromEntries(
        [...(file?.headers ?? [])].filter(([k]) => k.startsWith('x-incus') || k === 'content-type'),
      ),
    ).toEqual({
      'content-type': 'application/octet-stream',
      'x-incus-uid': '1000',
      'x-incus-gid': '1001',
      'x-incus-mode': '0600',
      'x-incus-type': 'file',
      'x-incus-write': 'overwrite',
    });
    // The same headers in LXD's spelling, for the LXD socket fallback.
    expect(file?.headers.get('x-lxd-mode')).toBe('0600');
    expect(dir?.headers.get('x-incus-type')).toBe('directory');
    expect(dir?.headers.get('x-incus-mode')).toBe('0700');
  });

  test('readFile returns content with owner and octal mode; a missing file is not_found', async () => {
    await using incus = fakeIncus({
      'GET /1.0/instances/a/files': (seen) =>
        seen.search.includes('passwd')
          ? new Response('root:x:0:0::/root:/bin/sh\n', {
              headers: { 'x-incus-uid': '0', 'x-incus-gid': '0', 'x-incus-mode': '0644' },
            })
          : failure(404, 'Not Found'),
    });
    const client = createIncusClient({ socket: incus.socket });
    expect(await client.readFile('a', '/etc/passwd')).toEqual({
      content: 'root:x:0:0::/root:/bin/sh\n',
      uid: 0,
      gid: 0,
      mode: 0o644,
    });
    expect((await rejection(client.readFile('a', '/nope'))).kind).toBe('not_found');
  });
});

describe('remote Incus over HTTPS with a client certificate', () => {
  test('the client certificate and CA reach Bun fetch through ky', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'incus-tls-'));
    const openssl = (...args: string[]) => {
      const result = Bun.spawnSync(['openssl', ...args], { cwd: dir, stderr: 'pipe' });
      if (result.exitCode !== 0) throw new Error(result.stderr.toString());
    };
    const selfSigned = (name: string, cn: string) =>
      openssl(
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        `${name}.key`,
        '-out',
        `${name}.crt`,
        '-days',
        '1',
        '-subj',
        `/CN=${cn}`,
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      );
    selfSigned('server', '127.0.0.1');
    selfSigned('client', 'containarium');
    const read = (file: string) => Bun.file(join(dir, file)).text();
    const [serverCert, serverKey, clientCert, clientKey] = await Promise.all(
      ['server.crt', 'server.key', 'client.crt', 'client.key'].map(read),
    );
    const server = Bun.serve({
      port: 0,
      hostname: '127.0.0.1',
      // Like Incus: only clients presenting the trusted certificate get in.
      tls: {
        cert: serverCert,
        key: serverKey,
        ca: clientCert,
        requestCert: true,
        rejectUnauthorized: true,
      },
      fetch: () => sync({ environment: { server_name: 'remote' } }),
    });
    try {
      const url = `https://127.0.0.1:${server.port}`;
      const client = createIncusClient({
        url,
        cert: clientCert as string,
        key: clientKey as string,
        ca: serverCert as string,
      });
      expect(client.local).toBe(false);
      const info = await client.get(
        '1.0',
        v.object({ environment: v.object({ server_name: v.string() }) }),
      );
      expect(info.environment.server_name).toBe('remote');
      // Without a client certificate the same server refuses us.
      const anonymous = createIncusClient({ url, cert: '', key: '', ca: serverCert as string });
      expect((await rejection(anonymous.request('GET', '1.0'))).kind).toBe('unavailable');
    } finally {
      await server.stop(true);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
