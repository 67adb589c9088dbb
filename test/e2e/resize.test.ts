// Resize and quotas through the whole stack on real Incus: a real MCP client → compiled
// dist/mcp-server over stdio → compiled dist/containarium daemon with --quota-file → Incus. What
// happened is read back from Incus itself; busybox containers, random names, removed afterwards.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  connectMcp,
  type Daemon,
  generateToken,
  type Mcp,
  missingPrerequisites,
  startDaemon,
  stopAll,
} from './harness.ts';
import { instance, removeInstance } from './incus.ts';

const missing = missingPrerequisites('resize.test.ts');

const run = Math.random().toString(36).slice(2, 8);
/** Holds a container; its quota allows 256MB of memory in all. */
const alice = `e2er${run}a`;
/** May have no container at all. */
const bob = `e2er${run}b`;

describe.skipIf(missing.length > 0)('resize and quotas on real Incus', () => {
  let tmp = '';
  let auditFile = '';
  let daemon: Daemon;
  let admin: Mcp;
  let user: Mcp;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'containarium-resize-'));
    const secretFile = join(tmp, 'jwt.secret');
    const secret = Buffer.from(crypto.getRandomValues(new Uint8Array(48))).toString('base64');
    writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
    const quotaFile = join(tmp, 'quotas.yaml');
    writeFileSync(
      quotaFile,
      `default:\n  cpus: 4\nusers:\n  ${alice}:\n    memory: 256MB\n  ${bob}:\n    containers: 0\n`,
    );
    auditFile = join(tmp, 'audit.log');
    daemon = await startDaemon({
      secretFile,
      args: ['--quota-file', quotaFile, '--audit-log', auditFile],
    });
    admin = await connectMcp(
      daemon.url,
      generateToken({ username: 'e2e-admin', roles: 'admin', secretFile }),
    );
    user = await connectMcp(
      daemon.url,
      generateToken({ username: alice, roles: 'user', secretFile }),
    );
    const made = await admin.call(
      'create_container',
      { username: alice, cpu: 1, memory: '128MB', disk: '1GB', image: 'busybox' },
      120_000,
    );
    if (made.isError) throw new Error(made.text);
  }, 180_000);

  afterAll(async () => {
    await stopAll();
    const problems = [
      await removeInstance(`${alice}-container`),
      await removeInstance(`${bob}-container`),
    ];
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    const problem = problems.find(Boolean);
    if (problem) throw new Error(`cleanup: ${problem}`);
  }, 120_000);

  test('resize_container changes limits.memory and limits.cpu in Incus, live, and shows old → new', async () => {
    const result = await admin.call('resize_container', {
      username: alice,
      memory: '256MB',
      cpu: '2',
    });
    expect(result.isError).toBeFalsy();
    expect(result.text).toBe(
      `Resized ${alice}-container (user ${alice}): cpu 1 → 2; memory 128MB → 256MB. State: running.`,
    );
    const found = await instance(`${alice}-container`);
    expect(found.metadata.config['limits.memory']).toBe('256MB');
    expect(found.metadata.config['limits.cpu']).toBe('2');
    expect(found.metadata.status).toBe('Running');
    const lines = readFileSync(auditFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.at(-1)).toMatchObject({
      subject: 'e2e-admin',
      route: 'PUT /v1/containers/{username}/resize',
      targetUser: alice,
      outcome: 'ok',
      status: 200,
    });
  }, 120_000);

  test("a user's token past its quota is refused with the daemon's 403 sentence; Incus keeps the limits", async () => {
    const over = await user.call('resize_container', { username: alice, memory: '512MB' });
    expect(over.isError).toBe(true);
    expect(over.text).toBe(
      `The daemon refused to resize the container for ${alice}: quota exceeded for ${alice}: memory 244 MiB used + 244 MiB asked > 244 MiB quota (256MB); ask for less, or ask an administrator to raise the quota (403). Call get_quota to see the quota and what is used of it.`,
    );
    expect((await instance(`${alice}-container`)).metadata.config['limits.memory']).toBe('256MB');
    const quota = await user.call('get_quota');
    expect(quota.text.split('\n')[0]).toBe(
      `Quota of ${alice}: containers 1 of 3; cpus 2 of 4; memory 244 MiB of 256MB (244 MiB); disk 954 MiB of 100GB (93.1 GiB); at most 10 snapshots per container.`,
    );
    // Within the quota the same token may resize.
    const fits = await user.call('resize_container', { username: alice, cpu: '1' });
    expect(fits.text).toStartWith(`Resized ${alice}-container (user ${alice}): cpu 2 → 1.`);
    expect((await instance(`${alice}-container`)).metadata.config['limits.cpu']).toBe('1');
  }, 120_000);

  test('a create past the container-count quota is refused and makes nothing', async () => {
    const secretFile = join(tmp, 'jwt.secret');
    const bobMcp = await connectMcp(
      daemon.url,
      generateToken({ username: bob, roles: 'user', secretFile }),
    );
    const refused = await bobMcp.call('create_container', { username: bob, image: 'busybox' });
    expect(refused.isError).toBe(true);
    expect(refused.text).toStartWith(
      `The daemon refused to create the container for ${bob}: quota exceeded for ${bob}: containers 0 used + 1 asked > 0 quota;`,
    );
    expect((await instance(`${bob}-container`)).status).toBe(404);
  }, 120_000);
});
