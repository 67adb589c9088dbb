// Progress on real Incus through the compiled binaries: the daemon's GET shows the phase of an
// async create while it runs and the create's message once done; create_container through a
// real MCP client that asked for progress hears those phases; a cancelled create goes on in
// the daemon and the log says so. Busybox containers with random names, removed in afterAll.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { rmSync } from 'node:fs';
import { PHASES } from '../../src/daemon/create-progress.ts';
import {
  connectMcp,
  type Daemon,
  type Mcp,
  missingPrerequisites,
  startAdminDaemon,
  stopAll,
} from './harness.ts';
import { instance, removeInstance } from './incus.ts';

const missing = missingPrerequisites('progress.test.ts');

const run = Math.random().toString(36).slice(2, 8);
const users = {
  rest: `e2ep${run}r`,
  tool: `e2ep${run}t`,
  cancel: `e2ep${run}c`,
  failed: `e2ep${run}f`,
};
const busybox = { cpu: 1, memory: '128MB', disk: '1GB', image: 'busybox', enable_docker: false };
/** The phases a busybox create passes (it has neither apt-get nor useradd). */
const BUSYBOX_PHASES: string[] = [PHASES.creating, PHASES.starting, PHASES.network];

describe.skipIf(missing.length > 0)('progress of a create on real Incus', () => {
  let tmp = '';
  let daemon: Daemon;
  let token = '';
  let mcp: Mcp;
  const context = () => `\n--- daemon stderr ---\n${daemon.log().slice(-4000)}`;

  beforeAll(async () => {
    ({ tmp, daemon, token } = await startAdminDaemon('containarium-progress-'));
    mcp = await connectMcp(daemon.url, token);
  }, 30_000);

  afterAll(async () => {
    await stopAll();
    const problems = await Promise.all(
      Object.values(users).map((user) => removeInstance(`${user}-container`)),
    );
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    const left = problems.filter(Boolean);
    if (left.length > 0) throw new Error(`cleanup: ${left.join('; ')}`);
  }, 180_000);

  const rest = (method: string, path: string, body?: unknown) =>
    fetch(`${daemon.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    }).then(async (response) => ({
      status: response.status,
      body: (await response.json()) as { container: Record<string, unknown> },
    }));

  test("GET shows an async create's phase while CREATING, then RUNNING with the create's message", async () => {
    const user = users.rest;
    const started = await rest('POST', '/v1/containers', {
      username: user,
      resources: { cpu: '1', memory: '128MB', disk: '1GB' },
      image: 'busybox',
      async: true,
    });
    expect(started.status).toBe(200);
    expect(started.body.container.state).toBe('CONTAINER_STATE_CREATING');
    const seen: string[] = [];
    let container: Record<string, unknown> = {};
    for (const end = Date.now() + 150_000; Date.now() < end; await Bun.sleep(100)) {
      const got = await rest('GET', `/v1/containers/${user}`);
      expect(got.status).toBe(200);
      container = got.body.container;
      if (container.state !== 'CONTAINER_STATE_CREATING') break;
      const phase = String(container.phase);
      if (seen.at(-1) !== phase) seen.push(phase);
    }
    if (container.state !== 'CONTAINER_STATE_RUNNING') {
      throw new Error(`${JSON.stringify(container)}${context()}`);
    }
    // Each phase seen is one of busybox's, in their order (a quick one may pass between polls).
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((phase) => BUSYBOX_PHASES.includes(phase))).toBe(true);
    const order = seen.map((phase) => BUSYBOX_PHASES.indexOf(phase));
    expect(order).toEqual([...order].sort());
    expect(container).toMatchObject({ phase: '', error: '' });
    // What a sync create would have answered, busybox's missing useradd included.
    expect(String(container.createMessage)).toStartWith(
      `Container ${user}-container created successfully (the image has no useradd`,
    );
  }, 180_000);

  test('an async create that fails shows ERROR on GET with the reason, and create_container shows it', async () => {
    const user = users.failed;
    // Far too small a disk for debian/12: Incus refuses to unpack it, after the create began.
    const result = await mcp.call(
      'create_container',
      { username: user, cpu: 1, memory: '128MB', disk: '8MB', image: 'debian/12' },
      150_000,
    );
    expect(result.isError).toBe(true);
    expect(result.text).toStartWith(
      `The daemon could not create the container for ${user}: resources.disk "8MB" is too small for image "debian/12"`,
    );
    expect(result.text).toContain('delete it with delete_container');
    const got = await rest('GET', `/v1/containers/${user}`);
    expect(got.body.container).toMatchObject({ state: 'CONTAINER_STATE_ERROR', phase: '' });
    expect(String(got.body.container.error)).toStartWith('resources.disk "8MB" is too small');
  }, 180_000);

  test('create_container through a real MCP client: progress per phase, then the usual result', async () => {
    const user = users.tool;
    const heard: { progress: number; message?: string | undefined }[] = [];
    const result = await mcp.client.callTool(
      { name: 'create_container', arguments: { username: user, ...busybox } },
      undefined,
      { timeout: 150_000, onprogress: (p) => heard.push(p) },
    );
    const text = (result.content as { text: string }[]).map((c) => c.text).join('\n');
    if (result.isError) throw new Error(`${text}${context()}`);
    expect(text).toStartWith(`Created ${user}-container for ${user}: running.`);
    expect(text).toContain('Image: busybox');
    expect(text).toContain(`Daemon: Container ${user}-container created successfully`);
    const messages = heard.map((p) => p.message ?? '');
    expect(messages[0]).toBe(`creating ${user}-container: requesting the create`);
    // At least one of the daemon's own phases came through, not only "creating".
    const phases = BUSYBOX_PHASES.map((phase) => `creating ${user}-container: ${phase}`);
    expect(messages.some((m) => phases.includes(m))).toBe(true);
    expect(heard.every((p, i) => i === 0 || p.progress > (heard[i - 1]?.progress ?? 0))).toBe(true);
    expect((await instance(`${user}-container`)).metadata.status).toBe('Running');
  }, 180_000);

  test('a cancelled create goes on in the daemon, is not deleted, and mcp-server logs what it left', async () => {
    const user = users.cancel;
    const abort = new AbortController();
    const heard: string[] = [];
    const call = mcp.client.callTool(
      { name: 'create_container', arguments: { username: user, ...busybox } },
      undefined,
      { signal: abort.signal, onprogress: (p) => heard.push(p.message ?? '') },
    );
    for (let i = 0; i < 600 && heard.length < 2; i++) await Bun.sleep(50);
    abort.abort('cancelled by the test');
    await expect(call).rejects.toThrow();
    for (let i = 0; i < 100 && !mcp.stderr().includes(`${user}-container`); i++)
      await Bun.sleep(50);
    expect(mcp.stderr()).toContain(
      `The call was cancelled while the daemon was still creating ${user}-container`,
    );
    expect(mcp.stderr()).toContain(`delete it with delete_container`);
    // The daemon carries on to the end.
    let state = '';
    for (const end = Date.now() + 150_000; Date.now() < end; await Bun.sleep(500)) {
      state = (await rest('GET', `/v1/containers/${user}`)).body.container.state as string;
      if (state !== 'CONTAINER_STATE_CREATING') break;
    }
    expect(state).toBe('CONTAINER_STATE_RUNNING');
  }, 180_000);
});
