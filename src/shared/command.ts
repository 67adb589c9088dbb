// The rules for exec and logs requests, for both binaries: what a command, an account, a time
// limit and a log request may be, and how each is described in an error.

export const EXEC_TIMEOUT = { default: 60, max: 600 } as const;
/** Most characters of a command, all its arguments together. */
export const MAX_COMMAND_CHARS = 16 * 1024;
export const MAX_ARGUMENTS = 256;

export const COMMAND_FORM = `a non-empty string (run by sh -c) or a list of 1 to ${MAX_ARGUMENTS} strings (argv, no shell), without NUL characters, at most ${MAX_COMMAND_CHARS} characters in all`;

/** True for a command the daemon runs: a string, or argv whose first word is not blank. */
export function isValidCommand(command: string | string[]): boolean {
  const parts = [command].flat();
  const chars = parts.reduce((n, part) => n + part.length, 0);
  return (
    parts.length >= 1 &&
    parts.length <= MAX_ARGUMENTS &&
    (parts[0] ?? '').trim() !== '' &&
    chars <= MAX_COMMAND_CHARS &&
    parts.every((part) => !part.includes('\u0000'))
  );
}

/** An account inside a container (Debian's rule, simplified): "root", "alice", "www-data". */
export const ACCOUNT = /^[a-z_][a-z0-9_-]{0,31}$/;
export const ACCOUNT_FORM =
  'an account name in the container, like "root" (lowercase letters, digits, "_" and "-", at most 32)';

export const TIMEOUT_FORM = `a whole number of seconds from 1 to ${EXEC_TIMEOUT.max}`;

export const LOG_LINES = { default: 100, max: 2000 } as const;
export const LINES_FORM = `a whole number from 1 to ${LOG_LINES.max}`;
export const MAX_GREP_CHARS = 256;
export const GREP_FORM = `text of 1 to ${MAX_GREP_CHARS} characters without control characters`;

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
const CONTROL = /[\u0000-\u001f\u007f]/;

/** True for a grep the daemon takes: plain text, matched ignoring case. */
export const isValidGrep = (grep: string): boolean =>
  grep.length >= 1 && grep.length <= MAX_GREP_CHARS && !CONTROL.test(grep);
