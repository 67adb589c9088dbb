// The commands that work, for an error about the JWT secret: one new secret for the daemon and its tokens.
import { dirname } from 'node:path';

/** How the refused secret was given: a flag, CONTAINARIUM_JWT_SECRET, or a file. */
export type SecretGiven = { via: 'flag' } | { via: 'env' } | { via: 'file'; path: string };

/** The flags that carry a secret or name its file; never retyped into a message. */
const SECRET_FLAGS = ['secret', 'secret-file', 'jwt-secret', 'jwt-secret-file'];

/** A word as a POSIX shell reads it back: bare when safe, else in single quotes. */
const shellQuote = (word: string): string =>
  /^[A-Za-z0-9_./:=@%+,-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;

/**
 * The command as typed (`containarium daemon --rest --port 8080`), from its parsed flags, without
 * the secret flags, so the message can show it with a working secret and never echo the bad one.
 */
export function retype(
  command: string,
  flags: ReadonlyMap<string, readonly string[]>,
  booleans: readonly string[],
): string {
  const words = [command];
  for (const [name, values] of flags) {
    if (SECRET_FLAGS.includes(name)) continue;
    for (const value of values) {
      words.push(
        booleans.includes(name) && value === 'true'
          ? `--${name}`
          : `--${name} ${shellQuote(value)}`,
      );
    }
  }
  return words.join(' ');
}

/** The seed's token command, for the token line when the daemon's secret was refused. */
const SEED_TOKEN = 'containarium token generate --username mcp-client --roles admin --expiry 8760h';

/**
 * Three lines that work together: make a secret the way it was given (a shell variable, the
 * environment, or the same file), start the daemon with it, sign a token with it. The command
 * that was refused is shown as typed, with only its secret changed.
 */
export function secretRecipe(given: SecretGiven, side: 'daemon' | 'token', typed: string): string {
  const file = given.via === 'file' ? shellQuote(given.path) : '';
  const folder = given.via === 'file' ? dirname(given.path) : '.';
  const make =
    given.via === 'file'
      ? `${folder === '.' ? '' : `mkdir -p ${shellQuote(folder)} && `}(umask 077 && openssl rand -base64 32 > ${file})`
      : given.via === 'env'
        ? 'export CONTAINARIUM_JWT_SECRET="$(openssl rand -base64 32)"'
        : 'SECRET="$(openssl rand -base64 32)"';
  const daemonSecret =
    given.via === 'file'
      ? ` --jwt-secret-file ${file}`
      : given.via === 'env'
        ? ''
        : ' --jwt-secret "$SECRET"';
  const tokenSecret =
    given.via === 'file'
      ? ` --secret-file ${file}`
      : given.via === 'env'
        ? ' --secret "$CONTAINARIUM_JWT_SECRET"'
        : ' --secret "$SECRET"';
  const daemon = `${side === 'daemon' ? typed : 'containarium daemon --rest'}${daemonSecret}`;
  const token = `${side === 'token' ? typed : SEED_TOKEN}${tokenSecret}`;
  return `This works, with one secret for the daemon and its tokens:\n  ${make}\n  ${daemon}\n  ${token}`;
}
