// Bulk operations and templates on real Incus, through the compiled binaries and a real MCP client:
// the daemon loads a templates file, create_containers makes three BusyBox containers from a
// template (its limits, image and labels land in Incus), a template's packages reach provisioning,
// and delete_containers removes all three after one confirmation.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { type CallToolResult, ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import {
  type Daemon,
  generateToken,
  MCP_SERVER,
  missingPrerequisites,
  startDaemon,
  stopAll,
} from './harness.ts';
import { exec, instance, removeInstance } from './incus.ts';

const missing = missingPrerequisites('bulk.test.ts');

const run = Math.random().toString(36).slice(2, 7);
const users = ['a', 'b', 'c'].map((letter) => `e2eb${letter}${run}`);
const packagesUser = `e2ebp${run}`;
const debianUser = `e2ebd${run}`;
const names = [...users, packagesUser, debianUser].map((user) => `${user}-container`);

const TEMPLATES = `templates:
  tiny:
    image: busybox
    cpu: 1
    memory: 128MB
    disk: 1GB
    labels:
      purpose: e2e-bulk
  tiny-with-jq:
    image: busybox
    memory: 128MB
    disk: 1GB
    packages: [jq]
  debian-jq:
    image: debian/12
    memory: 512MB
    disk: 3GB
    packages: [jq]
`;

describe.skipIf(missing.length > 0)('bulk and templates on real Incus', () => {
  let tmp = '';
  let daemon: Daemon;
  let client: Client;
  const asked: string[] = [];
  let answer = '';

  const call = async (name: string, args: Record<string, unknown>) => {
    const result = (await client.callTool({ name, arguments: args }, undefined, {
      timeout: 300_000,
    })) as CallToolResult;
    const text = result.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');
    return { ...result, text };
  };

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'containarium-bulk-'));
    const secretFile = join(tmp, 'jwt.secret');
    const secret = Buffer.from(crypto.getRandomValues(new Uint8Array(48))).toString('base64');
    writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
    const templatesFile = join(tmp, 'templates.yaml');
    writeFileSync(templatesFile, TEMPLATES);
    daemon = await startDaemon({ secretFile, args: ['--templates', templatesFile] });
    const token = generateToken({ username: 'e2e-admin', roles: 'admin', secretFile });
    client = new Client({ name: 'bulk-e2e', version: '1' }, { capabilities: { elicitation: {} } });
    client.setRequestHandler(ElicitRequestSchema, async (request) => {
      asked.push(request.params.message);
      return { action: 'accept', content: { username: answer } };
    });
    await client.connect(
      new StdioClientTransport({
        command: MCP_SERVER,
        args: [],
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: process.env.HOME ?? '/tmp',
          CONTAINARIUM_SERVER_URL: daemon.url,
          CONTAINARIUM_JWT_TOKEN: token,
        },
        stderr: 'pipe',
      }),
    );
  }, 30_000);

  afterAll(async () => {
    await client?.close().catch(() => undefined);
    await stopAll();
    const problems = (await Promise.all(names.map(removeInstance))).filter(Boolean);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    if (problems.length > 0) throw new Error(`cleanup: ${problems.join('; ')}`);
  }, 240_000);

  test("the daemon lists the file's templates beside the built-ins", async () => {
    expect(daemon.log()).toContain(
      'create templates: small, medium, large, tiny, tiny-with-jq, debian-jq',
    );
    const result = await call('list_templates', {});
    expect(result.isError).toBeFalsy();
    expect(result.text).toContain(
      'tiny: 1 CPU, 128MB memory, 1GB disk, image busybox, labels purpose=e2e-bulk',
    );
  });

  test('create_containers makes three from a template: its values land in Incus', async () => {
    const result = await call('create_containers', {
      containers: [
        { username: users[0], template: 'tiny' },
        { username: users[1], template: 'tiny' },
        // The call's own value wins over the template's.
        { username: users[2], template: 'tiny', memory: '192MB' },
      ],
    });
    expect(result.text.split('\n')[0]).toBe('Created all 3 containers:');
    expect(result.isError).toBeFalsy();
    for (const [index, user] of users.entries()) {
      const found = await instance(`${user}-container`);
      expect(found.status).toBe(200);
      const { config, expanded_devices: devices } = found.metadata;
      expect(config['limits.cpu']).toBe('1');
      expect(config['limits.memory']).toBe(index === 2 ? '192MB' : '128MB');
      expect(devices.root?.size).toBe('1GB');
      expect(config['user.containarium.image']).toBe('busybox');
      expect(JSON.parse(config['user.containarium.labels'] ?? '{}')).toEqual({
        purpose: 'e2e-bulk',
      });
    }
  }, 300_000);

  test("a template's packages reach provisioning: an image without apt-get says so", async () => {
    const result = await call('create_container', {
      username: packagesUser,
      template: 'tiny-with-jq',
    });
    expect(result.isError).toBe(true);
    expect(result.text).toContain(
      "has no apt-get, so the template's packages (jq) cannot be installed; use a Debian or Ubuntu image, or a template without packages",
    );
    // create_container follows an async create: the container stays, in ERROR, and the
    // sentence says so and how to remove it.
    expect(result.text).toContain(
      `${packagesUser}-container shows the ERROR state: delete it with delete_container`,
    );
    expect((await instance(`${packagesUser}-container`)).status).toBe(200);
  }, 180_000);

  test("a Debian container made from a template has the template's package installed", async () => {
    const made = await call('create_container', { username: debianUser, template: 'debian-jq' });
    expect(made.text).toStartWith(`Created ${debianUser}-container for ${debianUser}: running.`);
    const jq = await exec(`${debianUser}-container`, ['jq', '--version']);
    expect(jq.exitCode).toBe(0);
    expect(jq.stdout).toStartWith('jq-');
    const removed = await removeInstance(`${debianUser}-container`);
    expect(removed).toBeUndefined();
  }, 300_000);

  test('delete_containers removes all three after one confirmation', async () => {
    answer = 'delete 3 containers';
    const result = await call('delete_containers', { usernames: users, force: true });
    expect(asked).toHaveLength(1);
    for (const user of users) {
      expect(asked[0]).toContain(`- ${user}-container (user ${user}): running`);
    }
    expect(result.isError).toBeFalsy();
    expect(result.text.split('\n')[0]).toBe('Deleted all 3 containers:');
    for (const user of users) {
      expect((await instance(`${user}-container`)).status).toBe(404);
    }
  }, 180_000);
});
