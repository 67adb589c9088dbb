// `mcp-server doctor` against the fake daemon: every check passes, and each failure names its fix.
import { afterAll, describe, expect, test } from 'bun:test';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { SignJWT } from 'jose';
import { parseCommandLine } from '../../src/daemon/cli.ts';
import type { Io } from '../../src/mcp/clients.ts';
import { formatDate, runDoctor } from '../../src/mcp/doctor.ts';
import { runInstall } from '../../src/mcp/install.ts';
import { VERSION } from '../../src/shared/version.ts';
import { startFakeDaemon } from '../support/fake-daemon.ts';
import { startHttpMcp } from '../support/http.ts';
import { makeToken } from '../support/mcp.ts';
import { BINARY } from '../support/stdio.ts';

const root = mkdtempSync(join(tmpdir(), 'mcp-doctor-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let count = 0;
const freshHome = () => {
  const dir = join(root, String(++count));
  mkdirSync(dir);
  return dir;
};

const token = await makeToken({ expiresIn: '30d' });

/** A stand-in for an installed binary: answers --version as mcp-server does. */
function fakeBinary(dir: string, version = 'mcp-server 0.1.0'): string {
  const path = join(dir, 'bin', 'mcp-server');
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `#!/bin/sh\necho '${version}'\n`, { mode: 0o755 });
  return path;
}

function captureIo(
  env: Record<string, string>,
  home: string,
  command?: string,
): Io & { out(): string } {
  let out = '';
  return {
    env: { HOME: home, ...env },
    platform: 'linux',
    cwd: home,
    command,
    stdout: (text) => {
      out += text;
    },
    stderr: (text) => {
      out += text;
    },
    out: () => out,
  };
}

/** Runs doctor in-process; asserts no token in the output whatever the outcome. */
async function doctor(
  env: Record<string, string>,
  options: { argv?: string[]; home?: string; secrets?: string[] } = {},
) {
  const home = options.home ?? freshHome();
  const io = captureIo(env, home);
  const code = await runDoctor(options.argv ?? [], io);
  const output = io.out();
  for (const secret of [token, ...(options.secrets ?? [])]) expect(output).not.toContain(secret);
  return { code, output, lines: output.split('\n') };
}

const line = (lines: string[], mark: string, text: string) =>
  lines.find((l) => l.startsWith(`${mark} `) && l.includes(text));

describe('mcp-server doctor', () => {
  test('all checks pass against a healthy daemon: settings, token, /health, an authenticated call', async () => {
    await using fake = startFakeDaemon({
      generation: 'head',
      token,
      containers: [{ username: 'alice' }],
    });
    const { code, output, lines } = await doctor({
      CONTAINARIUM_SERVER_URL: fake.url,
      CONTAINARIUM_JWT_TOKEN: token,
    });
    expect(output).not.toContain('✗');
    expect(code).toBe(0);
    expect(line(lines, '✓', `CONTAINARIUM_SERVER_URL is ${fake.url}`)).toBeDefined();
    expect(
      line(
        lines,
        '✓',
        'token: user mcp-client, roles admin, issuer containarium, audience containarium-api; expires on',
      ),
    ).toBeDefined();
    expect(line(lines, '✓', `GET ${fake.url}/health: healthy`)).toBeDefined();
    expect(
      line(lines, '✓', `GET ${fake.url}/v1/containers with the token: 1 container`),
    ).toBeDefined();
    expect(output).toContain('All checks passed');
    const calls = fake.requests.map((r) => `${r.method} ${r.path} ${r.status}`);
    expect(calls).toEqual(['GET /health 200', 'GET /v1/containers 200']);
    expect(fake.requests[1]!.headers.authorization).toBe(`Bearer ${token}`);
    expect(line(lines, '✓', 'guard rails: none')).toBeDefined();
    expect(line(lines, '✓', 'confirmations: auto (destructive tools ask the user')).toBeDefined();
  });

  test('shows the guard rails in force', async () => {
    await using fake = startFakeDaemon({ generation: 'head', token });
    const { lines } = await doctor({
      CONTAINARIUM_SERVER_URL: fake.url,
      CONTAINARIUM_JWT_TOKEN: token,
      CONTAINARIUM_DISABLE_DESTRUCTIVE: 'true',
      CONTAINARIUM_TOOLS: 'list_containers',
      CONTAINARIUM_CONFIRM: 'always',
    });
    expect(
      line(lines, '✓', 'guard rails: destructive tools disabled; tools list_containers'),
    ).toBeDefined();
    expect(
      line(lines, '✓', 'confirmations: always (destructive tools ask the user, and refuse'),
    ).toBeDefined();
  });

  test('an expired token says "expired" with the date, and exits 1', async () => {
    const exp = Math.floor(Date.now() / 1000) - 3600;
    const expired = await makeToken({ expiresIn: exp });
    await using fake = startFakeDaemon({ generation: 'v0.3', token, expiredToken: expired });
    const { code, lines, output } = await doctor(
      { CONTAINARIUM_SERVER_URL: fake.url, CONTAINARIUM_JWT_TOKEN: expired },
      { secrets: [expired] },
    );
    expect(code).toBe(1);
    expect(line(lines, '✗', `token expired on ${formatDate(new Date(exp * 1000))}`)).toBeDefined();
    expect(output).toContain('containarium token generate');
    // The daemon agrees, and the 401 advice says why.
    expect(line(lines, '✗', 'with the token failed (HTTP 401)')).toBeDefined();
    expect(output).toContain('The API token expired');
  });

  test('a stopped daemon: names the URL it tried and how to start it, skips the API call', async () => {
    const fake = startFakeDaemon({ generation: 'head', token });
    const url = fake.url;
    await fake.stop();
    const { code, lines, output } = await doctor({
      CONTAINARIUM_SERVER_URL: url,
      CONTAINARIUM_JWT_TOKEN: token,
    });
    expect(code).toBe(1);
    expect(line(lines, '✗', `cannot reach ${url}/health`)).toBeDefined();
    expect(output).toContain('containarium daemon --rest');
    expect(line(lines, '-', 'authenticated call is skipped')).toBeDefined();
  });

  test('a token signed with another secret gets the secret-mismatch advice', async () => {
    const forged = await new SignJWT({ username: 'mcp-client', roles: ['admin'] })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer('containarium')
      .setAudience(['containarium-api'])
      .setIssuedAt()
      .setExpirationTime('30d')
      .sign(new TextEncoder().encode('another-secret-that-is-32-bytes-long'));
    await using fake = startFakeDaemon({ generation: 'head', token });
    const { code, lines, output } = await doctor(
      { CONTAINARIUM_SERVER_URL: fake.url, CONTAINARIUM_JWT_TOKEN: forged },
      { secrets: [forged] },
    );
    expect(code).toBe(1);
    // Decoding locally cannot tell: the claims look fine until the daemon checks the signature.
    expect(line(lines, '✓', 'token: user mcp-client')).toBeDefined();
    expect(
      line(lines, '✗', `GET ${fake.url}/v1/containers with the token failed (HTTP 401)`),
    ).toBeDefined();
    expect(output).toContain('different secret');
  });

  test('a token without admin is fine as it is: never told to escalate, not even after a 403', async () => {
    const user = await makeToken({ username: 'alice', roles: ['user'], expiresIn: '30d' });
    await using fake = startFakeDaemon({ generation: 'head', token: user, admin: false });
    const ok = await doctor(
      { CONTAINARIUM_SERVER_URL: fake.url, CONTAINARIUM_JWT_TOKEN: user },
      { secrets: [user] },
    );
    expect(ok.code).toBe(0);
    expect(ok.lines.filter((l) => l.startsWith('! ') && l.includes('token'))).toEqual([]);
    expect(line(ok.lines, '✓', 'the token acts for user alice only')).toBeDefined();
    expect(ok.output).not.toContain('admin');
    fake.fail('listContainers', {
      status: 403,
      body: { code: 403, error: 'rpc error: code = PermissionDenied desc = role required: admin' },
    });
    const denied = await doctor(
      { CONTAINARIUM_SERVER_URL: fake.url, CONTAINARIUM_JWT_TOKEN: user },
      { secrets: [user] },
    );
    expect(denied.code).toBe(1);
    expect(line(denied.lines, '✗', '(HTTP 403)')).toBeDefined();
    expect(denied.output).toContain("it may act only on alice's container");
    expect(denied.output).not.toMatch(
      /--roles admin|(use|with|generate) a token with the admin role/i,
    );
  });

  test("the token generate fix is a command the CLI accepts, for the token's own user and roles", async () => {
    const exp = Math.floor(Date.now() / 1000) - 60;
    const expired = await makeToken({ username: 'alice', roles: ['user'], expiresIn: exp });
    await using fake = startFakeDaemon({ generation: 'head', token, expiredToken: expired });
    const { output } = await doctor(
      { CONTAINARIUM_SERVER_URL: fake.url, CONTAINARIUM_JWT_TOKEN: expired },
      { secrets: [expired] },
    );
    const printed = /`(containarium token generate [^`]*)`/.exec(output)?.[1];
    expect(printed).toBeDefined();
    expect(printed).toContain('--secret-file /etc/containarium-jwt.secret');
    // On the daemon's host that file holds the daemon's secret; here a stand-in takes its place.
    const secretFile = join(freshHome(), 'secret');
    writeFileSync(secretFile, 'a-secret-of-more-than-32-bytes-for-the-test\n', { mode: 0o600 });
    const argv = printed!.replace('/etc/containarium-jwt.secret', secretFile).split(' ').slice(1);
    expect(parseCommandLine(argv)).toMatchObject({
      kind: 'token',
      username: 'alice',
      roles: ['user'],
    });
  });

  test('a 24 h token is not "expiring soon"; one with minutes left is', async () => {
    await using fake = startFakeDaemon({ generation: 'head', token });
    const day = await makeToken({ expiresIn: '24h' });
    const fresh = await doctor(
      { CONTAINARIUM_SERVER_URL: fake.url, CONTAINARIUM_JWT_TOKEN: day },
      { secrets: [day] },
    );
    expect(fresh.output).not.toContain('expires soon');
    expect(line(fresh.lines, '✓', '(in 23h 59m)')).toBeDefined();
    const ending = await makeToken({ expiresIn: '20m' });
    const soon = await doctor(
      { CONTAINARIUM_SERVER_URL: fake.url, CONTAINARIUM_JWT_TOKEN: ending },
      { secrets: [ending] },
    );
    expect(line(soon.lines, '!', 'token expires soon')).toBeDefined();
  });

  test('missing settings use the seed words and skip the rest', async () => {
    const { code, lines, output } = await doctor({});
    expect(code).toBe(1);
    expect(
      line(lines, '✗', 'CONTAINARIUM_SERVER_URL environment variable is required'),
    ).toBeDefined();
    expect(output).toContain('mcp-server install');
    const noToken = await doctor({ CONTAINARIUM_SERVER_URL: 'http://127.0.0.1:9' });
    expect(
      line(noToken.lines, '✗', 'CONTAINARIUM_JWT_TOKEN environment variable is required'),
    ).toBeDefined();
  });

  test('checks an installed client: JSON, entry, binary, mode, and the entry’s own settings', async () => {
    await using fake = startFakeDaemon({ generation: 'head', token });
    const home = freshHome();
    const binary = fakeBinary(home);
    const installIo = captureIo(
      { CONTAINARIUM_SERVER_URL: fake.url, CONTAINARIUM_JWT_TOKEN: token },
      home,
      binary,
    );
    expect(await runInstall([], installIo)).toBe(0);
    // This shell sets nothing: doctor checks the settings Claude Desktop will start the server with.
    const { code, lines, output } = await doctor({}, { home });
    expect(output).not.toContain('✗');
    expect(code).toBe(0);
    const path = join(home, '.config/claude/claude_desktop_config.json');
    expect(output).toContain(`Claude Desktop: ${path}`);
    expect(line(lines, '✓', 'valid JSON, readable only by you')).toBeDefined();
    expect(
      line(lines, '✓', `mcpServers.containarium starts ${binary} (mcp-server 0.1.0)`),
    ).toBeDefined();
    expect(line(lines, '✓', `GET ${fake.url}/v1/containers with the token`)).toBeDefined();
    expect(fake.requests.map((r) => r.path)).toEqual(['/health', '/v1/containers']);
  });

  test('reports each client-config problem with its fix', async () => {
    await using fake = startFakeDaemon({ generation: 'head', token });
    const home = freshHome();
    const env = { CONTAINARIUM_SERVER_URL: fake.url, CONTAINARIUM_JWT_TOKEN: token };
    // Cursor: not JSON.
    const cursor = join(home, '.cursor/mcp.json');
    mkdirSync(dirname(cursor));
    writeFileSync(cursor, '{"mcpServers": {,}}');
    // Claude Code: readable by others, and its entry's binary is gone.
    const code = join(home, '.claude.json');
    writeFileSync(
      code,
      JSON.stringify({
        mcpServers: { containarium: { command: join(home, 'gone/mcp-server'), env } },
      }),
    );
    chmodSync(code, 0o644);
    // Claude Desktop: its binary is not executable.
    const desktop = join(home, '.config/Claude/claude_desktop_config.json');
    mkdirSync(dirname(desktop), { recursive: true });
    const binary = fakeBinary(home);
    chmodSync(binary, 0o644);
    writeFileSync(
      desktop,
      JSON.stringify({ mcpServers: { containarium: { command: binary, env } } }),
      { mode: 0o600 },
    );
    const result = await doctor(env, { home });
    expect(result.code).toBe(1);
    expect(line(result.lines, '✗', `${cursor} is not valid JSON`)).toBeDefined();
    expect(line(result.lines, '!', 'other users can read it (mode 644)')).toBeDefined();
    expect(result.output).toContain(`chmod 600 '${code}'`);
    expect(
      line(result.lines, '✗', `starts ${join(home, 'gone/mcp-server')}, which does not exist`),
    ).toBeDefined();
    expect(line(result.lines, '✗', `${binary} is not executable`)).toBeDefined();
    expect(result.output).toContain(`chmod 755 '${binary}'`);
    // The entries carry the shell's settings, so the daemon is asked only once.
    expect(fake.requests.filter((r) => r.path === '/health').length).toBe(1);
    expect(line(result.lines, '-', 'same settings as checked above')).toBeDefined();

    // --config and --client narrow the check to one file.
    const one = await doctor(env, { home, argv: ['--config', cursor] });
    expect(one.output).not.toContain('.claude.json');
    expect(line(one.lines, '✗', 'is not valid JSON')).toBeDefined();
    const onlyDesktop = await doctor(env, { home, argv: ['--client', 'claude-desktop'] });
    expect(onlyDesktop.output).not.toContain('mcp.json');
    expect(line(onlyDesktop.lines, '✗', 'is not executable')).toBeDefined();
  });

  test('a client named with --client but never set up fails with the install command', async () => {
    await using fake = startFakeDaemon({ generation: 'head', token });
    const { code, output } = await doctor(
      { CONTAINARIUM_SERVER_URL: fake.url, CONTAINARIUM_JWT_TOKEN: token },
      { argv: ['--client', 'cursor'] },
    );
    expect(code).toBe(1);
    expect(output).toContain('does not exist');
    expect(output).toContain('mcp-server install --client cursor');
  });

  test('runs only an mcp-server binary with --version, never another program an entry starts', async () => {
    await using fake = startFakeDaemon({ generation: 'head', token });
    const home = freshHome();
    const env = { CONTAINARIUM_SERVER_URL: fake.url, CONTAINARIUM_JWT_TOKEN: token };
    // Matched by its name and by its CONTAINARIUM_* env, but it is some other program.
    const marker = join(home, 'ran');
    const other = join(home, 'bin', 'deploy-prod');
    mkdirSync(dirname(other), { recursive: true });
    writeFileSync(other, `#!/bin/sh\ntouch '${marker}'\necho 'mcp-server 0.1.0'\n`, {
      mode: 0o755,
    });
    const path = join(home, '.cursor/mcp.json');
    mkdirSync(dirname(path));
    writeFileSync(
      path,
      JSON.stringify({
        mcpServers: { containarium: { command: other, env }, lab: { command: 'true', env } },
      }),
      { mode: 0o600 },
    );
    const { code, lines } = await doctor(env, { home, argv: ['--client', 'cursor'] });
    expect(existsSync(marker)).toBe(false);
    expect(
      line(lines, '!', `mcpServers.containarium starts ${other}, which is not named mcp-server`),
    ).toBeDefined();
    // A bare name is reported with the path it resolves to, and not run either.
    const trueAt = Bun.which('true');
    expect(trueAt).not.toBeNull();
    expect(
      line(lines, '!', `mcpServers.lab starts ${trueAt}, which is not named mcp-server`),
    ).toBeDefined();
    expect(code).toBe(0);

    // The same script named mcp-server is run, and its answer reported.
    const named = fakeBinary(home);
    writeFileSync(path, JSON.stringify({ mcpServers: { containarium: { command: named, env } } }), {
      mode: 0o600,
    });
    const ok = await doctor(env, { home, argv: ['--client', 'cursor'] });
    expect(line(ok.lines, '✓', `starts ${named} (mcp-server 0.1.0)`)).toBeDefined();
  });

  test('a token without an expiry fails with the --expiry fix', async () => {
    const forever = await new SignJWT({ username: 'mcp-client', roles: ['admin'] })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer('containarium')
      .setAudience(['containarium-api'])
      .setIssuedAt()
      .sign(new TextEncoder().encode('test-secret-that-is-32-bytes-long!!'));
    await using fake = startFakeDaemon({ generation: 'head', token: forever });
    const { code, lines, output } = await doctor(
      { CONTAINARIUM_SERVER_URL: fake.url, CONTAINARIUM_JWT_TOKEN: forever },
      { secrets: [forever] },
    );
    expect(code).toBe(1);
    const failed = lines.findIndex((l) => l.startsWith('✗ token (user mcp-client'));
    expect(lines[failed]).toContain('never expires');
    expect(lines[failed + 1]).toContain('generate one with --expiry');
    expect(lines[failed + 1]).toContain('--expiry 720h');
    expect(output).toContain('1 check failed');
  });

  test('/health goes through the server’s client: its user agent, no token; a non-daemon answer is a warning', async () => {
    await using fake = startFakeDaemon({ generation: 'head', token });
    await doctor({ CONTAINARIUM_SERVER_URL: fake.url, CONTAINARIUM_JWT_TOKEN: token });
    const health = fake.requests.find((r) => r.path === '/health');
    expect(health?.headers['user-agent']).toBe(`containarium-mcp/${VERSION}`);
    expect(health?.headers.authorization).toBeUndefined();

    // Something that is not the daemon: a web page, then JSON of another shape.
    let body = '<html>hello</html>';
    using server = Bun.serve({
      port: 0,
      hostname: '127.0.0.1',
      fetch: () => new Response(body),
    });
    const url = `http://127.0.0.1:${server.port}`;
    const page = await doctor({ CONTAINARIUM_SERVER_URL: url, CONTAINARIUM_JWT_TOKEN: token });
    expect(
      line(
        page.lines,
        '!',
        `GET ${url}/health answered, but not as a Containarium daemon does (not JSON)`,
      ),
    ).toBeDefined();
    body = '{"status":"starting"}';
    const other = await doctor({ CONTAINARIUM_SERVER_URL: url, CONTAINARIUM_JWT_TOKEN: token });
    expect(
      line(other.lines, '!', 'not as a Containarium daemon does (status "starting")'),
    ).toBeDefined();
    for (const json of ['{}', '{"status":5}']) {
      body = json;
      const shape = await doctor({ CONTAINARIUM_SERVER_URL: url, CONTAINARIUM_JWT_TOKEN: token });
      expect(
        line(shape.lines, '!', 'not as a Containarium daemon does (no "status")'),
      ).toBeDefined();
    }
  });

  test('warns, as the server does, when the token would travel in clear text', async () => {
    await using fake = startFakeDaemon({ generation: 'head', token });
    // 0.0.0.0 reaches this machine's loopback, but is not a loopback name.
    const url = `http://0.0.0.0:${fake.port}`;
    const { code, lines } = await doctor({
      CONTAINARIUM_SERVER_URL: url,
      CONTAINARIUM_JWT_TOKEN: token,
    });
    expect(code).toBe(0);
    expect(
      line(lines, '!', `${url} is plain http, so the API token travels in clear text`),
    ).toBeDefined();
    expect(line(lines, '✓', `GET ${url}/health: healthy`)).toBeDefined();
    const local = await doctor({
      CONTAINARIUM_SERVER_URL: fake.url,
      CONTAINARIUM_JWT_TOKEN: token,
    });
    expect(local.output).not.toContain('clear text');
  });

  test('usage errors exit 2', async () => {
    expect((await doctor({}, { argv: ['--client', 'vscode'] })).code).toBe(2);
    expect((await doctor({}, { argv: ['positional'] })).code).toBe(2);
  });
});

