// Go duration strings ("8760h", "1h30m", "90s"), as upstream's flags take them: one parser for both binaries.

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3, // U+00B5 micro sign
  μs: 1e-3, // U+03BC Greek mu
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
};

/** One "<number><unit>" term; Go allows ".5h" and "1.h". */
const TERM = /^(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/;

/** Go's limit: an int64 count of nanoseconds, about 292 years. */
const MAX_MS = 9_223_372_036_854;

export const DURATION_FORM =
  'a Go duration: a number with a unit (h, m, s, ms), like "8760h", "24h", "1h30m" or "90s"';

/**
 * Parses a Go duration into milliseconds (zero and negative durations included, as in Go);
 * undefined when the text is not a duration.
 */
export function parseDuration(input: string): number | undefined {
  let rest = input.trim();
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    if (rest.startsWith('-')) sign = -1;
    rest = rest.slice(1);
  }
  // Go accepts a bare "0" and nothing else without a unit.
  if (rest === '0') return 0;
  if (rest === '') return undefined;
  let total = 0;
  while (rest !== '') {
    const match = TERM.exec(rest);
    if (!match) return undefined;
    const [whole, number, unit] = match as unknown as [string, string, string];
    total += Number(number) * (UNIT_MS[unit] ?? Number.NaN);
    rest = rest.slice(whole.length);
  }
  if (!Number.isFinite(total) || total > MAX_MS) return undefined;
  return sign * total;
}

/** A span of milliseconds in Go's style ("8760h0m0s" is written "8760h"): for messages. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  const sign = ms < 0 ? '-' : '';
  let rest = Math.abs(ms);
  const hours = Math.floor(rest / 3_600_000);
  rest -= hours * 3_600_000;
  const minutes = Math.floor(rest / 60_000);
  rest -= minutes * 60_000;
  const seconds = Math.round((rest / 1000) * 1000) / 1000;
  const parts = [
    hours ? `${hours}h` : '',
    minutes ? `${minutes}m` : '',
    seconds ? `${seconds}s` : '',
  ];
  return sign + (parts.join('') || `${ms}ms`);
}
