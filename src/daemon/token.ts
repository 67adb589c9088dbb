// `containarium token generate`: mint a token; only the token goes to stdout, the rest to stderr.
import { formatDuration } from '../shared/duration.ts';
import { signToken } from '../shared/jwt.ts';
import type { TokenCommand } from './cli.ts';

type Output = { write(text: string): unknown };

export async function generateToken(
  command: TokenCommand,
  /** main.ts passes the process's streams: the token to stdout, the note to stderr. */
  out: { stdout: Output; stderr: Output },
  now: Date = new Date(),
): Promise<string> {
  const { token, expiresAt } = await signToken({
    username: command.username,
    roles: command.roles,
    lifetimeMs: command.lifetimeMs,
    secret: command.secret,
    now,
  });
  out.stdout.write(`${token}\n`);
  out.stderr.write(
    `token for ${command.username} (roles: ${command.roles.join(', ')}) expires ${expiresAt.toISOString()} ` +
      `(in ${formatDuration(command.lifetimeMs)})\n`,
  );
  return token;
}
