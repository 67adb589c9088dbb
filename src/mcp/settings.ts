// mcp-server's settings, each written once: config.ts parses them with these rules, and --help,
// `install`, `doctor`, the README and the MCP bundle's user_config are made from this table.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as v from 'valibot';
import { isTrue, parseBool } from '../shared/parse-bool.ts';
import { CONFIRM_POLICIES, type ConfirmPolicy } from './confirm.ts';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export type Setting = {
  /** The environment variable. */
  env: string;
  /** What kind of value it takes, as the MCP bundle asks for it. */
  type: 'string' | 'boolean';
  /** install's flag for it ("server-url"), with the word its help shows for the value (none for a boolean). */
  flag?: { name: string; value?: string; help: string };
  /** mcp-server takes its flag when it serves too (`mcp-server --read-only`), over the variable. */
  serves?: boolean;
  /** What the help and the README say happens when it is unset. */
  default?: string;
  /** The parse rule: trimmed, non-empty text to the value the config holds, or an issue naming the setting. */
  schema: v.GenericSchema<string, unknown>;
  /** One line for --help. */
  help: string;
  /** The README's words. */
  doc: string;
  /** When it is required, e.g. "yes" or "yes, unless …"; "no" when absent. */
  required?: string;
  /** The error when it is required and missing: the problem, then the fix on a second line. */
  missing?: string;
  /** A value never to show: the token. */
  secret: boolean;
  /** A file path: install writes it absolute, since clients start the server in another folder. */
  path: boolean;
  /** install writes it into the client's entry (from its flag, the shell, or the old entry). */
  install: boolean;
  /** Part of where, and as whom, the server connects: doctor checks each such set once. */
  connection: boolean;
  /** What the MCP bundle asks the user for (its user_config key and title), if anything. */
  bundle?: { key: string; title: string; description: string };
};

/** A parse rule in valibot: `parse` gets the trimmed text and throws ConfigError to refuse it. */
const rule = <T>(parse: (text: string) => T) =>
  v.pipe(
    v.string(),
    v.trim(),
    v.rawTransform<string, T>(({ dataset, addIssue, NEVER }) => {
      try {
        return parse(dataset.value);
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        addIssue({ message: error.message });
        return NEVER;
      }
    }),
  );

function parseServerUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ConfigError(
      `CONTAINARIUM_SERVER_URL is not a valid URL: "${text}"; expected something like http://localhost:8080`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(
      `CONTAINARIUM_SERVER_URL must start with http:// or https://, got "${url.protocol}"`,
    );
  }
  if (url.username || url.password || url.search || url.hash) {
    throw new ConfigError(
      'CONTAINARIUM_SERVER_URL must be a plain base URL without credentials, query or fragment, e.g. https://containarium.example.com',
    );
  }
  return url.href.replace(/\/+$/, '');
}

function readCaCert(path: string): string {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch {
    throw new ConfigError(`CONTAINARIUM_CA_CERT ${path} cannot be read; check the path`);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new ConfigError(
      `CONTAINARIUM_CA_CERT ${path} is not a PEM certificate (no "-----BEGIN CERTIFICATE-----" line)`,
    );
  }
  return pem;
}

function parseTimeout(text: string): number {
  const seconds = Number(text);
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 3600) {
    throw new ConfigError(
      `CONTAINARIUM_TIMEOUT must be a number of seconds from 1 to 3600, got "${text}"`,
    );
  }
  return seconds * 1000;
}

const text = rule((s) => s);

function parseConfirm(text: string): ConfirmPolicy {
  const policy = CONFIRM_POLICIES.find((p) => p === text.toLowerCase());
  if (!policy) {
    throw new ConfigError(
      `CONTAINARIUM_CONFIRM must be one of ${CONFIRM_POLICIES.join(', ')}, got "${text}"`,
    );
  }
  return policy;
}

/** A guard rail's switch: only Go's spellings of true and false, so a typo never turns it off. */
const strictBool = (env: string) =>
  rule((text) => {
    const value = parseBool(text);
    if (value === undefined) {
      throw new ConfigError(`${env} must be true or false, got "${text}"`);
    }
    return value;
  });

