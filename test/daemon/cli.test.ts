import { describe, expect, test } from 'bun:test';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  type Command,
  DAEMON_HELP,
  type DaemonCommand,
  parseCommandLine,
  type TokenCommand,
} from '../../src/daemon/cli.ts';
import { formatCidr } from '../../src/shared/address.ts';
import { signToken } from '../../src/shared/jwt.ts';
import { refused } from '../support/cli.ts';

const ROOT = resolve(import.meta.dir, '../..');
const ENV_SECRET = 'E'.repeat(32);
const FILE_SECRET = 'F'.repeat(40);
const FLAG_SECRET = 'G'.repeat(33);

const dir = mkdtempSync(join(tmpdir(), 'containarium-cli-'));
const secretFile = join(dir, 'jwt.secret');
writeFileSync(secretFile, `${FILE_SECRET}\n`, { mode: 0o600 });

function daemon(args: string[], env: Record<string, string> = {}): DaemonCommand {
  const command: Command = parseCommandLine(['daemon', ...args], env);
  if (command.kind !== 'daemon') throw new Error(`expected a daemon command, got ${command.kind}`);
  return command;
}

describe('daemon flags', () => {
  test('defaults: REST on 0.0.0.0:8080, local Incus socket, pool "default", no CORS', () => {
    const command = daemon(['--rest', '--jwt-secret', FLAG_SECRET]);
    expect(command).toMatchObject({
      hostname: '0.0.0.0',
      port: 8080,
      secret: FLAG_SECRET,
      incus: {},
      storagePool: 'default',
      defaultImage: 'images:ubuntu/24.04',
      corsOrigins: [],
      shutdownGraceMs: 60_000,
      daemonId: 'default',
      warnings: [],
    });
  });

  test('--default-image names the image of a create that names none; a bad name is refused', () => {
    const env = { CONTAINARIUM_JWT_SECRET: ENV_SECRET };
    expect(daemon(['--default-image', 'debian/12'], env).defaultImage).toBe('debian/12');
    expect(daemon(['--default-image=images:alpine/3.20'], env).defaultImage).toBe(
      'images:alpine/3.20',
    );
    for (const bad of ['', '-x', 'debian 12']) {
      expect(refused(['daemon', `--default-image=${bad}`], env).message).toBe(
        `invalid --default-image "${bad}": expected an image name like "images:ubuntu/24.04", "ubuntu:24.04" or a local alias like "debian/12" (letters, digits and ._:/@+-, starting with a letter or digit, at most 255 characters)`,
      );
    }
    expect(DAEMON_HELP).toContain('--default-image ALIAS');
  });

  test('--daemon-id names the daemon on a shared Incus; a bad one is refused naming the form', () => {
    const env = { CONTAINARIUM_JWT_SECRET: ENV_SECRET };
    expect(daemon(['--daemon-id', 'ci-7'], env).daemonId).toBe('ci-7');
    for (const bad of ['', '-x', 'a b', 'x'.repeat(64), 'é']) {
      expect(refused(['daemon', `--daemon-id=${bad}`], env).message).toBe(
        `invalid --daemon-id "${bad}": expected a name of 1 to 63 letters, digits, ".", "_" or "-", starting with a letter or digit, like "prod" or "ci-7"`,
      );
    }
  });

  test('--shutdown-grace takes a Go duration up to an hour', () => {
    const env = { CONTAINARIUM_JWT_SECRET: ENV_SECRET };
    expect(daemon(['--shutdown-grace', '2m30s'], env).shutdownGraceMs).toBe(150_000);
    expect(daemon(['--shutdown-grace=0s'], env).shutdownGraceMs).toBe(0);
    for (const bad of ['soon', '-5s', '2h']) {
      expect(refused(['daemon', '--shutdown-grace', bad], env).message).toBe(
        `invalid --shutdown-grace "${bad}": expected a Go duration: a number with a unit (h, m, s, ms), like "8760h", "24h", "1h30m" or "90s", from 0s to 1h`,
      );
    }
  });

  test.each(['1', 't', 'T', 'true', 'TRUE', 'True'])(
    '--rest=%s is accepted (Go strconv.ParseBool spelling)',
    (value) => {
      expect(daemon([`--rest=${value}`, '--jwt-secret', FLAG_SECRET]).port).toBe(8080);
    },
  );

  test.each(['0', 'f', 'F', 'false', 'FALSE', 'False', 'yes'])('--rest=%s is refused', (value) => {
    expect(refused(['daemon', `--rest=${value}`, '--jwt-secret', FLAG_SECRET]).message).toContain(
      "REST is this daemon's only API",
    );
  });

  test('secret precedence: environment, then --jwt-secret-file, then --jwt-secret', () => {
    const all = daemon(['--jwt-secret', FLAG_SECRET, '--jwt-secret-file', secretFile], {
      CONTAINARIUM_JWT_SECRET: ENV_SECRET,
    });
    expect(all.secret).toBe(ENV_SECRET);
    expect(all.secretSource).toBe('CONTAINARIUM_JWT_SECRET');
    expect(all.warnings[0]).toContain('using CONTAINARIUM_JWT_SECRET');
    expect(all.warnings.join(' ')).not.toContain(ENV_SECRET);
    const fileAndFlag = daemon(['--jwt-secret', FLAG_SECRET, '--jwt-secret-file', secretFile]);
    expect(fileAndFlag.secret).toBe(FILE_SECRET); // trimmed
    expect(daemon(['--jwt-secret', FLAG_SECRET]).secret).toBe(FLAG_SECRET);
    // An empty variable is as good as unset.
    expect(daemon(['--jwt-secret', FLAG_SECRET], { CONTAINARIUM_JWT_SECRET: '' }).secret).toBe(
      FLAG_SECRET,
    );
  });

  test('a missing or short secret is refused with how to make one', () => {
    const missing = refused(['daemon', '--rest']);
    expect(missing.exitCode).toBe(1);
    expect(missing.message).toContain('a JWT secret is required');
    expect(missing.message).toContain('openssl rand -base64 32');
    // The seed's own quick-start command: 15 bytes is not a secret.
    const seed = refused(['daemon', '--rest', '--jwt-secret', 'your-secret-key']);
    expect(seed.message).toBe(
      '--jwt-secret: the JWT secret is 15 bytes; it must be at least 32 bytes so tokens cannot be guessed (make one with: openssl rand -base64 32). This works, with one secret for the daemon and its tokens:\n' +
        '  SECRET="$(openssl rand -base64 32)"\n' +
        '  containarium daemon --rest --jwt-secret "$SECRET"\n' +
        '  containarium token generate --username mcp-client --roles admin --expiry 8760h --secret "$SECRET"',
    );
    const shortEnv = refused(['daemon'], { CONTAINARIUM_JWT_SECRET: 'short' });
    expect(shortEnv.message).toStartWith('CONTAINARIUM_JWT_SECRET: the JWT secret is 5 bytes');
    const missingFile = refused(['daemon', '--jwt-secret-file', join(dir, 'nope')]);
    expect(missingFile.message).toContain('cannot read --jwt-secret-file');
  });

  test('a secret file that group or others can read is refused, with the chmod 600 fix', () => {
    const file = join(dir, 'shared.secret');
    writeFileSync(file, `${FILE_SECRET}\n`);
    for (const mode of [0o644, 0o640, 0o604, 0o620]) {
      chmodSync(file, mode);
      const error = refused(['daemon', '--jwt-secret-file', file]);
      expect(error.message).toBe(
        `--jwt-secret-file ${file} can be read by other users (mode ${mode.toString(8)}); run chmod 600 ${file}`,
      );
      expect(error.message).not.toContain(FILE_SECRET);
    }
    for (const mode of [0o600, 0o400]) {
      chmodSync(file, mode);
      expect(daemon(['--jwt-secret-file', file]).secret).toBe(FILE_SECRET);
    }
  });

  test('--trusted-proxy: repeatable or comma-separated, each checked at startup', () => {
    const env = { CONTAINARIUM_JWT_SECRET: ENV_SECRET };
    expect(daemon([], env).trustedProxies).toEqual([]);
    const command = daemon(
      ['--trusted-proxy', '10.0.0.0/8', '--trusted-proxy=192.0.2.1, fd00::1/8'],
      env,
    );
    expect(command.trustedProxies.map(formatCidr)).toEqual([
      '10.0.0.0/8',
      '192.0.2.1/32',
      'fd00::/8',
    ]);
    for (const bad of ['10.0.0.0/33', 'proxy.example', '10.0.0/8', '*']) {
      expect(refused(['daemon', '--trusted-proxy', bad], env).message).toBe(
        `invalid --trusted-proxy "${bad}": expected an address or CIDR range, like 10.0.0.5, 10.0.0.0/8 or fd00::/8`,
      );
    }
    expect(refused(['daemon', '--trusted-proxy'], env).message).toContain(
      '--trusted-proxy needs a value',
    );
  });

  test('--trusted-proxy of every address (0.0.0.0/0, ::/0) starts with a warning naming it', () => {
    const env = { CONTAINARIUM_JWT_SECRET: ENV_SECRET };
    expect(daemon(['--trusted-proxy', '10.0.0.0/8'], env).warnings).toEqual([]);
    const { warnings } = daemon(
      ['--trusted-proxy', '0.0.0.0/0,10.0.0.5', '--trusted-proxy=::/0'],
      env,
    );
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toStartWith(
      '--trusted-proxy 0.0.0.0/0 trusts every IPv4 address as a proxy',
    );
    expect(warnings[1]).toStartWith('--trusted-proxy ::/0 trusts every IPv6 address as a proxy');
    expect(warnings[0]).toContain('any client can choose its own address in X-Forwarded-For');
  });

  test("the seed's production line works: --port is the REST port, a synonym of --http-port", () => {
    // export CONTAINARIUM_JWT_SECRET="$(openssl rand -base64 32)"; containarium daemon --rest --address 0.0.0.0 --port 8080
    const env = { CONTAINARIUM_JWT_SECRET: 'q83vEjHGLTr0Yo5PlCD3nVnO3k1xQbUXLxwNqk9y1yQ=' };
    expect(daemon(['--rest', '--address', '0.0.0.0', '--port', '8080'], env)).toMatchObject({
      hostname: '0.0.0.0',
      port: 8080,
    });
    expect(daemon(['--port=9090'], env).port).toBe(9090);
    expect(daemon(['--http-port', '9091'], env).port).toBe(9091);
    expect(daemon(['--http-port', '0', '--port=0'], env).port).toBe(0);
    expect(refused(['daemon', '--port', '80', '--http-port', '8080'], env).message).toContain(
      'disagree',
    );
    expect(refused(['daemon', '--port', '70000'], env).message).toContain('invalid --port "70000"');
  });

  test('Incus target: socket, or URL with certificate files read as PEM text', () => {
    const env = { CONTAINARIUM_JWT_SECRET: ENV_SECRET };
    expect(daemon(['--incus-socket', '/var/lib/lxd/unix.socket'], env).incus).toEqual({
      socket: '/var/lib/lxd/unix.socket',
    });
    const cert = join(dir, 'client.crt');
    const key = join(dir, 'client.key');
    writeFileSync(cert, '-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n');
    writeFileSync(key, '-----BEGIN PRIVATE KEY-----\nY\n-----END PRIVATE KEY-----\n');
    const remote = daemon(
      [
        '--incus-url',
        'https://incus.example:8443/',
        '--incus-cert',
        cert,
        '--incus-key',
        key,
        '--storage-pool',
        'fast',
      ],
      env,
    );
    expect(remote.incus).toEqual({
      url: 'https://incus.example:8443',
      cert: '-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n',
      key: '-----BEGIN PRIVATE KEY-----\nY\n-----END PRIVATE KEY-----\n',
    });
    expect(remote.storagePool).toBe('fast');
    expect(refused(['daemon', '--incus-url', 'https://x:8443'], env).message).toContain(
      'needs --incus-cert and --incus-key',
    );
    expect(
      refused(
        ['daemon', '--incus-url', 'http://x:8443', '--incus-cert', cert, '--incus-key', key],
        env,
      ).message,
    ).toContain('https:// only');
    expect(refused(['daemon', '--incus-cert', cert], env).message).toContain('go with --incus-url');
  });

  test('CORS origins: a list, never "*"', () => {
    const env = { CONTAINARIUM_JWT_SECRET: ENV_SECRET };
    expect(
      daemon(
        [
          '--cors-origin',
          'https://a.example,https://b.example',
          '--cors-origin=http://localhost:3000',
        ],
        env,
      ).corsOrigins,
    ).toEqual(['https://a.example', 'https://b.example', 'http://localhost:3000']);
    expect(refused(['daemon', '--cors-origin', '*'], env).message).toContain('refused');
    expect(refused(['daemon', '--cors-origin', 'https://a.example/path'], env).message).toContain(
      'just the origin',
    );
  });

  test('--ssh-jump: [USER@]HOST[:PORT] as ssh -J takes it; anything else is refused', () => {
    const env = { CONTAINARIUM_JWT_SECRET: ENV_SECRET };
    expect(daemon([], env).sshJump).toBeUndefined();
    for (const host of [
      'gateway',
      'admin@gw.example.com',
      'admin@10.0.0.1:2222',
      '[2001:db8::1]:22',
    ]) {
      expect(daemon(['--ssh-jump', host], env).sshJump).toBe(host);
    }
    for (const host of ['', '-oProxyCommand=x', 'a b', 'host;rm', 'gw:99999', '@gw', 'gw.']) {
      expect(refused(['daemon', `--ssh-jump=${host}`], env).message).toBe(
        `invalid --ssh-jump "${host}": expected a host to reach containers through, as ssh -J takes it: HOST, USER@HOST or USER@HOST:PORT (like admin@gateway.example.com)`,
      );
    }
  });

  test('usage mistakes exit 2 and name the problem', () => {
    const env = { CONTAINARIUM_JWT_SECRET: ENV_SECRET };
    expect(refused(['daemon', '--grpc'], env)).toMatchObject({
      exitCode: 2,
      message: expect.stringContaining('unknown flag --grpc'),
    });
    expect(refused(['daemon', '--address'], env)).toMatchObject({
      exitCode: 2,
      message: expect.stringContaining('--address needs a value'),
    });
    expect(refused(['daemon', 'now'], env).exitCode).toBe(2);
    expect(refused(['serve'], env).exitCode).toBe(2);
    expect(refused(['daemon', '--rest=false'], env).message).toContain(
      "REST is this daemon's only API",
    );
  });

  test('help and version', () => {
    expect(parseCommandLine([])).toMatchObject({ kind: 'help' });
    expect(parseCommandLine(['--version'])).toMatchObject({
      kind: 'version',
      text: expect.stringMatching(/^containarium \d+\.\d+\.\d+\n$/),
    });
    const help = parseCommandLine(['daemon', '--help']);
    expect(help.kind === 'help' && help.text).toContain('--http-port N, --port N');
  });
});

