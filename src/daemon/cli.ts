// The containarium command line: flags (--flag value or --flag=value) and the environment, read once
// into a checked Command. Nothing here starts servers or prints; main.ts does.
import { readFileSync, statSync } from 'node:fs';
import { CIDR_FORM, type Cidr, formatCidr, parseCidr } from '../shared/address.ts';
import { DURATION_FORM, parseDuration } from '../shared/duration.ts';
import { IMAGE_FORM, isValidImage } from '../shared/image.ts';
import { MAX_LIFETIME_MS, MAX_LIFETIME_TEXT, secretProblem } from '../shared/jwt.ts';
import { isTrue } from '../shared/parse-bool.ts';
import { privateFileProblem } from '../shared/private-file.ts';
import { isValidUsername, USERNAME_FORM } from '../shared/username.ts';
import { VERSION } from '../shared/version.ts';
import { CliError, type Flag, type Flags, flagsHelp, flagValue, parseFlags } from './flags.ts';
import type { IncusClientOptions } from './incus.ts';
import { DEFAULT_QUOTA, DEFAULT_QUOTAS, parseQuotaFile, type QuotaTable } from './quotas.ts';
import { DEFAULTS } from './requests.ts';
import { retype, type SecretGiven, secretRecipe } from './secret-hint.ts';
import { isValidSshJump, SSH_JUMP_FORM } from './ssh-access.ts';
import { builtinTemplates, parseTemplatesText, type Templates } from './templates.ts';

export { CliError };

export type TokenCommand = {
  kind: 'token';
  username: string;
  roles: string[];
  lifetimeMs: number;
  secret: string;
};

/** A local socket, or remote Incus over HTTPS with PEM text read from the given files. */
export type IncusTarget = IncusClientOptions;

export type DaemonCommand = {
  kind: 'daemon';
  hostname: string;
  port: number;
  secret: string;
  /** Where the secret came from, for the startup log. */
  secretSource: string;
  incus: IncusTarget;
  storagePool: string;
  /** The image of a create that names none. */
  defaultImage: string;
  corsOrigins: string[];
  /** Host that create's SSH command jumps through (`ssh -J HOST`); undefined for none. */
  sshJump: string | undefined;
  /** Reverse proxies whose X-Forwarded-For is believed. */
  trustedProxies: Cidr[];
  /** Which containers on the Incus are this daemon's (--daemon-id). */
  daemonId: string;
  /** How long a stop signal waits for creates in flight before the daemon exits anyway. */
  shutdownGraceMs: number;
  /** The audit log's file, "-" for stderr; undefined for none. main.ts opens it. */
  auditLog: string | undefined;
  /** Per-user quotas: --quota-file's, else the defaults. */
  quotas: QuotaTable;
  /** Where the quotas came from, for the startup log. */
  quotaSource: string;
  /** The create templates: the built-ins, and those of --templates FILE. */
  templates: Templates;
  /** How old a cached provisioned image may get before it is rebuilt; 0 turns the cache off. */
  imageCacheMaxAgeMs: number;
  /** Non-fatal notes for stderr (e.g. a secret given twice). */
  warnings: string[];
};

/** `containarium image-cache list|clear`: one daemon id's cached images, read or removed in Incus. */
export type ImageCacheCommand = {
  kind: 'image-cache';
  action: 'list' | 'clear';
  incus: IncusTarget;
  /** Whose entries (--daemon-id, as the daemon's): only those are listed or cleared. */
  daemonId: string;
};

export type Command =
  | { kind: 'help'; text: string }
  | { kind: 'version'; text: string }
  | TokenCommand
  | DaemonCommand
  | ImageCacheCommand;

type Env = Record<string, string | undefined>;

export const MAIN_HELP = `containarium ${VERSION}: manage per-user LXC containers on Incus over a REST API.

Usage:
  containarium daemon --rest [flags]     serve the REST API (see containarium daemon --help)
  containarium token generate [flags]    mint an API token (see containarium token generate --help)
  containarium image-cache list|clear    show or remove the daemon's cached images (see --help)
  containarium --version | --help
`;