/** Comma-separated names, e.g. "containers,monitoring": each name once, in the order given. */
const names = (env: string, example: string) =>
  rule((text) => {
    const list = [...new Set(text.split(',').map((name) => name.trim()))].filter(Boolean);
    if (list.length === 0) {
      throw new ConfigError(`${env} must be a comma-separated list of names, e.g. ${example}`);
    }
    return list;
  });

/** What every guard rail shares: mcp-server and install take its flag, install copies it. */
const guard = {
  serves: true,
  secret: false,
  path: false,
  install: true,
  connection: false,
} as const;

const TABLE = [
  {
    env: 'CONTAINARIUM_SERVER_URL',
    type: 'string',
    flag: { name: 'server-url', value: 'URL', help: "the daemon's REST API" },
    schema: rule(parseServerUrl),
    help: 'REST API base URL, e.g. http://localhost:8080 (required)',
    doc: 'Base URL of the REST API, e.g. `http://localhost:8080` or `https://containarium.example.com/api`. A trailing slash is fine.',
    required: 'yes',
    missing:
      'CONTAINARIUM_SERVER_URL environment variable is required\nSet it to the Containarium REST API, e.g. http://localhost:8080',
    secret: false,
    path: false,
    install: true,
    connection: true,
    bundle: {
      key: 'server_url',
      title: 'Containarium server URL',
      description:
        'Base URL of the Containarium REST API, e.g. http://localhost:8080 or https://containarium.example.com',
    },
  },
  {
    env: 'CONTAINARIUM_JWT_TOKEN',
    type: 'string',
    flag: { name: 'token', value: 'T', help: 'the token itself' },
    schema: text,
    help: 'JWT for the API (required unless CONTAINARIUM_JWT_TOKEN_FILE is set)',
    doc: 'The JWT (it starts with `eyJ`).',
    required: 'yes, unless the next one is set',
    missing:
      'CONTAINARIUM_JWT_TOKEN environment variable is required\nSet it to a token from `containarium token generate`, or set CONTAINARIUM_JWT_TOKEN_FILE to a file holding one',
    secret: true,
    path: false,
    install: true,
    connection: true,
    bundle: {
      key: 'jwt_token',
      title: 'JWT token',
      description:
        'Token from `containarium token generate --roles admin`. Stored in the system keychain.',
    },
  },
  {
    env: 'CONTAINARIUM_JWT_TOKEN_FILE',
    type: 'string',
    flag: {
      name: 'token-file',
      value: 'F',
      help: 'a file holding the token, mode 600; the config then names the file and a rotated token needs no reinstall',
    },
    schema: text,
    help: 'file holding the JWT, re-read when it changes (mode 600)',
    doc: 'A file holding the JWT instead. It is read again whenever it changes, so a rotated token takes effect without a restart. It must be readable by you alone (`chmod 600`). Takes precedence over `CONTAINARIUM_JWT_TOKEN`.',
    secret: false,
    path: true,
    install: true,
    connection: true,
  },
  {
    env: 'CONTAINARIUM_CA_CERT',
    type: 'string',
    schema: rule(readCaCert),
    help: "PEM file of a private CA that signed the server's certificate",
    doc: "A PEM file of a private CA that signed the server's certificate.",
    secret: false,
    path: true,
    install: true,
    connection: true,
  },
  {
    env: 'CONTAINARIUM_TIMEOUT',
    type: 'string',
    schema: rule(parseTimeout),
    default: 'reads 30 s, start/stop/delete 2 min, create 10 min',
    help: 'request timeout in seconds (create waits longer by default)',
    doc: 'Seconds to wait for any request. By default reads wait 30 s, start/stop/delete 2 min, and create 10 min (a create installs packages).',
    secret: false,
    path: false,
    install: true,
    connection: true,
  },
  {
    env: 'CONTAINARIUM_DEBUG',
    type: 'boolean',
    schema: rule(isTrue),
    default: 'false',
    help: '"true" logs every MCP message to stderr, tokens redacted',
    doc: '`true` logs every MCP message to stderr, with tokens redacted.',
    secret: false,
    path: false,
    install: true,
    connection: false,
    bundle: {
      key: 'debug',
      title: 'Debug logging',
      description: "Log every MCP message to Claude's MCP log, with tokens redacted.",
    },
  },
  {
    ...guard,
    env: 'CONTAINARIUM_READ_ONLY',
    type: 'boolean',
    flag: { name: 'read-only', help: 'only tools that change nothing exist' },
    schema: strictBool('CONTAINARIUM_READ_ONLY'),
    default: 'false',
    help: '"true": only tools that change nothing exist (--read-only)',
    doc: '`true` offers only the tools that change nothing (marked `readOnlyHint`): no create, start, stop or delete. Same as `mcp-server --read-only`.',
    bundle: {
      key: 'read_only',
      title: 'Read-only',
      description: 'Offer only the tools that change nothing: list, inspect and monitor.',
    },
  },
  {
    ...guard,
    env: 'CONTAINARIUM_DISABLE_DESTRUCTIVE',
    type: 'boolean',
    flag: { name: 'disable-destructive', help: 'tools that destroy data (delete) do not exist' },
    schema: strictBool('CONTAINARIUM_DISABLE_DESTRUCTIVE'),
    default: 'false',
    help: '"true": tools that destroy data (delete) do not exist (--disable-destructive)',
    doc: '`true` removes the tools that destroy data (marked `destructiveHint`), such as `delete_container`. Same as `mcp-server --disable-destructive`.',
    bundle: {
      key: 'disable_destructive',
      title: 'Disable destructive tools',
      description: 'Remove the tools that destroy data, such as deleting a container.',
    },
  },
  {
    ...guard,
    env: 'CONTAINARIUM_TOOLSETS',
    type: 'string',
    flag: {
      name: 'toolsets',
      value: 'NAMES',
      help: 'only the tools of these groups, e.g. containers,monitoring',
    },
    schema: names('CONTAINARIUM_TOOLSETS', 'containers,monitoring'),
    help: 'only the tools of these groups, e.g. containers,monitoring (--toolsets)',
    doc: 'Comma-separated groups of tools to offer, e.g. `containers,monitoring`; the others do not exist. The groups are listed under [Guard rails](#guard-rails). Same as `mcp-server --toolsets NAMES`.',
    bundle: {
      key: 'toolsets',
      title: 'Toolsets',
      description:
        'Comma-separated groups of tools to offer (containers, monitoring, images, keys, resources, templates, bulk, exec, logs, snapshots); empty for all.',
    },
  },
  {
    ...guard,
    env: 'CONTAINARIUM_TOOLS',
    type: 'string',
    flag: { name: 'tools', value: 'NAMES', help: 'only these tools (plus those of --toolsets)' },
    schema: names('CONTAINARIUM_TOOLS', 'list_containers,get_metrics'),
    help: 'only these tools, plus those of CONTAINARIUM_TOOLSETS (--tools)',
    doc: 'Comma-separated tool names to offer, e.g. `list_containers,get_metrics`, in addition to those of `CONTAINARIUM_TOOLSETS`; the others do not exist. Same as `mcp-server --tools NAMES`.',
    bundle: {
      key: 'tools',
      title: 'Tools',
      description:
        'Comma-separated tool names to offer, besides those of the toolsets; empty for all.',
    },
  },
  {
    ...guard,
    env: 'CONTAINARIUM_EXCLUDE_TOOLS',
    type: 'string',
    flag: { name: 'exclude-tools', value: 'NAMES', help: 'these tools do not exist' },
    schema: names('CONTAINARIUM_EXCLUDE_TOOLS', 'delete_container'),
    help: 'these tools do not exist, e.g. delete_container (--exclude-tools)',
    doc: 'Comma-separated tool names that do not exist, whatever the other settings say, e.g. `delete_container`. Same as `mcp-server --exclude-tools NAMES`.',
    bundle: {
      key: 'exclude_tools',
      title: 'Excluded tools',
      description: 'Comma-separated tool names to leave out, e.g. delete_container.',
    },
  },
  {
    ...guard,
    env: 'CONTAINARIUM_CONFIRM',
    type: 'string',
    flag: {
      name: 'confirm',
      value: 'POLICY',
      help: 'auto, always or never: ask the user before a destructive tool acts',
    },
    schema: rule(parseConfirm),
    default: 'auto',
    help: 'ask the user before destroying: auto, always or never (--confirm)',
    doc: "Whether a destructive tool such as `delete_container` first asks the user to confirm, through MCP elicitation (see [Confirmations](#confirmations)). `auto` asks when the client can and otherwise relies on the client's own approval prompt; `always` refuses when the client cannot ask; `never` does not ask. Same as `mcp-server --confirm POLICY`.",
    bundle: {
      key: 'confirm',
      title: 'Confirm destruction',
      description:
        'Ask before deleting: auto (when the client can), always (refuse when it cannot), or never.',
    },
  },
] as const satisfies readonly Setting[];

