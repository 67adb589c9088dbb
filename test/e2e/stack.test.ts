// The whole stack on real Incus: a real MCP client → compiled dist/mcp-server over stdio → compiled
// dist/containarium daemon → Incus → LXC containers. What happened is checked in Incus itself.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client as ClientV2, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { sizeAtMost } from '../../src/daemon/limits.ts';
import type { ContainerView as Container, MetricsView as Metrics } from '../../src/mcp/format.ts';
import { sshKeyFingerprint } from '../../src/shared/ssh-key.ts';
import { failure } from '../daemon/incus-fake.ts';
import { startHttpMcp } from '../support/http.ts';
import { incusProxy } from '../support/incus-proxy.ts';
import { randomSshKey, sshKeygen } from '../support/keys.ts';
import {
  CONTAINARIUM,
  connectMcp,
  type Daemon,
  generateToken,
  MCP_SERVER,
  type Mcp,
  startDaemon,
  stopAll,
  type ToolResult,
} from './harness.ts';
import { exec, INCUS_SOCKET, incus, instance, ipv4, readFile, removeInstance } from './incus.ts';

// ---- Prerequisites: skipped with a reason on a laptop, a hard failure in CI ----------------------

const ci = process.env.CI === 'true' || process.env.CI === '1';
const missing = [
  existsSync(INCUS_SOCKET)
    ? undefined
    : `no Incus socket at ${INCUS_SOCKET} (run scripts/incus-setup.sh as root)`,
  existsSync(MCP_SERVER) ? undefined : `no ${MCP_SERVER} (run bun run build)`,
  existsSync(CONTAINARIUM) ? undefined : `no ${CONTAINARIUM} (run bun run build)`,
].filter((reason): reason is string => reason !== undefined);
if (missing.length > 0) {
  if (ci) throw new Error(`stack.test.ts cannot run in CI: ${missing.join('; ')}`);
  console.warn(`stack.test.ts: SKIPPED — ${missing.join('; ')}. With CI=true this fails instead.`);
}

// ---- Run-wide names and state ---------------------------------------------------------------------

const run = Array.from(crypto.getRandomValues(new Uint8Array(4)), (b) =>
  'abcdefghijklmnopqrstuvwxyz0123456789'.charAt(b % 36),
).join('');
/** Every username this run may create, so afterAll removes its container whatever happened. */
const usernames = new Set<string>();
const user = (suffix = '') => {
  const name = `e2e${run}${suffix}`;
  usernames.add(name);
  return name;
};
const containerOf = (username: string) => `${username}-container`;

// Made in beforeAll, so a skipped run leaves nothing behind.
let tmp = '';
let secretFile = '';
let otherSecretFile = '';
const randomSecret = () =>
  Buffer.from(crypto.getRandomValues(new Uint8Array(48))).toString('base64');

/** A real ed25519 key from ssh-keygen when it exists, else a fixed valid one. */
function makeSshKey(): string {
  return (
    sshKeygen(join(tmp, 'key'), 'e2e@test') ??
    'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGk3l2mWv8pH7m0nQK3fWb0dRZL7d0u9V9WJ6e2JX3s8 e2e@test'
  );
}

/** The structured part of a successful tool result (fails the test with the text otherwise). */
function ok<T = Record<string, unknown>>(result: ToolResult): T {
  if (result.isError) throw new Error(`tool failed: ${result.text}`);
  expect(result.structuredContent).toBeDefined();
  return result.structuredContent as T;
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/** The lines of a daemon's --audit-log file. */
const auditLines = (file: string) =>
  readFileSync(file, 'utf8')
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);

/** One call of each tool, about a user who has no container. */
const everyTool = (nobody: string): Array<[string, Record<string, unknown>]> => [
  ['create_container', { username: nobody, image: 'busybox', enable_docker: false }],
  ['list_containers', {}],
  ['get_container', { username: nobody }],
  ['delete_container', { username: nobody, force: true }],
  ['start_container', { username: nobody }],
  ['stop_container', { username: nobody }],
  ['get_metrics', {}],
  ['get_system_info', {}],
  ['list_images', {}],
];