const SECRET_ENV = 'CONTAINARIUM_JWT_SECRET';
const AUDIT_ENV = 'CONTAINARIUM_AUDIT_LOG';

const DAEMON_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const DAEMON_ID_FORM =
  'a name of 1 to 63 letters, digits, ".", "_" or "-", starting with a letter or digit, like "prod" or "ci-7"';

/** The daemon's flags: parsing, defaults and --help all come from here. */
export const DAEMON_FLAGS: readonly Flag[] = [
  { name: 'rest', kind: 'boolean', help: 'accepted for compatibility: REST is the only mode' },
  {
    name: 'http-port',
    aliases: ['port'],
    kind: 'string',
    value: 'N',
    default: '8080',
    help: 'REST port (0 picks a free one). Synonyms: this daemon has no gRPC listener, so upstream\'s "--port 8080" example means the REST port',
  },
  {
    name: 'address',
    kind: 'string',
    value: 'ADDR',
    default: '0.0.0.0',
    help: 'address the REST API listens on',
  },
  {
    name: 'jwt-secret',
    kind: 'string',
    value: 'S',
    env: SECRET_ENV,
    help: 'token signing secret, at least 32 bytes',
  },
  {
    name: 'jwt-secret-file',
    kind: 'string',
    value: 'F',
    help: `file holding the secret (surrounding whitespace ignored), readable by its owner alone (chmod 600). Precedence: ${SECRET_ENV}, then --jwt-secret-file, then --jwt-secret`,
  },
  {
    name: 'incus-socket',
    kind: 'string',
    value: 'PATH',
    help: "Incus unix socket (default /var/lib/incus/unix.socket, else LXD's)",
  },
  {
    name: 'incus-url',
    kind: 'string',
    value: 'URL',
    help: 'remote Incus over HTTPS instead, with --incus-cert and --incus-key (and --incus-ca)',
  },
  {
    name: 'incus-cert',
    kind: 'string',
    value: 'F',
    help: 'client certificate for --incus-url (PEM file)',
  },
  { name: 'incus-key', kind: 'string', value: 'F', help: 'its private key (PEM file)' },
  { name: 'incus-ca', kind: 'string', value: 'F', help: "the remote Incus server's CA (PEM file)" },
  {
    name: 'storage-pool',
    kind: 'string',
    value: 'NAME',
    default: 'default',
    help: 'pool for root disks',
  },
  {
    name: 'default-image',
    kind: 'string',
    value: 'ALIAS',
    default: DEFAULTS.image,
    help: 'image of a create that names none, e.g. a local alias like debian/12 on a host without internet',
  },
  {
    name: 'cors-origin',
    kind: 'list',
    value: 'ORIGIN',
    help: 'browser origin allowed to call the API (repeat or comma-separate; default none)',
  },
  {
    name: 'ssh-jump',
    kind: 'string',
    value: 'HOST',
    help: 'create answers "ssh -J HOST user@ADDRESS" ([USER@]HOST[:PORT]): container addresses are on this host\'s private bridge; without it the command works only on this host, and the create message says so',
  },
  {
    name: 'trusted-proxy',
    kind: 'list',
    value: 'CIDR',
    help: 'reverse proxy in front of the daemon, like 10.0.0.5 or 10.0.0.0/24 (repeat or comma-separate; default none): for connections from it, the client is the right-most X-Forwarded-For address that is not a trusted proxy',
  },
  {
    name: 'daemon-id',
    kind: 'string',
    value: 'NAME',
    default: 'default',
    help: 'this daemon\'s name on a shared Incus, stored on every container and cached image it creates: it lists, changes and resumes only containers with its id (ones made before ids existed count as "default") and uses only its own cached images. Keep it across restarts',
  },
  {
    name: 'templates',
    kind: 'string',
    value: 'FILE',
    help: 'create templates, a JSON or YAML file: {"templates": {"NAME": {image, cpu, memory, disk, docker, packages, labels}}}; a create naming one gets its values for what it leaves out. Built in: small, medium and large (1, 2 and 4 CPUs), which the file may replace',
  },
  {
    name: 'shutdown-grace',
    kind: 'string',
    value: 'D',
    default: '60s',
    help: 'on SIGTERM or SIGINT, how long to wait for creates still running, as a Go duration; what is left unfinished resumes at the next start',
  },
  {
    name: 'image-cache-max-age',
    kind: 'string',
    value: 'D',
    default: '7d',
    help: 'creates start from a cached provisioned image (built after the first create from each image and package set); an entry older than this is rebuilt from its source image, so the packages in it are at most this old. A Go duration or whole days like 7d; 0 turns the cache off',
  },
  {
    name: 'audit-log',
    kind: 'string',
    value: 'FILE',
    env: AUDIT_ENV,
    help: 'append one JSON line per changing request (POST, PUT, PATCH, DELETE) and per refused login to FILE, created readable by its owner alone ("-" for stderr; default none)',
  },
  {
    name: 'quota-file',
    kind: 'string',
    value: 'FILE',
    help: `per-user quotas for callers without the admin role, JSON or YAML: {"default": {...}, "users": {"alice": {...}}}, each with containers, cpus, memory, disk (default for everyone: ${DEFAULT_QUOTA.containers} containers, ${DEFAULT_QUOTA.cpus} CPUs, ${DEFAULT_QUOTA.memory} memory, ${DEFAULT_QUOTA.disk} disk)`,
  },
];

