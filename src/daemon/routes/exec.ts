// POST /v1/containers/{username}/exec, a route this project added: runs one command in the
// running container through Incus, as the container's user unless the body names another account.
import * as v from 'valibot';
import {
  ACCOUNT,
  ACCOUNT_FORM,
  COMMAND_FORM,
  EXEC_TIMEOUT,
  isValidCommand,
  TIMEOUT_FORM,
} from '../../shared/command.ts';
import { tidyOutput } from '../../shared/output.ts';
import { BODY, either, Int32, parseBody } from '../requests.ts';
import { pathUser, route } from '../router.ts';

const COMMAND_EXPECTED = `expected ${COMMAND_FORM}`;
const USER_EXPECTED = `expected ${ACCOUNT_FORM}`;
const TIMEOUT_EXPECTED = `expected ${TIMEOUT_FORM}`;

const Command = v.pipe(
  v.union([v.string(), v.array(v.string())], COMMAND_EXPECTED),
  v.check(isValidCommand, COMMAND_EXPECTED),
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