const built = existsSync(BINARY);
if (!built && process.env.CI === 'true')
  throw new Error('dist/mcp-server is missing: run `bun run build`');
if (!built)
  console.warn(
    'skipping `dist/mcp-server doctor` tests: dist/mcp-server is missing (run `bun run build`)',
  );

describe.skipIf(!built)('dist/mcp-server doctor', () => {
  test('install then doctor: every check passes, and no token is printed', async () => {
    await using fake = startFakeDaemon({ generation: 'head', token });
    const home = freshHome();
    const env = { PATH: process.env.PATH ?? '', HOME: home };
    const install = Bun.spawn([BINARY, 'install', '--server-url', fake.url, '--token', token], {
      cwd: home,
      env,
      stdout: 'pipe',
      stderr: 'pipe',
    });
    expect(await install.exited).toBe(0);
    const proc = Bun.spawn([BINARY, 'doctor'], { cwd: home, env, stdout: 'pipe', stderr: 'pipe' });
    const [code, stdout, stderr] = await Promise.all([
      proc.exited,
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
    ]);
    expect(stdout).not.toContain('✗');
    expect(code).toBe(0);
    expect(stdout).toContain(`starts ${BINARY}`);
    expect(stdout).toContain('All checks passed');
    expect(stdout + stderr).not.toContain(token);
  });

  test('runs its own binary with --version even under another name', async () => {
    await using fake = startFakeDaemon({ generation: 'head', token });
    const home = freshHome();
    const renamed = join(home, 'bin', 'containarium-tools');
    mkdirSync(dirname(renamed));
    symlinkSync(realpathSync(BINARY), renamed);
    const env = { CONTAINARIUM_SERVER_URL: fake.url, CONTAINARIUM_JWT_TOKEN: token };
    const path = join(home, '.cursor/mcp.json');
    mkdirSync(dirname(path));
    writeFileSync(
      path,
      JSON.stringify({ mcpServers: { containarium: { command: renamed, env } } }),
      {
        mode: 0o600,
      },
    );
    const proc = Bun.spawn([BINARY, 'doctor', '--client', 'cursor'], {
      env: { HOME: home },
      stdout: 'pipe',
    });
    const [code, stdout] = await Promise.all([proc.exited, new Response(proc.stdout).text()]);
    expect(stdout).toContain(`✓ mcpServers.containarium starts ${renamed} (mcp-server ${VERSION})`);
    expect(code).toBe(0);
    expect(stdout).not.toContain(token);
  });

  test('a stopped daemon exits 1 and names the URL', async () => {
    const fake = startFakeDaemon({ generation: 'head', token });
    await fake.stop();
    const proc = Bun.spawn([BINARY, 'doctor'], {
      env: { HOME: freshHome(), CONTAINARIUM_SERVER_URL: fake.url, CONTAINARIUM_JWT_TOKEN: token },
      stdout: 'pipe',
    });
    const [code, stdout] = await Promise.all([proc.exited, new Response(proc.stdout).text()]);
    expect(code).toBe(1);
    expect(stdout).toContain(`cannot reach ${fake.url}/health`);
    expect(stdout).not.toContain(token);
  });
});