/** `containarium token generate`'s flags. */
export const TOKEN_FLAGS: readonly Flag[] = [
  { name: 'username', kind: 'string', value: 'U', help: `who the token is for: ${USERNAME_FORM}` },
  {
    name: 'roles',
    kind: 'string',
    value: 'R[,R...]',
    default: 'user',
    help: 'comma-separated roles; "admin" may act on every container, any other role only on the container of its own username',
  },
  {
    name: 'expiry',
    kind: 'string',
    value: 'D',
    default: '24h',
    help: 'lifetime as a Go duration, like 8760h, 24h, 1h30m or 90s, at most 87600h',
  },
  {
    name: 'secret',
    kind: 'string',
    value: 'S',
    help: "the daemon's signing secret, at least 32 bytes",
  },
  {
    name: 'secret-file',
    kind: 'string',
    value: 'F',
    help: 'file holding the secret (surrounding whitespace ignored), readable by its owner alone (chmod 600)',
  },
];

/** `containarium image-cache`'s flags: where Incus is and whose cache, as the daemon's. */
export const IMAGE_CACHE_FLAGS: readonly Flag[] = DAEMON_FLAGS.filter(
  (flag) => flag.name.startsWith('incus-') || flag.name === 'daemon-id',
);

export const IMAGE_CACHE_HELP = `Usage: containarium image-cache list|clear [--daemon-id NAME] [flags]

The cache of provisioned images of the daemon with this --daemon-id, in Incus: images aliased
containarium-cache/<key>.
  list    prints each of its cached images: alias, source image, packages, build time, size
  clear   deletes its cached images (and its unfinished build instances); its creates after it
          provision from the source image again and rebuild the cache
Only images that daemon marked as its cache are read or removed; the cache entries of other
daemons (other ids) on a shared Incus are never touched.

${flagsHelp(IMAGE_CACHE_FLAGS)}`;

export const DAEMON_HELP = `Usage: containarium daemon --rest [flags]

Serves the Containarium REST API (v0.3 routes plus /health) on top of Incus.

${flagsHelp(DAEMON_FLAGS)}
Make a secret with: openssl rand -base64 32
`;

export const TOKEN_HELP = `Usage: containarium token generate --username U [--roles admin] [--expiry 24h] (--secret S | --secret-file F)

Prints an HS256 API token on stdout (only the token, so TOKEN=$(containarium token generate ...) works);
its expiry goes to stderr. The token works with this daemon and with upstream v0.3 and current daemons.

${flagsHelp(TOKEN_FLAGS)}`;

