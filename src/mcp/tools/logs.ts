// get_logs: the last lines of a container's system journal (or console log), through the
// daemon's logs route (a route this project added; see the README). Read-only, but the lines
// come from inside the container, so they are cleaned, capped and marked as data here too.
import * as v from 'valibot';
import { GREP_FORM, isValidGrep, LINES_FORM, LOG_LINES } from '../../shared/command.ts';
import { cleanOutput, lastLines } from '../../shared/output.ts';
import { parseSince, SINCE_FORM } from '../../shared/since.ts';
import { containerName } from '../../shared/username.ts';
import { CONTAINER } from '../errors.ts';
import { defaulted, defineTool, username } from './define.ts';
import { UNTRUSTED } from './exec.ts';

/** GET /v1/containers/{username}/logs as the daemon sends it (api/containarium.openapi.json). */
export const LogsResponseSchema = v.object({
  source: v.nullish(v.string(), ''),
  lines: v.nullish(v.array(v.string()), []),
  truncated: v.nullish(v.boolean(), false),
});

const SOURCE: Record<string, string> = {
  journal: 'system journal',
  console: 'console log (no journal in this container)',
};

const getLogs = defineTool({
  name: 'get_logs',
  title: 'Get logs',
  description:
    "Read the last lines of a user's container's system journal (or console log), optionally filtered by text or time.",
  effect: 'read',
  toolset: 'logs',
  resource: CONTAINER,
  input: v.strictObject({
    username: username('User whose container to read, e.g. "alice".'),
    lines: defaulted(LOG_LINES.default, `How many last lines, 1 to ${LOG_LINES.max}.`, (d) =>
      v.pipe(
        v.number(`must be ${LINES_FORM}`),
        d,
        v.integer(`must be ${LINES_FORM}`),
        v.minValue(1, `must be ${LINES_FORM}`),
        v.maxValue(LOG_LINES.max, `must be ${LINES_FORM}`),
      ),
    ),
    grep: v.optional(
      v.pipe(
        v.string(`must be ${GREP_FORM}`),
        v.description('Only lines containing this text, ignoring case.'),
        v.check(isValidGrep, `must be ${GREP_FORM}`),
      ),
    ),
    since: v.optional(
      v.pipe(
        v.string(`must be ${SINCE_FORM}`),
        v.description('Only entries since then: "2026-01-31T12:00:00Z", or "15m", "2h" ago.'),
        v.check((s) => parseSince(s, Date.now()) !== undefined, `must be ${SINCE_FORM}`),
      ),
    ),
  }),
  output: v.object({
    username: v.string(),
    source: v.string(),
    lines: v.pipe(v.array(v.string()), v.description('Untrusted: from the container')),
    truncated: v.boolean(),
  }),
  action: (input) => `read the logs of the container for ${input.username}`,
  async handle(input, { client, signal }) {
    const query = new URLSearchParams({ lines: String(input.lines) });
    if (input.grep !== undefined) query.set('grep', input.grep);
    if (input.since !== undefined) query.set('since', input.since);
    const response = await client.get(
      `v1/containers/${encodeURIComponent(input.username)}/logs?${query}`,
      LogsResponseSchema,
      { signal, feature: 'reading container logs' },
    );
    // Whatever daemon answered, its lines are cleaned and capped here too.
    const cleaned = response.lines.flatMap((line) => cleanOutput(line).split('\n'));
    const kept = lastLines(cleaned.slice(-input.lines));
    const truncated = kept.truncated || response.truncated;
    const source = SOURCE[response.source] ?? (response.source || 'log');
    const filter = [
      input.grep === undefined ? '' : ` containing "${input.grep}"`,
      input.since === undefined ? '' : ` since ${input.since}`,
    ].join('');
    const name = containerName(input.username);
    const head = `${kept.lines.length} ${kept.lines.length === 1 ? 'line' : 'lines'}${filter} from the ${source} of ${name}${truncated ? ' (only the last ones fit; earlier lines were left out)' : ''}.`;
    const text =
      kept.lines.length > 0
        ? [head, UNTRUSTED, ...kept.lines].join('\n')
        : `No lines${filter} in the ${source} of ${name}.${filter ? ' Try without the filter.' : ''}`;
    return {
      text,
      structured: {
        username: input.username,
        source: response.source,
        lines: kept.lines,
        truncated,
      },
    };
  },
});

export default [getLogs];
