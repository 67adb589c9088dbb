// `mcp-server doctor`: the seed's Troubleshooting section as a command, one line per check, no secrets.
import { accessSync, constants, existsSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import ky, { HTTPError, SchemaValidationError } from 'ky';
import { AUDIENCE, ISSUER, readClaims } from '../shared/jwt.ts';
import { VERSION } from '../shared/version.ts';
import { createClient, HEALTH_TIMEOUT_MS } from './client.ts';
import {
  CLIENT_IDS,
  CLIENTS,
  type ClientId,
  compiledBinary,
  configCandidates,
  containariumEntries,
  entryCommand,
  entryEnv,
  type Io,
  isClientId,
  isMcpServerPath,
  placeOf,
  processIo,
  readConfigFile,
  type ServerEntry,
} from './clients.ts';
import {
  asSentences,
  type Config,
  ConfigError,
  configWarnings,
  currentSettings,
  loadConfig,
} from './config.ts';
import { describeConfirm } from './confirm.ts';
import { describeFailure } from './errors.ts';
import { duration } from './format.ts';
import { describeGuards, NO_GUARDS } from './guards.ts';
import { redact } from './log.ts';
import { SETTINGS } from './settings.ts';

export const DOCTOR_HELP = `Usage: mcp-server doctor [--client NAME] [--config PATH]
       mcp-server doctor --url URL     check a remote \`mcp-server http\` instead

Checks what the seed's Troubleshooting section checks by hand: the CONTAINARIUM_* settings,
the token (decoded locally: expiry, roles, issuer, audience), the daemon's /health, one
authenticated API call, and each MCP client's config file with its mcp-server entry.
Without CONTAINARIUM_* variables in this shell it checks the settings in the clients' entries.
Exits 0 only when no check fails; never prints a token.

  --client NAME   check only this client: ${CLIENT_IDS.join(', ')}
  --config PATH   check this config file instead of the clients' standard ones
  --url URL       a remote mcp-server http (e.g. https://mcp.example.com/mcp): checks its
                  /health and one authenticated tool call with this shell's token
                  (CONTAINARIUM_JWT_TOKEN_FILE or CONTAINARIUM_JWT_TOKEN)
`;

/** The authenticated call's limit, unless CONTAINARIUM_TIMEOUT says otherwise. */
export const API_TIMEOUT_MS = 10_000;

type Mark = 'ok' | 'warn' | 'fail' | 'skip';
const MARKS: Record<Mark, string> = { ok: '✓', warn: '!', fail: '✗', skip: '-' };

/** Prints check lines as they complete, counting failures, with every known secret redacted. */
class Report {
  failures = 0;
  warnings = 0;
  private readonly secrets: string[] = [];
  constructor(private readonly io: Io) {}

  hide(secret: string) {
    this.secrets.push(secret);
  }

  line(mark: Mark, text: string, fix?: string) {
    if (mark === 'fail') this.failures++;
    if (mark === 'warn') this.warnings++;
    const out = `${MARKS[mark]} ${text}\n${fix ? `  → ${fix}\n` : ''}`;
    this.io.stdout(redact(out, this.secrets));
  }

  heading(text: string) {
    this.io.stdout(redact(`\n${text}\n`, this.secrets));
  }
}

type Flags = {
  client?: ClientId | undefined;
  config?: string | undefined;
  url?: string | undefined;
};

class UsageError extends Error {}

function parseFlags(argv: string[]): Flags | 'help' {
  let values: {
    client?: string | undefined;
    config?: string | undefined;
    url?: string | undefined;
    help?: boolean;
  };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        client: { type: 'string' },
        config: { type: 'string' },
        url: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return 'help';
  if (values.client !== undefined && !isClientId(values.client)) {
    throw new UsageError(
      `--client must be one of ${CLIENT_IDS.join(', ')}, not "${values.client}"`,
    );
  }
  if (values.config !== undefined && values.config.trim() === '') {
    throw new UsageError('--config needs a path');
  }
  if (values.url !== undefined && !/^https?:\/\/\S+$/.test(values.url.trim())) {
    throw new UsageError(
      `--url "${values.url}" must be the http:// or https:// URL of mcp-server http, like https://mcp.example.com/mcp`,
    );
  }
  return { client: values.client, config: values.config, url: values.url?.trim() };
}

/** `mcp-server doctor ...`: returns the exit code (0 all checks pass, 1 a check failed, 2 usage). */
export async function runDoctor(argv: string[], io: Io = processIo()): Promise<number> {
  let flags: Flags | 'help';
  try {
    flags = parseFlags(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr(`mcp-server doctor: ${error.message}\n\n${DOCTOR_HELP}`);
    return 2;
  }
  if (flags === 'help') {
    io.stdout(DOCTOR_HELP);
    return 0;
  }
  const report = new Report(io);
  io.stdout(`mcp-server doctor ${VERSION}\n`);
  if (flags.url) {
    report.heading(`Remote mcp-server http: ${flags.url}`);
    await checkRemote(flags.url, io.env ?? process.env, report);
    return summary(report, io);
  }
  const files = configFiles(flags, io);
  const checked = new Set<string>();

  const shell = currentSettings(io.env);
  // Where and as whom, the settings install has flags for: without them the shell sets nothing.
  const shellConfigured = SETTINGS.some((s) => s.flag && shell[s.env]);
  const anyEntry = files.some((f) => f.entries.length > 0);
  if (shellConfigured || !anyEntry) {
    report.heading("Settings in this shell's environment");
    checked.add(settingsKey(shell));
    await checkSettings(
      io.env,
      report,
      anyEntry
        ? ''
        : 'Or run `mcp-server install --server-url URL --token-file FILE` to set up Claude Desktop.',
    );
  } else {
    report.line(
      'skip',
      "this shell sets no CONTAINARIUM_* variables, so the settings in each client's entry are checked below",
    );
  }

  for (const file of files) await checkConfigFile(file, report, checked);
  if (files.length === 0) {
    const looked = CLIENT_IDS.flatMap((id) => configCandidates(id, placeOf(io)));
    report.heading('MCP clients');
    report.line(
      'warn',
      `no Claude Desktop, Claude Code or Cursor config found (looked for ${looked.join(', ')})`,
      'run `mcp-server install` to add this server to one (--client claude-code or cursor for the others)',
    );
  }

  return summary(report, io);
}

/** The closing line; the exit code (0 when no check failed). */
function summary(report: Report, io: Io): number {
  io.stdout(
    report.failures === 0
      ? `\nAll checks passed${report.warnings ? ` (${report.warnings} warning${report.warnings === 1 ? '' : 's'})` : ''}.\n`
      : `\n${report.failures} check${report.failures === 1 ? '' : 's'} failed: apply the fixes marked → above, then run \`mcp-server doctor\` again.\n`,
  );
  return report.failures === 0 ? 0 : 1;
}

// ---- Checks 1 to 4: settings, token, /health, one authenticated call ---------------------------

type Env = Record<string, string | undefined>;

/** What decides where and as whom a server connects: entries that share it are checked once. */
const settingsKey = (env: Env) => {
  const settings = currentSettings(env);
  return JSON.stringify(SETTINGS.filter((s) => s.connection).map((s) => settings[s.env]));
};

/** `env` undefined means this process's environment (read by config.ts). */
async function checkSettings(env: Env | undefined, report: Report, where: string): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    const [problem = '', ...fix] = error.message.split('\n');
    report.line('fail', problem, asSentences([...fix, where]) || undefined);
    report.line('skip', 'the token and the daemon are checked once the settings are fixed');
    return;
  }
  const token = config.token.get();
  report.hide(token);
  const origin =
    config.token.origin === 'CONTAINARIUM_JWT_TOKEN_FILE'
      ? `CONTAINARIUM_JWT_TOKEN_FILE (${currentSettings(env).CONTAINARIUM_JWT_TOKEN_FILE})`
      : 'CONTAINARIUM_JWT_TOKEN';
  report.line(
    'ok',
    `CONTAINARIUM_SERVER_URL is ${config.serverUrl}; the token comes from ${origin}`,
  );
  report.line('ok', `guard rails: ${describeGuards(config.guards ?? NO_GUARDS)}`);
  report.line('ok', `confirmations: ${describeConfirm(config.confirm ?? 'auto')}`);
  checkToken(token, origin, report);
  // The warnings the server logs at start, but the token's expiry: checkToken says more about it.
  const noExpiry = { origin: config.token.origin, get: () => token, expiresAt: () => undefined };
  for (const warning of configWarnings({ ...config, token: noExpiry })) {
    report.line('warn', warning);
  }
  if (await checkHealth(config, report)) await checkApiCall(config, report);
  else report.line('skip', 'the authenticated call is skipped while the daemon is unreachable');
}