const isHelp = (arg: string) => arg === '--help' || arg === '-h' || arg === 'help';

const one = (flags: Flags, name: string): string | undefined => flags.get(name)?.at(-1);

/** Every value of a repeatable flag, comma-separated ones split, blanks dropped. */
const listFlag = (flags: Flags, name: string): string[] =>
  (flags.get(name) ?? [])
    .flatMap((value) => value.split(','))
    .map((value) => value.trim())
    .filter((value) => value !== '');

/** Reads a file named by a flag; the content is trimmed (a secret file usually ends in a newline). */
function readFlagFile(path: string, flag: string, trim: boolean, ifMissing?: string): string {
  try {
    const text = readFileSync(path, 'utf8');
    return trim ? text.trim() : text;
  } catch (error) {
    const code = (error as { code?: string }).code ?? 'read error';
    const hint = code === 'ENOENT' && ifMissing ? `. ${ifMissing}` : '';
    throw new CliError(
      `cannot read ${flag} ${path} (${code}); check the path and its permissions${hint}`,
    );
  }
}

/** Reads a secret file, refusing one that group or others can read (it could mint any token). */
function readSecretFile(path: string, flag: string, ifMissing: string): string {
  const secret = readFlagFile(path, flag, true, ifMissing);
  const problem = privateFileProblem(path, statSync(path).mode);
  if (problem) throw new CliError(`${flag} ${path} ${problem}`);
  return secret;
}

/** Refuses a secret too short to sign with, showing the commands that work instead. */
function checkSecret(secret: string, source: string, works: string): string {
  const problem = secretProblem(secret);
  if (problem) throw new CliError(`${source}: ${problem}. ${works}`);
  return secret;
}

/** Turns argv (without the runtime and script) and the environment into a checked Command. */
export function parseCommandLine(argv: readonly string[], env: Env = {}): Command {
  const [first, ...rest] = argv;
  if (first === undefined || isHelp(first)) return { kind: 'help', text: MAIN_HELP };
  if (first === '--version' || first === '-v' || first === 'version') {
    return { kind: 'version', text: `containarium ${VERSION}\n` };
  }
  if (first === 'daemon') {
    if (rest.some(isHelp)) return { kind: 'help', text: DAEMON_HELP };
    return parseDaemon(parseFlags(rest, DAEMON_FLAGS, 'containarium daemon'), env);
  }
  if (first === 'token') {
    const [sub, ...flags] = rest;
    if (sub === undefined || isHelp(sub) || (sub === 'generate' && flags.some(isHelp))) {
      return { kind: 'help', text: TOKEN_HELP };
    }
    if (sub !== 'generate') {
      throw new CliError(`unknown command "token ${sub}"; only "token generate" exists`, 2);
    }
    return parseToken(parseFlags(flags, TOKEN_FLAGS, 'containarium token generate'));
  }
  if (first === 'image-cache') {
    const [action, ...flags] = rest;
    if (action === undefined || isHelp(action) || flags.some(isHelp)) {
      return { kind: 'help', text: IMAGE_CACHE_HELP };
    }
    if (action !== 'list' && action !== 'clear') {
      throw new CliError(
        `unknown command "image-cache ${action}"; expected "image-cache list" or "image-cache clear"`,
        2,
      );
    }
    const parsed = parseFlags(flags, IMAGE_CACHE_FLAGS, `containarium image-cache ${action}`);
    return {
      kind: 'image-cache',
      action,
      incus: parseIncus(parsed),
      daemonId: parseDaemonId(parsed),
    };
  }
  throw new CliError(`unknown command "${first}"\n\n${MAIN_HELP}`, 2);
}

