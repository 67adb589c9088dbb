// Compiles mcp-server and containarium into standalone executables, for this machine or for every release target.
//
//   bun scripts/build.ts                       both binaries for this machine: dist/mcp-server, dist/containarium
//   bun scripts/build.ts --target all --archive  every release target, packed, plus dist/SHA256SUMS
//   bun scripts/build.ts --bin mcp-server --target linux-x64,linux-arm64
//   bun scripts/build.ts --bin mcp-server --out /tmp/mcp-server
//   bun scripts/build.ts --bin mcp-server --link bin   also bin/mcp-server -> ../dist/mcp-server
import { chmod, mkdir, mkdtemp, readdir, rm, stat, symlink, utimes } from 'node:fs/promises';
import { basename, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import pkg from '../package.json' with { type: 'json' };

const ROOT = resolve(import.meta.dir, '..');

/** Each binary and the module it starts from. */
export const BINARIES = {
  'mcp-server': 'src/mcp/main.ts',
  containarium: 'src/daemon/main.ts',
} as const;
export type BinaryName = keyof typeof BINARIES;

export const RELEASE_TARGETS = [
  'bun-linux-x64',
  'bun-linux-arm64',
  'bun-darwin-x64',
  'bun-darwin-arm64',
  'bun-windows-x64',
] as const satisfies readonly Bun.Build.CompileTarget[];
export type ReleaseTarget = (typeof RELEASE_TARGETS)[number];

export type Platform = { os: 'linux' | 'darwin' | 'windows'; arch: 'x64' | 'arm64' };

/** Files next to the binary in every archive, when the repository has them. */
const DOCS = ['README.md', 'LICENSE'];

/** Release asset names that dist/SHA256SUMS covers. */
const ASSET = /\.(tar\.gz|zip|mcpb)$/;

export const platformOf = (target: ReleaseTarget): Platform => {
  const [, os, arch] = target.split('-') as [string, Platform['os'], Platform['arch']];
  return { os, arch };
};

/** The platform this process runs on, in release-target terms. */
export const hostPlatform = (): Platform => ({
  os: process.platform === 'win32' ? 'windows' : (process.platform as Platform['os']),
  arch: process.arch === 'arm64' ? 'arm64' : 'x64',
});

const exe = (p: Platform) => (p.os === 'windows' ? '.exe' : '');

/** "mcp-server-linux-x64": the name of a cross-built binary and of its archive. */
export const artifactName = (bin: BinaryName, target: ReleaseTarget): string => {
  const { os, arch } = platformOf(target);
  return `${bin}-${os}-${arch}`;
};

/** The binary's file name inside an archive: what the user runs. */
export const binaryFileName = (bin: BinaryName, p: Platform): string => `${bin}${exe(p)}`;

/** Accepts "bun-linux-x64", "linux-x64" and "all". */
export function parseTargets(spec: string): ReleaseTarget[] | 'native' {
  if (spec === 'native') return 'native';
  if (spec === 'all') return [...RELEASE_TARGETS];
  return spec.split(',').map((raw) => {
    const name = raw.trim().startsWith('bun-') ? raw.trim() : `bun-${raw.trim()}`;
    const target = RELEASE_TARGETS.find((t) => t === name);
    if (!target) {
      throw new Error(`unknown target "${raw}": use native, all or ${RELEASE_TARGETS.join(', ')}`);
    }
    return target;
  });
}

/** Seconds since the epoch stamped on archive entries: SOURCE_DATE_EPOCH, else the last commit's time. */
export async function sourceDateEpoch(): Promise<number> {
  const fromEnv = Number(process.env.SOURCE_DATE_EPOCH);
  if (Number.isInteger(fromEnv) && fromEnv > 0) return fromEnv;
  const git = Bun.spawnSync(['git', 'log', '-1', '--format=%ct'], { cwd: ROOT, stderr: 'ignore' });
  const fromGit = Number(git.stdout.toString().trim());
  return git.exitCode === 0 && Number.isInteger(fromGit) && fromGit > 0 ? fromGit : 0;
}

/** Bun's own package on the npm registry for a target, e.g. @oven/bun-linux-aarch64. */
const runtimePackage = (target: ReleaseTarget) => {
  const { os, arch } = platformOf(target);
  return `@oven/bun-${os}-${arch === 'arm64' ? 'aarch64' : arch}`;
};

/**
 * Fetches the Bun runtime for a target with `npm pack`, from whatever registry npm is set up for.
 * Bun downloads it by itself when it can; this is for machines where only npm's registry is reachable.
 */
export async function fetchRuntime(target: ReleaseTarget): Promise<string> {
  const { os } = platformOf(target);
  const name = runtimePackage(target);
  const dir = join(
    ROOT,
    'node_modules',
    '.cache',
    'bun-runtimes',
    `${name.slice(6)}-${Bun.version}`,
  );
  const path = join(dir, 'package', 'bin', os === 'windows' ? 'bun.exe' : 'bun');
  if (await Bun.file(path).exists()) return path;
  await mkdir(dir, { recursive: true });
  const pack = Bun.spawnSync(['npm', 'pack', '--silent', `${name}@${Bun.version}`], {
    cwd: dir,
    stderr: 'pipe',
  });
  const tgz = pack.stdout.toString().trim().split('\n').at(-1) ?? '';
  if (pack.exitCode !== 0 || !tgz) {
    throw new Error(`npm pack ${name}@${Bun.version} failed: ${pack.stderr.toString().trim()}`);
  }
  run(['tar', '-xzf', tgz, 'package/bin'], dir);
  await rm(join(dir, tgz));
  return path;
}

export type BuildOptions = {
  bin: BinaryName;
  /** A release target; undefined builds for this machine. */
  target?: ReleaseTarget;
  outfile: string;
  /** A Bun executable for the target, instead of the one Bun downloads. */
  executablePath?: string;
};

/** One standalone executable: minified, bytecode, version baked in, the user's .env and bunfig.toml ignored. */
export async function compile(options: BuildOptions): Promise<void> {
  const result = await Bun.build({
    entrypoints: [join(ROOT, BINARIES[options.bin])],
    compile: {
      ...(options.target && { target: options.target }),
      ...(options.executablePath && { executablePath: options.executablePath }),
      outfile: options.outfile,
      // A binary run from someone's project folder must not read that folder's config files.
      autoloadDotenv: false,
      autoloadBunfig: false,
      autoloadTsconfig: false,
      autoloadPackageJson: false,
      // No `windows` options: Bun applies them only when compiling on Windows, and no
      // hideConsole in any case, since both are console programs.
    },
    format: 'esm',
    // What a binary imports lazily (mcp-server's MCP SDK, install and doctor) is its own chunk
    // inside the executable, loaded when imported: --version does not load the SDK's code.
    splitting: true,
    minify: true,
    bytecode: true,
    sourcemap: 'none',
    define: { BUILD_VERSION: JSON.stringify(pkg.version) },
    throw: false,
  });
  if (!result.success) {
    const logs = result.logs.map((l) => String(l)).join('\n');
    throw new Error(`building ${options.outfile} failed:\n${logs}`);
  }
}

/** Compiles for a target, falling back to a runtime from `npm pack` if Bun cannot download its own. */
export async function compileFor(options: BuildOptions, runtimeFromNpm: boolean): Promise<void> {
  const target = options.target;
  if (!target || options.executablePath) return compile(options);
  const same = target === `bun-${hostPlatform().os}-${hostPlatform().arch}`;
  if (runtimeFromNpm && !same) {
    return compile({ ...options, executablePath: await fetchRuntime(target) });
  }
  try {
    await compile(options);
  } catch (error) {
    if (same) throw error;
    console.error(`${options.bin} ${target}: ${(error as Error).message.split('\n')[0]}`);
    console.error(`${options.bin} ${target}: retrying with ${runtimePackage(target)} from npm`);
    await compile({ ...options, executablePath: await fetchRuntime(target) });
  }
}

/** Runs a tool with PATH alone, so TAR_OPTIONS, GZIP, ZIPOPT or TZ cannot change its output. */
export function run(cmd: string[], cwd: string, env: Record<string, string> = {}): void {
  const proc = Bun.spawnSync(cmd, { cwd, env: { PATH: process.env.PATH ?? '', ...env } });
  if (proc.exitCode !== 0) {
    const output = `${proc.stdout.toString()}${proc.stderr.toString()}`.trim();
    throw new Error(`${cmd.join(' ')} failed (${proc.exitCode}): ${output}`);
  }
}

/** A file for an archive: its path inside, its mode, and its bytes (a file to copy, or text). */
export type StagedFile = { name: string; mode: number; data: Bun.BunFile | string };

/** README.md and LICENSE, when the repository has them. */
export async function docFiles(): Promise<StagedFile[]> {
  const docs = DOCS.map((name) => ({ name, mode: 0o644, data: Bun.file(join(ROOT, name)) }));
  const present = await Promise.all(docs.map((doc) => doc.data.exists()));
  return docs.filter((_, i) => present[i]);
}

/**
 * Writes `files` into a new directory under `parent` with their modes and the epoch as their time,
 * so the archive shows neither the build machine's umask nor its clock. Returns it and the sorted names.
 */
export async function stage(parent: string, files: readonly StagedFile[], epoch: number) {
  const dir = await mkdtemp(join(parent, '.stage-'));
  for (const file of files) {
    const path = join(dir, file.name);
    await Bun.write(path, file.data);
    await chmod(path, file.mode);
    await utimes(path, epoch, epoch);
  }
  return { dir, names: files.map((f) => f.name).sort() };
}

/**
 * Packs the staged `names` into `out`, byte-for-byte the same for the same files and epoch:
 * .tar.gz with GNU tar and gzip, anything else (.zip, .mcpb) with Info-ZIP zip.
 */
export async function archive(dir: string, names: string[], out: string, epoch: number) {
  await rm(out, { force: true }); // zip would add to an existing archive
  if (out.endsWith('.tar.gz')) {
    const owner = ['--owner=0', '--group=0', '--numeric-owner'];
    const flags = ['--format=ustar', '--sort=name', ...owner, `--mtime=@${epoch}`];
    run(['tar', '-c', '-I', 'gzip -n -6', '-f', out, ...flags, '--', ...names], dir);
  } else {
    // -X: no uid/gid or extra times; -D: no directory entries. Zip stores local time: pin TZ.
    run(['zip', '-q', '-X', '-D', '-6', out, '--', ...names], dir, { TZ: 'UTC' });
  }
}

/** Packs one binary with the docs into dist/<bin>-<os>-<arch>.tar.gz, or .zip for Windows. */
export async function pack(
  binary: string,
  bin: BinaryName,
  target: ReleaseTarget,
  distDir: string,
): Promise<string> {
  const p = platformOf(target);
  const files = [
    { name: binaryFileName(bin, p), mode: 0o755, data: Bun.file(binary) },
    ...(await docFiles()),
  ];
  const epoch = await sourceDateEpoch();
  const ext = p.os === 'windows' ? '.zip' : '.tar.gz';
  const out = resolve(distDir, `${artifactName(bin, target)}${ext}`);
  const { dir, names } = await stage(distDir, files, epoch);
  try {
    await archive(dir, names, out, epoch);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return out;
}

/** Writes dist/SHA256SUMS over every release asset in dist/, in `sha256sum -c` format. */
export async function writeChecksums(distDir: string): Promise<string> {
  const assets = (await readdir(distDir)).filter((name) => ASSET.test(name)).sort();
  const lines: string[] = [];
  for (const name of assets) {
    const hasher = new Bun.CryptoHasher('sha256');
    hasher.update(await Bun.file(join(distDir, name)).arrayBuffer());
    lines.push(`${hasher.digest('hex')}  ${name}`);
  }
  const out = join(distDir, 'SHA256SUMS');
  await Bun.write(out, lines.length ? `${lines.join('\n')}\n` : '');
  return out;
}

/** Makes DIR/<name> a relative symlink to a built binary, so the two can move together. */
async function linkInto(dir: string, binary: string): Promise<string> {
  const folder = resolve(dir);
  await mkdir(folder, { recursive: true });
  const path = join(folder, basename(binary));
  await rm(path, { force: true });
  await symlink(relative(folder, resolve(binary)), path);
  return path;
}

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Bun.argv.slice(2),
    options: {
      bin: { type: 'string', multiple: true },
      target: { type: 'string', default: 'native' },
      out: { type: 'string' },
      link: { type: 'string' },
      dist: { type: 'string', default: 'dist' },
      archive: { type: 'boolean', default: false },
      'runtime-from-npm': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(
      'Usage: bun scripts/build.ts [--bin mcp-server|containarium]... [--target native|all|linux-x64,...]\n' +
        '                            [--out FILE] [--dist DIR] [--link DIR] [--archive] [--runtime-from-npm]',
    );
    return;
  }
  const requested = (values.bin ?? []).flatMap((b) => b.split(','));
  for (const b of requested) {
    if (!(b in BINARIES))
      throw new Error(`unknown binary "${b}": use ${Object.keys(BINARIES).join(' or ')}`);
  }
  const bins = (requested.length ? requested : Object.keys(BINARIES)) as BinaryName[];

  const targets = parseTargets(values.target);
  const distDir = resolve(values.dist);
  if (values.out && (bins.length !== 1 || (targets !== 'native' && targets.length !== 1))) {
    throw new Error('--out needs exactly one --bin and one --target');
  }
  if (values.archive && targets === 'native') throw new Error('--archive needs --target');
  if (values.link !== undefined && targets !== 'native') {
    throw new Error('--link is for binaries built for this machine (no --target)');
  }
  await mkdir(distDir, { recursive: true });

  const started = performance.now();
  const jobs: BuildOptions[] = bins.flatMap((bin): BuildOptions[] =>
    targets === 'native'
      ? [
          {
            bin,
            outfile: resolve(values.out ?? join(distDir, binaryFileName(bin, hostPlatform()))),
          },
        ]
      : targets.map((target) => ({
          bin,
          target,
          outfile: resolve(
            values.out ?? join(distDir, `${artifactName(bin, target)}${exe(platformOf(target))}`),
          ),
        })),
  );
  for (const job of jobs) {
    const t0 = performance.now();
    await compileFor(job, values['runtime-from-npm']);
    let line = `${relative(process.cwd(), job.outfile).padEnd(36)} ${mib((await stat(job.outfile)).size).padStart(10)}`;
    if (values.archive && job.target) {
      const archive = await pack(job.outfile, job.bin, job.target, distDir);
      line += `  ${basename(archive).padEnd(36)} ${mib((await stat(archive)).size).padStart(10)}`;
    }
    console.log(`${line}  ${seconds(performance.now() - t0)}`);
    if (values.link !== undefined) {
      const link = await linkInto(values.link, job.outfile);
      console.log(`${relative(process.cwd(), link)} -> ${relative(process.cwd(), job.outfile)}`);
    }
  }
  if (values.archive) {
    const sums = await writeChecksums(distDir);
    const count = (await Bun.file(sums).text()).split('\n').length - 1;
    console.log(`${relative(process.cwd(), sums)}: ${count} files`);
  }
  console.log(`built ${jobs.length} binaries in ${seconds(performance.now() - started)}`);
}

if (import.meta.main) {
  try {
    await main();
  } catch (error) {
    console.error(`build: ${(error as Error).message}`);
    process.exit(1);
  }
}
