// POST /v1/containers/{username}/exec, a route this project added: runs one command in the
// running container through Incus, as the container's user unless the body names another account.
import * as v from 'valibot';
import { tidyOutput } from '../../shared/output.ts';
import { BODY, either, Int32, parseBody } from '../requests.ts';
import { pathUser, route } from '../router.ts';

export const EXEC_TIMEOUT = { default: 60, max: 600 } as const;
/** Most characters of a command (all its arguments together). */
export const MAX_COMMAND_CHARS = 16 * 1024;
const MAX_ARGUMENTS = 256;

const COMMAND_EXPECTED = `expected a non-empty string (run by sh -c) or a list of 1 to ${MAX_ARGUMENTS} strings (argv), without NUL characters, at most ${MAX_COMMAND_CHARS} characters in all`;
const ACCOUNT = /^[a-z_][a-z0-9_-]{0,31}$/;
const USER_EXPECTED =
  'expected an account name in the container, like "root" (lowercase letters, digits, "_" and "-", at most 32)';
const TIMEOUT_EXPECTED = `expected a whole number of seconds from 1 to ${EXEC_TIMEOUT.max}`;

const Command = v.pipe(
  v.union([v.string(), v.array(v.string())], COMMAND_EXPECTED),
  v.check((command) => {
    const parts = [command].flat();
    const chars = parts.reduce((n, part) => n + part.length, 0);
    return (
      parts.length >= 1 &&
      parts.length <= MAX_ARGUMENTS &&
      (parts[0] ?? '').trim() !== '' &&
      chars <= MAX_COMMAND_CHARS &&
      parts.every((part) => !part.includes('\u0000'))
    );
  }, COMMAND_EXPECTED),
);

const Timeout = v.pipe(
  Int32,
  v.minValue(1, TIMEOUT_EXPECTED),
  v.maxValue(EXEC_TIMEOUT.max, TIMEOUT_EXPECTED),
);

export const ExecBody = v.pipe(
  v.object(
    {
      command: v.optional(Command),
      timeoutSeconds: v.nullish(Timeout),
      timeout_seconds: v.nullish(Timeout),
      user: v.nullish(v.pipe(v.string(USER_EXPECTED), v.regex(ACCOUNT, USER_EXPECTED))),
    },
    BODY,
  ),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const body = dataset.value;
    if (body.command === undefined)
      addIssue({ message: `command is required: ${COMMAND_EXPECTED}` });
    const timeout = either<number>(body, 'timeoutSeconds', 'timeout_seconds', addIssue);
    if (dataset.issues || body.command === undefined) return NEVER;
    return {
      command: body.command,
      timeoutSeconds: timeout ?? EXEC_TIMEOUT.default,
      user: body.user ?? undefined,
    };
  }),
);

export const execCommand = route(
  'POST',
  '/v1/containers/:username/exec',
  async (c) => {
    const username = pathUser(c);
    const body = parseBody(ExecBody, await c.body());
    const outcome = await c.backend.exec(username, { ...body, user: body.user ?? username });
    const stdout = tidyOutput(outcome.stdout, outcome.stdoutCut);
    const stderr = tidyOutput(outcome.stderr, outcome.stderrCut);
    return {
      exitCode: outcome.exitCode,
      stdout: stdout.text,
      stderr: stderr.text,
      stdoutTruncated: stdout.truncated,
      stderrTruncated: stderr.truncated,
      timedOut: outcome.timedOut,
    };
  },
  { long: true },
);