function parseToken(flags: Flags): TokenCommand {
  const username = one(flags, 'username');
  if (!username) throw new CliError(`--username is required: ${USERNAME_FORM}`, 2);
  if (!isValidUsername(username)) {
    throw new CliError(`invalid --username "${username}": expected ${USERNAME_FORM}`);
  }

  const roles = (flagValue(flags, TOKEN_FLAGS, 'roles') ?? '')
    .split(',')
    .map((role) => role.trim())
    .filter((role) => role !== '');
  if (roles.length === 0)
    throw new CliError('--roles needs at least one role, like "admin" or "user"');
  const badRole = roles.find((role) => !/^[A-Za-z0-9_.:-]{1,64}$/.test(role));
  if (badRole !== undefined) {
    throw new CliError(
      `invalid role "${badRole}" in --roles: expected letters, digits, ".", "_", ":" or "-" (like "admin")`,
    );
  }

  const expiry = flagValue(flags, TOKEN_FLAGS, 'expiry') ?? '';
  const lifetimeMs = parseDuration(expiry);
  if (lifetimeMs === undefined) {
    throw new CliError(`invalid --expiry "${expiry}": expected ${DURATION_FORM}`);
  }
  if (lifetimeMs < 1000) {
    throw new CliError(
      `invalid --expiry "${expiry}": tokens must expire, at least 1s from now (never-expiring tokens are refused); try 24h or 8760h`,
    );
  }
  if (lifetimeMs > MAX_LIFETIME_MS) {
    throw new CliError(
      `invalid --expiry "${expiry}": at most ${MAX_LIFETIME_TEXT}, since the daemon refuses tokens that live longer; try 8760h`,
    );
  }

  const secretFlag = one(flags, 'secret');
  const secretFile = one(flags, 'secret-file');
  if (secretFlag !== undefined && secretFile !== undefined) {
    throw new CliError('give either --secret or --secret-file, not both', 2);
  }
  const works = (given: SecretGiven) =>
    secretRecipe(given, 'token', retype('containarium token generate', flags, []));
  let secret: string;
  if (secretFile !== undefined) {
    const fix = works({ via: 'file', path: secretFile });
    secret = checkSecret(
      readSecretFile(secretFile, '--secret-file', fix),
      `--secret-file ${secretFile}`,
      fix,
    );
  } else if (secretFlag !== undefined) {
    secret = checkSecret(secretFlag, '--secret', works({ via: 'flag' }));
  } else {
    throw new CliError(
      '--secret or --secret-file is required: the same secret the daemon verifies tokens with',
      2,
    );
  }
  return { kind: 'token', username, roles, lifetimeMs, secret };
}

function parsePort(text: string, flag: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) {
    throw new CliError(`invalid ${flag} "${text}": expected a port number from 0 to 65535`);
  }
  return Number(text);
}

