// PUT /v1/containers/{username}/resize and per-user quotas (GET /v1/quotas/{username}, --quota-file)
// through the daemon's HTTP layer over the memory backend.
import { afterAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AppOptions, serve } from '../../src/daemon/app.ts';
import { createAuditLog, openAuditFile } from '../../src/daemon/audit.ts';
import { createAuthenticator } from '../../src/daemon/auth.ts';
import { CliError, DAEMON_HELP, parseCommandLine } from '../../src/daemon/cli.ts';
import { DEFAULT_QUOTA, parseQuotaFile } from '../../src/daemon/quotas.ts';
import { ROUTES } from '../../src/daemon/routes/index.ts';
import { signToken } from '../../src/shared/jwt.ts';
import { MemoryBackend } from '../support/memory-backend.ts';

const SECRET = 'r3size-Quota-Secret-0123456789abcdef';
const dir = mkdtempSync(join(tmpdir(), 'containarium-resize-'));

const token = async (username: string, roles: string[]) =>
  (await signToken({ username, roles, lifetimeMs: 3_600_000, secret: SECRET })).token;

// biome-ignore lint/suspicious/noExplicitAny: answers are read field by field, as JSON
type Json = Record<string, any>;

const servers: { stop(force: boolean): unknown }[] = [];
afterAll(() => {
  for (const server of servers) server.stop(true);
});