export type SettingName = (typeof TABLE)[number]['env'];
/** The table, in the order --help and the README list it. */
export const SETTINGS: readonly (Setting & { env: SettingName })[] = TABLE;
export const settingOf = (name: SettingName): Setting => SETTINGS.find((s) => s.env === name)!;

/** The table as "Environment:" lines for `mcp-server --help`. */
export function settingsHelp(): string {
  const width = Math.max(...SETTINGS.map((s) => s.env.length)) + 2;
  return SETTINGS.map((s) => `  ${s.env.padEnd(width)}${s.help}\n`).join('');
}

/** Words wrapped to `width` columns, continuation lines indented by `indent`. */
function wrap(text: string, indent: number, width = 100): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && indent + line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  lines.push(line);
  return lines.join(`\n${' '.repeat(indent)}`);
}

/** "--toolsets NAMES", or "--read-only" for a flag without a value. */
export const flagUsage = (flag: { name: string; value?: string }): string =>
  flag.value ? `--${flag.name} ${flag.value}` : `--${flag.name}`;

/** install's flag lines, then the settings it copies without a flag, from the table. */
export function installSettingsHelp(): string {
  const flagged = SETTINGS.filter((s) => s.flag);
  const lines = flagged.map((s) => {
    const flag = s.flag!;
    const usage = flagUsage(flag);
    // A usage too wide for its column gets a line of its own.
    const head = usage.length < 20 ? usage.padEnd(20) : `${usage}\n${' '.repeat(22)}`;
    return `  ${head}${wrap(`${flag.help} (default: $${s.env})`, 22)}\n`;
  });
  const copied = SETTINGS.filter((s) => s.install && !s.flag);
  const names = copied.map((s) => s.env);
  const list = names.length > 1 ? `${names.slice(0, -1).join(', ')} and ${names.at(-1)}` : names[0];
  return `${lines.join('')}${list ? `\n${wrap(`${list} are copied when set.`, 0)}\n` : ''}`;
}

