// Diagnostics for mcp-server: stderr only (stdout belongs to the protocol), with tokens redacted.
// The binary makes one Logger at start-up and passes it to what logs; nothing else writes stderr.
import { writeSync } from 'node:fs';

const JWT = /eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*/g;

/** Replaces anything shaped like a JWT, and any known secret, with [redacted]. */
export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text.replace(JWT, '[redacted]');
  for (const secret of secrets) if (secret.length >= 8) out = out.split(secret).join('[redacted]');
  return out;
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
