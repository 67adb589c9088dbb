// Packs mcp-server as an MCP Bundle (dist/containarium.mcpb) for one-click install, plus dist/server.json for the MCP registry.
//
//   bun scripts/bundle.ts                      reuses dist/mcp-server-<os>-<arch> when newer than the sources
//   bun scripts/bundle.ts --platforms all      every release target instead of Claude Desktop's platforms
import { mkdir, rm, stat } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as v from 'valibot';
import pkg from '../package.json' with { type: 'json' };
import template from '../server.json' with { type: 'json' };
import { SETTINGS } from '../src/mcp/settings.ts';
import { TOOLS } from '../src/mcp/tools/index.ts';
import {
  archive,
  artifactName,
  compileFor,
  docFiles,
  parseTargets,
  platformOf,
  type ReleaseTarget,
  run,
  type StagedFile,
  sourceDateEpoch,
  stage,
  writeChecksums,
} from './build.ts';

const ROOT = resolve(import.meta.dir, '..');

export const BUNDLE_FILE = 'containarium.mcpb';

/** Where Claude Desktop runs (macOS, Windows), plus Linux x64 for other MCPB hosts. */
export const BUNDLE_TARGETS: readonly ReleaseTarget[] = [
  'bun-darwin-arm64',
  'bun-darwin-x64',
  'bun-windows-x64',
  'bun-linux-x64',
];

/** owner/name on GitHub: the release URL and the registry name derive from it. */
const DEFAULT_REPOSITORY = 'containarium/containarium-mcp';

/** Inside the bundle, each binary sits in server/ under its platform name. */
export const bundledBinary = (target: ReleaseTarget): string =>
  `server/${artifactName('mcp-server', target)}${platformOf(target).os === 'windows' ? '.exe' : ''}`;

/**
 * platform_overrides is keyed by OS only, so on macOS and Linux a POSIX sh script picks the
 * binary for the CPU; /bin/sh runs it, so it works even if the unpacker dropped mode bits.
 */
export const LAUNCHER = `#!/bin/sh
# Starts the mcp-server binary built for this machine's OS and CPU.
dir=\${0%/*}
case "$(uname -s)" in
  Darwin) os=darwin ;;
  Linux) os=linux ;;
  *) os=$(uname -s) ;;
esac
case "$(uname -m)" in
  x86_64 | amd64) arch=x64 ;;
  arm64 | aarch64) arch=arm64 ;;
  *) arch=$(uname -m) ;;
esac
bin="$dir/mcp-server-$os-$arch"
if [ ! -f "$bin" ]; then
  echo "mcp-server: this bundle has no binary for $os-$arch; download one from the project's releases" >&2
  exit 1
fi
[ -x "$bin" ] || chmod +x "$bin" 2>/dev/null
exec "$bin" "$@"
`;

/** An MCPB substitution, "${name}", filled in by the host app when it starts the server. */
const mcpbVar = (name: string) => `\${${name}}`;

type UserConfigOption = {
  type: 'string' | 'boolean';
  title: string;
  description: string;
  required?: boolean;
  sensitive?: boolean;
  default?: string | boolean;
};

