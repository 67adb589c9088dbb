// The `since` of a log request, for both binaries: a moment (RFC 3339) or how long ago (a Go
// duration), as Unix seconds.
import { parseDuration } from './duration.ts';

export const SINCE_FORM =
  'a time like "2026-01-31T12:00:00Z" (RFC 3339, not before 1970) or how long ago, like "15m" or "2h"';

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * Unix seconds, or undefined when the text is neither form, a duration is not positive, or the
 * moment is before 1970 (journalctl takes no negative time).
 */
export function parseSince(text: string, nowMs: number): number | undefined {
  const value = text.trim();
  const ago = RFC3339.test(value) ? undefined : parseDuration(value);
  const ms = RFC3339.test(value)
    ? Date.parse(value.replace(' ', 'T'))
    : ago !== undefined && ago > 0
      ? nowMs - ago
      : Number.NaN;
  return Number.isFinite(ms) && ms >= 0 ? Math.floor(ms / 1000) : undefined;
}