describe.skipIf(missing.length > 0)('the stack on real Incus', () => {
  let daemon: Daemon;
  let admin: Mcp;
  let sshKey: string;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'containarium-e2e-'));
    secretFile = join(tmp, 'jwt.secret');
    otherSecretFile = join(tmp, 'other.secret');
    writeFileSync(secretFile, `${randomSecret()}\n`, { mode: 0o600 });
    writeFileSync(otherSecretFile, `${randomSecret()}\n`, { mode: 0o600 });
    sshKey = makeSshKey();
    daemon = await startDaemon({ secretFile, args: ['--audit-log', join(tmp, 'audit.log')] });
    admin = await connectMcp(
      daemon.url,
      generateToken({ username: 'e2e-admin', roles: 'admin', secretFile }),
    );
  }, 30_000);

  afterAll(async () => {
    await stopAll();
    // Straight through Incus, so cleanup works even when the daemon is what broke.
    const problems = (
      await Promise.all([...usernames].map((name) => removeInstance(containerOf(name))))
    ).filter(Boolean);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    if (problems.length > 0) throw new Error(`cleanup: ${problems.join('; ')}`);
  }, 120_000);

  /** On failure, the daemon's own account of what happened. */
  const context = (d: Daemon = daemon) => `\n--- daemon stderr ---\n${d.log().slice(-4000)}`;

  describe('a debian/12 container through its whole life', () => {
    const alice = user();
    const name = containerOf(alice);
    let ip = '';

    test('create_container makes it with the limits, the key and openssh, running with an address', async () => {
      const result = await admin.call(
        'create_container',
        {
          username: alice,
          cpu: 1,
          memory: '256MB',
          disk: '2GB',
          ssh_keys: [sshKey],
          image: 'debian/12',
          enable_docker: false,
        },
        330_000,
      );
      if (result.isError) throw new Error(`${result.text}${context()}`);
      const created = ok<{ container: Container; sshCommand: string; message: string }>(result);
      expect(result.text).toContain(`Created ${name} for ${alice}: running.`);
      expect(result.text).toContain('1 core, 256 MB memory, 2 GB disk');
      expect(created.container).toMatchObject({
        name,
        username: alice,
        state: 'running',
        cpu: '1',
        memory: '256MB',
        disk: '2GB',
        image: 'debian/12',
        dockerEnabled: false,
        sshKeys: [sshKey],
      });
      ip = created.container.ipAddress;
      expect(ip).toMatch(IPV4);
      expect(result.text).toContain(`IP: ${ip}`);
      expect(created.sshCommand).toBe(`ssh ${alice}@${ip}`);
      expect(result.text).toContain(
        `SSH: ssh ${alice}@${ip} (${ip} is a private address, reachable from the daemon's host)`,
      );
      // The address is the one Incus reports for eth0.
      expect(await ipv4(name)).toBe(ip);
    }, 330_000);

    test('Incus holds the limits, autostart and no nesting', async () => {
      const found = await instance(name);
      expect(found.status).toBe(200);
      const { config, expanded_devices: devices } = found.metadata;
      expect(found.metadata.status).toBe('Running');
      expect(config['limits.cpu']).toBe('1');
      expect(config['limits.memory']).toBe('256MB');
      expect(devices.root?.size).toBe('2GB');
      expect(devices.root?.path).toBe('/');
      expect(config['boot.autostart']).toBe('true');
      expect(config['security.nesting']).not.toBe('true');
    }, 30_000);

    test('inside: the user exists, sshd is installed, authorized_keys is exactly the key, 600, owned by the user', async () => {
      const id = await exec(name, ['id', '-u', alice]);
      expect(id.exitCode).toBe(0);
      const uid = Number(id.stdout.trim());
      expect(uid).toBeGreaterThan(0);
      const gid = Number((await exec(name, ['id', '-g', alice])).stdout.trim());
      expect((await exec(name, ['id', alice])).stdout).toContain(`(${alice})`);

      expect((await exec(name, ['test', '-x', '/usr/sbin/sshd'])).exitCode).toBe(0);

      const keys = await readFile(name, `/home/${alice}/.ssh/authorized_keys`);
      expect(keys.content).toBe(`${sshKey}\n`);
      expect(keys.uid).toBe(uid);
      expect(keys.gid).toBe(gid);
      expect(keys.mode & 0o777).toBe(0o600);
      const dir = await exec(name, ['stat', '-c', '%u %a', `/home/${alice}/.ssh`]);
      expect(dir.stdout.trim()).toBe(`${uid} 700`);
    }, 60_000);

    test('add_ssh_key appends a key to authorized_keys; remove_ssh_key by fingerprint takes it out', async () => {
      const path = `/home/${alice}/.ssh/authorized_keys`;
      const second = randomSshKey('second@e2e');
      const print = sshKeyFingerprint(second)!;
      const added = await admin.call('add_ssh_key', { username: alice, ssh_key: second });
      if (added.isError) throw new Error(`${added.text}${context()}`);
      expect(added.text).toStartWith(`Added ${print} (second@e2e) for ${alice}.\nKeys now (2): `);
      expect(added.text).not.toContain(second.split(' ')[1]!);
      expect((await readFile(name, path)).content).toBe(`${sshKey}\n${second}\n`);

      const removed = await admin.call('remove_ssh_key', { username: alice, ssh_key: print });
      if (removed.isError) throw new Error(`${removed.text}${context()}`);
      expect(removed.text).toBe(
        `Removed ${print} (second@e2e) for ${alice}.\nKeys now (1): ${sshKeyFingerprint(sshKey)} (e2e@test).`,
      );
      const after = await readFile(name, path);
      expect(after.content).toBe(`${sshKey}\n`);
      expect(after.mode & 0o777).toBe(0o600);
    }, 120_000);

    test('list_containers shows it running with its address', async () => {
      const result = await admin.call('list_containers');
      const { containers, totalCount } = ok<{ containers: Container[]; totalCount: number }>(
        result,
      );
      expect(totalCount).toBe(containers.length);
      const mine = containers.find((c) => c.name === name);
      expect(mine).toMatchObject({ username: alice, state: 'running', ipAddress: ip, cpu: '1' });
      const row = result.text.split('\n').find((line) => line.startsWith(name));
      expect(row).toContain('running');
      expect(row).toContain(ip);
    }, 60_000);

    test('get_container shows the limits and real usage', async () => {
      const result = await admin.call('get_container', { username: alice });
      const { container, metrics } = ok<{ container: Container; metrics: Metrics | null }>(result);
      expect(container).toMatchObject({
        name,
        state: 'running',
        cpu: '1',
        memory: '256MB',
        disk: '2GB',
        ipAddress: ip,
        image: 'debian/12',
        dockerEnabled: false,
        sshKeys: [sshKey],
      });
      expect(metrics).not.toBeNull();
      expect(metrics?.memoryBytes).toBeGreaterThan(0);
      expect(metrics?.processes).toBeGreaterThan(0);
      expect(metrics?.memoryLimitBytes).toBe(256_000_000);
      expect(result.text).toContain('Usage: CPU time');
      expect(result.text).toContain('Docker: disabled');
      expect(result.text).toContain(
        `SSH: ssh ${alice}@${ip} (${ip} is a private address, reachable from the daemon's host)`,
      );
    }, 60_000);

    test('get_metrics reports real figures, for everyone and for the user', async () => {
      const all = ok<{ metrics: Metrics[] }>(await admin.call('get_metrics'));
      const mine = all.metrics.find((m) => m.name === name);
      expect(mine?.memoryBytes).toBeGreaterThan(0);
      expect(mine?.processes).toBeGreaterThan(0);

      const result = await admin.call('get_metrics', { username: alice });
      const { metrics } = ok<{ metrics: Metrics[] }>(result);
      expect(metrics).toHaveLength(1);
      expect(metrics[0]).toMatchObject({
        name,
        memoryLimitBytes: 256_000_000,
        diskLimitBytes: 2_000_000_000,
      });
      expect(metrics[0]?.memoryBytes).toBeGreaterThan(0);
      expect(metrics[0]?.processes).toBeGreaterThan(0);
      expect(metrics[0]?.diskBytes).toBeGreaterThan(0);
      expect(result.text).toContain('Usage of 1 container');
      expect(result.text).toContain(name);
    }, 60_000);

    test('get_system_info counts it and reports the Incus version', async () => {
      const result = await admin.call('get_system_info');
      const { info } = ok<{
        info: { incusVersion: string; containersRunning: number; containersTotal: number };
      }>(result);
      const server = await incus<{ environment: { server_version: string } }>('GET', '/1.0');
      expect(info.incusVersion).toBe(server.metadata.environment.server_version);
      expect(info.containersRunning).toBeGreaterThanOrEqual(1);
      expect(info.containersTotal).toBeGreaterThanOrEqual(info.containersRunning);
      expect(result.text).toContain(`Incus ${info.incusVersion}`);
    }, 30_000);

    test('stop_container stops it, start_container starts it again', async () => {
      const stopped = await admin.call('stop_container', { username: alice }, 120_000);
      if (stopped.isError) throw new Error(`${stopped.text}${context()}`);
      expect(ok<{ container: Container }>(stopped).container.state).toBe('stopped');
      expect(stopped.text).toBe(`Stopped the container for ${alice}: stopped.`);
      expect((await instance(name)).metadata.status).toBe('Stopped');
      const stoppedAgain = await admin.call('stop_container', { username: alice }, 120_000);
      expect(stoppedAgain.isError).toBeFalsy();
      expect(stoppedAgain.text).toBe(
        `The container for ${alice} was already stopped; nothing changed.`,
      );

      const started = await admin.call('start_container', { username: alice }, 120_000);
      if (started.isError) throw new Error(`${started.text}${context()}`);
      const back = ok<{ container: Container }>(started).container;
      expect(back.state).toBe('running');
      expect(started.text).toStartWith(`Started the container for ${alice}: running`);
      // The SSH line once the answer carries an address (a start may answer before it has one).
      if (back.ipAddress) expect(started.text).toContain(`\nSSH: ssh ${alice}@${back.ipAddress} (`);
      else expect(started.text).not.toContain('SSH:');
      expect((await instance(name)).metadata.status).toBe('Running');
      const startedAgain = await admin.call('start_container', { username: alice }, 120_000);
      expect(startedAgain.isError).toBeFalsy();
      expect(startedAgain.text).toStartWith(
        `The container for ${alice} was already running; nothing changed.`,
      );
    }, 150_000);

    test('delete_container with force removes it from Incus and from the list', async () => {
      const result = await admin.call(
        'delete_container',
        { username: alice, force: true },
        120_000,
      );
      if (result.isError) throw new Error(`${result.text}${context()}`);
      expect(ok<{ containerName: string }>(result).containerName).toBe(name);
      expect(result.text).toBe(`Deleted ${name} (user ${alice}).`);
      expect((await instance(name)).status).toBe(404);

      const list = ok<{ containers: Container[] }>(await admin.call('list_containers'));
      expect(list.containers.map((c) => c.name)).not.toContain(name);
      const gone = await admin.call('get_container', { username: alice });
      expect(gone.isError).toBe(true);
      expect(gone.text).toContain(`No container exists for user ${alice}`);
      const noMetrics = await admin.call('get_metrics', { username: alice });
      expect(noMetrics.isError).toBe(true);
      expect(noMetrics.text).toContain(`No container exists for user ${alice}`);
    }, 150_000);

    test('the audit log holds its create, start, stop and delete, with the key as a fingerprint', () => {
      const file = join(tmp, 'audit.log');
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const text = readFileSync(file, 'utf8');
      expect(text).not.toContain(sshKey.split(' ')[1] as string);
      const lines = auditLines(file).filter((line) => line.targetUser === alice);
      // mcp-server may skip a start or stop that has nothing to do, so only the ends are fixed.
      const routes = lines.map((line) => line.route);
      expect(routes[0]).toBe('POST /v1/containers');
      expect(routes.at(-1)).toBe('DELETE /v1/containers/{username}');
      expect(routes).toContain('POST /v1/containers/{username}/stop');
      expect(routes).toContain('POST /v1/containers/{username}/start');
      for (const line of lines) {
        expect(line).toMatchObject({
          subject: 'e2e-admin',
          roles: ['admin'],
          source: '127.0.0.1',
          outcome: 'ok',
          status: 200,
        });
        expect(line.tokenId).toBeString();
      }
      expect(lines[0]?.sshKeys).toEqual([sshKeyFingerprint(sshKey)]);
    });
  });

  test('list_images shows the local images and the remotes, to a user token too', async () => {
    const result = await admin.call('list_images');
    const listed = ok<{ images: { aliases: string[]; sizeBytes: number }[]; remotes: string[] }>(
      result,
    );
    expect(result.text).toMatch(/^debian\/12 +\S.* x86_64 {2}\d+(\.\d)? MiB$/m);
    expect(result.text).toMatch(/^busybox +/m);
    expect(listed.images.find((i) => i.aliases.includes('debian/12'))?.sizeBytes).toBeGreaterThan(
      1_000_000,
    );
    expect(listed.remotes).toEqual(['images', 'ubuntu', 'ubuntu-daily']);
    const reader = await connectMcp(
      daemon.url,
      generateToken({ username: `e2e${run}-img`, roles: 'user', secretFile }),
    );
    expect(ok(await reader.call('list_images'))).toEqual(listed);
    await reader.close();
  }, 30_000);

  test('an image that cannot be fetched says so and suggests a local one, not Incus', async () => {
    const username = user('-i');
    // An unknown remote: nothing leaves this machine to find out.
    const image = `nosuch${run}:debian/12`;
    const result = await admin.call('create_container', {
      username,
      cpu: 1,
      memory: '128MB',
      disk: '1GB',
      image,
      enable_docker: false,
    });
    expect(result.isError).toBe(true);
    expect(result.text).toStartWith(`The image "${image}" could not be fetched`);
    expect(result.text).toContain('busybox');
    expect(result.text).toContain('an image the server already has locally');
    expect(result.text).not.toContain('Incus is running');
    expect((await instance(containerOf(username))).status).toBe(404);
  }, 60_000);

  test('a first create with no limits and no image fits this host, from --default-image', async () => {
    // A host without internet: the daemon's default image is a local one.
    const local = await startDaemon({ secretFile, args: ['--default-image', 'busybox'] });
    const mcp = await connectMcp(
      local.url,
      generateToken({ username: 'e2e-admin', roles: 'admin', secretFile }),
    );
    const username = user('-f');
    const result = await mcp.call('create_container', { username, enable_docker: false });
    if (result.isError) throw new Error(`${result.text}${context(local)}`);

    // Upstream's defaults (4 CPUs, 4GB, 50GB) lowered to what Incus says this host has.
    const host = await incus<{ cpu: { total: number }; memory: { total: number } }>(
      'GET',
      '/1.0/resources',
    );
    const pool = await incus<{ space: { total: number } }>(
      'GET',
      '/1.0/storage-pools/default/resources',
    );
    const cpus = Math.min(4, host.metadata.cpu.total);
    const memory =
      host.metadata.memory.total < 4e9 ? sizeAtMost(host.metadata.memory.total) : '4GB';
    const disk = pool.metadata.space.total < 50e9 ? sizeAtMost(pool.metadata.space.total) : '50GB';
    const lowered = [
      cpus < 4 ? `cpu ${cpus}` : '',
      memory !== '4GB' ? `memory "${memory}"` : '',
      disk !== '50GB' ? `disk "${disk}"` : '',
    ].filter(Boolean);
    // This test host has 2 CPUs and a 10 GiB pool: something must have been lowered.
    expect(lowered.length).toBeGreaterThan(0);

    const created = ok<{ container: Container; message: string }>(result);
    expect(created.container).toMatchObject({ cpu: String(cpus), memory, disk, image: 'busybox' });
    expect(created.message).toStartWith(
      `Container ${containerOf(username)} created successfully (defaults lowered to what this host has: ${lowered.join(', ')})`,
    );
    expect(result.text).toContain(`Created ${containerOf(username)} for ${username}: running.`);
    expect(result.text).toContain(`Image: busybox`);
    const config = (await instance(containerOf(username))).metadata;
    expect(config.config['limits.cpu']).toBe(String(cpus));
    expect(config.config['limits.memory']).toBe(memory);
    expect(config.config['user.containarium.image']).toBe('busybox');
    expect(config.expanded_devices.root?.size).toBe(disk);

    await mcp.close();
    expect(await local.stop()).toBe(0);
  }, 120_000);

  describe('a token without the admin role', () => {
    const owner = user('-a');
    const other = user('-b');
    const stranger = user('-c');
    let mine: Mcp;

    beforeAll(async () => {
      // busybox keeps this cheap: no apt, so the daemon makes the container without packages.
      for (const username of [owner, other]) {
        const made = await admin.call('create_container', {
          username,
          cpu: 1,
          memory: '128MB',
          disk: '1GB',
          image: 'busybox',
          enable_docker: false,
        });
        if (made.isError) throw new Error(`${made.text}${context()}`);
        expect(made.text).toContain(`Created ${containerOf(username)} for ${username}: running.`);
        // No key, so no account to log in to: no SSH command.
        expect(made.text).not.toContain('SSH:');
        expect((made.structuredContent as { sshCommand: string }).sshCommand).toBe('');
      }
      mine = await connectMcp(
        daemon.url,
        generateToken({ username: owner, roles: 'user', secretFile }),
      );
    }, 90_000);

    const refused = (result: ToolResult) => {
      expect(result.isError).toBe(true);
      expect(result.text).toContain('is not allowed to');
      expect(result.text).toContain('(403:');
      expect(result.text).toContain('admin role');
    };

    test('sees only its own container in list and metrics', async () => {
      const list = ok<{ containers: Container[] }>(await mine.call('list_containers'));
      expect(list.containers.map((c) => c.name)).toEqual([containerOf(owner)]);
      // The admin sees both, so the narrowing is the role's doing.
      const everything = ok<{ containers: Container[] }>(await admin.call('list_containers'));
      expect(everything.containers.map((c) => c.name)).toContain(containerOf(other));

      const metrics = ok<{ metrics: Metrics[] }>(await mine.call('get_metrics'));
      expect(metrics.metrics.map((m) => m.name)).toEqual([containerOf(owner)]);
      expect(metrics.metrics[0]?.memoryBytes).toBeGreaterThan(0);

      const own = ok<{ container: Container }>(
        await mine.call('get_container', { username: owner }),
      );
      expect(own.container).toMatchObject({ name: containerOf(owner), state: 'running' });
    }, 60_000);

    test("gets 403 on another user's container, and changes nothing", async () => {
      refused(await mine.call('get_container', { username: other }));
      refused(await mine.call('get_metrics', { username: other }));
      refused(await mine.call('stop_container', { username: other, force: true }));
      refused(await mine.call('delete_container', { username: other, force: true }));
      expect((await instance(containerOf(other))).metadata.status).toBe('Running');

      refused(
        await mine.call('create_container', {
          username: stranger,
          cpu: 1,
          memory: '128MB',
          disk: '1GB',
          image: 'busybox',
          enable_docker: false,
        }),
      );
      expect((await instance(containerOf(stranger))).status).toBe(404);
    }, 60_000);

    test('is refused system info', async () => {
      const result = await mine.call('get_system_info');
      refused(result);
      expect(result.text).toContain('get system information');
    }, 30_000);

    test('through one mcp-server http, the admin and the user each see what their token allows', async () => {
      const http = await startHttpMcp({ CONTAINARIUM_SERVER_URL: daemon.url });
      const connect = async (token: string) => {
        const client = new ClientV2({ name: 'e2e-http', version: '1' });
        await client.connect(
          new StreamableHTTPClientTransport(new URL(http.url), {
            requestInit: { headers: { authorization: `Bearer ${token}` } },
          }),
        );
        return client;
      };
      const names = async (client: ClientV2) => {
        const result = await client.callTool({ name: 'list_containers', arguments: {} });
        expect(result.isError).toBeFalsy();
        const { containers } = result.structuredContent as { containers: Container[] };
        return containers.map((c) => c.name);
      };
      const asAdmin = await connect(
        generateToken({ username: 'e2e-admin', roles: 'admin', secretFile }),
      );
      const asUser = await connect(generateToken({ username: owner, roles: 'user', secretFile }));
      try {
        // At the same time, through the same server: each call acts with its own caller's role.
        const [adminSees, userSees] = await Promise.all([names(asAdmin), names(asUser)]);
        expect(adminSees).toContain(containerOf(owner));
        expect(adminSees).toContain(containerOf(other));
        expect(userSees).toEqual([containerOf(owner)]);
        const denied = await asUser.callTool({ name: 'get_system_info', arguments: {} });
        expect(denied.isError).toBe(true);
        const allowed = await asAdmin.callTool({ name: 'get_system_info', arguments: {} });
        expect(allowed.isError).toBeFalsy();
        // One line per call, naming the caller, never a token.
        const log = http.stderr();
        expect(log).toMatch(/tool=list_containers caller="e2e-admin" outcome=ok/);
        expect(log).toContain(`tool=get_system_info caller="${owner}" outcome=error`);
        expect(log).not.toMatch(/eyJ[\w-]+\.[\w-]+\./);
      } finally {
        await asAdmin.close();
        await asUser.close();
        await http.stop();
      }
    }, 60_000);
  });

  describe('a token signed with another secret', () => {
    test('gets the 401 sentence from every tool, then 429 once it keeps trying', async () => {
      // Its own daemon: the failures lock out 127.0.0.1 there, which must not hit the other tests.
      const guardedAudit = join(tmp, 'guarded-audit.log');
      const guarded = await startDaemon({ secretFile, args: ['--audit-log', guardedAudit] });
      const forgedToken = generateToken({
        username: 'e2e-admin',
        roles: 'admin',
        secretFile: otherSecretFile,
      });
      const forged = await connectMcp(guarded.url, forgedToken);
      const nobody = user('-x');
      // The other tools already make the ten failed requests that lock an address out, so
      // list_images's 401 is checked beside its tool (test/mcp/tools/images.test.ts).
      const tools = everyTool(nobody).filter(([tool]) => tool !== 'list_images');
      for (const [tool, args] of tools) {
        const result = await forged.call(tool, args);
        expect(result.isError, tool).toBe(true);
        expect(result.text, tool).toContain(
          'The daemon rejected the API token (401: invalid token)',
        );
      }
      expect((await instance(containerOf(nobody))).status).toBe(404);
      expect(guarded.log()).toContain('auth: refused 127.0.0.1');

      // Ten failures within a minute lock the address out. Probed with start_container, a POST:
      // mcp-server retries GETs on 429 after the daemon's Retry-After (60 s), which would stall.
      let locked: ToolResult | undefined;
      for (let attempt = 0; attempt < 12 && !locked; attempt++) {
        const result = await forged.call('start_container', { username: nobody });
        if (result.text.includes('(429)')) locked = result;
        else expect(result.text).toContain('rejected the API token');
      }
      expect(locked?.isError).toBe(true);
      expect(locked?.text).toContain('refusing requests with a bad token');
      // The daemon may have locked out the address, its network or everyone: the sentence holds for each.
      expect(locked?.text).not.toContain('from this address');
      await forged.close();
      expect(await guarded.stop()).toBe(0);

      // Every refusal is in the audit log, by category, without the token.
      expect(readFileSync(guardedAudit, 'utf8')).not.toContain(forgedToken.split('.')[2] as string);
      const refused = auditLines(guardedAudit);
      expect(refused.length).toBeGreaterThanOrEqual(tools.length + 1);
      for (const line of refused) {
        expect(line).toMatchObject({ subject: null, tokenId: null, outcome: 'refused' });
      }
      expect(refused[0]).toMatchObject({ reason: 'invalid token', status: 401 });
      expect(refused.at(-1)).toMatchObject({
        targetUser: nobody,
        reason: 'locked out',
        status: 429,
      });
    }, 90_000);
  });

  describe('a daemon whose Incus is down', () => {
    test('answers 503 and mcp-server says the backend is unreachable', async () => {
      // Stopping the machine's real Incus would disturb everyone else using it, so this daemon is
      // pointed at a socket that does not exist: to the daemon that is exactly "Incus is down".
      const deadSocket = join(tmp, 'none.sock');
      const down = await startDaemon({ secretFile, incusSocket: deadSocket });
      const mcp = await connectMcp(
        down.url,
        generateToken({ username: 'e2e-admin', roles: 'admin', secretFile }),
      );
      const nobody = user('-y');
      for (const [tool, args] of everyTool(nobody)) {
        const result = await mcp.call(tool, args);
        expect(result.isError, tool).toBe(true);
        expect(result.text, tool).toContain('could not reach its container backend');
        expect(result.text, tool).toContain('(503:');
        expect(result.text, tool).toContain('Incus');
      }
      // The daemon says so at startup too, naming the socket.
      expect(down.log()).toContain(`Incus does not answer at ${deadSocket}`);
      await mcp.close();
      expect(await down.stop()).toBe(0);
    }, 90_000);
  });

  describe('a daemon restarted midway', () => {
    test('loses nothing: limits, keys, labels, image and the docker flag come back from Incus', async () => {
      let first = await startDaemon({ secretFile });
      const token = generateToken({ username: 'e2e-admin', roles: 'admin', secretFile });
      const mcp = await connectMcp(first.url, token);
      const bob = user('-r');
      // Labels have no create_container argument, so this one container is made over REST directly.
      const response = await fetch(`${first.url}/v1/containers`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          username: bob,
          resources: { cpu: '1', memory: '128MB', disk: '1GB' },
          sshKeys: [sshKey],
          labels: { team: 'e2e', run },
          image: 'busybox',
          enableDocker: true,
        }),
      });
      if (response.status !== 200) {
        throw new Error(`create: ${response.status} ${await response.text()}${context(first)}`);
      }

      const before = ok<{ container: Container }>(
        await mcp.call('get_container', { username: bob }),
      );
      expect(before.container).toMatchObject({
        cpu: '1',
        memory: '128MB',
        disk: '1GB',
        sshKeys: [sshKey],
        labels: { team: 'e2e', run },
        image: 'busybox',
        dockerEnabled: true,
      });
      expect((await instance(containerOf(bob))).metadata.config['security.nesting']).toBe('true');

      expect(await first.stop('SIGTERM')).toBe(0);
      expect(first.log()).toContain('SIGTERM: shutting down');
      const meanwhile = await mcp.call('get_container', { username: bob });
      expect(meanwhile.isError).toBe(true);
      expect(meanwhile.text).toContain('not reachable');

      // A new process on the same port: the same mcp-server carries on as if nothing happened.
      for (let attempt = 1; ; attempt++) {
        try {
          first = await startDaemon({ secretFile, port: first.port });
          break;
        } catch (error) {
          if (attempt === 10) throw error;
          await Bun.sleep(300);
        }
      }
      const after = ok<{ container: Container }>(
        await mcp.call('get_container', { username: bob }),
      );
      expect(after.container).toEqual(before.container);
      const listed = ok<{ containers: Container[] }>(await mcp.call('list_containers'));
      expect(listed.containers.find((c) => c.username === bob)).toEqual(before.container);
      await mcp.close();
    }, 90_000);
  });

  describe('a daemon stopped mid-create', () => {
    const token = () => generateToken({ username: 'e2e-admin', roles: 'admin', secretFile });

    /**
     * A daemon behind a proxy to Incus that holds its execs in the user's container (the first is
     * provisioning's first step) until the test lets them through or fails them.
     */
    async function daemonHolding(username: string, args: string[]) {
      const gate = Promise.withResolvers<Response | undefined>();
      const reached = Promise.withResolvers<void>();
      const proxy = incusProxy(INCUS_SOCKET, ({ method, path }) => {
        if (method !== 'POST' || path !== `/1.0/instances/${containerOf(username)}/exec`) {
          return undefined;
        }
        reached.resolve();
        return gate.promise;
      });
      const d = await startDaemon({ secretFile, incusSocket: proxy.socket, args });
      return {
        d,
        proxy,
        /** Resolves once provisioning has begun and is held. */
        reached: reached.promise,
        release: () => gate.resolve(undefined),
        /** For a killed daemon: its held call must never reach Incus after a resume began. */
        refuse: () => gate.resolve(failure(503, 'held by the test')),
      };
    }

    /** Starts a debian/12 create over REST; returns the pending response. */
    async function startCreate(d: Daemon, username: string, async: boolean) {
      const response = fetch(`${d.url}/v1/containers`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token()}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          username,
          resources: { cpu: '1', memory: '256MB', disk: '2GB' },
          sshKeys: [sshKey],
          image: 'debian/12',
          async,
        }),
      });
      if (async && (await response).status !== 200) {
        throw new Error(`create: ${(await response).status}${context(d)}`);
      }
      return response;
    }

    /** The container is finished: RUNNING, its account made and exactly its key installed. */
    async function expectProvisioned(username: string) {
      const name = containerOf(username);
      const { metadata } = await instance(name);
      expect(metadata.status).toBe('Running');
      expect(metadata.config['user.containarium.status']).toBe('ready');
      const uid = Number((await exec(name, ['id', '-u', username])).stdout.trim());
      expect(uid).toBeGreaterThanOrEqual(1000);
      expect(await readFile(name, `/home/${username}/.ssh/authorized_keys`)).toMatchObject({
        content: `${sshKey}\n`,
        uid,
        mode: 0o600,
      });
    }

    test.each([
      ['an async', true, '-ta'],
      ['a sync', false, '-ts'],
    ])(
      'SIGTERM takes no new work and waits for %s create in flight, which ends RUNNING with its user and key',
      async (_, async, suffix) => {
        const carol = user(suffix);
        const hold = await daemonHolding(carol, ['--shutdown-grace', '5m']);
        await using _proxy = hold.proxy;
        const { d } = hold;
        const response = startCreate(d, carol, async);
        await hold.reached;
        const exited = d.stop('SIGTERM');
        // A create sent now is refused (the port is closed, or 503), and makes nothing.
        const late = user(`${suffix}l`);
        const refused = await fetch(`${d.url}/v1/containers`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token()}`, 'content-type': 'application/json' },
          body: JSON.stringify({ username: late, image: 'busybox' }),
        }).then(
          (r) => r.status,
          () => 'connection refused',
        );
        expect([503, 'connection refused']).toContain(refused);
        while (!d.log().includes('SIGTERM: shutting down')) await Bun.sleep(20);
        expect(d.log()).toContain('waiting up to 300s for 1 create(s) in flight');
        // Still waiting for the held create; let it go on.
        expect(d.proc.exitCode).toBeNull();
        hold.release();
        expect(await exited).toBe(0);
        if (!async) {
          const answer = (await (await response).json()) as { container: { state: string } };
          expect(answer.container.state).toBe('CONTAINER_STATE_RUNNING');
        }
        await expectProvisioned(carol);
        expect((await instance(containerOf(late))).status).toBe(404);
      },
      300_000,
    );

    test.each([
      ['kill -9', 'SIGKILL', [], '-k'],
      ['SIGTERM past a 1s grace', 'SIGTERM', ['--shutdown-grace', '1s'], '-g'],
    ] as const)(
      'after %s mid-create, the next start resumes it to RUNNING with its user and key',
      async (_, signal, args, suffix) => {
        const dave = user(suffix);
        const hold = await daemonHolding(dave, [...args]);
        await using _proxy = hold.proxy;
        const first = hold.d;
        await startCreate(first, dave, true);
        await hold.reached;
        await first.stop(signal);
        hold.refuse();
        if (signal === 'SIGTERM') {
          // On a shared Incus this daemon may also have picked up someone else's abandoned create.
          expect(first.log()).toMatch(
            new RegExp(
              `still busy after 1s; exiting \\(unfinished creates resume at the next start: ([\\w-]+, )*${dave}(, [\\w-]+)*\\)`,
            ),
          );
        }
        const left = await instance(containerOf(dave));
        expect(left.metadata.config['user.containarium.status']).toBe('creating');

        const second = await startDaemon({ secretFile });
        const headers = { authorization: `Bearer ${token()}` };
        let state = 'CONTAINER_STATE_CREATING';
        // It reads CREATING until resumed (never ERROR), then RUNNING.
        for (let i = 0; i < 1200 && state === 'CONTAINER_STATE_CREATING'; i++) {
          await Bun.sleep(250);
          const response = await fetch(`${second.url}/v1/containers/${dave}`, { headers });
          const body = (await response.json()) as { container?: { state: string } };
          state = body.container?.state ?? `HTTP ${response.status}`;
        }
        expect(state, context(second)).toBe('CONTAINER_STATE_RUNNING');
        expect(second.log()).toContain(`resuming the unfinished create of ${containerOf(dave)}`);
        await expectProvisioned(dave);
      },
      300_000,
    );
  });
});