/** The manifest (MCPB manifest_version 0.3) for a bundle holding binaries for `targets`. */
export function manifest(targets: readonly ReleaseTarget[], repository = DEFAULT_REPOSITORY) {
  const url = `https://github.com/${repository}`;
  const oses = new Set(targets.map((t) => platformOf(t).os));
  const windows = targets.find((t) => platformOf(t).os === 'windows');
  // What the host asks the user for, from the settings table: its key, title and words.
  const asked = SETTINGS.flatMap((s) => (s.bundle ? [{ ...s, bundle: s.bundle }] : []));
  const userConfig: Record<string, UserConfigOption> = Object.fromEntries(
    asked.map((s) => {
      const option: UserConfigOption = {
        type: s.type,
        title: s.bundle.title,
        description: s.bundle.description,
        required: s.required !== undefined,
      };
      if (s.secret) option.sensitive = true;
      // An optional setting always has a default: Claude Desktop passes the placeholder itself,
      // "${user_config.…}", for an option left empty that has none; "" reads as unset.
      if (s.required === undefined) {
        option.default = s.type === 'boolean' ? s.default === 'true' : (s.default ?? '');
      }
      return [s.bundle.key, option];
    }),
  );
  return {
    manifest_version: '0.3',
    name: 'containarium',
    display_name: 'Containarium',
    version: pkg.version,
    description: 'Create, start, stop, delete and monitor LXC containers on a Containarium server.',
    long_description:
      'Manage the LXC containers of a [Containarium](https://github.com/footprintai/containarium) ' +
      'server from Claude: create a container for a user with CPU, memory and disk limits and SSH ' +
      'keys, list and inspect containers, start, stop and delete them, and read resource usage and ' +
      'host information. Needs the server URL and a JWT with the admin role.',
    author: { name: 'Containarium MCP contributors', url },
    repository: { type: 'git', url },
    homepage: url,
    documentation: `${url}#readme`,
    support: `${url}/issues`,
    license: pkg.license,
    keywords: ['containers', 'lxc', 'incus', 'containarium', 'devops'],
    server: {
      type: 'binary',
      entry_point: 'server/mcp-server',
      mcp_config: {
        command: '/bin/sh',
        args: [`${mcpbVar('__dirname')}/server/mcp-server`],
        env: Object.fromEntries(asked.map((s) => [s.env, mcpbVar(`user_config.${s.bundle.key}`)])),
        ...(windows && {
          platform_overrides: {
            win32: {
              // ${/} is the host's path separator.
              command: [mcpbVar('__dirname'), ...bundledBinary(windows).split('/')].join(
                mcpbVar('/'),
              ),
              args: [],
            },
          },
        }),
      },
    },
    tools: TOOLS.map((tool) => ({ name: tool.name, description: tool.description })),
    tools_generated: false,
    prompts_generated: false,
    compatibility: {
      platforms: [
        ...(oses.has('darwin') ? ['darwin'] : []),
        ...(oses.has('windows') ? ['win32'] : []),
        ...(oses.has('linux') ? ['linux'] : []),
      ],
    },
    user_config: userConfig,
  };
}

/** What the official registry checks in server.json, and what our release URL must satisfy. */
const ServerJsonSchema = v.looseObject({
  $schema: v.pipe(v.string(), v.startsWith('https://static.modelcontextprotocol.io/schemas/')),
  name: v.pipe(v.string(), v.regex(/^io\.github\.[a-zA-Z0-9-]+\/[a-zA-Z0-9._-]+$/)),
  description: v.pipe(v.string(), v.minLength(1), v.maxLength(100)),
  version: v.pipe(v.string(), v.regex(/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/)),
  packages: v.tuple([
    v.looseObject({
      registryType: v.literal('mcpb'),
      identifier: v.pipe(
        v.string(),
        v.regex(/^https:\/\/github\.com\/[^/]+\/[^/]+\/releases\/download\/[^/]+\/[^/]*mcp[^/]*$/),
      ),
      version: v.string(),
      fileSha256: v.pipe(v.string(), v.regex(/^[a-f0-9]{64}$/)),
      transport: v.object({ type: v.literal('stdio') }),
    }),
  ]),
});

/** server.json for this version's release asset, from the committed template. */
export function serverJson(sha256: string, repository = DEFAULT_REPOSITORY) {
  const [owner, name] = repository.split('/') as [string, string];
  const url = `https://github.com/${repository}`;
  const [first] = template.packages;
  const server = {
    ...template,
    name: `io.github.${owner}/${name}`,
    version: pkg.version,
    repository: { ...template.repository, url },
    websiteUrl: `${url}#readme`,
    packages: [
      {
        ...first,
        identifier: `${url}/releases/download/v${pkg.version}/${BUNDLE_FILE}`,
        version: pkg.version,
        fileSha256: sha256,
      },
    ],
  };
  v.assert(ServerJsonSchema, server);
  return server;
}

