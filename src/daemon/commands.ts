// What exec and logs run inside a container, behind the same Guest as provisioning: a command as
// an account of the container under a time limit, and the journal (or the console log).
import type { ExecOutcome, ExecRequest, LogsOutcome, LogsRequest } from './backend.ts';
import type { Clock } from './clock.ts';
import { DaemonError } from './errors.ts';
import { accountOf, type Guest, has } from './provision.ts';

/** Raw bytes read from the end of each stream: enough that 16 KiB remain once escapes go. */
export const RAW_TAIL_BYTES = 64 * 1024;
/** Raw bytes of journal read, so a filter applied afterwards has thousands of entries to search. */
export const LOG_TAIL_BYTES = 1024 * 1024;
/** How long the command has after its time is up (TERM) before it is killed. */
const KILL_AFTER_SECONDS = 5;

const TIMEOUTS = ['/usr/bin/timeout', '/bin/timeout'];
const JOURNALCTLS = ['/usr/bin/journalctl', '/bin/journalctl'];

async function firstOf(guest: Guest, paths: string[]): Promise<string | undefined> {
  for (const path of paths) if (await has(guest, path)) return path;
  return undefined;
}

/**
 * Runs the command as `user` in their home directory. The container's own `timeout` stops it
 * when its time is up; then it ends with a failure at or after the limit, which is `timedOut`.
 */
export async function runCommand(
  guest: Guest,
  request: ExecRequest,
  clock: Clock,
): Promise<ExecOutcome> {
  const { user, timeoutSeconds } = request;
  const account = await accountOf(guest, user);
  if (!account) {
    throw new DaemonError(
      'invalid',
      `invalid user: container ${guest.name} has no account "${user}"${user === 'root' ? '' : '; run as user "root" instead'}`,
    );
  }
  const argv =
    typeof request.command === 'string' ? ['sh', '-c', request.command] : request.command;
  const timeout = await firstOf(guest, TIMEOUTS);
  const limited = timeout
    ? [timeout, '-s', 'TERM', '-k', String(KILL_AFTER_SECONDS), String(timeoutSeconds), ...argv]
    : argv;
  const started = clock.now();
  // Without a timeout program, the wait running out ends the call: timedOut, exit code 124.
  const result = await guest.exec(limited, {
    as: { uid: account.uid, gid: account.gid, cwd: account.home },
    environment: { HOME: account.home, USER: user, LOGNAME: user },
    timeout: timeoutSeconds + KILL_AFTER_SECONDS + 30,
    tail: RAW_TAIL_BYTES,
  });
  const elapsed = clock.now() - started;
  return {
    exitCode: result.exitCode,
    stdout: result.stdout,
    stderr: result.stderr,
    stdoutCut: result.cut?.stdout ?? false,
    stderrCut: result.cut?.stderr ?? false,
    timedOut:
      result.timedOut === true || (result.exitCode !== 0 && elapsed >= timeoutSeconds * 1000),
  };
}

/** The last entries of the system journal, or the console log where there is no journalctl. */
export async function readLogs(guest: Guest, request: LogsRequest): Promise<LogsOutcome> {
  const journalctl = await firstOf(guest, JOURNALCTLS);
  if (!journalctl) {
    const { text, cut } = await guest.consoleLog(LOG_TAIL_BYTES);
    return { source: 'console', text, cut };
  }
  // journalctl -n with --since gives the OLDEST entries after since; without -n, the newest are
  // the end of the output, which is what the tail read (and the route's last `lines`) keep.
  const argv = [journalctl, '--no-pager', '--quiet', '-o', 'short-iso'];
  argv.push(
    ...(request.since === undefined
      ? ['-n', String(request.lines)]
      : [`--since=@${request.since}`]),
  );
  const result = await guest.exec(argv, { timeout: 60, tail: LOG_TAIL_BYTES });
  if (result.exitCode !== 0) {
    const detail = (result.stderr || result.stdout).trim().split('\n').slice(-2).join(' ');
    throw new DaemonError(
      'internal',
      `journalctl failed in ${guest.name} (exit ${result.exitCode}): ${detail}`,
    );
  }
  return { source: 'journal', text: result.stdout, cut: result.cut?.stdout ?? false };
}