const DAY_MS = 86_400_000;
/** Warn this long before expiry: the default token lives 24 h, and that is not "soon". */
const SOON_MS = 3_600_000;
const TOKEN_COMMAND = 'containarium token generate';
/** The flag `containarium token generate` requires; the path is the one the README uses. */
const SECRET_OPTION = '--secret-file /etc/containarium-jwt.secret';

/** "2026-11-21 16:37 UTC" */
export const formatDate = (date: Date) =>
  `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;

/** Check 2: the token's claims, decoded locally (the daemon alone can check the signature). */
function checkToken(token: string, origin: string, report: Report): void {
  const claims = readClaims(token);
  const roles = claims?.roles ?? [];
  // The same user and roles again: a fix never widens what the token may do.
  const replace = (username = 'mcp-client') =>
    `\`${TOKEN_COMMAND} --username ${username}${roles.length > 0 ? ` --roles ${roles.join(',')}` : ''} --expiry 720h ${SECRET_OPTION}\` on the daemon's host (the file its --jwt-secret-file names) and update ${origin} (or rerun \`mcp-server install\`)`;
  const renew = (username?: string) => `generate a new one with ${replace(username)}`;
  if (!claims) {
    report.line('fail', `the token from ${origin} has claims of the wrong types`, renew());
    return;
  }
  const audiences = claims.aud === undefined ? [] : [claims.aud].flat();
  const who = `user ${claims.username ?? '(none)'}, roles ${roles.join(', ') || '(none)'}, issuer ${claims.iss ?? '(none)'}, audience ${audiences.join(', ') || '(none)'}`;
  const now = Date.now();
  if (claims.exp === undefined) {
    // Both this repository's daemon and upstream HEAD refuse a token without "exp".
    report.line(
      'fail',
      `token (${who}) never expires, and the daemon refuses a token without an expiry`,
      `generate one with --expiry: ${replace(claims.username)}`,
    );
  } else {
    const expiry = new Date(claims.exp * 1000);
    const left = expiry.getTime() - now;
    const days = Math.floor(left / DAY_MS);
    if (expiry.getTime() <= now) {
      report.line(
        'fail',
        `token expired on ${formatDate(expiry)} (${who})`,
        renew(claims.username),
      );
    } else if (left < SOON_MS) {
      report.line(
        'warn',
        `token expires soon, on ${formatDate(expiry)} (${who})`,
        renew(claims.username),
      );
    } else {
      const within = days >= 2 ? `${days} days` : duration(Math.floor(left / 1000));
      report.line('ok', `token: ${who}; expires on ${formatDate(expiry)} (in ${within})`);
    }
  }
  if (!claims.username) {
    report.line('fail', 'the token has no username claim, so every daemon refuses it', renew());
  }
  if (claims.tt !== undefined && claims.tt !== 'access') {
    report.line(
      'fail',
      `the token is a ${claims.tt} token, which the API refuses`,
      renew(claims.username),
    );
  }
  if (!roles.includes('admin')) {
    // A user's token is how it should be: said, not warned about, and never a hint to escalate.
    report.line(
      'ok',
      `the token acts for user ${claims.username ?? '(none)'} only: that user's container, and no get_system_info`,
    );
  }
  if (claims.iss !== ISSUER) {
    report.line(
      'warn',
      `the token's issuer is not "${ISSUER}", so newer daemons refuse it`,
      renew(claims.username),
    );
  }
  if (!audiences.includes(AUDIENCE)) {
    report.line(
      'warn',
      `the token has no audience "${AUDIENCE}": v0.3 daemons accept it, newer ones refuse it`,
      renew(claims.username),
    );
  }
  if (claims.nbf !== undefined && claims.nbf * 1000 > now + 30_000) {
    report.line(
      'warn',
      `the token is not valid before ${formatDate(new Date(claims.nbf * 1000))}`,
      "check this machine's clock and the server's",
    );
  }
}