function parseDaemon(flags: Flags, env: Env): DaemonCommand {
  const warnings: string[] = [];

  const rest = one(flags, 'rest');
  if (rest !== undefined && !isTrue(rest)) {
    throw new CliError(`--rest=${rest} is not possible: REST is this daemon's only API`);
  }

  // --port and --http-port are one setting here: upstream's --port was gRPC, which we do not serve.
  const httpPort = one(flags, 'http-port');
  const port = one(flags, 'port');
  if (
    httpPort !== undefined &&
    port !== undefined &&
    parsePort(httpPort, '--http-port') !== parsePort(port, '--port')
  ) {
    throw new CliError(
      `--port ${port} and --http-port ${httpPort} disagree; they are the same setting here (the REST port), give one`,
    );
  }
  const portNumber =
    httpPort !== undefined
      ? parsePort(httpPort, '--http-port')
      : parsePort(port ?? flagValue(flags, DAEMON_FLAGS, 'http-port') ?? '', '--port');

  const hostname = flagValue(flags, DAEMON_FLAGS, 'address') ?? '';
  if (hostname.trim() === '')
    throw new CliError('--address needs a value, like 0.0.0.0 or 127.0.0.1');

  // Secret precedence as upstream: environment, then file, then flag.
  const fromEnv = env[SECRET_ENV];
  const file = one(flags, 'jwt-secret-file');
  const flag = one(flags, 'jwt-secret');
  const given = [
    fromEnv !== undefined && fromEnv !== '' ? SECRET_ENV : undefined,
    file !== undefined ? '--jwt-secret-file' : undefined,
    flag !== undefined ? '--jwt-secret' : undefined,
  ].filter((source): source is string => source !== undefined);
  const works = (given: SecretGiven) =>
    secretRecipe(given, 'daemon', retype('containarium daemon', flags, ['rest']));
  let secret: string;
  let secretSource: string;
  let secretGiven: SecretGiven;
  if (fromEnv !== undefined && fromEnv !== '') {
    secret = fromEnv;
    secretSource = SECRET_ENV;
    secretGiven = { via: 'env' };
  } else if (file !== undefined) {
    secretGiven = { via: 'file', path: file };
    secret = readSecretFile(file, '--jwt-secret-file', works(secretGiven));
    secretSource = `--jwt-secret-file ${file}`;
  } else if (flag !== undefined) {
    secret = flag;
    secretSource = '--jwt-secret';
    secretGiven = { via: 'flag' };
  } else {
    throw new CliError(
      'a JWT secret is required: set CONTAINARIUM_JWT_SECRET, or pass --jwt-secret-file F or --jwt-secret S ' +
        '(at least 32 bytes; make one with: openssl rand -base64 32)',
    );
  }
  if (given.length > 1) {
    warnings.push(
      `${given.join(' and ')} are all set; using ${given[0]} (ignoring ${given.slice(1).join(', ')})`,
    );
  }
  checkSecret(secret, secretSource, works(secretGiven));

  const incus = parseIncus(flags);

  const storagePool = flagValue(flags, DAEMON_FLAGS, 'storage-pool') ?? '';
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(storagePool)) {
    throw new CliError(
      `invalid --storage-pool "${storagePool}": expected an Incus storage pool name`,
    );
  }

  const corsOrigins = listFlag(flags, 'cors-origin');
  for (const origin of corsOrigins) {
    if (origin === '*') {
      throw new CliError(
        '--cors-origin "*" is refused: list the exact origins, like https://admin.example.com',
      );
    }
    let parsed: URL;
    try {
      parsed = new URL(origin);
    } catch {
      throw new CliError(
        `invalid --cors-origin "${origin}": expected an origin like https://admin.example.com`,
      );
    }
    if (parsed.origin !== origin) {
      throw new CliError(
        `invalid --cors-origin "${origin}": expected just the origin, like ${parsed.origin}`,
      );
    }
  }

  const defaultImage = flagValue(flags, DAEMON_FLAGS, 'default-image')?.trim() ?? '';
  if (!isValidImage(defaultImage)) {
    throw new CliError(`invalid --default-image "${defaultImage}": expected ${IMAGE_FORM}`);
  }

  const sshJump = one(flags, 'ssh-jump');
  if (sshJump !== undefined && !isValidSshJump(sshJump)) {
    throw new CliError(`invalid --ssh-jump "${sshJump}": expected ${SSH_JUMP_FORM}`);
  }

  const trustedProxies = listFlag(flags, 'trusted-proxy').map((text) => {
    const cidr = parseCidr(text);
    if (!cidr) throw new CliError(`invalid --trusted-proxy "${text}": expected ${CIDR_FORM}`);
    return cidr;
  });
  for (const cidr of trustedProxies.filter((c) => c.bits === 0)) {
    warnings.push(
      `--trusted-proxy ${formatCidr(cidr)} trusts every ${cidr.bytes.length === 4 ? 'IPv4' : 'IPv6'} address as a proxy, so any client can choose its own address in X-Forwarded-For and escape its failed-login lock-out; list only your proxies' addresses`,
    );
  }
  const daemonId = parseDaemonId(flags);
  const grace = flagValue(flags, DAEMON_FLAGS, 'shutdown-grace') ?? '';
  const shutdownGraceMs = parseDuration(grace);
  if (shutdownGraceMs === undefined || shutdownGraceMs < 0 || shutdownGraceMs > 3_600_000) {
    throw new CliError(
      `invalid --shutdown-grace "${grace}": expected ${DURATION_FORM}, from 0s to 1h`,
    );
  }

  const maxAge = flagValue(flags, DAEMON_FLAGS, 'image-cache-max-age') ?? '';
  const days = /^(\d{1,5})d$/.exec(maxAge.trim());
  const imageCacheMaxAgeMs = days ? Number(days[1]) * 86_400_000 : parseDuration(maxAge);
  if (imageCacheMaxAgeMs === undefined || imageCacheMaxAgeMs < 0) {
    throw new CliError(
      `invalid --image-cache-max-age "${maxAge}": expected whole days like "7d" or ${DURATION_FORM}; 0 turns the image cache off`,
    );
  }

  const auditLog = env[AUDIT_ENV] || one(flags, 'audit-log');
  if (auditLog !== undefined && auditLog.trim() === '') {
    throw new CliError(
      '--audit-log needs a file name, like /var/log/containarium/audit.log, or "-" for stderr',
    );
  }

  const quotaFile = one(flags, 'quota-file');
  let quotas = DEFAULT_QUOTAS;
  if (quotaFile !== undefined) {
    const text = readFlagFile(quotaFile, '--quota-file', false);
    try {
      quotas = parseQuotaFile(text);
    } catch (error) {
      throw new CliError(`--quota-file ${quotaFile} ${(error as Error).message}`);
    }
  }

  const templatesFile = one(flags, 'templates');
  let templates = builtinTemplates();
  if (templatesFile !== undefined) {
    const text = readFlagFile(templatesFile, '--templates', false);
    try {
      templates = parseTemplatesText(text, templatesFile);
    } catch (error) {
      throw new CliError(`invalid --templates ${templatesFile}: ${(error as Error).message}`);
    }
  }

  return {
    kind: 'daemon',
    hostname,
    port: portNumber,
    secret,
    secretSource,
    incus,
    storagePool,
    defaultImage,
    corsOrigins,
    sshJump,
    trustedProxies,
    daemonId,
    shutdownGraceMs,
    auditLog,
    quotas,
    quotaSource: quotaFile === undefined ? 'defaults' : `--quota-file ${quotaFile}`,
    templates,
    imageCacheMaxAgeMs,
    warnings,
  };
}