/** The settings mcp-server takes as flags when it serves. */
const SERVING = SETTINGS.flatMap((s) => (s.serves && s.flag ? [{ ...s, flag: s.flag }] : []));

/** The serving flags as lines for `mcp-server --help`. */
export function servingFlagsHelp(): string {
  return SERVING.map((s) => {
    return `  ${flagUsage(s.flag).padEnd(24)}${s.flag.help} (or ${s.env})\n`;
  }).join('');
}

/**
 * The environment named by mcp-server's serving flags (`--read-only` is CONTAINARIUM_READ_ONLY=true):
 * laid over the real environment, so a flag wins over its variable. Throws ConfigError naming an
 * unknown or malformed flag.
 */
export function servingFlagsEnv(argv: string[]): Record<string, string> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: Object.fromEntries(
        SERVING.map((s) => [
          s.flag.name,
          { type: s.type === 'boolean' ? 'boolean' : 'string' } as const,
        ]),
      ),
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
  const env: Record<string, string> = {};
  for (const s of SERVING) {
    const value = values[s.flag.name];
    if (value === true) env[s.env] = 'true';
    else if (typeof value === 'string') {
      if (value.trim() === '') throw new ConfigError(`--${s.flag.name} needs a value`);
      env[s.env] = value;
    }
  }
  return env;
}