/** Check 3: GET /health, no token, through the server's own client. False when nothing answered. */
async function checkHealth(config: Config, report: Report): Promise<boolean> {
  const url = `${config.serverUrl}/health`;
  const ctx = {
    action: 'reach /health',
    serverUrl: config.serverUrl,
    token: config.token,
    timeoutMs: HEALTH_TIMEOUT_MS,
  };
  const notDaemon = (what: string) =>
    report.line(
      'warn',
      `GET ${url} answered, but not as a Containarium daemon does (${what})`,
      "check that CONTAINARIUM_SERVER_URL is the daemon's base URL, e.g. http://host:8080",
    );
  try {
    const { status } = await createClient(config).health();
    if (status === 'healthy') report.line('ok', `GET ${url}: healthy`);
    else notDaemon(status ? `status ${JSON.stringify(status)}` : 'no "status"');
    return true;
  } catch (error) {
    if (error instanceof HTTPError) {
      const status = error.response.status;
      report.line(
        'fail',
        `GET ${url} answered HTTP ${status}`,
        status === 404
          ? "nothing serves /health there: set CONTAINARIUM_SERVER_URL to the daemon's base URL (e.g. http://host:8080, without /v1)"
          : describeFailure(error, ctx),
      );
      return true;
    }
    // A body that is not JSON, or JSON without a status: something answered, but not the daemon.
    if (error instanceof SyntaxError || error instanceof SchemaValidationError) {
      notDaemon(error instanceof SyntaxError ? 'not JSON' : 'no "status"');
      return true;
    }
    report.line('fail', `cannot reach ${url}`, describeFailure(error, ctx));
    return false;
  }
}

