// The one module that reads mcp-server's environment: CONTAINARIUM_* variables, parsed with valibot.
import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import * as v from 'valibot';
import { readClaims } from '../shared/jwt.ts';
import { privateFileProblem } from '../shared/private-file.ts';
import type { ConfirmPolicy } from './confirm.ts';
import { type Guards, unknownNames } from './guards.ts';
import { ConfigError, SETTINGS, type SettingName, settingOf } from './settings.ts';

export { ConfigError };

/** Lines joined as sentences: each ends with a full stop unless it ends with one or a ")". */
export const asSentences = (lines: readonly string[]): string =>
  lines
    .filter(Boolean)
    .map((s) => (/[.)]$/.test(s) ? s : `${s}.`))
    .join(' ');

/** Where the token comes from: read on every request, so a rotated token file takes effect at once. */
export interface TokenSource {
  /** The current token; throws ConfigError when it can no longer be read. */
  get(): string;
  /** Expiry of the current token, when it carries one. */
  expiresAt(): Date | undefined;
  readonly origin:
    | 'CONTAINARIUM_JWT_TOKEN'
    | 'CONTAINARIUM_JWT_TOKEN_FILE'
    | 'the Authorization header of your MCP client';
}

/** A caller's own token (HTTP mode), from the Authorization header of its request. */
export const callerToken = (token: string, expiry: Date | undefined): TokenSource => ({
  origin: 'the Authorization header of your MCP client',
  get: () => token,
  expiresAt: () => expiry,
});

export type Config = {
  serverUrl: string;
  token: TokenSource;
  debug: boolean;
  /** PEM text of a private CA, from CONTAINARIUM_CA_CERT. */
  caCert?: string;
  /** Overrides every request timeout, from CONTAINARIUM_TIMEOUT (seconds). */
  timeoutMs?: number;
  /** The guard rails: which tools exist. None when absent. */
  guards?: Guards;
  /** Whether destructive tools ask the user first, from CONTAINARIUM_CONFIRM; 'auto' when absent. */
  confirm?: ConfirmPolicy;
};

type Env = Record<string, string | undefined>;

/** Every setting of the table, as the environment holds it: text or nothing. */
const EnvSchema = v.object(
  Object.fromEntries(SETTINGS.map((s) => [s.env, v.optional(v.string())])) as Record<
    SettingName,
    v.OptionalSchema<v.StringSchema<undefined>, undefined>
  >,
);

const nonEmpty = (value: string | undefined) => (value?.trim() ? value.trim() : undefined);

/** Reads and checks the environment; throws ConfigError with a message fit for stderr. */
export function loadConfig(
  env: Env = process.env,
  options: { callerTokens?: boolean } = {},
): Config {
  const vars = currentSettings(env);
  /** The setting parsed by its rule in the table; undefined when unset. */
  const value = <T>(name: SettingName): T | undefined => {
    const text = vars[name];
    if (text === undefined) return undefined;
    const result = v.safeParse(settingOf(name).schema, text);
    if (!result.success) throw new ConfigError(result.issues[0].message);
    return result.output as T;
  };
  const missing = (name: SettingName) => new ConfigError(settingOf(name).missing ?? name);
  const serverUrl = value<string>('CONTAINARIUM_SERVER_URL');
  if (!serverUrl) throw missing('CONTAINARIUM_SERVER_URL');
  // The file wins over the token itself, which is then not even read.
  const tokenFile = options.callerTokens ? undefined : value<string>('CONTAINARIUM_JWT_TOKEN_FILE');
  const tokenText =
    tokenFile || options.callerTokens ? undefined : value<string>('CONTAINARIUM_JWT_TOKEN');
  let token: TokenSource;
  // HTTP mode: each caller brings its own token; one from the environment is never used for them.
  if (options.callerTokens) token = NO_TOKEN;
  else if (tokenFile) token = fileToken(tokenFile);
  else if (tokenText) token = staticToken(tokenText);
  else throw missing('CONTAINARIUM_JWT_TOKEN');
  const config: Config = {
    serverUrl,
    token,
    debug: value<boolean>('CONTAINARIUM_DEBUG') ?? false,
  };
  const caCert = value<string>('CONTAINARIUM_CA_CERT');
  if (caCert) config.caCert = caCert;
  const timeoutMs = value<number>('CONTAINARIUM_TIMEOUT');
  if (timeoutMs) config.timeoutMs = timeoutMs;
  const guards: Guards = {
    readOnly: value<boolean>('CONTAINARIUM_READ_ONLY') ?? false,
    disableDestructive: value<boolean>('CONTAINARIUM_DISABLE_DESTRUCTIVE') ?? false,
  };
  const toolsets = value<string[]>('CONTAINARIUM_TOOLSETS');
  if (toolsets) guards.toolsets = toolsets;
  const tools = value<string[]>('CONTAINARIUM_TOOLS');
  if (tools) guards.tools = tools;
  const excludeTools = value<string[]>('CONTAINARIUM_EXCLUDE_TOOLS');
  if (excludeTools) guards.excludeTools = excludeTools;
  if (toolsets || tools || excludeTools) {
    // Loaded only when a name needs checking: the tools are not needed to start serving.
    const { TOOLS } = require('./tools/index.ts') as typeof import('./tools/index.ts');
    const problem = unknownNames(guards, TOOLS);
    if (problem) throw new ConfigError(problem);
  }
  config.guards = guards;
  config.confirm = value<ConfirmPolicy>('CONTAINARIUM_CONFIRM') ?? 'auto';
  return config;
}

