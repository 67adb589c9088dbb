// The processes of an end-to-end run: compiled containarium daemons, tokens from its CLI, and real
// MCP clients that spawn the compiled mcp-server over stdio. Everything started here is tracked so
// afterAll can end it.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { BUILD, INCUS_SETUP, missingPrerequisites as missingOf } from '../support/prerequisites.ts';
import { INCUS_SOCKET } from './incus.ts';

export const ROOT = resolve(import.meta.dir, '../..');
export const MCP_SERVER = resolve(ROOT, 'dist/mcp-server');
export const CONTAINARIUM = resolve(ROOT, 'dist/containarium');

/** Only what the binaries need; in particular no CONTAINARIUM_* from the developer's shell. */
const baseEnv = () => ({
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  HOME: process.env.HOME ?? '/tmp',
});

/** The --daemon-id of this test run's daemons. */
export const RUN_DAEMON_ID = `e2e-${Math.random().toString(36).slice(2, 9)}`;

export type Daemon = Awaited<ReturnType<typeof startDaemon>>;

const daemons = new Set<Daemon>();
const clients = new Set<Mcp>();

/** Starts `containarium daemon --rest` and waits for its "listening on" line on stderr. */
export async function startDaemon(options: {
  secretFile: string;
  port?: number;
  incusSocket?: string;
  /** More flags, like --shutdown-grace. */
  args?: string[];
}) {
  const args = [
    CONTAINARIUM,
    'daemon',
    '--rest',
    '--http-port',
    String(options.port ?? 0),
    '--address',
    '127.0.0.1',
    '--jwt-secret-file',
    options.secretFile,
    ...(options.incusSocket ? ['--incus-socket', options.incusSocket] : []),
    // One id for every daemon of this run, restarts included: creates that other runs on the
    // shared Incus abandon are never resumed here, nor this run's there.
    ...(options.args?.includes('--daemon-id') ? [] : ['--daemon-id', RUN_DAEMON_ID]),
    // The image cache builds in the background after a first create; tests that want it say so.
    ...(options.args?.some((a) => a.startsWith('--image-cache-max-age'))
      ? []
      : ['--image-cache-max-age', '0']),
    ...(options.args ?? []),
  ];
  const proc = Bun.spawn(args, { env: baseEnv(), stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' });
  let log = '';
  const pump = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of proc.stderr) log += decoder.decode(chunk, { stream: true });
  })();
  const daemon = {
    proc,
    url: '',
    port: 0,
    /** Everything the daemon wrote to stderr so far (never holds a token). */
    log: () => log,
    /** Sends a signal and waits for the exit code. */
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const code = await proc.exited;
      await pump;
      daemons.delete(daemon);
      return code;
    },
  };
  daemons.add(daemon);
  const deadline = Date.now() + 15_000;
  for (;;) {
    const match = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(log);
    if (match) {
      daemon.port = Number(match[1]);
      daemon.url = `http://127.0.0.1:${daemon.port}`;
      return daemon;
    }
    if (proc.exitCode !== null || Date.now() > deadline) {
      await daemon.stop('SIGKILL');
      throw new Error(`daemon did not start (${args.slice(1).join(' ')}):\n${log}`);
    }
    await Bun.sleep(20);
  }
}

/** `containarium token generate`: only the token is on stdout. */
export function generateToken(options: {
  username: string;
  roles: string;
  secretFile: string;
}): string {
  const proc = Bun.spawnSync(
    [
      CONTAINARIUM,
      'token',
      'generate',
      '--username',
      options.username,
      '--roles',
      options.roles,
      '--expiry',
      '1h',
      '--secret-file',
      options.secretFile,
    ],
    { env: baseEnv() },
  );
  if (proc.exitCode !== 0) throw new Error(`token generate failed: ${proc.stderr.toString()}`);
  const token = proc.stdout.toString().trim();
  if (!/^eyJ[\w-]+\.[\w-]+\.[\w-]+$/.test(token)) throw new Error('token generate printed no JWT');
  return token;
}

export type ToolResult = CallToolResult & { text: string };
export type Mcp = Awaited<ReturnType<typeof connectMcp>>;

/** A real MCP client over stdio, spawning the compiled mcp-server pointed at `url` with `token`. */
export async function connectMcp(url: string, token: string) {
  const transport = new StdioClientTransport({
    command: MCP_SERVER,
    args: [],
    env: { ...baseEnv(), CONTAINARIUM_SERVER_URL: url, CONTAINARIUM_JWT_TOKEN: token },
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const client = new Client({ name: 'containarium-e2e', version: '1.0.0' });
  await client.connect(transport);
  // Listing once makes the SDK check every structuredContent against the tool's outputSchema.
  const { tools } = await client.listTools();
  const mcp = {
    client,
    tools,
    stderr: () => stderr,
    /** Calls a tool; the result with its text parts joined. */
    async call(name: string, args: Record<string, unknown> = {}, timeoutMs = 60_000) {
      const result = (await client.callTool({ name, arguments: args }, undefined, {
        timeout: timeoutMs,
      })) as CallToolResult;
      const text = result.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');
      return { ...result, text } as ToolResult;
    },
    async close() {
      clients.delete(mcp);
      await client.close().catch(() => undefined);
    },
  };
  clients.add(mcp);
  return mcp;
}

/** Ends every MCP client and daemon still running (SIGKILL for daemons that outlive SIGTERM). */
export async function stopAll(): Promise<void> {
  await Promise.all([...clients].map((mcp) => mcp.close()));
  await Promise.all(
    [...daemons].map(async (daemon) => {
      const killer = setTimeout(() => daemon.proc.kill('SIGKILL'), 5_000);
      await daemon.stop('SIGTERM');
      clearTimeout(killer);
    }),
  );
}

/**
 * What an end-to-end file needs and does not find (Incus's socket, the binaries): in CI that is
 * an error, elsewhere the file is skipped and says why. `file` names it in that line.
 */
export const missingPrerequisites = (file: string): string[] =>
  missingOf(file, { [INCUS_SOCKET]: INCUS_SETUP, [MCP_SERVER]: BUILD, [CONTAINARIUM]: BUILD });

/**
 * A daemon of its own for one test file: a new temporary folder with a random JWT secret file
 * (mode 0600), the daemon started with it, and an admin token it accepts.
 */
export async function startAdminDaemon(prefix: string) {
  const tmp = mkdtempSync(join(tmpdir(), prefix));
  const secretFile = join(tmp, 'jwt.secret');
  const secret = Buffer.from(crypto.getRandomValues(new Uint8Array(48))).toString('base64');
  writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
  const daemon = await startDaemon({ secretFile });
  const token = generateToken({ username: 'e2e-admin', roles: 'admin', secretFile });
  return { tmp, secretFile, daemon, token };
}