/** Check 4: GET /v1/containers with the token, through the server's own client. */
async function checkApiCall(config: Config, report: Report): Promise<void> {
  const timeoutMs = config.timeoutMs ?? API_TIMEOUT_MS;
  const client = createClient({ ...config, timeoutMs });
  const url = `${config.serverUrl}/v1/containers`;
  try {
    const { containers } = await client.listContainers();
    const n = containers.length;
    report.line('ok', `GET ${url} with the token: ${n} container${n === 1 ? '' : 's'}`);
  } catch (error) {
    const status = error instanceof HTTPError ? ` (HTTP ${error.response.status})` : '';
    report.line(
      'fail',
      `GET ${url} with the token failed${status}`,
      describeFailure(error, {
        action: 'list containers',
        serverUrl: config.serverUrl,
        token: config.token,
        timeoutMs,
      }),
    );
  }
}

// ---- A remote mcp-server http: its /health and one tool call with this shell's token ----------

/** The text of a JSON-RPC answer sent as JSON or as one SSE event. */
const rpcAnswer = (
  text: string,
): {
  result?: { isError?: boolean; content?: { text?: string }[] };
  error?: { message: string };
} => {
  const data = text.trimStart().startsWith('{')
    ? text
    : text
        .split('\n')
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5))
        .join('\n');
  return JSON.parse(data);
};

