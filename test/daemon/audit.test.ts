import { afterAll, describe, expect, test } from 'bun:test';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { serve } from '../../src/daemon/app.ts';
import {
  type AuditSink,
  auditEntry,
  createAuditLog,
  openAuditFile,
  requestIdOf,
} from '../../src/daemon/audit.ts';
import { createAuthenticator } from '../../src/daemon/auth.ts';
import { parseCommandLine } from '../../src/daemon/cli.ts';
import { ROUTES } from '../../src/daemon/routes/index.ts';
import { signToken } from '../../src/shared/jwt.ts';
import { sshKeyFingerprint } from '../../src/shared/ssh-key.ts';
import { sshKeygen } from '../support/keys.ts';
import { MemoryBackend } from '../support/memory-backend.ts';

const ROOT = resolve(import.meta.dir, '../..');
const SECRET = 'k8Q2v9ZrX4mN7pL1sT6wY3bH5jD0gF2c';
const dir = mkdtempSync(join(tmpdir(), 'audit-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A fresh ed25519 public key and the fingerprint ssh-keygen -l prints for it. */
function realKey(): { key: string; fingerprint: string } {
  const file = join(dir, `key-${crypto.randomUUID()}`);
  const key = sshKeygen(file, 'alice@laptop');
  expect(key).toBeDefined();
  const listed = Bun.spawnSync(['ssh-keygen', '-l', '-f', `${file}.pub`]).stdout.toString();
  return { key: key as string, fingerprint: listed.split(' ')[1] as string };
}

const jtiOf = (token: string): string =>
  (
    JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()) as {
      jti: string;
    }
  ).jti;

const linesOf = (file: string) =>
  readFileSync(file, 'utf8')
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);

describe('sshKeyFingerprint', () => {
  test('is what ssh-keygen -l prints', () => {
    const { key, fingerprint } = realKey();
    expect(fingerprint).toStartWith('SHA256:');
    expect(sshKeyFingerprint(key)).toBe(fingerprint);
    expect(sshKeyFingerprint(`  ${key.split(' ').slice(0, 2).join(' ')}  `)).toBe(fingerprint);
  });

  test('is undefined for something that is not a key', () => {
    expect(sshKeyFingerprint('ssh-ed25519 not-base64!')).toBeUndefined();
  });
});