describe('mcp-server doctor --url (a remote mcp-server http)', () => {
  test("checks /health and one authenticated call over HTTP, with this shell's token", async () => {
    await using fake = startFakeDaemon({
      generation: 'head',
      token,
      containers: [{ username: 'alice' }],
    });
    const mcp = await startHttpMcp({ CONTAINARIUM_SERVER_URL: fake.url });
    try {
      const good = await doctor({ CONTAINARIUM_JWT_TOKEN: token }, { argv: ['--url', mcp.url] });
      expect(good.code).toBe(0);
      expect(line(good.lines, '✓', '/health: ok')).toBeDefined();
      expect(line(good.lines, '✓', 'list_containers over HTTP with the token')).toBeDefined();
      expect(fake.requests.some((r) => r.headers.authorization === `Bearer ${token}`)).toBe(true);
      // A token the daemon refuses: the call fails, with the reason.
      const other = await makeToken({ username: 'mallory', expiresIn: '30d' });
      const refused = await doctor(
        { CONTAINARIUM_JWT_TOKEN: other },
        { argv: ['--url', mcp.url], secrets: [other] },
      );
      expect(refused.code).toBe(1);
      expect(line(refused.lines, '✗', 'list_containers over HTTP failed')).toBeDefined();
      // The entry `install --url` writes is checked the same way, with the token of its header.
      const home = freshHome();
      const installed = await runInstall(
        ['--client', 'claude-code', '--url', mcp.url, '--token', token],
        captureIo({}, home),
      );
      expect(installed).toBe(0);
      const fromEntry = await doctor({}, { home, argv: ['--client', 'claude-code'] });
      expect(fromEntry.code).toBe(0);
      expect(line(fromEntry.lines, '✓', 'is a remote mcp-server http')).toBeDefined();
      expect(line(fromEntry.lines, '✓', 'list_containers over HTTP with the token')).toBeDefined();
      const none = await doctor({}, { argv: ['--url', mcp.url] });
      expect(none.code).toBe(1);
      expect(none.output).toContain('CONTAINARIUM_JWT_TOKEN');
    } finally {
      await mcp.stop();
    }
  });

  test('a URL where nothing serves fails at /health and skips the call', async () => {
    const { code, lines } = await doctor(
      { CONTAINARIUM_JWT_TOKEN: token },
      { argv: ['--url', 'http://127.0.0.1:9/mcp'] },
    );
    expect(code).toBe(1);
    expect(line(lines, '✗', 'GET http://127.0.0.1:9/health failed')).toBeDefined();
    expect(line(lines, '-', 'authenticated call is skipped')).toBeDefined();
    expect((await doctor({}, { argv: ['--url', 'mcp.example.com'] })).code).toBe(2);
  });
});