export type { SettingName };
export type Settings = Partial<Record<SettingName, string>>;

/** The CONTAINARIUM_* settings that are set (trimmed, empty ones left out): `install`'s defaults. */
export function currentSettings(env: Env = process.env): Settings {
  const vars = v.parse(EnvSchema, env);
  const settings: Settings = {};
  for (const [name, value] of Object.entries(vars) as [SettingName, string | undefined][]) {
    const text = nonEmpty(value);
    if (text) settings[name] = text;
  }
  return settings;
}

export type UserDirs = {
  home: string;
  /** %APPDATA% on Windows. */
  appData: string | undefined;
  /** $XDG_CONFIG_HOME on Linux. */
  configHome: string | undefined;
};

/** The folders MCP clients keep their config under: HOME (USERPROFILE on Windows), APPDATA, XDG_CONFIG_HOME. */
export function userDirs(env: Env = process.env): UserDirs {
  return {
    home: nonEmpty(env.HOME) ?? nonEmpty(env.USERPROFILE) ?? homedir(),
    appData: nonEmpty(env.APPDATA),
    configHome: nonEmpty(env.XDG_CONFIG_HOME),
  };
}

/** The secrets to redact from anything shown: the current token, unless it cannot be read. */
export function secretsOf(config: Config | undefined): string[] {
  try {
    return config ? [config.token.get()] : [];
  } catch {
    return [];
  }
}

/** Problems that do not stop the server: an expired token, a token sent in clear text. */
export function configWarnings(config: Config): string[] {
  const warnings: string[] = [];
  let expiry: Date | undefined;
  try {
    expiry = config.token.expiresAt();
  } catch {
    // An unreadable token file is reported by the call that needs it.
  }
  if (expiry && expiry.getTime() <= Date.now()) {
    warnings.push(
      `the API token from ${config.token.origin} expired at ${expiry.toISOString()}; ` +
        'every call will fail until you generate a new one with `containarium token generate`',
    );
  }
  const url = new URL(config.serverUrl);
  if (url.protocol === 'http:' && !isLoopback(url.hostname)) {
    warnings.push(
      `${url.origin} is plain http, so the API token travels in clear text; use https:// outside a trusted network`,
    );
  }
  return warnings;
}

export function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Checks that text is shaped like a JWT and returns its expiry, if any. */
function inspectToken(token: string, origin: string): Date | undefined {
  const claims = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token)
    ? readClaims(token)
    : undefined;
  if (!claims) {
    throw new ConfigError(
      `${origin} is not a JWT: expected three base64url parts separated by dots, the middle one JSON claims (a token starts with "eyJ"); generate one with \`containarium token generate\``,
    );
  }
  return typeof claims.exp === 'number' ? new Date(claims.exp * 1000) : undefined;
}

/** The token of a server whose callers bring their own: there is none to use. */
const NO_TOKEN: TokenSource = {
  origin: 'the Authorization header of your MCP client',
  get: () => {
    throw new ConfigError("in HTTP mode every request carries its caller's own token");
  },
  expiresAt: () => undefined,
};

function staticToken(token: string): TokenSource {
  const expiry = inspectToken(token, 'CONTAINARIUM_JWT_TOKEN');
  return { origin: 'CONTAINARIUM_JWT_TOKEN', get: () => token, expiresAt: () => expiry };
}

function fileToken(path: string): TokenSource {
  let cached: { stamp: string; token: string; expiry: Date | undefined } | undefined;
  const read = () => {
    let stat: ReturnType<typeof statSync>;
    try {
      stat = statSync(path);
    } catch {
      throw new ConfigError(`CONTAINARIUM_JWT_TOKEN_FILE ${path} cannot be read; check the path`);
    }
    const problem = privateFileProblem(path, stat.mode);
    if (problem) throw new ConfigError(`CONTAINARIUM_JWT_TOKEN_FILE ${path} ${problem}`);
    const stamp = `${stat.mtimeMs}:${stat.size}:${stat.ino}`;
    if (cached?.stamp !== stamp) {
      const token = readFileSync(path, 'utf8').trim();
      cached = { stamp, token, expiry: inspectToken(token, `CONTAINARIUM_JWT_TOKEN_FILE ${path}`) };
    }
    return cached;
  };
  read();
  return {
    origin: 'CONTAINARIUM_JWT_TOKEN_FILE',
    get: () => read().token,
    expiresAt: () => read().expiry,
  };
}
