// `mcp-server install`: adds this server to an MCP client's config file, keeping everything else in it.
import {
  chmodSync,
  closeSync,
  existsSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  CLIENT_IDS,
  CLIENTS,
  type ClientId,
  compiledBinary,
  configPath,
  entryEnv,
  type Io,
  isClientId,
  placeOf,
  processIo,
  readConfigFile,
  type ServerEntry,
} from './clients.ts';
import {
  ConfigError,
  configWarnings,
  currentSettings,
  loadConfig,
  type Settings,
} from './config.ts';
import { redact } from './log.ts';
import { installSettingsHelp, SETTINGS } from './settings.ts';

export const INSTALL_HELP = `Usage: mcp-server install [flags]

Adds this server to an MCP client's config, or updates its entry, keeping every other
entry and setting. The previous file is kept as <file>.bak and the new one is mode 600.

  --client NAME       ${CLIENT_IDS.join(', ')} (default claude-desktop)
  --config PATH       write this file instead of the client's standard one
  --name NAME         the entry's name under mcpServers (default containarium)
  --url URL           a remote \`mcp-server http\` (e.g. https://mcp.example.com/mcp) instead of
                      this program: an http entry whose Authorization header carries the token
                      (--token-file or --token); --client claude-code only
${installSettingsHelp()}`;

/** A refusal phrased for the user: what is wrong and what to do. */
export class InstallError extends Error {
  override name = 'InstallError';
}

class UsageError extends Error {}

export type InstallFlags = {
  client: ClientId;
  config?: string | undefined;
  name: string;
  /** A remote `mcp-server http` endpoint: the entry is an http one, not a program to start. */
  url?: string | undefined;
  /** Settings given by their flags (--server-url, --token-file, --read-only, ...). */
  settings: Settings;
};

/** The settings install has a flag for, from the table. */
const FLAGGED = SETTINGS.flatMap((s) => (s.flag ? [{ ...s, flag: s.flag }] : []));

function parseFlags(argv: string[]): InstallFlags | 'help' {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        client: { type: 'string' },
        config: { type: 'string' },
        name: { type: 'string' },
        url: { type: 'string' },
        ...Object.fromEntries(
          FLAGGED.map((s) => [
            s.flag.name,
            { type: s.type === 'boolean' ? 'boolean' : 'string' } as const,
          ]),
        ),
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return 'help';
  const text = (key: string) => {
    const value = values[key];
    if (typeof value !== 'string') return undefined;
    if (value.trim() === '') throw new UsageError(`--${key} needs a value`);
    return value.trim();
  };
  const client = text('client') ?? 'claude-desktop';
  if (!isClientId(client)) {
    throw new UsageError(`--client must be one of ${CLIENT_IDS.join(', ')}, not "${client}"`);
  }
  const name = text('name') ?? 'containarium';
  if (!/^[A-Za-z0-9][\w.-]{0,63}$/.test(name)) {
    throw new UsageError(
      `--name "${name}" must be letters, digits, ".", "_" or "-" (up to 64 characters)`,
    );
  }
  if (values['token-file'] !== undefined && values.token !== undefined) {
    throw new UsageError('give --token-file or --token, not both');
  }
  const settings: Settings = {};
  for (const s of FLAGGED) {
    const value = values[s.flag.name] === true ? 'true' : text(s.flag.name);
    if (value !== undefined) settings[s.env] = value;
  }
  const url = text('url');
  if (url !== undefined) {
    if (client !== 'claude-code') {
      throw new UsageError(
        `--url writes an http entry, which only --client claude-code takes; for ${client}, run mcp-server on that machine instead`,
      );
    }
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {}
    if (!parsed || !/^https?:$/.test(parsed.protocol)) {
      throw new UsageError(
        `--url "${url}" must be an http:// or https:// URL of mcp-server http, like https://mcp.example.com/mcp`,
      );
    }
    const other = Object.keys(settings).filter((key) => !TOKEN_KEYS.includes(key));
    if (other.length > 0) {
      throw new UsageError(
        `with --url only --token-file or --token apply: ${other.join(', ')} ${other.length === 1 ? 'is a setting' : 'are settings'} of the remote server, set where it runs`,
      );
    }
    return { client, name, url: parsed.href, config: text('config'), settings };
  }
  return { client, name, config: text('config'), settings };
}

