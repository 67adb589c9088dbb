// Where each MCP client (Claude Desktop, Claude Code, Cursor) keeps its config on each OS, and how to read one.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { type UserDirs, userDirs } from './config.ts';

export const CLIENT_IDS = ['claude-desktop', 'claude-code', 'cursor'] as const;
export type ClientId = (typeof CLIENT_IDS)[number];

export const isClientId = (name: string): name is ClientId =>
  (CLIENT_IDS as readonly string[]).includes(name);

export const CLIENTS: Record<ClientId, { title: string; reload: string }> = {
  'claude-desktop': {
    title: 'Claude Desktop',
    reload: 'quit and restart Claude Desktop (closing the window is not enough)',
  },
  'claude-code': {
    title: 'Claude Code',
    reload: 'start a new Claude Code session (`claude mcp list` shows the server)',
  },
  cursor: { title: 'Cursor', reload: 'restart Cursor, or refresh the server in Settings → MCP' },
};

/** What install and doctor get from the process; tests pass their own. */
export type Io = {
  /** Variables to read instead of process.env (which config.ts reads when this is undefined). */
  env?: Record<string, string | undefined> | undefined;
  /** Which OS's layout of config folders to use. */
  platform: NodeJS.Platform;
  cwd: string;
  stdout(text: string): void;
  stderr(text: string): void;
  /** The program clients should start; undefined means this binary. */
  command?: string | undefined;
};

export const processIo = (): Io => ({
  platform: process.platform,
  cwd: process.cwd(),
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
});

export type Place = UserDirs & { platform: NodeJS.Platform };

export const placeOf = (io: Io): Place => ({ platform: io.platform, ...userDirs(io.env) });

/** Every file the client may read its config from, the one to create first. */
export function configCandidates(client: ClientId, place: Place): string[] {
  const { home, platform } = place;
  switch (client) {
    case 'claude-desktop': {
      const file = 'claude_desktop_config.json';
      if (platform === 'darwin') {
        return [join(home, 'Library', 'Application Support', 'Claude', file)];
      }
      if (platform === 'win32') {
        return [join(place.appData ?? join(home, 'AppData', 'Roaming'), 'Claude', file)];
      }
      // The seed names ~/.config/claude; Claude Desktop builds for Linux use ~/.config/Claude.
      const config = place.configHome ?? join(home, '.config');
      return [join(config, 'claude', file), join(config, 'Claude', file)];
    }
    // User scope: the top-level mcpServers of ~/.claude.json.
    case 'claude-code':
      return [join(home, '.claude.json')];
    case 'cursor':
      return [join(home, '.cursor', 'mcp.json')];
  }
}

/** Where install writes: the first candidate that already exists, else the first. */
export function configPath(client: ClientId, place: Place, exists = existsSync): string {
  const candidates = configCandidates(client, place);
  return candidates.find((path) => exists(path)) ?? candidates[0]!;
}

export type ServerEntry = Record<string, unknown>;

export type ConfigFile =
  | { state: 'missing' }
  | { state: 'invalid'; problem: string }
  | {
      state: 'ok';
      text: string;
      data: Record<string, unknown>;
      servers: Record<string, ServerEntry>;
      /** Permission bits, e.g. 0o600. */
      mode: number;
    };

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Reads an MCP client config; `problem` completes a sentence that starts with the path. */
export function readConfigFile(path: string): ConfigFile {
  let text: string;
  let mode: number;
  try {
    mode = statSync(path).mode & 0o777;
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ENOENT') return { state: 'missing' };
    return { state: 'invalid', problem: `cannot be read (${code ?? String(error)})` };
  }
  // A client may leave an empty file behind; it holds no settings to keep.
  if (text.trim() === '') return { state: 'ok', text, data: {}, servers: {}, mode };
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    return { state: 'invalid', problem: `is not valid JSON (${(error as Error).message})` };
  }
  if (!isObject(data)) return { state: 'invalid', problem: 'does not hold a JSON object' };
  const servers = data.mcpServers ?? {};
  if (!isObject(servers)) {
    return { state: 'invalid', problem: 'has an "mcpServers" that is not a JSON object' };
  }
  for (const [name, entry] of Object.entries(servers)) {
    if (!isObject(entry)) {
      return { state: 'invalid', problem: `has an mcpServers.${name} that is not a JSON object` };
    }
  }
  return { state: 'ok', text, data, servers: servers as Record<string, ServerEntry>, mode };
}

export const entryCommand = (entry: ServerEntry): string | undefined =>
  typeof entry.command === 'string' && entry.command.trim() ? entry.command : undefined;

/** The entry's env block, string values only (anything else would not reach the process). */
export function entryEnv(entry: ServerEntry): Record<string, string> {
  const env: Record<string, string> = {};
  if (isObject(entry.env)) {
    for (const [key, value] of Object.entries(entry.env)) {
      if (typeof value === 'string') env[key] = value;
    }
  }
  return env;
}

/** True for "mcp-server", "mcp-server.exe" and release names like "mcp-server-linux-x64", on either kind of path. */
export const isMcpServerPath = (command: string): boolean =>
  /^mcp-server(-(linux|darwin|windows)-(x64|arm64))?(\.exe)?$/i.test(
    basename(command.replace(/\\/g, '/')),
  );

// Bun.main of a compiled binary lives in Bun's embedded file system, e.g. /$bunfs/root/mcp-server.
const COMPILED = /^(\/\$bunfs\/|[A-Za-z]:[\\/]~BUN[\\/])/;

/** The path of this mcp-server binary when it is a compiled one; undefined when running from source under bun. */
export const compiledBinary = (): string | undefined =>
  COMPILED.test(Bun.main) ? process.execPath : undefined;

/** Entries that run this server: named `name`, or running an mcp-server binary, or set up for Containarium. */
export function containariumEntries(
  servers: Record<string, ServerEntry>,
  name = 'containarium',
): [string, ServerEntry][] {
  return Object.entries(servers).filter(([key, entry]) => {
    const command = entryCommand(entry);
    return (
      key === name ||
      (command !== undefined && isMcpServerPath(command)) ||
      Object.keys(entryEnv(entry)).some((k) => k.startsWith('CONTAINARIUM_'))
    );
  });
}
