// `mcp-server install`: where it writes for each client and OS, what it keeps, and what it refuses.
import { afterAll, describe, expect, test } from 'bun:test';
import {
  chmodSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Io } from '../../src/mcp/clients.ts';
import { configWarnings, loadConfig } from '../../src/mcp/config.ts';
import { runInstall } from '../../src/mcp/install.ts';
import { makeToken } from '../support/mcp.ts';
import { BINARY } from '../support/stdio.ts';

const root = mkdtempSync(join(tmpdir(), 'mcp-install-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let count = 0;
const freshDir = () => {
  const dir = join(root, String(++count));
  mkdirSync(dir);
  return dir;
};

const token = await makeToken({ expiresIn: '30d' });
const URL_ = 'http://127.0.0.1:8080';
const COMMAND = '/opt/containarium/bin/mcp-server';
const mode = (path: string) => statSync(path).mode & 0o777;
const readJson = (path: string) => JSON.parse(readFileSync(path, 'utf8'));

/** Runs install in-process with a fake home; returns the exit code and everything printed. */
async function install(
  argv: string[],
  options: { env?: Record<string, string>; platform?: NodeJS.Platform; home?: string } = {},
) {
  const home = options.home ?? freshDir();
  let stdout = '';
  let stderr = '';
  const io: Io = {
    env: { HOME: home, ...options.env },
    platform: options.platform ?? 'linux',
    cwd: home,
    command: COMMAND,
    stdout: (text) => {
      stdout += text;
    },
    stderr: (text) => {
      stderr += text;
    },
  };
  const code = await runInstall(argv, io);
  // Whatever happened, the token never reaches the terminal.
  expect(stdout).not.toContain(token);
  expect(stderr).not.toContain(token);
  return { code, stdout, stderr, home };
}

const seedEnv = { CONTAINARIUM_SERVER_URL: URL_, CONTAINARIUM_JWT_TOKEN: token };

describe('mcp-server install', () => {
  test('--confirm writes the confirmation policy into the entry; a bad one is refused', async () => {
    const { code, home } = await install(['--confirm', 'always'], { env: seedEnv });
    expect(code).toBe(0);
    const path = join(home, '.config/claude/claude_desktop_config.json');
    const entry = JSON.parse(readFileSync(path, 'utf8')).mcpServers.containarium;
    expect(entry.env.CONTAINARIUM_CONFIRM).toBe('always');
    const refused = await install(['--confirm', 'sometimes'], { env: seedEnv });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('CONTAINARIUM_CONFIRM must be one of auto, always, never');
  });

  test('creates the Claude Desktop config at the seed path on Linux, private, from the environment', async () => {
    const { code, stdout, home } = await install([], { env: seedEnv });
    expect(code).toBe(0);
    const path = join(home, '.config/claude/claude_desktop_config.json');
    const text = readFileSync(path, 'utf8');
    expect(JSON.parse(text)).toEqual({
      mcpServers: {
        containarium: {
          command: COMMAND,
          env: { CONTAINARIUM_SERVER_URL: URL_, CONTAINARIUM_JWT_TOKEN: token },
        },
      },
    });
    expect(text).toBe(`${JSON.stringify(JSON.parse(text), null, 2)}\n`);
    expect(mode(path)).toBe(0o600);
    expect(mode(dirname(path))).toBe(0o700);
    expect(stdout).toContain(`Added mcpServers.containarium in ${path}`);
    expect(stdout).toContain(`command: ${COMMAND}`);
    expect(stdout).toContain('CONTAINARIUM_JWT_TOKEN (value not shown)');
    expect(stdout).toContain('restart Claude Desktop');
    expect(stdout).toContain('mcp-server doctor');
    // Nothing to back up the first time, and no temp file left behind.
    expect(readdirSync(dirname(path))).toEqual(['claude_desktop_config.json']);
  });

  test.each([
    [
      'claude-desktop',
      'darwin',
      {},
      'Library/Application Support/Claude/claude_desktop_config.json',
    ],
    [
      'claude-desktop',
      'win32',
      { APPDATA: 'AppData/Roaming' },
      'AppData/Roaming/Claude/claude_desktop_config.json',
    ],
    [
      'claude-desktop',
      'linux',
      { XDG_CONFIG_HOME: 'xdg' },
      'xdg/claude/claude_desktop_config.json',
    ],
    ['claude-code', 'linux', {}, '.claude.json'],
    ['claude-code', 'darwin', {}, '.claude.json'],
    ['cursor', 'win32', {}, '.cursor/mcp.json'],
    ['cursor', 'linux', {}, '.cursor/mcp.json'],
  ] as const)(
    '--client %s on %s writes its standard place',
    async (client, platform, extra, relative) => {
      const home = freshDir();
      const env: Record<string, string> = { ...seedEnv };
      for (const [key, value] of Object.entries(extra)) env[key] = join(home, value);
      const { code } = await install(['--client', client], { env, platform, home });
      expect(code).toBe(0);
      const config = readJson(join(home, relative));
      const entry = config.mcpServers.containarium;
      expect(entry.command).toBe(COMMAND);
      expect(entry.env.CONTAINARIUM_JWT_TOKEN).toBe(token);
      // Claude Code's own `claude mcp add` writes a type and args; the others take command and env.
      if (client === 'claude-code') expect(entry).toMatchObject({ type: 'stdio', args: [] });
      else expect(Object.keys(entry).sort()).toEqual(['command', 'env']);
    },
  );

  test('on Linux an existing ~/.config/Claude file is used instead of the seed spelling', async () => {
    const home = freshDir();
    const existing = join(home, '.config/Claude/claude_desktop_config.json');
    mkdirSync(dirname(existing), { recursive: true });
    writeFileSync(existing, '{"theme":"dark"}');
    const { code } = await install([], { env: seedEnv, home });
    expect(code).toBe(0);
    expect(readJson(existing)).toMatchObject({ theme: 'dark', mcpServers: { containarium: {} } });
    expect(existsSync(join(home, '.config/claude/claude_desktop_config.json'))).toBe(false);
  });

  test('merging keeps other servers, other keys and unrelated env; backs up the old file', async () => {
    const home = freshDir();
    const path = join(home, 'claude.json');
    const oldToken = await makeToken({ username: 'old' });
    const before = {
      globalShortcut: 'Ctrl+Space',
      mcpServers: {
        filesystem: { command: 'npx', args: ['-y', '@modelcontextprotocol/server-filesystem'] },
        containarium: {
          command: '/old/mcp-server',
          args: ['--stale'],
          disabled: false,
          env: {
            CONTAINARIUM_SERVER_URL: 'http://old:8080',
            CONTAINARIUM_JWT_TOKEN: oldToken,
            CONTAINARIUM_DEBUG: 'true',
          },
        },
      },
    };
    const oldText = JSON.stringify(before, null, 4);
    writeFileSync(path, oldText, { mode: 0o644 });
    chmodSync(path, 0o644);
    const inode = statSync(path).ino;
    const tokenFile = join(home, 'jwt');
    writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });

    const { code, stdout } = await install(
      ['--config', 'claude.json', '--server-url', 'http://127.0.0.1:9999/', '--token-file', 'jwt'],
      { home },
    );
    expect(code).toBe(0);
    const after = readJson(path);
    expect(after.globalShortcut).toBe('Ctrl+Space');
    expect(after.mcpServers.filesystem).toEqual(before.mcpServers.filesystem);
    expect(after.mcpServers.containarium).toEqual({
      command: COMMAND,
      disabled: false,
      env: {
        CONTAINARIUM_DEBUG: 'true',
        CONTAINARIUM_SERVER_URL: 'http://127.0.0.1:9999',
        CONTAINARIUM_JWT_TOKEN_FILE: tokenFile,
      },
    });
    // The switch to a token file leaves no copy of the old token in the new file.
    expect(readFileSync(path, 'utf8')).not.toContain(oldToken);
    expect(mode(path)).toBe(0o600);
    // Replaced by rename, not rewritten in place: a reader never sees half a file.
    expect(statSync(path).ino).not.toBe(inode);
    expect(readFileSync(`${path}.bak`, 'utf8')).toBe(oldText);
    expect(mode(`${path}.bak`)).toBe(0o600);
    expect(readdirSync(home).sort()).toEqual(['claude.json', 'claude.json.bak', 'jwt']);
    expect(stdout).toContain('Updated mcpServers.containarium');
    expect(stdout).toContain(`CONTAINARIUM_JWT_TOKEN_FILE=${tokenFile}`);
    expect(stdout).toContain('kept the 1 other server');
    expect(stdout).toContain(`previous version saved as ${path}.bak`);
  });

  test('a rerun takes what it is not told from the entry it replaces', async () => {
    const home = freshDir();
    const first = await install(['--config', 'c.json', '--server-url', URL_, '--token', token], {
      env: { CONTAINARIUM_TIMEOUT: '90' },
      home,
    });
    expect(first.code).toBe(0);
    const tokenFile = join(home, 'jwt');
    writeFileSync(tokenFile, token, { mode: 0o600 });
    // Rotating to a token file needs only the new flag: URL and timeout stay, the inline token goes.
    const { code } = await install(['--config', 'c.json', '--token-file', tokenFile], { home });
    expect(code).toBe(0);
    expect(readJson(join(home, 'c.json')).mcpServers.containarium.env).toEqual({
      CONTAINARIUM_SERVER_URL: URL_,
      CONTAINARIUM_JWT_TOKEN_FILE: tokenFile,
      CONTAINARIUM_TIMEOUT: '90',
    });
    // This shell's values come before the old entry's.
    const other = await makeToken({ username: 'other', expiresIn: '30d' });
    const again = await install(['--config', 'c.json'], {
      env: { CONTAINARIUM_JWT_TOKEN: other },
      home,
    });
    expect(again.code).toBe(0);
    expect(again.stdout).not.toContain(other);
    const env = readJson(join(home, 'c.json')).mcpServers.containarium.env;
    expect(env.CONTAINARIUM_JWT_TOKEN).toBe(other);
    expect(env.CONTAINARIUM_JWT_TOKEN_FILE).toBeUndefined();
  });

  test('--name adds a second entry beside the first', async () => {
    const home = freshDir();
    expect((await install(['--config', 'c.json'], { env: seedEnv, home })).code).toBe(0);
    const { code } = await install(['--config', 'c.json', '--name', 'lab'], { env: seedEnv, home });
    expect(code).toBe(0);
    expect(Object.keys(readJson(join(home, 'c.json')).mcpServers)).toEqual(['containarium', 'lab']);
  });

  test('writes through a symlinked config to its real file', async () => {
    const home = freshDir();
    const real = join(home, 'dotfiles/claude.json');
    mkdirSync(dirname(real));
    writeFileSync(real, '{"keep":1}');
    symlinkSync(real, join(home, 'link.json'));
    expect((await install(['--config', 'link.json'], { env: seedEnv, home })).code).toBe(0);
    expect(lstatSync(join(home, 'link.json')).isSymbolicLink()).toBe(true);
    expect(readJson(real)).toMatchObject({ keep: 1, mcpServers: { containarium: {} } });
    expect(mode(real)).toBe(0o600);
  });

  test('refuses a file that is not valid JSON and leaves it untouched', async () => {
    const home = freshDir();
    const path = join(home, 'broken.json');
    writeFileSync(path, '{ "mcpServers": { ');
    const { code, stderr } = await install(['--config', path], { env: seedEnv, home });
    expect(code).toBe(1);
    expect(stderr).toContain(`${path} is not valid JSON`);
    expect(stderr).toContain('Nothing was changed');
    expect(readFileSync(path, 'utf8')).toBe('{ "mcpServers": { ');
    expect(existsSync(`${path}.bak`)).toBe(false);
  });

  test('refuses a config whose mcpServers is not an object', async () => {
    const home = freshDir();
    const path = join(home, 'odd.json');
    writeFileSync(path, '{"mcpServers": []}');
    const { code, stderr } = await install(['--config', path], { env: seedEnv, home });
    expect(code).toBe(1);
    expect(stderr).toContain('"mcpServers" that is not a JSON object');
    expect(readFileSync(path, 'utf8')).toBe('{"mcpServers": []}');
  });

  test('refuses a token file other users can read, with the chmod fix', async () => {
    const home = freshDir();
    const tokenFile = join(home, 'jwt');
    writeFileSync(tokenFile, token);
    chmodSync(tokenFile, 0o640);
    const { code, stderr } = await install(
      ['--config', 'c.json', '--server-url', URL_, '--token-file', tokenFile],
      { home },
    );
    expect(code).toBe(1);
    expect(stderr).toContain(`chmod 600 ${tokenFile}`);
    expect(existsSync(join(home, 'c.json'))).toBe(false);
  });

  test('--token on the command line is written but never printed', async () => {
    const home = freshDir();
    const { code, stdout } = await install(
      ['--config', 'c.json', '--server-url', URL_, '--token', token],
      { home },
    );
    expect(code).toBe(0);
    expect(readJson(join(home, 'c.json')).mcpServers.containarium.env.CONTAINARIUM_JWT_TOKEN).toBe(
      token,
    );
    expect(stdout).toContain('CONTAINARIUM_JWT_TOKEN (value not shown)');
  });

  test('checks the URL and the token with the server’s own rules', async () => {
    const bad = await install([
      '--config',
      'c.json',
      '--server-url',
      'ftp://host',
      '--token',
      token,
    ]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('must start with http:// or https://');
    const notJwt = await install(['--config', 'c.json', '--server-url', URL_, '--token', 'abc']);
    expect(notJwt.code).toBe(1);
    expect(notJwt.stderr).toContain('is not a JWT');
    const noUrl = await install(['--config', 'c.json', '--token', token]);
    expect(noUrl.code).toBe(1);
    expect(noUrl.stderr).toContain('--server-url');
    const noToken = await install(['--config', 'c.json', '--server-url', URL_]);
    expect(noToken.code).toBe(1);
    expect(noToken.stderr).toContain('--token-file');
    for (const run of [bad, notJwt, noUrl, noToken]) {
      expect(existsSync(join(run.home, 'c.json'))).toBe(false);
    }
  });

  test('warns about an expired token, but installs it', async () => {
    const expired = await makeToken({ expiresIn: Math.floor(Date.now() / 1000) - 60 });
    const { code, stderr, home } = await install([
      '--config',
      'c.json',
      '--server-url',
      URL_,
      '--token',
      expired,
    ]);
    expect(code).toBe(0);
    expect(readJson(join(home, 'c.json')).mcpServers.containarium.env.CONTAINARIUM_JWT_TOKEN).toBe(
      expired,
    );
    // The server's own warning, word for word, as it will log it at every start.
    const warnings = configWarnings(
      loadConfig({ CONTAINARIUM_SERVER_URL: URL_, CONTAINARIUM_JWT_TOKEN: expired }),
    );
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('expired at');
    expect(stderr).toBe(`warning: ${warnings[0]}\n`);
    expect(stderr).not.toContain(expired);
  });

  test('warns, in the server’s words, that plain http to another host sends the token in clear text', async () => {
    const url = 'http://containarium.example:8080';
    const { code, stderr } = await install(['--config', 'c.json'], {
      env: { CONTAINARIUM_SERVER_URL: url, CONTAINARIUM_JWT_TOKEN: token },
    });
    expect(code).toBe(0);
    const warnings = configWarnings(
      loadConfig({ CONTAINARIUM_SERVER_URL: url, CONTAINARIUM_JWT_TOKEN: token }),
    );
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('clear text');
    expect(stderr).toBe(`warning: ${warnings[0]}\n`);
    // Loopback is not warned about.
    expect((await install(['--config', 'c.json'], { env: seedEnv })).stderr).toBe('');
  });

  test('replaces an existing .bak instead of writing through it: no symlink or hard link is followed', async () => {
    const home = freshDir();
    const path = join(home, 'c.json');
    const oldText = JSON.stringify({
      mcpServers: { containarium: { command: COMMAND, env: seedEnv } },
    });
    // A symlinked .bak pointing at a file others can read, e.g. planted in a shared folder.
    const shared = join(home, 'shared');
    mkdirSync(shared);
    const planted = join(shared, 'public.txt');
    writeFileSync(planted, 'public\n', { mode: 0o644 });
    chmodSync(planted, 0o644);
    writeFileSync(path, oldText, { mode: 0o600 });
    symlinkSync(planted, `${path}.bak`);
    expect((await install(['--config', 'c.json'], { env: seedEnv, home })).code).toBe(0);
    expect(readFileSync(planted, 'utf8')).toBe('public\n');
    expect(mode(planted)).toBe(0o644);
    expect(lstatSync(`${path}.bak`).isSymbolicLink()).toBe(false);
    expect(readFileSync(`${path}.bak`, 'utf8')).toBe(oldText);
    expect(mode(`${path}.bak`)).toBe(0o600);

    // A hard-linked .bak: writing in place would change the other name's content too.
    rmSync(`${path}.bak`);
    linkSync(planted, `${path}.bak`);
    expect((await install(['--config', 'c.json'], { env: seedEnv, home })).code).toBe(0);
    expect(readFileSync(planted, 'utf8')).toBe('public\n');
    expect(mode(planted)).toBe(0o644);
    expect(statSync(`${path}.bak`).ino).not.toBe(statSync(planted).ino);
    expect(mode(`${path}.bak`)).toBe(0o600);

    // An ordinary .bak of mode 644 is replaced by a new file, never reopened with its old mode.
    chmodSync(`${path}.bak`, 0o644);
    const inode = statSync(`${path}.bak`).ino;
    const previous = readFileSync(path, 'utf8');
    expect((await install(['--config', 'c.json'], { env: seedEnv, home })).code).toBe(0);
    expect(statSync(`${path}.bak`).ino).not.toBe(inode);
    expect(readFileSync(`${path}.bak`, 'utf8')).toBe(previous);
    expect(mode(`${path}.bak`)).toBe(0o600);
    expect(readdirSync(home).sort()).toEqual(['c.json', 'c.json.bak', 'shared']);
  });

  test('usage errors exit 2', async () => {
    for (const argv of [
      ['--token', token, '--token-file', '/x'],
      ['--client', 'vscode'],
      ['--name', 'has space'],
      ['--bogus'],
      ['extra'],
    ]) {
      const { code, stderr } = await install(argv, { env: seedEnv });
      expect(code).toBe(2);
      expect(stderr).toContain('Usage: mcp-server install');
    }
  });
});

const built = existsSync(BINARY);
if (!built && process.env.CI === 'true')
  throw new Error('dist/mcp-server is missing: run `bun run build`');
if (!built)
  console.warn(
    'skipping `dist/mcp-server install` tests: dist/mcp-server is missing (run `bun run build`)',
  );

describe.skipIf(!built)('dist/mcp-server install', () => {
  test('writes its own absolute path as the command', () => {
    const home = freshDir();
    const proc = Bun.spawnSync([BINARY, 'install', '--client', 'cursor'], {
      cwd: home,
      env: { PATH: process.env.PATH ?? '', HOME: home, ...seedEnv },
    });
    const stdout = proc.stdout.toString();
    const stderr = proc.stderr.toString();
    expect(stderr).toBe('');
    expect(proc.exitCode).toBe(0);
    const path = join(home, '.cursor/mcp.json');
    const entry = readJson(path).mcpServers.containarium;
    expect(entry.command).toBe(realpathSync(BINARY));
    expect(entry.env).toEqual({ CONTAINARIUM_SERVER_URL: URL_, CONTAINARIUM_JWT_TOKEN: token });
    expect(mode(path)).toBe(0o600);
    expect(stdout).toContain(`command: ${realpathSync(BINARY)}`);
    expect(stdout).not.toContain(token);
  });

  test('refuses invalid JSON with exit 1 and a group-readable token file with the fix', () => {
    const home = freshDir();
    writeFileSync(join(home, 'bad.json'), 'nope');
    const bad = Bun.spawnSync([BINARY, 'install', '--config', 'bad.json'], {
      cwd: home,
      env: { HOME: home, ...seedEnv },
    });
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr.toString()).toContain('is not valid JSON');
    writeFileSync(join(home, 'jwt'), token, { mode: 0o644 });
    chmodSync(join(home, 'jwt'), 0o644);
    const open = Bun.spawnSync(
      [BINARY, 'install', '--config', 'c.json', '--server-url', URL_, '--token-file', 'jwt'],
      { cwd: home, env: { HOME: home } },
    );
    expect(open.exitCode).toBe(1);
    expect(open.stderr.toString()).toContain(`chmod 600 ${join(home, 'jwt')}`);
    expect(Bun.spawnSync([BINARY, 'install', '--nope'], { env: {} }).exitCode).toBe(2);
  });
});

