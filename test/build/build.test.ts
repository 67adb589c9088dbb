// The release tooling: a compiled binary ignores the user's .env and bunfig.toml, archives are
// reproducible and keep modes, SHA256SUMS verifies, and the MCP bundle's manifest runs the right binary.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import pkg from '../../package.json' with { type: 'json' };
import {
  archive,
  BINARIES,
  compile,
  pack,
  parseTargets,
  RELEASE_TARGETS,
  stage,
  writeChecksums,
} from '../../scripts/build.ts';
import {
  BUNDLE_TARGETS,
  bundledBinary,
  LAUNCHER,
  manifest,
  serverJson,
} from '../../scripts/bundle.ts';
import { TOOLS } from '../../src/mcp/tools/index.ts';
import { makeToken } from '../support/mcp.ts';

const tmp = mkdtempSync(join(tmpdir(), 'containarium-build-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const run = (cmd: string[], cwd: string, env: Record<string, string> = {}) => {
  const proc = Bun.spawnSync(cmd, { cwd, env: { PATH: process.env.PATH ?? '', ...env } });
  return { code: proc.exitCode, stdout: proc.stdout.toString(), stderr: proc.stderr.toString() };
};

describe('compiled mcp-server', () => {
  const binary = join(tmp, 'mcp-server');
  beforeAll(async () => {
    await compile({ bin: 'mcp-server', outfile: binary });
  }, 60_000);

  test('prints the version from any directory', () => {
    const result = run([binary, '--version'], tmpdir());
    expect(result).toMatchObject({ code: 0, stdout: `mcp-server ${pkg.version}\n` });
  });

  test("reads neither .env nor bunfig.toml from the user's folder", () => {
    // A project folder whose .env would configure the server and whose bunfig.toml would run a
    // preload. A default `bun build --compile` binary reads both; ours must read neither.
    const project = mkdtempSync(join(tmp, 'project-'));
    const marker = join(project, 'preload-ran');
    writeFileSync(
      join(project, '.env'),
      'CONTAINARIUM_SERVER_URL=http://127.0.0.1:9\nCONTAINARIUM_JWT_TOKEN=from-dotenv\n',
    );
    writeFileSync(join(project, 'bunfig.toml'), 'preload = ["./preload.ts"]\n');
    writeFileSync(
      join(project, 'preload.ts'),
      `require('node:fs').writeFileSync(${JSON.stringify(marker)}, 'ran');\n`,
    );
    // With stdin at its end, the server (still serving despite the missing URL) exits at once.
    const result = run([binary], project, { HOME: project });
    expect(result.stderr).toContain('CONTAINARIUM_SERVER_URL environment variable is required');
    expect(existsSync(marker)).toBe(false);
  });
});

describe('dependencies', () => {
  test("the MCP SDK's server and core packages share one zod, so the binary carries and loads one", () => {
    // Two copies would each build their schemas and warm up on their own: milliseconds of start-up.
    const root = resolve(import.meta.dir, '../..');
    const server = dirname(Bun.resolveSync('@modelcontextprotocol/server/package.json', root));
    const core = dirname(Bun.resolveSync('@modelcontextprotocol/core/package.json', server));
    const zodOf = (dir: string) => Bun.resolveSync('zod/v4', dir);
    expect(zodOf(server)).toBe(zodOf(core));
    expect(zodOf(server)).toBe(Bun.resolveSync('zod/v4', root));
  });
});

describe('targets', () => {
  test('accepts names with or without the bun- prefix, and all', () => {
    expect(parseTargets('linux-x64,bun-darwin-arm64')).toEqual([
      'bun-linux-x64',
      'bun-darwin-arm64',
    ]);
    expect(parseTargets('all')).toEqual([...RELEASE_TARGETS]);
    expect(parseTargets('native')).toBe('native');
    expect(() => parseTargets('linux-386')).toThrow('unknown target "linux-386"');
  });

  test('every binary has an entry module', () => {
    const root = resolve(import.meta.dir, '../..');
    for (const entry of Object.values(BINARIES)) expect(existsSync(join(root, entry))).toBe(true);
  });
});

describe('make build-mcp and make build-containarium', () => {
  const root = resolve(import.meta.dir, '../..');

  test('leave bin/mcp-server and bin/containarium, where the seed runs them, leading into dist/', async () => {
    const out = mkdtempSync(join(tmp, 'make-'));
    for (const target of ['build-mcp', 'build-containarium']) {
      const made = run(['make', '-s', target, `DIST=${out}/dist`, `LINKS=${out}/bin`], root);
      expect(made).toMatchObject({ code: 0 });
    }
    expect(readlinkSync(join(out, 'bin', 'mcp-server'))).toBe('../dist/mcp-server');
    expect(readlinkSync(join(out, 'bin', 'containarium'))).toBe('../dist/containarium');
    // Relative links: the checkout still works after it moves.
    const moved = join(tmp, 'moved-checkout');
    renameSync(out, moved);
    const mcp = join(moved, 'bin', 'mcp-server');
    expect(run([mcp, '--version'], tmpdir())).toMatchObject({
      code: 0,
      stdout: `mcp-server ${pkg.version}\n`,
    });
    expect(run([join(moved, 'bin', 'containarium'), '--version'], tmpdir())).toMatchObject({
      code: 0,
      stdout: `containarium ${pkg.version}\n`,
    });
    // The seed's "Testing the MCP Server", run as ./bin/mcp-server.
    const served = Bun.spawnSync(['./bin/mcp-server'], {
      cwd: moved,
      env: {
        CONTAINARIUM_SERVER_URL: 'http://127.0.0.1:9',
        CONTAINARIUM_JWT_TOKEN: await makeToken(),
        CONTAINARIUM_DEBUG: 'true',
      },
      stdin: new TextEncoder().encode(
        '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}\n',
      ),
    });
    expect(served.exitCode).toBe(0);
    expect(JSON.parse(served.stdout.toString())).toMatchObject({
      id: 1,
      result: { serverInfo: { name: 'containarium-mcp-server' } },
    });
  }, 120_000);

  test('install the locked dependencies first when a fresh clone has none, and only then', () => {
    const clone = mkdtempSync(join(tmp, 'clone-'));
    for (const file of ['Makefile', 'package.json', 'bun.lock']) {
      writeFileSync(join(clone, file), readFileSync(join(root, file)));
    }
    // A stand-in for bun that logs what make asks of it.
    const bun = join(clone, 'fake-bun');
    writeFileSync(
      bun,
      [
        '#!/bin/sh',
        'echo "$*" >> calls.log',
        '[ "$1" = install ] && mkdir -p node_modules',
        '[ "$1" = scripts/build.ts ] && mkdir -p dist && echo binary > dist/mcp-server',
        'exit 0',
      ].join('\n'),
    );
    chmodSync(bun, 0o755);
    const make = () => run(['make', '-s', 'build-mcp', `BUN=${bun}`], clone);
    const calls = () => readFileSync(join(clone, 'calls.log'), 'utf8').trim().split('\n');
    const build = 'scripts/build.ts --dist dist --bin mcp-server --link bin';
    expect(make().code).toBe(0);
    expect(calls()).toEqual(['install --frozen-lockfile', build]);
    expect(make().code).toBe(0);
    expect(calls()).toEqual(['install --frozen-lockfile', build, build]);
    // A changed lock file installs again.
    const later = Date.now() / 1000 + 60;
    utimesSync(join(clone, 'bun.lock'), later, later);
    expect(make().code).toBe(0);
    expect(calls().slice(3)).toEqual(['install --frozen-lockfile', build]);

    // make install-mcp straight after a clone installs the dependencies and builds first; once
    // built, it needs no bun at all (as under sudo).
    rmSync(join(clone, 'node_modules'), { recursive: true });
    rmSync(join(clone, 'dist'), { recursive: true });
    rmSync(join(clone, 'calls.log'));
    const earlier = Date.now() / 1000 - 3600;
    utimesSync(join(clone, 'bun.lock'), earlier, earlier);
    const install = () =>
      run(['make', '-s', 'install-mcp', `BUN=${bun}`, `DESTDIR=${clone}/root`], clone);
    expect(install().code).toBe(0);
    expect(calls()).toEqual([
      'install --frozen-lockfile',
      'scripts/build.ts --dist dist --bin mcp-server',
    ]);
    expect(readFileSync(join(clone, 'root/usr/local/bin/mcp-server'), 'utf8')).toBe('binary\n');
    expect(install().code).toBe(0);
    expect(calls()).toHaveLength(2);
  });

  test('links only binaries built for this machine', () => {
    const linked = run(
      ['bun', 'scripts/build.ts', '--link', join(tmp, 'bin'), '--target', 'all'],
      root,
    );
    expect(linked.code).toBe(1);
    expect(linked.stderr).toContain('--link is for binaries built for this machine (no --target)');
    expect(existsSync(join(tmp, 'bin'))).toBe(false);
  });

  test('bin/ stays out of git', () => {
    expect(run(['git', 'check-ignore', 'bin/mcp-server', 'bin/containarium'], root)).toEqual({
      code: 0,
      stdout: 'bin/mcp-server\nbin/containarium\n',
      stderr: '',
    });
  });
});

describe('archives', () => {
  const fake = join(tmp, 'fake-binary');
  beforeAll(() => {
    writeFileSync(fake, '#!/bin/sh\necho fake binary "$@"\n');
    chmodSync(fake, 0o600);
  });

  test('a .tar.gz holds the executable under its plain name, owned by 0, and is reproducible', async () => {
    const dist = mkdtempSync(join(tmp, 'dist-'));
    const first = await pack(fake, 'mcp-server', 'bun-linux-x64', dist);
    expect(first).toBe(join(dist, 'mcp-server-linux-x64.tar.gz'));
    const bytes = await Bun.file(first).bytes();
    utimesSync(fake, 1, 1); // the binary's own time must not leak into the archive
    await pack(fake, 'mcp-server', 'bun-linux-x64', dist);
    expect(await Bun.file(first).bytes()).toEqual(bytes);

    const listing = run(['tar', '-tvzf', first], dist).stdout;
    expect(listing).toMatch(/^-rwxr-xr-x 0\/0 .* mcp-server$/m);
    expect(listing).toMatch(/^-rw-r--r-- 0\/0 .* README\.md$/m);
    const out = mkdtempSync(join(tmp, 'x-'));
    expect(run(['tar', '-xzf', first, '-C', out], dist).code).toBe(0);
    expect(run([join(out, 'mcp-server'), 'ok'], out).stdout).toBe('fake binary ok\n');
  });

  test('a Windows .zip holds name.exe and passes unzip -t', async () => {
    const dist = mkdtempSync(join(tmp, 'dist-'));
    const archive = await pack(fake, 'containarium', 'bun-windows-x64', dist);
    expect(archive).toBe(join(dist, 'containarium-windows-x64.zip'));
    expect(run(['unzip', '-t', archive], dist).code).toBe(0);
    const listing = run(['unzip', '-Z', archive], dist).stdout;
    expect(listing).toMatch(/^-rwxr-xr-x .* containarium\.exe$/m);
    expect(run(['unzip', '-p', archive, 'containarium.exe'], dist).stdout).toBe(
      await Bun.file(fake).text(),
    );
  });

  test('both formats take their time from SOURCE_DATE_EPOCH and nothing else', async () => {
    const dist = mkdtempSync(join(tmp, 'dist-'));
    const saved = process.env.SOURCE_DATE_EPOCH;
    const packAt = async (epoch: number, target: 'bun-linux-x64' | 'bun-windows-x64') => {
      process.env.SOURCE_DATE_EPOCH = String(epoch);
      utimesSync(fake, epoch + 12_345, epoch + 12_345);
      return Bun.file(await pack(fake, 'mcp-server', target, dist)).bytes();
    };
    try {
      for (const target of ['bun-linux-x64', 'bun-windows-x64'] as const) {
        const first = await packAt(1_700_000_000, target);
        expect(await packAt(1_700_000_000, target)).toEqual(first);
        expect(await packAt(1_800_000_000, target)).not.toEqual(first);
      }
    } finally {
      if (saved === undefined) delete process.env.SOURCE_DATE_EPOCH;
      else process.env.SOURCE_DATE_EPOCH = saved;
    }
    // The last packs were at 1_800_000_000, 2027-01-15 08:00:00 UTC; this file's run()
    // passes no TZ, so tar and unzip print UTC.
    expect(run(['tar', '-tvzf', 'mcp-server-linux-x64.tar.gz'], dist).stdout).toMatch(
      /^-rwxr-xr-x 0\/0 .* 2027-01-15 08:00 mcp-server$/m,
    );
    expect(run(['unzip', '-Z', '-T', 'mcp-server-windows-x64.zip'], dist).stdout).toMatch(
      /^-rwxr-xr-x .* 20270115\.080000 mcp-server\.exe$/m,
    );
  });

  test('a bundle keeps its tree, sorted, with modes, and passes mcpb validate', async () => {
    const files = [
      { name: 'server/mcp-server', mode: 0o755, data: LAUNCHER },
      { name: 'manifest.json', mode: 0o644, data: JSON.stringify(manifest(BUNDLE_TARGETS)) },
      { name: 'server/mcp-server-linux-x64', mode: 0o755, data: Bun.file(fake) },
    ];
    const { dir, names } = await stage(tmp, files, 1_700_000_000);
    expect(
      run([process.execPath, 'x', 'mcpb', 'validate', dir], resolve(import.meta.dir, '../..')),
    ).toMatchObject({
      code: 0,
      stdout: expect.stringContaining('Manifest schema validation passes!'),
    });
    const bundle = join(tmp, 'test.mcpb');
    await archive(dir, names.slice(-1), bundle, 1_700_000_000); // an older archive, to be replaced
    await archive(dir, names, bundle, 1_700_000_000);
    const first = await Bun.file(bundle).bytes();
    await archive(dir, names, bundle, 1_700_000_000);
    expect(await Bun.file(bundle).bytes()).toEqual(first);
    const listing = run(['unzip', '-Z', bundle], tmp).stdout;
    expect(listing.match(/^-.*$/gm)?.map((line) => line.replace(/ .* /, ' '))).toEqual([
      '-rw-r--r-- manifest.json',
      '-rwxr-xr-x server/mcp-server',
      '-rwxr-xr-x server/mcp-server-linux-x64',
    ]);
  });

  test('SHA256SUMS lists every release asset and sha256sum -c accepts it', async () => {
    const dist = mkdtempSync(join(tmp, 'dist-'));
    await pack(fake, 'mcp-server', 'bun-darwin-arm64', dist);
    await pack(fake, 'mcp-server', 'bun-windows-x64', dist);
    writeFileSync(join(dist, 'containarium.mcpb'), 'bundle');
    writeFileSync(join(dist, 'mcp-server-darwin-arm64'), 'not an asset');
    await writeChecksums(dist);
    const sums = await Bun.file(join(dist, 'SHA256SUMS')).text();
    expect(
      sums
        .split('\n')
        .filter(Boolean)
        .map((line) => line.split('  ')[1]),
    ).toEqual([
      'containarium.mcpb',
      'mcp-server-darwin-arm64.tar.gz',
      'mcp-server-windows-x64.zip',
    ]);
    expect(run(['sha256sum', '-c', 'SHA256SUMS'], dist).code).toBe(0);
    writeFileSync(join(dist, 'containarium.mcpb'), 'tampered');
    expect(run(['sha256sum', '-c', '--quiet', 'SHA256SUMS'], dist).code).not.toBe(0);
  });
});

describe('MCP bundle', () => {
  const m = manifest(BUNDLE_TARGETS);

  test('declares every tool of the registry', () => {
    expect(m.tools.map((t) => t.name)).toEqual(TOOLS.map((t) => t.name));
    expect(m.tools.length).toBeGreaterThan(0);
    expect(m.version).toBe(pkg.version);
  });

  test('maps the server URL and the sensitive token into the environment', () => {
    expect(m.server.type).toBe('binary');
    expect(m.server.mcp_config.env).toEqual({
      CONTAINARIUM_SERVER_URL: `\${user_config.server_url}`,
      CONTAINARIUM_JWT_TOKEN: `\${user_config.jwt_token}`,
      CONTAINARIUM_DEBUG: `\${user_config.debug}`,
      CONTAINARIUM_READ_ONLY: `\${user_config.read_only}`,
      CONTAINARIUM_DISABLE_DESTRUCTIVE: `\${user_config.disable_destructive}`,
      CONTAINARIUM_TOOLSETS: `\${user_config.toolsets}`,
      CONTAINARIUM_TOOLS: `\${user_config.tools}`,
      CONTAINARIUM_EXCLUDE_TOOLS: `\${user_config.exclude_tools}`,
      CONTAINARIUM_CONFIRM: `\${user_config.confirm}`,
    });
    expect(m.user_config.confirm).toMatchObject({ type: 'string', default: 'auto' });
    expect(m.user_config.server_url).toMatchObject({ type: 'string', required: true });
    expect(m.user_config.jwt_token).toMatchObject({
      type: 'string',
      required: true,
      sensitive: true,
    });
    expect(m.compatibility.platforms).toEqual(['darwin', 'win32', 'linux']);
  });

  test('on Windows runs the bundled .exe', () => {
    expect(m.server.mcp_config.platform_overrides?.win32.command).toBe(
      `\${__dirname}\${/}server\${/}mcp-server-windows-x64.exe`,
    );
    expect(bundledBinary('bun-windows-x64')).toBe('server/mcp-server-windows-x64.exe');
  });

  test("elsewhere the launcher execs the binary for this machine's OS and CPU", () => {
    const dir = mkdtempSync(join(tmp, 'bundle-'));
    writeFileSync(join(dir, 'mcp-server'), LAUNCHER);
    const os = process.platform === 'darwin' ? 'darwin' : 'linux';
    const arch = process.arch === 'arm64' ? 'arm64' : 'x64';
    const missing = run(['/bin/sh', join(dir, 'mcp-server'), '--version'], dir);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`this bundle has no binary for ${os}-${arch}`);

    // Unpackers may drop the mode bits: the launcher restores them.
    writeFileSync(join(dir, `mcp-server-${os}-${arch}`), '#!/bin/sh\necho "picked $*"\n');
    chmodSync(join(dir, `mcp-server-${os}-${arch}`), 0o644);
    const picked = run(['/bin/sh', join(dir, 'mcp-server'), '--version'], dir);
    expect(picked).toMatchObject({ code: 0, stdout: 'picked --version\n' });
  });

  test('server.json points at this version of the bundle and carries its sha256', () => {
    const sha = 'ab'.repeat(32);
    const server = serverJson(sha);
    expect(server.version).toBe(pkg.version);
    expect(server.packages[0]).toMatchObject({
      registryType: 'mcpb',
      identifier: `https://github.com/containarium/containarium-mcp/releases/download/v${pkg.version}/containarium.mcpb`,
      fileSha256: sha,
    });
    expect(server.description.length).toBeLessThanOrEqual(100);
    expect(serverJson(sha, 'someone/fork').name).toBe('io.github.someone/fork');
    expect(() => serverJson('not-a-sha')).toThrow();
  });
});