async function checkRemote(url: string, env: Env, report: Report): Promise<void> {
  let config: Config;
  try {
    // The token settings as the server reads them; the URL only names where the checks go.
    config = loadConfig({ ...env, CONTAINARIUM_SERVER_URL: url });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    report.line(
      'fail',
      error.message.split('\n')[0] ?? error.message,
      'set CONTAINARIUM_JWT_TOKEN_FILE (or CONTAINARIUM_JWT_TOKEN) to your own token in this shell',
    );
    return;
  }
  const token = config.token.get();
  report.hide(token);
  checkToken(token, config.token.origin, report);
  const health = new URL('/health', url).href;
  try {
    const answer = await ky
      .get(health, { timeout: HEALTH_TIMEOUT_MS, retry: 0 })
      .json<{ status?: string }>();
    if (answer.status !== 'ok') throw new Error(`it answered ${JSON.stringify(answer)}`);
    report.line('ok', `GET ${health}: ok`);
  } catch (error) {
    report.line(
      'fail',
      `GET ${health} failed: ${(error as Error).message}`,
      'check that `mcp-server http` runs there and that the URL (and any proxy in front) is right',
    );
    report.line('skip', 'the authenticated call is skipped while /health fails');
    return;
  }
  const call = {
    jsonrpc: '2.0',
    id: 1,
    method: 'tools/call',
    params: { name: 'list_containers', arguments: {} },
  };
  try {
    const text = await ky
      .post(url, {
        json: call,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json, text/event-stream',
        },
        timeout: config.timeoutMs ?? API_TIMEOUT_MS,
        retry: 0,
      })
      .text();
    const { result, error } = rpcAnswer(text);
    const said = result?.content?.map((block) => block.text ?? '').join(' ') ?? error?.message;
    if (!result || result.isError) throw new Error(said ?? 'no result');
    report.line('ok', `list_containers over HTTP with the token: ${said?.split('\n')[0]}`);
  } catch (error) {
    const status = error instanceof HTTPError ? ` (HTTP ${error.response.status})` : '';
    const body = error instanceof HTTPError ? await error.response.text().catch(() => '') : '';
    report.line(
      'fail',
      `list_containers over HTTP failed${status}: ${body.slice(0, 300) || (error as Error).message}`,
      status.includes('401')
        ? 'the server refused the token: generate a new one with `containarium token generate`'
        : 'see the reason above; `mcp-server doctor` on the server machine checks its daemon',
    );
  }
}

// ---- Check 5: each client's config file and its mcp-server entry -------------------------------

type ConfigTarget = {
  title: string;
  client: ClientId | undefined;
  path: string;
  /** Named by --config or --client, so a missing file or entry is a failure, not a note. */
  explicit: boolean;
  file: ReturnType<typeof readConfigFile>;
  entries: [string, ServerEntry][];
};

function configFiles(flags: Flags, io: Io): ConfigTarget[] {
  const target = (client: ClientId | undefined, path: string, explicit: boolean): ConfigTarget => {
    const file = readConfigFile(path);
    return {
      title: client ? CLIENTS[client].title : 'MCP client config',
      client,
      path,
      explicit,
      file,
      entries: file.state === 'ok' ? containariumEntries(file.servers) : [],
    };
  };
  if (flags.config) return [target(flags.client, resolve(io.cwd, flags.config), true)];
  const place = placeOf(io);
  return (flags.client ? [flags.client] : CLIENT_IDS).flatMap((client) => {
    const candidates = configCandidates(client, place);
    const found = candidates.filter((path) => existsSync(path));
    if (found.length === 0 && flags.client) return [target(client, candidates[0]!, true)];
    return found.map((path) => target(client, path, Boolean(flags.client)));
  });
}