describe('mcp-server install --url (a remote mcp-server http)', () => {
  const REMOTE = 'https://mcp.example.com/mcp';

  test('writes a Claude Code http entry whose Authorization header carries the token', async () => {
    const home = freshDir();
    writeFileSync(join(home, 'jwt'), `${token}\n`, { mode: 0o600 });
    const { code, stdout } = await install(
      ['--client', 'claude-code', '--url', REMOTE, '--token-file', 'jwt'],
      { home },
    );
    expect(code).toBe(0);
    const path = join(home, '.claude.json');
    expect(readJson(path).mcpServers.containarium).toEqual({
      type: 'http',
      url: REMOTE,
      headers: { Authorization: `Bearer ${token}` },
    });
    expect(mode(path)).toBe(0o600);
    expect(stdout).toContain(`url:     ${REMOTE}`);
    expect(stdout).toContain('Authorization (value not shown)');
    // Run again without a token: the one in the entry's header is kept.
    const again = await install(['--client', 'claude-code', '--url', REMOTE], { home });
    expect(again.code).toBe(0);
    expect(readJson(path).mcpServers.containarium.headers.Authorization).toBe(`Bearer ${token}`);
  });

  test('refuses what a remote entry cannot take, and changes nothing', async () => {
    const desktop = await install(['--url', REMOTE], { env: seedEnv });
    expect(desktop.code).toBe(2);
    expect(desktop.stderr).toContain('only --client claude-code');
    const bad = await install(['--client', 'claude-code', '--url', 'mcp.example.com'], {
      env: seedEnv,
    });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('must be an http:// or https:// URL');
    const guard = await install(['--client', 'claude-code', '--url', REMOTE, '--read-only'], {
      env: seedEnv,
    });
    expect(guard.code).toBe(2);
    expect(guard.stderr).toContain('CONTAINARIUM_READ_ONLY is a setting of the remote server');
    const none = await install(['--client', 'claude-code', '--url', REMOTE]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('no token for the Authorization header');
    expect(existsSync(join(none.home, '.claude.json'))).toBe(false);
    const notJwt = await install(['--client', 'claude-code', '--url', REMOTE, '--token', 'abc']);
    expect(notJwt.code).toBe(1);
    expect(notJwt.stderr).toContain('not a JWT');
  });
});
