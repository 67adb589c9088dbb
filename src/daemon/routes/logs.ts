// GET /v1/containers/{username}/logs, a route this project added: the last lines of the
// container's system journal (or its console log), filtered here, never by a shell.
import { GREP_FORM, isValidGrep, LINES_FORM, LOG_LINES } from '../../shared/command.ts';
import { cleanOutput, lastLines } from '../../shared/output.ts';
import { parseSince, SINCE_FORM } from '../../shared/since.ts';
import { DaemonError } from '../errors.ts';
import { pathUser, route } from '../router.ts';

/** With grep, this many of the last journal entries are searched. */
export const GREP_SCAN_LINES = 10_000;

export type LogsQuery = { lines: number; grep?: string; since?: number };

/** lines, grep and since from the query; a 400 naming the parameter for any bad one. */
export function parseLogsQuery(query: URLSearchParams, nowMs: number): LogsQuery {
  const parsed: LogsQuery = { lines: LOG_LINES.default };
  const lines = query.get('lines');
  if (lines !== null && lines !== '') {
    const n = /^\d{1,5}$/.test(lines) ? Number(lines) : 0;
    if (n < 1 || n > LOG_LINES.max)
      throw new DaemonError('invalid', `invalid lines: expected ${LINES_FORM}`);
    parsed.lines = n;
  }
  const grep = query.get('grep');
  if (grep !== null && grep !== '') {
    if (!isValidGrep(grep)) {
      throw new DaemonError('invalid', `invalid grep: expected ${GREP_FORM}`);
    }
    parsed.grep = grep;
  }
  const since = query.get('since');
  if (since !== null && since !== '') {
    const seconds = parseSince(since, nowMs);
    if (seconds === undefined)
      throw new DaemonError('invalid', `invalid since: expected ${SINCE_FORM}`);
    parsed.since = seconds;
  }
  return parsed;
}

export const getLogs = route('GET', '/v1/containers/:username/logs', async (c) => {
  const username = pathUser(c);
  const query = parseLogsQuery(c.url.searchParams, Date.now());
  const read = await c.backend.logs(username, {
    lines: query.grep === undefined ? query.lines : GREP_SCAN_LINES,
    ...(query.since === undefined ? {} : { since: query.since }),
  });
  const all = cleanOutput(read.text).split('\n');
  if (all.at(-1) === '') all.pop();
  // A plain, case-insensitive substring: no pattern language, so no costly patterns either.
  const needle = query.grep?.toLowerCase();
  const matched = needle === undefined ? all : all.filter((l) => l.toLowerCase().includes(needle));
  const kept = lastLines(matched.slice(-query.lines));
  return { source: read.source, lines: kept.lines, truncated: kept.truncated || read.cut };
});