async function checkConfigFile(
  target: ConfigTarget,
  report: Report,
  checked: Set<string>,
): Promise<void> {
  const { file, path } = target;
  const install = `mcp-server install${target.client ? ` --client ${target.client}` : ` --config '${path}'`}`;
  report.heading(`${target.title}: ${path}`);
  if (file.state === 'missing') {
    report.line('fail', `${path} does not exist`, `run \`${install}\``);
    return;
  }
  if (file.state === 'invalid') {
    report.line(
      'fail',
      `${path} ${file.problem}`,
      `the client ignores a config it cannot parse: fix it (\`jq . '${path}'\` shows where)`,
    );
    return;
  }
  if (process.platform !== 'win32' && (file.mode & 0o077) !== 0) {
    report.line('ok', 'valid JSON');
    report.line(
      'warn',
      `other users can read it (mode ${file.mode.toString(8)}), and it may hold a token`,
      `chmod 600 '${path}'`,
    );
  } else {
    report.line('ok', 'valid JSON, readable only by you');
  }
  if (target.entries.length === 0) {
    report.line(
      target.explicit ? 'fail' : 'warn',
      'no mcpServers entry runs mcp-server',
      `run \`${install}\``,
    );
    return;
  }
  for (const [name, entry] of target.entries) {
    if (entry.type === 'http' && typeof entry.url === 'string') {
      // A remote mcp-server http (install --url): its /health and a call with the entry's token.
      const header = (entry.headers as Record<string, string> | undefined)?.Authorization;
      const token = header?.match(/^Bearer\s+(\S+)$/)?.[1];
      report.line('ok', `mcpServers.${name} is a remote mcp-server http at ${entry.url}`);
      await checkRemote(entry.url, token ? { CONTAINARIUM_JWT_TOKEN: token } : {}, report);
      continue;
    }
    await checkCommand(name, entry, report);
    const env = entryEnv(entry);
    const key = settingsKey(env);
    if (checked.has(key)) {
      report.line('skip', `mcpServers.${name} has the same settings as checked above`);
      continue;
    }
    checked.add(key);
    await checkSettings(
      env,
      report,
      `Change the "env" of mcpServers.${name} in ${path}, or rerun \`${install}\`.`,
    );
  }
}

/** The entry's command: an mcp-server path that exists, is executable, and answers --version. */
async function checkCommand(name: string, entry: ServerEntry, report: Report): Promise<void> {
  const command = entryCommand(entry);
  const rerun = 'rerun `mcp-server install` from the binary the client should start';
  if (!command) {
    report.line('fail', `mcpServers.${name} has no "command"`, rerun);
    return;
  }
  if (!isAbsolute(command)) {
    report.line(
      'warn',
      `mcpServers.${name} starts "${command}" by name, and the client may not search your shell's PATH`,
      `use an absolute path; ${rerun}`,
    );
  }
  const path = isAbsolute(command) ? command : (Bun.which(command) ?? command);
  if (!existsSync(path) || !statSync(path).isFile()) {
    report.line(
      'fail',
      `mcpServers.${name} starts ${command}, which ${isAbsolute(command) ? 'does not exist' : "is not on this shell's PATH either"}`,
      `install the binary there (\`make install-mcp\`), or ${rerun}`,
    );
    return;
  }
  try {
    accessSync(path, constants.X_OK);
  } catch {
    report.line('fail', `${command} is not executable`, `chmod 755 '${path}'`);
    return;
  }
  // Entries are matched loosely (by name or CONTAINARIUM_* env), so the command may be any program:
  // only one that is evidently mcp-server is run.
  if (!isMcpServerPath(command) && !isMcpServerPath(path) && !isThisBinary(path)) {
    report.line(
      'warn',
      `mcpServers.${name} starts ${path}, which is not named mcp-server, so doctor did not run it to check it`,
      `if it is a wrapper that starts mcp-server, nothing to do; otherwise point "command" at mcp-server (${rerun})`,
    );
    return;
  }
  const version = await versionOf(path);
  if (version) report.line('ok', `mcpServers.${name} starts ${command} (${version})`);
  else {
    report.line(
      'warn',
      `mcpServers.${name} starts ${command}, which does not answer --version as mcp-server does`,
      'rebuild or reinstall it',
    );
  }
}

/** True when `path` is this very mcp-server binary (not bun running the source), e.g. under another name. */
function isThisBinary(path: string): boolean {
  const self = compiledBinary();
  if (!self) return false;
  try {
    return realpathSync(path) === realpathSync(self);
  } catch {
    return false;
  }
}

/** "mcp-server 0.1.0" from the binary itself, or undefined. Runs it with an empty environment. */
async function versionOf(path: string): Promise<string | undefined> {
  try {
    const proc = Bun.spawn([path, '--version'], {
      env: {},
      stdin: 'ignore',
      stdout: 'pipe',
      stderr: 'ignore',
      timeout: 10_000,
    });
    const out = await new Response(proc.stdout).text();
    await proc.exited;
    return /^mcp-server \S+/.exec(out.trim())?.[0];
  } catch {
    return undefined;
  }
}