/**
 * Runs the lines a refusal shows in sh, with `containarium` standing in as a function that prints
 * its arguments and environment, and returns each command line as the shell expanded it.
 */
function runAsPrinted(
  message: string,
  cwd: string,
): { argv: string[]; env: Record<string, string> }[] {
  const lines = message.split('\n').slice(1);
  expect(lines.length).toBe(3);
  const stub = `containarium() { printf '%s\\n' "$@"; echo "env=\${CONTAINARIUM_JWT_SECRET:-}"; echo ---; }`;
  const sh = Bun.spawnSync(['sh', '-ec', [stub, ...lines].join('\n')], {
    cwd,
    env: { PATH: process.env.PATH ?? '' },
  });
  expect(sh.stderr.toString()).toBe('');
  expect(sh.exitCode).toBe(0);
  const blocks = sh.stdout.toString().split('---\n').slice(0, -1);
  return blocks.map((block) => {
    const words = block.split('\n').slice(0, -1);
    const env = (words.pop() as string).slice('env='.length);
    return { argv: words, env: env ? { CONTAINARIUM_JWT_SECRET: env } : {} };
  });
}

describe('a refused secret shows the commands that work, and they work as printed', () => {
  test.each<[string, string[], Record<string, string>]>([
    ["the seed's quick start", ['daemon', '--rest', '--jwt-secret', 'your-secret-key'], {}],
    [
      "the seed's token command",
      [
        'token',
        'generate',
        '--username',
        'mcp-client',
        '--roles',
        'admin',
        '--expiry',
        '8760h',
        '--secret',
        'your-secret-key',
      ],
      {},
    ],
    [
      'a short secret in the environment',
      ['daemon', '--rest', '--address', '127.0.0.1', '--port', '0'],
      { CONTAINARIUM_JWT_SECRET: 'short' },
    ],
    ['a short secret file', ['daemon', '--jwt-secret-file', 'secrets/jwt.secret'], {}],
    [
      'a missing secret file',
      ['token', 'generate', '--username', 'ops', '--secret-file', 'etc/jwt.secret'],
      {},
    ],
  ])('%s', (_, argv, env) => {
    const cwd = mkdtempSync(join(dir, 'recipe-'));
    if (argv.includes('secrets/jwt.secret')) {
      mkdirSync(join(cwd, 'secrets'));
      writeFileSync(join(cwd, 'secrets/jwt.secret'), 'short\n', { mode: 0o600 });
    }
    const refusal = refused(argv, env).message;
    expect(refusal).not.toContain('your-secret-key');
    const [daemonLine, tokenLine] = runAsPrinted(refusal, cwd).map(({ argv, env }) => {
      // Relative secret files are read from where the commands ran.
      const resolved = argv.map((word) => (word.includes('jwt.secret') ? join(cwd, word) : word));
      return parseCommandLine(resolved, env) as DaemonCommand | TokenCommand;
    });
    expect(daemonLine?.kind).toBe('daemon');
    expect(tokenLine?.kind).toBe('token');
    // One new secret, long enough, shared by both.
    expect(daemonLine?.secret.length).toBeGreaterThanOrEqual(32);
    expect(tokenLine?.secret).toBe(daemonLine?.secret as string);
    // The refused command itself keeps what was typed.
    const typed = argv[0] === 'daemon' ? daemonLine : tokenLine;
    if (typed?.kind === 'daemon' && argv.includes('--address')) {
      expect(typed).toMatchObject({ hostname: '127.0.0.1', port: 0 });
    }
    if (typed?.kind === 'token') expect(typed.username).toBe(argv[3] as string);
  });
});