/** Newest modification time of what goes into mcp-server. */
async function sourcesMtime(): Promise<number> {
  let newest = 0;
  const files = [
    ...new Bun.Glob('src/**/*.ts').scanSync({ cwd: ROOT }),
    'package.json',
    'bun.lock',
  ];
  for (const file of files) newest = Math.max(newest, (await stat(join(ROOT, file))).mtimeMs);
  return newest;
}

/** dist/mcp-server-<os>-<arch>, built unless it is already newer than the sources. */
async function binaryFor(target: ReleaseTarget, distDir: string, newest: number): Promise<string> {
  const path = join(distDir, bundledBinary(target).slice('server/'.length));
  const current = await stat(path).then(
    (s) => s.mtimeMs >= newest,
    () => false,
  );
  if (!current) {
    console.log(`building ${relative(process.cwd(), path)}`);
    await compileFor({ bin: 'mcp-server', target, outfile: path }, false);
  }
  return path;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Bun.argv.slice(2),
    options: {
      platforms: { type: 'string' },
      dist: { type: 'string', default: 'dist' },
    },
    strict: true,
  });
  const started = performance.now();
  const parsed = values.platforms ? parseTargets(values.platforms) : BUNDLE_TARGETS;
  if (parsed === 'native')
    throw new Error('--platforms needs targets, e.g. darwin-arm64,windows-x64');
  const targets = parsed;
  const repository = process.env.GITHUB_REPOSITORY || DEFAULT_REPOSITORY;
  const distDir = resolve(values.dist);
  await mkdir(join(distDir, 'mcpb'), { recursive: true });

  const manifestText = `${JSON.stringify(manifest(targets, repository), null, 2)}\n`;
  // The manifest alone, for `mcpb validate dist/mcpb/manifest.json`.
  await Bun.write(join(distDir, 'mcpb', 'manifest.json'), manifestText);

  const newest = await sourcesMtime();
  const files: StagedFile[] = [
    { name: 'manifest.json', mode: 0o644, data: manifestText },
    { name: 'server/mcp-server', mode: 0o755, data: LAUNCHER },
    ...(await docFiles()),
  ];
  for (const target of targets) {
    const path = await binaryFor(target, distDir, newest);
    files.push({ name: bundledBinary(target), mode: 0o755, data: Bun.file(path) });
  }
  // Not `mcpb pack`: it stamps every entry with the current time, so no two packs are the same.
  const out = join(distDir, BUNDLE_FILE);
  const epoch = await sourceDateEpoch();
  const { dir, names } = await stage(distDir, files, epoch);
  try {
    run([process.execPath, 'x', 'mcpb', 'validate', dir], ROOT);
    await archive(dir, names, out, epoch);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const bytes = await Bun.file(out).bytes();

  const sha256 = new Bun.CryptoHasher('sha256').update(bytes).digest('hex');
  const registryEntry = serverJson(sha256, repository);
  const server = join(distDir, 'server.json');
  await Bun.write(server, `${JSON.stringify(registryEntry, null, 2)}\n`);
  await writeChecksums(distDir);

  const mib = (bytes.length / 1024 / 1024).toFixed(1);
  console.log(
    `${relative(process.cwd(), out)}: ${mib} MiB, ${files.length} files, sha256 ${sha256}`,
  );
  console.log(`${relative(process.cwd(), server)}: ${registryEntry.packages[0].identifier}`);
  console.log(
    `bundled ${targets.length} platforms in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
}

if (import.meta.main) {
  try {
    await main();
  } catch (error) {
    console.error(`bundle: ${(error as Error).message}`);
    process.exit(1);
  }
}