/** `mcp-server install ...`: returns the exit code (0 done, 1 refused, 2 usage). */
export async function runInstall(argv: string[], io: Io = processIo()): Promise<number> {
  let flags: InstallFlags | 'help';
  try {
    flags = parseFlags(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr(`mcp-server install: ${redact(error.message)}\n\n${INSTALL_HELP}`);
    return 2;
  }
  if (flags === 'help') {
    io.stdout(INSTALL_HELP);
    return 0;
  }
  const secrets = SETTINGS.flatMap((s) =>
    s.secret && flags.settings[s.env] ? [flags.settings[s.env]!] : [],
  );
  try {
    const done = install(flags, io);
    io.stdout(redact(describe(done), secrets));
    return 0;
  } catch (error) {
    if (!(error instanceof InstallError || error instanceof ConfigError)) throw error;
    io.stderr(`mcp-server install: ${redact(error.message, secrets)}\n`);
    return 1;
  }
}

export type Installed = {
  client: ClientId;
  path: string;
  name: string;
  command: string;
  env: Record<string, string>;
  replaced: boolean;
  /** An http entry for a remote mcp-server: `command` is its URL. */
  remote: boolean;
  backup: string | undefined;
  otherServers: number;
};

/**
 * The settings the client will start mcp-server with: flags first, then this shell's CONTAINARIUM_*
 * values, then those of the entry being replaced (so `install --token-file F` alone rotates a token).
 */
function settingsFor(flags: InstallFlags, io: Io, previous: Settings): Record<string, string> {
  const shell: Settings = currentSettings(io.env);
  // Claude starts the server from another folder, so every path must be absolute.
  const absolute = (path: string) => resolve(io.cwd, path);
  const env: Record<string, string> = {};
  const url = [flags.settings, shell, previous].find(
    (s) => s.CONTAINARIUM_SERVER_URL,
  )?.CONTAINARIUM_SERVER_URL;
  if (!url) {
    throw new InstallError(
      'no server URL: pass --server-url (e.g. --server-url http://localhost:8080) or set CONTAINARIUM_SERVER_URL',
    );
  }
  env.CONTAINARIUM_SERVER_URL = url;
  const source = [flags.settings, shell, previous].find(
    (s) => s.CONTAINARIUM_JWT_TOKEN_FILE || s.CONTAINARIUM_JWT_TOKEN,
  );
  // Within one source the file wins, as in loadConfig.
  if (source?.CONTAINARIUM_JWT_TOKEN_FILE) {
    env.CONTAINARIUM_JWT_TOKEN_FILE = absolute(source.CONTAINARIUM_JWT_TOKEN_FILE);
  } else if (source?.CONTAINARIUM_JWT_TOKEN) {
    env.CONTAINARIUM_JWT_TOKEN = source.CONTAINARIUM_JWT_TOKEN;
  } else {
    throw new InstallError(
      'no token: pass --token-file FILE (a mode-600 file holding the token) or --token TOKEN, or set CONTAINARIUM_JWT_TOKEN; make one with `containarium token generate --username mcp-client --roles admin`',
    );
  }
  // The other settings install offers: its flag, else the shell, else the entry replaced.
  for (const setting of SETTINGS) {
    const key = setting.env;
    if (!setting.install || key in env || TOKEN_KEYS.includes(key)) continue;
    const value = flags.settings[key] ?? shell[key] ?? previous[key];
    if (value) env[key] = setting.path ? absolute(value) : value;
  }
  // The server's own checks: URL shape, token shape, token file mode 600, CA file.
  const config = loadConfig(env);
  env.CONTAINARIUM_SERVER_URL = config.serverUrl;
  // The same warnings the server logs when it starts: an expired token, a token sent in clear text.
  for (const warning of configWarnings(config)) io.stderr(`warning: ${warning}\n`);
  return env;
}

/** The absolute path of the program a client should start: this binary, or dist/mcp-server from source. */
export function selfCommand(io: Io): string {
  const compiled = compiledBinary();
  if (compiled) return compiled;
  const built = resolve(
    import.meta.dir,
    '../../dist',
    process.platform === 'win32' ? 'mcp-server.exe' : 'mcp-server',
  );
  if (existsSync(built)) {
    io.stderr(`note: running from source, so the client will start the built ${built}\n`);
    return built;
  }
  throw new InstallError(
    'this is mcp-server running from source, and a client needs a program it can start on its own: build one with `make build-mcp` (or `bun run build`), then run `dist/mcp-server install` with the same flags',
  );
}

// Keys of an old entry that describe how to start some other program; the rest (e.g. "disabled") is kept.
const LAUNCH_KEYS = ['command', 'args', 'env', 'type', 'url', 'headers', 'cwd'];
// Settings install owns; the old entry's other env keys are kept.
const TOKEN_KEYS: readonly string[] = ['CONTAINARIUM_JWT_TOKEN', 'CONTAINARIUM_JWT_TOKEN_FILE'];

export function install(flags: InstallFlags, io: Io): Installed {
  const path = flags.config ? resolve(io.cwd, flags.config) : configPath(flags.client, placeOf(io));
  const file = readConfigFile(path);
  if (file.state === 'invalid') {
    throw new InstallError(
      `${path} ${file.problem}. Nothing was changed: fix the file (\`jq . '${path}'\` shows where the error is) or move it away, then run install again`,
    );
  }
  const data = file.state === 'ok' ? file.data : {};
  const servers = file.state === 'ok' ? file.servers : {};
  const old = servers[flags.name];
  const remote = flags.url ? remoteEntry(flags.url, flags, io, old) : undefined;
  const env = remote ? {} : settingsFor(flags, io, currentSettings(old ? entryEnv(old) : {}));
  const command = remote ? flags.url! : (io.command ?? selfCommand(io));
  const entry: ServerEntry = remote ?? {};
  if (!remote) {
    // Claude Code's own `claude mcp add` writes type and args; the other clients need neither.
    if (flags.client === 'claude-code') entry.type = 'stdio';
    entry.command = command;
    if (flags.client === 'claude-code') entry.args = [];
    const kept = Object.fromEntries(
      Object.entries(old ? entryEnv(old) : {}).filter(([key]) => !TOKEN_KEYS.includes(key)),
    );
    entry.env = { ...kept, ...env };
  }
  for (const [key, value] of Object.entries(old ?? {})) {
    if (!LAUNCH_KEYS.includes(key)) entry[key] = value;
  }
  data.mcpServers = { ...servers, [flags.name]: entry };
  const backup = writePrivateJson(
    path,
    `${JSON.stringify(data, null, 2)}\n`,
    file.state === 'ok' ? file.text : undefined,
  );
  return {
    client: flags.client,
    path,
    name: flags.name,
    command,
    env,
    replaced: old !== undefined,
    remote: remote !== undefined,
    backup,
    otherServers: Object.keys(servers).filter((key) => key !== flags.name).length,
  };
}

/**
 * Claude Code's http entry for a remote `mcp-server http`: the token (from --token-file, --token,
 * this shell, or the Authorization header of the entry replaced) checked as the server would.
 */
function remoteEntry(
  url: string,
  flags: InstallFlags,
  io: Io,
  old: ServerEntry | undefined,
): ServerEntry {
  const shell = currentSettings(io.env);
  const source = [flags.settings, shell].find(
    (s) => s.CONTAINARIUM_JWT_TOKEN_FILE || s.CONTAINARIUM_JWT_TOKEN,
  );
  const oldHeader = (old?.headers as Record<string, string> | undefined)?.Authorization;
  const env: Record<string, string> = { CONTAINARIUM_SERVER_URL: url };
  if (source?.CONTAINARIUM_JWT_TOKEN_FILE) {
    env.CONTAINARIUM_JWT_TOKEN_FILE = resolve(io.cwd, source.CONTAINARIUM_JWT_TOKEN_FILE);
  } else if (source?.CONTAINARIUM_JWT_TOKEN) {
    env.CONTAINARIUM_JWT_TOKEN = source.CONTAINARIUM_JWT_TOKEN;
  } else if (oldHeader?.startsWith('Bearer ')) {
    env.CONTAINARIUM_JWT_TOKEN = oldHeader.slice('Bearer '.length);
  } else {
    throw new InstallError(
      'no token for the Authorization header: pass --token-file FILE or --token TOKEN, your own Containarium API token (make one with `containarium token generate --username NAME`)',
    );
  }
  // The server's own checks of the token (shape, file mode), and its warnings (expiry, clear text).
  const config = loadConfig(env);
  for (const warning of configWarnings(config)) io.stderr(`warning: ${warning}\n`);
  return { type: 'http', url, headers: { Authorization: `Bearer ${config.token.get()}` } };
}

/**
 * Replaces `path` with `text` atomically (a temp file renamed over it), mode 600 from the start, and
 * keeps `previous` as <path>.bak the same way. Follows a symlinked config to its real file, but never
 * a symlinked or hard-linked .bak: that is replaced, not written through. Returns the backup path.
 */
export function writePrivateJson(
  path: string,
  text: string,
  previous: string | undefined,
): string | undefined {
  const target = existsSync(path) && lstatSync(path).isSymbolicLink() ? realpathSync(path) : path;
  const dir = dirname(target);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new InstallError(`cannot create the folder ${dir} (${codeOf(error)})`);
  }
  let backup: string | undefined;
  if (previous !== undefined) {
    backup = `${target}.bak`;
    try {
      replacePrivately(backup, previous);
    } catch (error) {
      if (error instanceof InstallError) throw error;
      throw new InstallError(
        `cannot save a backup of ${target} as ${backup} (${codeOf(error)}); nothing was changed`,
      );
    }
  }
  try {
    replacePrivately(target, text);
  } catch (error) {
    if (error instanceof InstallError) throw error;
    throw new InstallError(`cannot write ${target} (${codeOf(error)}); nothing was changed`);
  }
  return backup;
}