describe('containarium daemon (real process)', () => {
  test('starts, prints the bound port, answers /health and a token, stops cleanly on SIGTERM', async () => {
    const secret = 'q83vEjHGLTr0Yo5PlCD3nVnO3k1xQbUXLxwNqk9y1yQ=';
    const proc = Bun.spawn(
      // A socket that does not exist keeps the test off any real Incus: /health reports it unreachable.
      [
        'bun',
        resolve(ROOT, 'src/daemon/main.ts'),
        'daemon',
        '--rest',
        '--address',
        '127.0.0.1',
        '--http-port',
        '0',
        '--incus-socket',
        join(dir, 'no-incus.socket'),
        '--trusted-proxy',
        '127.0.0.1',
      ],
      {
        env: {
          PATH: process.env.PATH ?? '',
          HOME: process.env.HOME ?? '/tmp',
          CONTAINARIUM_JWT_SECRET: secret,
        },
        stdout: 'pipe',
        stderr: 'pipe',
      },
    );
    let stderr = '';
    const decoder = new TextDecoder();
    const reader = proc.stderr.getReader();
    const deadline = Date.now() + 10_000;
    let port: string | undefined;
    while (!port && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      stderr += decoder.decode(value);
      port = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(stderr)?.[1];
    }
    try {
      expect(port).toBeDefined();
      const base = `http://127.0.0.1:${port}`;
      expect(await (await fetch(`${base}/health`)).json()).toEqual({
        status: 'healthy',
        incus: 'unreachable',
      });
      const { token } = await signToken({
        username: 'ops',
        roles: ['admin'],
        lifetimeMs: 60_000,
        secret,
      });
      const response = await fetch(`${base}/v1/containers`, {
        headers: { Authorization: `Bearer ${token}` },
      });
      // Past auth, into the Incus layer, which cannot reach its socket.
      expect(response.status).toBe(503);
      expect(((await response.json()) as { error: string }).error).toStartWith(
        'rpc error: code = Unavailable desc = ',
      );
      await fetch(`${base}/health`, { headers: { 'X-Forwarded-For': '203.0.113.7' } });
      const unauthorized = await fetch(`${base}/v1/containers`);
      expect(await unauthorized.text()).toBe(
        '{"error": "missing authorization header", "code": 401}\n',
      );
    } finally {
      proc.kill('SIGTERM');
    }
    expect(await proc.exited).toBe(0);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      stderr += decoder.decode(value);
    }
    expect(await new Response(proc.stdout).text()).toBe('');
    expect(stderr).toMatch(/127\.0\.0\.1 GET \/health 200 \d+ms/);
    expect(stderr).toContain(
      'behind 127.0.0.1/32: the client address is read from X-Forwarded-For',
    );
    expect(stderr).toMatch(/203\.0\.113\.7 GET \/health 200 \d+ms/);
    expect(stderr).toContain('SIGTERM: shutting down');
    expect(stderr).not.toContain(secret);
  });

  test('a secret file others can read makes the daemon exit 1 with the chmod 600 fix', () => {
    const file = join(dir, 'readable.secret');
    writeFileSync(file, `${FILE_SECRET}\n`);
    chmodSync(file, 0o644);
    const proc = Bun.spawnSync(
      ['bun', resolve(ROOT, 'src/daemon/main.ts'), 'daemon', '--rest', '--jwt-secret-file', file],
      { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' } },
    );
    expect(proc.exitCode).toBe(1);
    expect(proc.stdout.toString()).toBe('');
    expect(proc.stderr.toString()).toBe(
      `containarium: --jwt-secret-file ${file} can be read by other users (mode 644); run chmod 600 ${file}\n`,
    );
  });

  test('the seed quick-start secret makes the daemon exit 1 with the hint', () => {
    const proc = Bun.spawnSync(
      [
        'bun',
        resolve(ROOT, 'src/daemon/main.ts'),
        'daemon',
        '--rest',
        '--jwt-secret',
        'your-secret-key',
      ],
      {
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' },
      },
    );
    expect(proc.exitCode).toBe(1);
    expect(proc.stdout.toString()).toBe('');
    expect(proc.stderr.toString()).toContain('openssl rand -base64 32');
  });
});