async function daemon(options: Partial<Omit<AppOptions, 'backend' | 'auth'>> = {}) {
  const backend = new MemoryBackend();
  const auth = createAuthenticator({ secret: SECRET, log: () => {} });
  const server = serve({ backend, auth, hostname: '127.0.0.1', port: 0, ...options });
  servers.push(server);
  const admin = await token('mcp-client', ['admin']);
  const alice = await token('alice', ['user']);
  const call = async (method: string, path: string, body?: unknown, as = admin) => {
    const response = await fetch(`http://127.0.0.1:${server.port}${path}`, {
      method,
      headers: { Authorization: `Bearer ${as}`, 'Content-Type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, body: (await response.json()) as Json };
  };
  return { backend, admin, alice, call };
}

const desc = (body: Json) => String(body.error).replace(/^rpc error: code = \w+ desc = /, '');

describe('PUT /v1/containers/{username}/resize', () => {
  test('changes only the limits given, answers {message, container} in wire shape', async () => {
    const d = await daemon();
    d.backend.seed('alice');
    const { status, body } = await d.call('PUT', '/v1/containers/alice/resize', {
      memory: '8GB',
      cpu: '',
    });
    expect(status).toBe(200);
    expect(Object.keys(body)).toEqual(['message', 'container']);
    expect(body.message).toBe('Container for user alice resized successfully');
    expect(body.container.resources).toEqual({ cpu: '4', memory: '8GB', disk: '50GB' });
    expect(body.container.createdAt).toBeTypeOf('string');
    expect(d.backend.calls.at(-1)).toEqual({
      method: 'resize',
      args: ['alice', { memory: '8GB' }],
    });
    // cpu as a number, sizes in the unit given, spelled as Incus spells them.
    const again = await d.call('PUT', '/v1/containers/alice/resize', { cpu: 2, disk: '100gib' });
    expect(again.body.container.resources).toEqual({ cpu: '2', memory: '8GB', disk: '100GiB' });
  });

  test('bad input is a 400 naming the field and the form, and changes nothing', async () => {
    const d = await daemon();
    d.backend.seed('alice');
    const cases: [unknown, RegExp][] = [
      [{}, /^nothing to resize: give at least one of cpu \(a whole number/],
      [{ cpu: '', memory: ' ', disk: null }, /^nothing to resize/],
      [{ memory: 'lots' }, /^invalid memory: expected a size of at least 1MiB with a unit/],
      [{ disk: 50 }, /^invalid disk: expected a size/],
      [{ cpu: '0' }, /^invalid cpu: expected a whole number of CPU cores from 1 to 1024/],
      [[], /^the request body must be a JSON object/],
    ];
    for (const [body, message] of cases) {
      const answer = await d.call('PUT', '/v1/containers/alice/resize', body);
      expect(answer.status).toBe(400);
      expect(desc(answer.body)).toMatch(message);
    }
    expect(d.backend.calls.filter((c) => c.method === 'resize')).toEqual([]);
    expect(d.backend.containers.get('alice')?.resources).toEqual({
      cpu: '4',
      memory: '4GB',
      disk: '50GB',
    });
  });

  test("create's host rules: more than the host has, or too little memory to run, is a 400", async () => {
    const d = await daemon();
    d.backend.seed('alice');
    d.backend.host = { cpus: 2, memoryBytes: 8 * 2 ** 30 };
    const more = await d.call('PUT', '/v1/containers/alice/resize', { cpu: '4', memory: '64GB' });
    expect(more.status).toBe(400);
    expect(desc(more.body)).toBe(
      'cpu 4 is more than this host has (2 CPUs); ask for at most 2; memory "64GB" is more than this host\'s memory (8 GiB); ask for at most "8GiB"',
    );
    const tiny = await d.call('PUT', '/v1/containers/alice/resize', { memory: '2MiB' });
    expect(desc(tiny.body)).toMatch(/^memory "2MiB" is too small to start a container/);
  });

  test('a user resizes only its own container; a missing container is a 404', async () => {
    const d = await daemon();
    d.backend.seed('bob');
    const other = await d.call('PUT', '/v1/containers/bob/resize', { cpu: '1' }, d.alice);
    expect(other.status).toBe(403);
    expect(desc(other.body)).toBe('not authorized for user bob');
    const missing = await d.call('PUT', '/v1/containers/alice/resize', { cpu: '1' }, d.alice);
    expect(missing.status).toBe(404);
    expect(desc(missing.body)).toBe('container for user alice not found');
  });

  test('a resize is one line in the audit log', async () => {
    const file = join(dir, 'audit.log');
    const audit = createAuditLog(openAuditFile(file), { log: () => {}, routes: ROUTES });
    const d = await daemon({ audit });
    d.backend.seed('alice');
    await d.call('PUT', '/v1/containers/alice/resize', { memory: '2GB' }, d.alice);
    await audit.flushed();
    const line = JSON.parse(readFileSync(file, 'utf8').trim());
    expect(line).toMatchObject({
      subject: 'alice',
      method: 'PUT',
      route: 'PUT /v1/containers/{username}/resize',
      targetUser: 'alice',
      outcome: 'ok',
      status: 200,
    });
  });
});

describe('quotas', () => {
  test('a user resizing past its quota gets 403 naming the quota and the use; nothing changes', async () => {
    const d = await daemon();
    d.backend.seed('alice', { resources: { cpu: '4', memory: '4GB', disk: '50GB' } });
    const over = await d.call(
      'PUT',
      '/v1/containers/alice/resize',
      { cpu: '16', memory: '20GB', disk: '60GB' },
      d.alice,
    );
    expect(over.status).toBe(403);
    expect(over.body).toEqual({
      code: 403,
      error:
        'rpc error: code = PermissionDenied desc = quota exceeded for alice: cpus 4 used + 12 asked > 8 quota; memory 3.7 GiB used + 14.9 GiB asked > 14.9 GiB quota (16GB); ask for less, or ask an administrator to raise the quota',
    });
    expect(d.backend.calls.filter((c) => c.method === 'resize')).toEqual([]);
    // Within the quota, and lowering, are fine; the admin is not held to it.
    expect(
      (await d.call('PUT', '/v1/containers/alice/resize', { memory: '16GB' }, d.alice)).status,
    ).toBe(200);
    expect((await d.call('PUT', '/v1/containers/alice/resize', { cpu: '1' }, d.alice)).status).toBe(
      200,
    );
    const admin = await d.call('PUT', '/v1/containers/alice/resize', { cpu: '16', memory: '32GB' });
    expect(admin.status).toBe(200);
    // Already over (an admin raised it): lowering one limit is still allowed.
    expect(
      (await d.call('PUT', '/v1/containers/alice/resize', { memory: '8GB' }, d.alice)).status,
    ).toBe(200);
  });

  test('a user creating past its quota gets 403; the container count is a quota too', async () => {
    const quotas = parseQuotaFile('users:\n  alice: {containers: 0}\n  carol: {cpus: 2}\n');
    const d = await daemon({ quotas });
    const carol = await token('carol', ['user']);
    const count = await d.call('POST', '/v1/containers', { username: 'alice' }, d.alice);
    expect(count.status).toBe(403);
    expect(desc(count.body)).toBe(
      'quota exceeded for alice: containers 0 used + 1 asked > 0 quota; ask for less, or ask an administrator to raise the quota',
    );
    const cpus = await d.call(
      'POST',
      '/v1/containers',
      { username: 'carol', resources: { cpu: '4' } },
      carol,
    );
    expect(desc(cpus.body)).toStartWith(
      'quota exceeded for carol: cpus 0 used + 4 asked > 2 quota',
    );
    expect(d.backend.calls.filter((c) => c.method === 'create')).toEqual([]);
    const fits = await d.call(
      'POST',
      '/v1/containers',
      { username: 'carol', resources: { cpu: '2' } },
      carol,
    );
    expect(fits.status).toBe(200);
    expect((await d.call('POST', '/v1/containers', { username: 'alice' })).status).toBe(200);
  });

  test('a user keeps at most its quota of snapshots per container; an admin is not held to it', async () => {
    const quotas = parseQuotaFile('users:\n  alice: {snapshots: 2}\n');
    const d = await daemon({ quotas });
    d.backend.seed('alice');
    const take = (name: string, as = d.alice) =>
      d.call('POST', '/v1/containers/alice/snapshots', { name }, as);
    expect((await take('one')).status).toBe(200);
    expect((await take('two')).status).toBe(200);
    const over = await take('three');
    expect(over.status).toBe(403);
    expect(desc(over.body)).toBe(
      'quota exceeded for alice: snapshots 2 kept + 1 asked > 2 quota per container; delete a snapshot first, or ask an administrator to raise the quota',
    );
    expect(d.backend.calls.filter((c) => c.method === 'createSnapshot').length).toBe(2);
    expect((await take('three', d.admin)).status).toBe(200);
    // Deleting one makes room again.
    await d.call('DELETE', '/v1/containers/alice/snapshots/one', undefined, d.alice);
    await d.call('DELETE', '/v1/containers/alice/snapshots/two', undefined, d.alice);
    expect((await take('four')).status).toBe(200);
    expect(DEFAULT_QUOTA.snapshots).toBe(10);
  });

  test('GET /v1/quotas/{username}: quota and use, int64 as strings; a user sees only its own', async () => {
    const quotas = parseQuotaFile(
      '{"default": {"cpus": 6}, "users": {"bob": {"memory": "32GiB"}}}',
    );
    const d = await daemon({ quotas });
    d.backend.seed('alice', { resources: { cpu: '2', memory: '512MiB', disk: '10GB' } });
    const own = await d.call('GET', '/v1/quotas/alice', undefined, d.alice);
    expect(own).toEqual({
      status: 200,
      body: {
        username: 'alice',
        quota: {
          containers: 3,
          cpus: 6,
          memory: '16GB',
          memoryBytes: '16000000000',
          disk: '100GB',
          diskBytes: '100000000000',
          snapshots: 10,
        },
        used: { containers: 1, cpus: 2, memoryBytes: '536870912', diskBytes: '10000000000' },
      },
    });
    const other = await d.call('GET', '/v1/quotas/bob', undefined, d.alice);
    expect(other.status).toBe(403);
    const bob = await d.call('GET', '/v1/quotas/bob');
    expect(bob.body.quota).toMatchObject({ cpus: 6, memory: '32GiB', memoryBytes: '34359738368' });
    expect(bob.body.used).toEqual({ containers: 0, cpus: 0, memoryBytes: '0', diskBytes: '0' });
    const bad = await d.call('GET', '/v1/quotas/Bad_Name');
    expect(bad.status).toBe(400);
  });
});

describe('the quota file', () => {
  test('YAML or JSON; default and per-user entries fall back field by field', () => {
    const table = parseQuotaFile(
      'default:\n  containers: 1\n  memory: 8GB\nusers:\n  alice:\n    disk: 1TB\n',
    );
    expect(table.default).toEqual({ ...DEFAULT_QUOTA, containers: 1, memory: '8GB' });
    expect(table.users.alice).toEqual({
      ...DEFAULT_QUOTA,
      containers: 1,
      memory: '8GB',
      disk: '1TB',
    });
    expect(parseQuotaFile('{}')).toEqual({ default: DEFAULT_QUOTA, users: {} });
    expect(parseQuotaFile('')).toEqual({ default: DEFAULT_QUOTA, users: {} });
  });

  test('a mistake names the field and the form expected', () => {
    const refused = (text: string) => {
      try {
        parseQuotaFile(text);
      } catch (error) {
        return (error as Error).message;
      }
      throw new Error('accepted');
    };
    expect(refused('default: {memory: lots}')).toStartWith(
      'has an invalid default.memory: expected a size of at least 1MiB with a unit',
    );
    expect(refused('users: {alice: {cpus: -1}}')).toBe(
      'has an invalid users.alice.cpus: expected a whole number of at least 0, like 3',
    );
    expect(refused('users: {alice: {gpus: 1}}')).toStartWith('has an invalid users.alice.gpus');
    expect(refused('default: {snapshots: 1.5}')).toBe(
      'has an invalid default.snapshots: expected a whole number of at least 0, like 3',
    );
    expect(refused('users: {Alice: {cpus: 1}}')).toStartWith(
      'has an invalid users: expected usernames of 1 to 32 characters',
    );
    expect(refused('quota: 3')).toStartWith('has an invalid quota');
    expect(refused('default: [')).toStartWith('is neither JSON nor YAML');
  });

  test('--quota-file loads it at start; a bad one stops the daemon with the reason', () => {
    const file = join(dir, 'quotas.yaml');
    writeFileSync(file, 'users:\n  alice: {cpus: 2}\n');
    const argv = ['daemon', '--jwt-secret', SECRET, '--quota-file', file];
    const command = parseCommandLine(argv);
    expect(command).toMatchObject({
      kind: 'daemon',
      quotas: { users: { alice: { ...DEFAULT_QUOTA, cpus: 2 } } },
      quotaSource: `--quota-file ${file}`,
    });
    expect(parseCommandLine(argv.slice(0, 3))).toMatchObject({
      quotas: { default: DEFAULT_QUOTA, users: {} },
      quotaSource: 'defaults',
    });
    writeFileSync(file, 'default: {disk: 5}\n');
    expect(() => parseCommandLine(argv)).toThrow(
      new CliError(
        `--quota-file ${file} has an invalid default.disk: expected a size of at least 1MiB with a unit, like "4GB", "2048MB", "4GiB" or "512MiB"`,
      ),
    );
    expect(() => parseCommandLine([...argv.slice(0, 4), join(dir, 'missing.yaml')])).toThrow(
      /cannot read --quota-file .*missing\.yaml \(ENOENT\)/,
    );
    expect(DAEMON_HELP).toContain('--quota-file FILE');
    expect(DAEMON_HELP.replace(/\s+/g, ' ')).toContain(
      'default for everyone: 3 containers, 8 CPUs, 16GB memory, 100GB disk',
    );
  });
});