/**
 * Writes a new file created exclusively ('wx') with mode 600 beside `path`, then renames it over
 * `path`: the text is never readable by others, not even for a moment, whatever was there before.
 */
function replacePrivately(path: string, text: string): void {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  try {
    const fd = openSync(temp, 'wx', 0o600);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    chmodSync(temp, 0o600);
    // The token must never land in a file others can read; on Windows the folder's ACL decides.
    if (process.platform !== 'win32' && (statSync(temp).mode & 0o077) !== 0) {
      throw new InstallError(
        `cannot make ${path} readable only by you (the file system ignores chmod 600); nothing was changed. Choose another --config location`,
      );
    }
    renameSync(temp, path);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
}

const codeOf = (error: unknown) =>
  (error as { code?: string }).code ?? (error instanceof Error ? error.message : String(error));

const SECRET_KEYS = new Set<string>(SETTINGS.filter((s) => s.secret).map((s) => s.env));

/** What install did, for stdout; names the env keys but never a token. */
function describe(done: Installed): string {
  const { title, reload } = CLIENTS[done.client];
  const keys = Object.entries(done.env).map(([key, value]) =>
    SECRET_KEYS.has(key) ? `${key} (value not shown)` : `${key}=${value}`,
  );
  const lines = [
    `${done.replaced ? 'Updated' : 'Added'} mcpServers.${done.name} in ${done.path} (${title}, mode 600)`,
    ...(done.remote
      ? [`  url:     ${done.command}`, '  headers: Authorization (value not shown)']
      : [`  command: ${done.command}`, `  env:     ${keys.join('\n           ')}`]),
  ];
  if (done.otherServers > 0) {
    lines.push(
      `  kept the ${done.otherServers} other server${done.otherServers === 1 ? '' : 's'} and every other setting`,
    );
  }
  if (done.backup) lines.push(`  previous version saved as ${done.backup}`);
  lines.push(`Next: ${reload}, then run \`mcp-server doctor\` to check the setup.`);
  return `${lines.join('\n')}\n`;
}
