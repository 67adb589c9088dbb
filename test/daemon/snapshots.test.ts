// The snapshot routes over the memory backend: shapes, defaults, validation that names the field
// and changes nothing, whose containers a user may touch, and one audit line per change.
import { afterAll, beforeEach, describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve } from '../../src/daemon/app.ts';
import { createAuditLog, openAuditFile } from '../../src/daemon/audit.ts';
import { createAuthenticator } from '../../src/daemon/auth.ts';
import { ROUTES } from '../../src/daemon/routes/index.ts';
import { signToken } from '../../src/shared/jwt.ts';
import { defaultSnapshotName } from '../../src/shared/snapshot.ts';
import { MemoryBackend } from '../support/memory-backend.ts';

const SECRET = 'snapsh0ts-Secret-1a2b3c4d5e6f7a8b9c0d';
const dir = mkdtempSync(join(tmpdir(), 'snapshots-audit-'));
const auditFile = join(dir, 'audit.log');
const audit = createAuditLog(openAuditFile(auditFile), { log: () => {}, routes: ROUTES });
const backend = new MemoryBackend();
const server = serve({
  backend,
  auth: createAuthenticator({ secret: SECRET }),
  hostname: '127.0.0.1',
  port: 0,
  audit,
});
afterAll(async () => {
  await server.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

const tokens = new Map<string, string>();
async function tokenOf(username: string, roles: string[]) {
  const key = `${username}:${roles}`;
  if (!tokens.has(key)) {
    const { token } = await signToken({ username, roles, lifetimeMs: 3_600_000, secret: SECRET });
    tokens.set(key, token);
  }
  return tokens.get(key) as string;
}

async function call(
  method: string,
  path: string,
  body?: unknown,
  as: { username: string; roles: string[] } = { username: 'mcp-client', roles: ['admin'] },
) {
  const response = await fetch(`http://127.0.0.1:${server.port}${path}`, {
    method,
    headers: { Authorization: `Bearer ${await tokenOf(as.username, as.roles)}` },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

const base = '/v1/containers/alice/snapshots';
const errorOf = (code: string, desc: string) => ({
  error: `rpc error: code = ${code} desc = ${desc}`,
});

beforeEach(() => {
  backend.containers.clear();
  backend.snapshots.clear();
  backend.calls.length = 0;
  backend.seed('alice');
  backend.seed('bob', { state: 'stopped' });
});

describe('snapshot routes', () => {
  test('create, list, delete: int64 strings, createdAt added, the snapshot gone after', async () => {
    const created = await call('POST', base, { name: 'before-upgrade' });
    expect(created).toEqual({
      status: 200,
      body: {
        snapshot: {
          name: 'before-upgrade',
          usedBytes: '16384',
          referencedBytes: '0',
          createdAt: expect.stringMatching(/^\d+$/),
        },
        message: 'Snapshot before-upgrade of the container for user alice created',
      },
    });
    const listed = await call('GET', base);
    expect(listed.body).toEqual({ snapshots: [(created.body as { snapshot: unknown }).snapshot] });
    expect(await call('DELETE', `${base}/before-upgrade`)).toEqual({
      status: 200,
      body: {
        message: 'Snapshot before-upgrade of the container for user alice deleted',
        freedBytes: '16384',
      },
    });
    expect((await call('GET', base)).body).toEqual({ snapshots: [] });
  });

  test('a create without a name (or with "") is named from the time', async () => {
    const before = Date.now();
    const { body } = await call('POST', base, {});
    const name = (body.snapshot as { name: string }).name;
    const names = [defaultSnapshotName(new Date(before)), defaultSnapshotName(new Date())];
    expect(names).toContain(name);
    expect(name).toMatch(/^snap-\d{8}-\d{6}$/);
    await call('DELETE', `${base}/${name}`);
    const again = await call('POST', base, { name: '' });
    expect((again.body.snapshot as { name: string }).name).toMatch(/^snap-\d{8}-\d{6}$/);
  });

  test('rollback of a running container needs force; it reports the stop and keeps newer snapshots', async () => {
    for (const name of ['one', 'two', 'three']) await call('POST', base, { name });
    const refused = await call('POST', `${base}/one/rollback`, {});
    expect(refused).toMatchObject({ status: 400, body: { code: 400 } });
    expect(backend.calls.at(-1)?.args).toEqual([
      'alice',
      'one',
      { force: false, destroyNewer: false },
    ]);
    const done = await call('POST', `${base}/one/rollback`, { force: true });
    expect(done).toEqual({
      status: 200,
      body: {
        message:
          'Container for user alice rolled back to snapshot one (it was stopped for it and started again)',
        containerStopped: true,
        destroyedSnapshots: [],
      },
    });
    expect(backend.snapshots.get('alice')?.map((s) => s.name)).toEqual(['one', 'two', 'three']);
  });

  test('rollback with destroyNewer (either spelling) deletes and lists the newer snapshots', async () => {
    backend.seed('alice', { state: 'stopped' });
    for (const name of ['one', 'two', 'three']) await call('POST', base, { name });
    const done = await call('POST', `${base}/two/rollback`, { destroy_newer: true });
    expect(done.body).toEqual({
      message: 'Container for user alice rolled back to snapshot two',
      containerStopped: false,
      destroyedSnapshots: ['three'],
    });
    const all = await call('POST', `${base}/one/rollback`, { destroyNewer: true });
    expect(all.body.destroyedSnapshots).toEqual(['two']);
    expect(backend.snapshots.get('alice')?.map((s) => s.name)).toEqual(['one']);
  });

  test('a missing container, a missing snapshot, a taken name: 404, 404, 409, in words that say which', async () => {
    expect(await call('GET', '/v1/containers/carol/snapshots')).toEqual({
      status: 404,
      body: { code: 404, ...errorOf('NotFound', 'container for user carol not found') },
    });
    expect(await call('DELETE', `${base}/nope`)).toEqual({
      status: 404,
      body: {
        code: 404,
        ...errorOf('NotFound', 'snapshot "nope" not found in the container for user alice'),
      },
    });
    await call('POST', base, { name: 'x' });
    expect((await call('POST', base, { name: 'x' })).status).toBe(409);
  });

  test.each([
    ['a slash', { name: 'a/b' }],
    ['a space', { name: 'a b' }],
    ['a leading dot', { name: '.hidden' }],
    ['64 characters', { name: 'a'.repeat(64) }],
    ['a number', { name: 5 }],
  ])('a name with %s is a 400 naming the field, and nothing is made', async (_what, body) => {
    const { status, body: answer } = await call('POST', base, body);
    expect(status).toBe(400);
    expect(String(answer.error)).toContain('invalid name: expected a snapshot name of 1 to 63');
    expect(backend.calls.map((c) => c.method)).not.toContain('createSnapshot');
  });

  test('bad path names and rollback options are 400s naming them', async () => {
    const slash = await call('DELETE', `${base}/a%2Fb`);
    expect(slash.status).toBe(400);
    expect(String(slash.body.error)).toContain('invalid name "a/b": expected a snapshot name');
    const force = await call('POST', `${base}/x/rollback`, { force: 'yes' });
    expect(force.status).toBe(400);
    expect(String(force.body.error)).toContain('invalid force: expected true or false');
    const both = await call('POST', `${base}/x/rollback`, {
      destroyNewer: true,
      destroy_newer: false,
    });
    expect(String(both.body.error)).toContain('give either destroyNewer or destroy_newer');
    expect(backend.calls).toEqual([]);
  });

  test("a user acts on their own container's snapshots only", async () => {
    const bob = { username: 'bob', roles: ['user'] };
    expect((await call('POST', '/v1/containers/bob/snapshots', { name: 'mine' }, bob)).status).toBe(
      200,
    );
    for (const [method, path] of [
      ['GET', base],
      ['POST', base],
      ['DELETE', `${base}/x`],
      ['POST', `${base}/x/rollback`],
    ] as const) {
      expect((await call(method, path, method === 'POST' ? {} : undefined, bob)).status).toBe(403);
    }
    // A user's create counts its snapshots against the quota first.
    expect(backend.calls.map((c) => [c.method, c.args[0]])).toEqual([
      ['listSnapshots', 'bob'],
      ['createSnapshot', 'bob'],
    ]);
  });

  test('each change is one audit line naming the route, the user and the snapshot', async () => {
    const from = readLines().length;
    await call('POST', base, { name: 'audited' });
    await call('GET', base);
    await call('POST', `${base}/audited/rollback`, { force: true });
    await call('DELETE', `${base}/audited`);
    await call('DELETE', `${base}/a%20b`);
    await audit.flushed();
    expect(readLines().slice(from)).toMatchObject([
      {
        route: 'POST /v1/containers/{username}/snapshots',
        targetUser: 'alice',
        snapshot: 'audited',
      },
      {
        route: 'POST /v1/containers/{username}/snapshots/{name}/rollback',
        snapshot: 'audited',
        outcome: 'ok',
      },
      { route: 'DELETE /v1/containers/{username}/snapshots/{name}', snapshot: 'audited' },
      { snapshot: '(not a snapshot name)', outcome: 'error', status: 400 },
    ]);
  });
});

const readLines = () =>
  readFileSync(auditFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
