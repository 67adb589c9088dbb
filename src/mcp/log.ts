// Diagnostics for mcp-server: stderr only (stdout belongs to the protocol), with tokens redacted.
// The binary makes one Logger at start-up and passes it to what logs; nothing else writes stderr.
import { writeSync } from 'node:fs';

// Three base64url parts joined by dots (or by "%2E", as a URL-encoded token has them), or one
// part alone that starts like a JWT's header or payload does (base64url of `{"`).
const JWT =
  /eyJ[A-Za-z0-9_-]{2,}(?:\.|%2[Ee])[A-Za-z0-9_-]{2,}(?:\.|%2[Ee])[A-Za-z0-9_-]*|eyJ[A-Za-z0-9_-]{10,}/g;
/** A run of URL characters with at least one %XX escape in it. */
const PERCENT_RUN = /[\w.~+/=-]*(?:%[0-9A-Fa-f]{2}[\w.~+/=-]*)+/g;
/** A run of base64 (standard or URL alphabet). */
const BASE64_RUN = /[A-Za-z0-9+/_-]{16,}={0,2}/g;

/** Shortest secret (or part of one) that is redacted wherever it appears. */
const MIN_SECRET = 8;
/** Shortest part of a dotted secret (a JWT's payload, its signature) redacted on its own. */
const MIN_PART = 16;

/**
 * The forms of the secrets worth looking for: each secret, each long part of a dotted one (a
 * JWT's payload and signature can be echoed without the rest), and the base64 of all of these
 * at each of the three alignments base64 can give them, so that the base64 of "Bearer <token>"
 * (an echoed Authorization header) or of anything else holding them is found too.
 */
function secretForms(secrets: readonly string[]) {
  const units = new Set<string>();
  for (const secret of secrets) {
    if (secret.length < MIN_SECRET) continue;
    units.add(secret);
    for (const part of secret.split('.').slice(1)) if (part.length >= MIN_PART) units.add(part);
  }
  const encoded = new Set<string>();
  for (const unit of units) {
    for (let skip = 0; skip < 3; skip++) {
      const whole = unit.length - skip - ((unit.length - skip) % 3);
      const core = Buffer.from(unit.slice(skip, skip + whole)).toString('base64');
      if (core.length < MIN_PART) continue;
      encoded.add(core);
      encoded.add(core.replaceAll('+', '-').replaceAll('/', '_'));
    }
  }
  return { units: [...units].sort((a, b) => b.length - a.length), encoded: [...encoded] };
}

type Forms = ReturnType<typeof secretForms>;

function redactPlain(text: string, { units, encoded }: Forms): string {
  let out = text.replace(JWT, '[redacted]');
  for (const unit of units) out = out.split(unit).join('[redacted]');
  if (encoded.length === 0) return out;
  return out.replace(BASE64_RUN, (run) =>
    encoded.some((core) => run.includes(core)) ? '[redacted]' : run,
  );
}

/** %XX escapes decoded, twice over for text encoded twice; bytes read as Latin-1 (secrets are ASCII). */
const percentDecode = (run: string): string => {
  let out = run;
  for (let i = 0; i < 2 && /%[0-9A-Fa-f]{2}/.test(out); i++) {
    out = out.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) =>
      String.fromCharCode(Number.parseInt(hex, 16)),
    );
  }
  return out;
};

/**
 * Replaces anything shaped like a JWT, and any known secret, with [redacted]: the secret whole,
 * its long dotted parts, their base64, and any of these percent-encoded (a run of URL text that
 * hides one is redacted whole).
 */
export function redact(text: string, secrets: readonly string[] = []): string {
  const forms = secretForms(secrets);
  return redactPlain(text, forms).replace(PERCENT_RUN, (run) => {
    // Replaced whole, not decoded: what it decodes to (a quote, a backslash) could break the
    // JSON a result is redacted in.
    const decoded = percentDecode(run);
    return redactPlain(decoded, forms) === decoded ? run : '[redacted]';
  });
}

/**
 * Writes to stderr at once, without process.stderr: Node's stream machinery costs milliseconds
 * to start, and the server's start-up logs before its first answer.
 */
export function writeStderr(text: string): void {
  let data = Buffer.from(text);
  try {
    while (data.length > 0) data = data.subarray(writeSync(2, data));
  } catch {
    // A stderr that would block (or is gone): the stream queues what is left.
    process.stderr.write(data);
  }
}

export const PREFIX = 'containarium-mcp';

/** Longest debug line: a whole tools/list or a large result is cut, not copied to the log. */
export const MAX_DEBUG_CHARS = 4000;

export type Logger = {
  info(message: string): void;
  warn(message: string): void;
  /** Only when debugging is on (CONTAINARIUM_DEBUG): MCP messages, cut to MAX_DEBUG_CHARS. */
  debug(message: string): void;
  readonly debugging: boolean;
};

export type LoggerOptions = {
  /** Where lines go; stderr by default. */
  write?: (line: string) => void;
  /** The secrets of the moment (the token may be rotated in its file), redacted from every line. */
  secrets?: () => readonly string[];
  debug?: boolean;
};

/**
 * The logger of mcp-server. Each line carries the prefix once: a message that already starts with
 * it (a line passed on from elsewhere) is not prefixed again.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const write = options.write ?? writeStderr;
  const secrets = options.secrets ?? (() => []);
  // Redacted whole before any cut, so no part of a token survives the cut.
  const emit = (message: string, max = Number.POSITIVE_INFINITY) => {
    const text = redact(message, secrets()).replace(new RegExp(`^(${PREFIX}: )+`), '');
    write(`${PREFIX}: ${text.slice(0, max)}\n`);
  };
  return {
    info: (message) => emit(message),
    warn: (message) => emit(`warning: ${message.replace(/^warning: /, '')}`),
    debug: (message) => {
      if (options.debug) emit(message, MAX_DEBUG_CHARS);
    },
    debugging: options.debug === true,
  };
}

/** Until start-up passes its logger everywhere: a line through a logger with no known secrets. */
export const log = (message: string): void => createLogger().info(message);