/** --daemon-id, for the daemon and `image-cache` alike: one default, one check. */
function parseDaemonId(flags: Flags): string {
  const daemonId = flagValue(flags, DAEMON_FLAGS, 'daemon-id') ?? '';
  if (!DAEMON_ID.test(daemonId)) {
    throw new CliError(`invalid --daemon-id "${daemonId}": expected ${DAEMON_ID_FORM}`);
  }
  return daemonId;
}

function parseIncus(flags: Flags): IncusTarget {
  const socket = one(flags, 'incus-socket');
  const url = one(flags, 'incus-url');
  const cert = one(flags, 'incus-cert');
  const key = one(flags, 'incus-key');
  const ca = one(flags, 'incus-ca');
  if (url === undefined) {
    if (cert !== undefined || key !== undefined || ca !== undefined) {
      throw new CliError('--incus-cert, --incus-key and --incus-ca go with --incus-url');
    }
    return socket === undefined ? {} : { socket };
  }
  if (socket !== undefined)
    throw new CliError('give either --incus-socket or --incus-url, not both');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CliError(`invalid --incus-url "${url}": expected https://HOST:8443`);
  }
  if (parsed.protocol !== 'https:') {
    throw new CliError(`invalid --incus-url "${url}": remote Incus is reached over https:// only`);
  }
  if (cert === undefined || key === undefined) {
    throw new CliError(
      '--incus-url needs --incus-cert and --incus-key (the client certificate Incus trusts)',
    );
  }
  const target: IncusTarget = {
    url: parsed.href.replace(/\/+$/, ''),
    cert: readFlagFile(cert, '--incus-cert', false),
    key: readFlagFile(key, '--incus-key', false),
  };
  if (ca !== undefined) target.ca = readFlagFile(ca, '--incus-ca', false);
  return target;
}
