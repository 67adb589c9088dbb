// Confirmation on real Incus: the compiled mcp-server asks before delete_container, with facts read
// from the daemon over Incus (its address, its disk use), and does nothing when the container was
// deleted and created again while the user was being asked.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { rmSync } from 'node:fs';
import { Client as ClientV2 } from '@modelcontextprotocol/client';
import { StdioClientTransport as StdioV2 } from '@modelcontextprotocol/client/stdio';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport as StdioV1 } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import {
  connectMcp,
  type Daemon,
  MCP_SERVER,
  type Mcp,
  missingPrerequisites,
  startAdminDaemon,
  stopAll,
} from './harness.ts';
import { instance, ipv4, removeInstance } from './incus.ts';

const missing = missingPrerequisites('confirm.test.ts');

const username = `e2ec${Math.random().toString(36).slice(2, 8)}`;
const name = `${username}-container`;
const busybox = { username, cpu: 1, memory: '128MB', disk: '1GB', image: 'busybox' };
const textOf = (result: unknown) =>
  (result as { content: { text?: string }[] }).content.map((block) => block.text ?? '').join('\n');

describe.skipIf(missing.length > 0)('confirmation on real Incus', () => {
  let tmp = '';
  let daemon: Daemon;
  let token = '';
  /** An admin whose client cannot ask: under the default policy it deletes without a question. */
  let other: Mcp;
  const env = () => ({
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    CONTAINARIUM_SERVER_URL: daemon.url,
    CONTAINARIUM_JWT_TOKEN: token,
  });

  beforeAll(async () => {
    ({ tmp, daemon, token } = await startAdminDaemon('containarium-confirm-'));
    other = await connectMcp(daemon.url, token);
    const made = await other.call('create_container', busybox, 120_000);
    if (made.isError) throw new Error(made.text);
  }, 150_000);

  afterAll(async () => {
    await stopAll();
    const problem = await removeInstance(name);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    if (problem) throw new Error(`cleanup: ${problem}`);
  }, 120_000);

  test('2026-07-28: the question holds the real address and disk use; a container made again meanwhile is kept', async () => {
    const address = await ipv4(name);
    const before = await instance(name);
    const client = new ClientV2(
      { name: 'v2-client', version: '1' },
      {
        versionNegotiation: { mode: { pin: '2026-07-28' } },
        capabilities: { elicitation: { form: {} } },
      },
    );
    const asked: string[] = [];
    client.setRequestHandler('elicitation/create', async (request) => {
      asked.push((request.params as { message: string }).message);
      // Meanwhile another admin deletes the container and creates a new one with the same name.
      const deleted = await other.call('delete_container', { username, force: true }, 120_000);
      if (deleted.isError) throw new Error(deleted.text);
      const made = await other.call('create_container', busybox, 120_000);
      if (made.isError) throw new Error(made.text);
      return { action: 'accept', content: { username } };
    });
    await client.connect(new StdioV2({ command: MCP_SERVER, env: env(), stderr: 'ignore' }));
    const result = await client.callTool(
      { name: 'delete_container', arguments: { username, force: true } },
      { timeout: 300_000 },
    );
    await client.close();
    expect(asked).toHaveLength(1);
    expect(asked[0]).toContain(`Delete ${name} (user ${username})`);
    expect(asked[0]).toContain('State: running');
    expect(address).not.toBe('');
    expect(asked[0]).toContain(`IP: ${address}.`);
    expect(asked[0]).toMatch(/Disk: [\d.]+ [KMG]?i?B used of 1 GB\./);
    expect(result.isError).toBeFalsy();
    expect(textOf(result)).toContain('The target changed since the user was asked');
    // The new container is still there: nothing deleted it after the answer.
    const after = await instance(name);
    expect(after.status).toBe(200);
    expect(after.metadata.config['volatile.uuid']).not.toBe(
      before.metadata.config['volatile.uuid'],
    );
  }, 400_000);

  test('2025: the v1 client answers elicitation/create, and typing the username deletes it', async () => {
    const client = new ClientV1(
      { name: 'v1-client', version: '1' },
      { capabilities: { elicitation: {} } },
    );
    const asked: string[] = [];
    client.setRequestHandler(ElicitRequestSchema, async (request) => {
      asked.push((request.params as { message: string }).message);
      return { action: 'accept', content: { username } };
    });
    await client.connect(new StdioV1({ command: MCP_SERVER, env: env(), stderr: 'ignore' }));
    const result = await client.callTool(
      { name: 'delete_container', arguments: { username, force: true } },
      undefined,
      { timeout: 180_000 },
    );
    await client.close();
    expect(asked).toHaveLength(1);
    expect(asked[0]).toContain(`To confirm, type the username "${username}".`);
    expect(textOf(result)).toBe(`Deleted ${name} (user ${username}).`);
    expect((await instance(name)).status).toBe(404);
  }, 200_000);
});