describe('openAuditFile', () => {
  test('creates the file readable by its owner alone and appends to it', async () => {
    const file = join(dir, 'new.log');
    const sink = openAuditFile(file);
    await sink('one\n');
    await openAuditFile(file)('two\n');
    expect(readFileSync(file, 'utf8')).toBe('one\ntwo\n');
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  test('refuses a file others can read, and changes nothing in it', () => {
    const file = join(dir, 'open.log');
    writeFileSync(file, 'kept\n');
    chmodSync(file, 0o640);
    expect(() => openAuditFile(file)).toThrow(
      `can be read by other users (mode 640); run chmod 600 ${file}`,
    );
    expect(readFileSync(file, 'utf8')).toBe('kept\n');
  });

  test('throws with the system code when the folder does not exist', () => {
    expect(() => openAuditFile(join(dir, 'missing', 'audit.log'))).toThrow(
      expect.objectContaining({ code: 'ENOENT' }),
    );
  });
});

describe('createAuditLog', () => {
  const facts = (method: string, path: string, status: number) => ({
    request: new Request(`http://127.0.0.1${path}`, { method }),
    address: '192.0.2.1',
    requestId: 'r1',
    response: new Response('{}', { status }),
    durationMs: 3,
  });

  test('writes mutating requests in order, skips reads', async () => {
    const written: string[] = [];
    const sink: AuditSink = async (line) => {
      written.push(line);
    };
    const audit = createAuditLog(sink, { log: () => {}, routes: ROUTES });
    audit.record(facts('DELETE', '/v1/containers/alice', 200));
    audit.record(facts('GET', '/v1/containers/alice', 200));
    audit.record(facts('DELETE', '/v1/containers/bob', 200));
    await audit.flushed();
    expect(written.map((line) => JSON.parse(line).targetUser)).toEqual(['alice', 'bob']);
  });

  test('a failing sink never throws to the request and is logged once', async () => {
    const logged: string[] = [];
    const sink: AuditSink = async () => {
      throw new Error('disk full');
    };
    const audit = createAuditLog(sink, { log: (line) => logged.push(line), routes: ROUTES });
    audit.record(facts('POST', '/v1/containers', 200));
    audit.record(facts('POST', '/v1/containers', 200));
    await audit.flushed();
    expect(logged).toEqual([
      'audit log: cannot write (disk full); further failures are not logged',
    ]);
  });

  test('a target that is not shaped like a username is not copied into the file', () => {
    const key =
      'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me';
    const entry = auditEntry(
      {
        ...facts('POST', '/v1/containers', 400),
        body: new TextEncoder().encode(JSON.stringify({ username: key })),
      },
      ROUTES,
      new Date(0),
    );
    expect(entry?.targetUser).toBe('(not a username)');
    expect(JSON.stringify(entry)).not.toContain('AAAAC3NzaC1lZDI1NTE5');
  });

  test('an unmatched path has no route and no target', () => {
    const entry = auditEntry(facts('POST', '/v1/nothing', 404), ROUTES, new Date(0));
    expect(entry).toMatchObject({ route: null, targetUser: null, outcome: 'error', status: 404 });
  });
});

describe('requestIdOf', () => {
  const withId = (id: string) =>
    requestIdOf(new Request('http://x/', { headers: { 'X-Request-Id': id } }));
  test('keeps a short plain token, replaces anything else with a fresh UUID', () => {
    expect(withId('abc-123_x.y:z')).toBe('abc-123_x.y:z');
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
    expect(withId('has space')).toMatch(uuid);
    expect(withId('x'.repeat(65))).toMatch(uuid);
    expect(withId('{"forged":1}')).toMatch(uuid);
    expect(requestIdOf(new Request('http://x/'))).toMatch(uuid);
  });
});

describe('the audit file through the real app', () => {
  test('a create, an SSH key add, a delete and a failed login, each with its fields', async () => {
    const file = join(dir, 'app.log');
    const logged: string[] = [];
    const log = (line: string) => logged.push(line);
    const audit = createAuditLog(openAuditFile(file), { log, routes: ROUTES });
    const server = serve({
      backend: new MemoryBackend(),
      auth: createAuthenticator({ secret: SECRET, log }),
      hostname: '127.0.0.1',
      port: 0,
      log,
      audit,
      trustedProxies: [{ bytes: [127, 0, 0, 1], bits: 32 }],
    });
    const base = `http://127.0.0.1:${server.port}`;
    const { token: admin } = await signToken({
      username: 'ops',
      roles: ['admin', 'oncall'],
      lifetimeMs: 60_000,
      secret: SECRET,
    });
    const { key, fingerprint } = realKey();
    const blob = key.split(' ')[1] as string;
    const call = (method: string, path: string, body?: unknown, headers = {}) =>
      fetch(`${base}${path}`, {
        method,
        headers: {
          Authorization: `Bearer ${admin}`,
          'Content-Type': 'application/json',
          ...headers,
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    const ids: string[] = [];
    try {
      const created = await call(
        'POST',
        '/v1/containers',
        { username: 'alice' },
        {
          'X-Request-Id': 'create-1',
          'X-Forwarded-For': '203.0.113.9',
        },
      );
      expect(created.status).toBe(200);
      expect(created.headers.get('x-request-id')).toBe('create-1');
      const added = await call('POST', '/v1/containers/alice/ssh-keys', { sshPublicKey: key });
      expect(added.status).toBe(200);
      ids.push(added.headers.get('x-request-id') as string);
      expect((await call('GET', '/v1/containers/alice')).status).toBe(200);
      const missing = await call('DELETE', '/v1/containers/nobody');
      expect(missing.status).toBe(404);
      // The audit read a copy of the body for its code; the caller still gets all of it.
      expect(await missing.json()).toMatchObject({
        code: 404,
        error: expect.stringMatching(/^rpc error: code = NotFound desc = /),
      });
      expect((await call('DELETE', '/v1/containers/alice')).status).toBe(200);
      const refused = await fetch(`${base}/v1/containers/alice`, {
        method: 'DELETE',
        headers: { Authorization: `Bearer ${admin}x` },
      });
      expect(refused.status).toBe(401);
      const anonymous = await fetch(`${base}/v1/containers`);
      expect(anonymous.status).toBe(401);
    } finally {
      await server.stop(true);
    }
    await audit.flushed();

    expect(statSync(file).mode & 0o777).toBe(0o600);
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain(admin);
    expect(text).not.toContain(admin.split('.')[2] as string);
    expect(text).not.toContain(blob);
    expect(text).not.toContain(SECRET);

    const lines = linesOf(file);
    const who = { subject: 'ops', roles: ['admin', 'oncall'], tokenId: jtiOf(admin) };
    expect(lines.map((line) => Object.keys(line))[0]).toEqual([
      'time',
      'requestId',
      'subject',
      'roles',
      'tokenId',
      'source',
      'method',
      'route',
      'targetUser',
      'outcome',
      'status',
      'durationMs',
    ]);
    for (const line of lines) {
      expect(Date.parse(line.time as string)).not.toBeNaN();
      expect(line.durationMs).toBeNumber();
    }
    expect(lines).toHaveLength(6); // the GET is not audited
    expect(lines[0]).toMatchObject({
      ...who,
      requestId: 'create-1',
      source: '203.0.113.9',
      method: 'POST',
      route: 'POST /v1/containers',
      targetUser: 'alice',
      outcome: 'ok',
      status: 200,
    });
    expect(lines[1]).toMatchObject({
      ...who,
      requestId: ids[0],
      source: '127.0.0.1',
      route: 'POST /v1/containers/{username}/ssh-keys',
      targetUser: 'alice',
      outcome: 'ok',
      sshKeys: [fingerprint],
      status: 200,
    });
    expect(lines[2]).toMatchObject({
      ...who,
      route: 'DELETE /v1/containers/{username}',
      targetUser: 'nobody',
      outcome: 'error',
      code: 'NotFound',
      status: 404,
    });
    expect(lines[3]).toMatchObject({
      ...who,
      route: 'DELETE /v1/containers/{username}',
      targetUser: 'alice',
      outcome: 'ok',
      status: 200,
    });
    expect(lines[4]).toMatchObject({
      subject: null,
      roles: [],
      tokenId: null,
      method: 'DELETE',
      route: 'DELETE /v1/containers/{username}',
      targetUser: 'alice',
      outcome: 'refused',
      reason: 'invalid token',
      status: 401,
    });
    expect(lines[5]).toMatchObject({
      subject: null,
      method: 'GET',
      route: 'GET /v1/containers',
      outcome: 'refused',
      reason: 'missing header',
      status: 401,
    });
    expect(logged.join('\n')).not.toContain('audit log: cannot write');
  });

  test('a create with keys and a key removal log fingerprints, never the key', async () => {
    const file = join(dir, 'remove.log');
    const audit = createAuditLog(openAuditFile(file), { log: () => {}, routes: ROUTES });
    const backend = new MemoryBackend();
    const server = serve({
      backend,
      auth: createAuthenticator({ secret: SECRET }),
      hostname: '127.0.0.1',
      port: 0,
      audit,
    });
    const { token } = await signToken({
      username: 'bob',
      roles: ['user'],
      lifetimeMs: 60_000,
      secret: SECRET,
    });
    const { key, fingerprint } = realKey();
    const call = (method: string, path: string, body?: unknown) =>
      fetch(`http://127.0.0.1:${server.port}${path}`, {
        method,
        headers: { Authorization: `Bearer ${token}` },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    try {
      expect(
        (await call('POST', '/v1/containers', { username: 'bob', sshKeys: [key, key] })).status,
      ).toBe(200);
      const removed = await call(
        'DELETE',
        `/v1/containers/bob/ssh-keys/${encodeURIComponent(key)}`,
      );
      expect(removed.status).toBe(200);
      expect((await call('DELETE', '/v1/containers/carol')).status).toBe(403);
    } finally {
      await server.stop(true);
    }
    await audit.flushed();
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain(key.split(' ')[1] as string);
    const lines = linesOf(file);
    expect(lines[0]).toMatchObject({ route: 'POST /v1/containers', sshKeys: [fingerprint] });
    expect(lines[1]).toMatchObject({
      subject: 'bob',
      roles: ['user'],
      route: 'DELETE /v1/containers/{username}/ssh-keys/{key}',
      targetUser: 'bob',
      sshKeys: [fingerprint],
      outcome: 'ok',
    });
    expect(lines[2]).toMatchObject({
      targetUser: 'carol',
      outcome: 'refused',
      code: 'PermissionDenied',
      status: 403,
    });
  });
});

describe('refused logins', () => {
  test('a wrong scheme and a lock-out are logged by category, never with the credentials', async () => {
    const file = join(dir, 'lockout.log');
    const audit = createAuditLog(openAuditFile(file), { log: () => {}, routes: ROUTES });
    const server = serve({
      backend: new MemoryBackend(),
      auth: createAuthenticator({ secret: SECRET, maxFailures: 1 }),
      hostname: '127.0.0.1',
      port: 0,
      audit,
    });
    const attempt = (authorization: string) =>
      fetch(`http://127.0.0.1:${server.port}/v1/containers`, {
        method: 'POST',
        headers: { Authorization: authorization },
        body: '{"username":"alice"}',
      });
    try {
      expect((await attempt('Basic b3BzOmh1bnRlcjI=')).status).toBe(401);
      expect((await attempt('Bearer guessed.token.value')).status).toBe(429);
    } finally {
      await server.stop(true);
    }
    await audit.flushed();
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain('b3BzOmh1bnRlcjI');
    expect(text).not.toContain('guessed');
    expect(linesOf(file)).toMatchObject([
      { route: 'POST /v1/containers', outcome: 'refused', reason: 'bad scheme', status: 401 },
      { route: 'POST /v1/containers', outcome: 'refused', reason: 'locked out', status: 429 },
    ]);
  });
});

describe('--audit-log on the command line', () => {
  const base = ['daemon', '--rest', '--jwt-secret', SECRET];
  test('is in --help with its variable', () => {
    const help = parseCommandLine(['daemon', '--help']);
    expect(help.kind === 'help' && help.text).toContain('--audit-log FILE');
    expect(help.kind === 'help' && help.text).toContain('CONTAINARIUM_AUDIT_LOG');
  });

  test('is undefined unless given; CONTAINARIUM_AUDIT_LOG wins over the flag', () => {
    expect(parseCommandLine(base)).toMatchObject({ auditLog: undefined });
    expect(parseCommandLine([...base, '--audit-log', '-'])).toMatchObject({ auditLog: '-' });
    expect(
      parseCommandLine([...base, '--audit-log=/a'], { CONTAINARIUM_AUDIT_LOG: '/b' }),
    ).toMatchObject({ auditLog: '/b' });
    expect(() => parseCommandLine([...base, '--audit-log', ' '])).toThrow(
      '--audit-log needs a file name',
    );
  });

  const run = (file: string) =>
    Bun.spawnSync(
      [
        'bun',
        resolve(ROOT, 'src/daemon/main.ts'),
        ...base,
        '--audit-log',
        file,
        '--http-port',
        '0',
      ],
      // A daemon that started anyway is killed rather than left running.
      { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' }, timeout: 30_000 },
    );

  test('"-" writes the lines to stderr, beside the log, from the real daemon', async () => {
    const proc = Bun.spawn(
      [
        'bun',
        resolve(ROOT, 'src/daemon/main.ts'),
        ...base,
        '--audit-log',
        '-',
        '--address',
        '127.0.0.1',
        '--http-port',
        '0',
        // A socket that does not exist keeps the test off any real Incus.
        '--incus-socket',
        join(dir, 'no-incus.socket'),
      ],
      {
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' },
        stdout: 'pipe',
        stderr: 'pipe',
      },
    );
    let stderr = '';
    const decoder = new TextDecoder();
    const reader = proc.stderr.getReader();
    const readUntil = async (pattern: RegExp) => {
      const deadline = Date.now() + 20_000;
      while (!pattern.test(stderr) && Date.now() < deadline) {
        const { value, done } = await reader.read();
        if (done) break;
        stderr += decoder.decode(value);
      }
      return pattern.exec(stderr);
    };
    try {
      const port = (await readUntil(/listening on http:\/\/127\.0\.0\.1:(\d+)/))?.[1];
      expect(port).toBeDefined();
      const refused = await fetch(`http://127.0.0.1:${port}/v1/containers/alice`, {
        method: 'DELETE',
        headers: { Authorization: 'Bearer not-a-token' },
      });
      expect(refused.status).toBe(401);
      const line = (await readUntil(/^\{.*\}$/m))?.[0];
      expect(JSON.parse(line ?? '{}')).toMatchObject({
        requestId: refused.headers.get('x-request-id'),
        source: '127.0.0.1',
        route: 'DELETE /v1/containers/{username}',
        targetUser: 'alice',
        outcome: 'refused',
        reason: 'invalid token',
        status: 401,
      });
      expect(stderr).not.toContain('not-a-token');
    } finally {
      proc.kill('SIGTERM');
      await proc.exited;
    }
  });

  test('a file others can read stops the daemon with the chmod 600 fix', () => {
    const file = join(dir, 'readable.log');
    writeFileSync(file, '');
    chmodSync(file, 0o644);
    const proc = run(file);
    expect(proc.exitCode).toBe(1);
    expect(proc.stderr.toString()).toBe(
      `containarium: --audit-log ${file} can be read by other users (mode 644); run chmod 600 ${file}\n`,
    );
  });

  test('a path that cannot be opened stops the daemon and says why', () => {
    const file = join(dir, 'no-such-folder', 'audit.log');
    const proc = run(file);
    expect(proc.exitCode).toBe(1);
    expect(proc.stderr.toString()).toBe(
      `containarium: cannot open --audit-log ${file} (ENOENT); check that its folder exists and is writable\n`,
    );
  });
});
