import { describe, expect, test } from 'bun:test';
import { formatDuration, parseDuration } from '../../src/shared/duration.ts';

describe('parseDuration (Go syntax)', () => {
  test.each([
    ['8760h', 8760 * 3_600_000],
    ['24h', 86_400_000],
    ['30m', 1_800_000],
    ['1h30m', 5_400_000],
    ['90s', 90_000],
    ['1.5h', 5_400_000],
    ['.5s', 500],
    ['1.s', 1000],
    ['250ms', 250],
    ['2h45m30s', 9_930_000],
    ['1500us', 1.5],
    ['1000000ns', 1],
    ['1µs', 0.001],
    ['1μs', 0.001],
    ['+5m', 300_000],
    ['-1h', -3_600_000],
    ['0', 0],
    ['0s', 0],
  ])('%p is %p ms', (input, ms) => {
    expect(parseDuration(input)).toBeCloseTo(ms, 9);
  });

  test.each([
    '',
    '1',
    '10',
    'h',
    '1d',
    '1y',
    '1 h',
    '1h 30m',
    'forever',
    '1H',
    '--1h',
    '1h-',
    '1e3s',
    '9999999h',
  ])('%p is refused', (input) => {
    expect(parseDuration(input)).toBeUndefined();
  });
});

describe('formatDuration', () => {
  test('writes Go-style spans', () => {
    expect(formatDuration(8760 * 3_600_000)).toBe('8760h');
    expect(formatDuration(5_400_000)).toBe('1h30m');
    expect(formatDuration(90_000)).toBe('1m30s');
    expect(formatDuration(0)).toBe('0s');
  });
});
