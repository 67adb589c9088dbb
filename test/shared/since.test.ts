import { describe, expect, test } from 'bun:test';
import { parseSince } from '../../src/shared/since.ts';

const NOW = Date.parse('2026-02-01T00:00:00Z');

describe('parseSince', () => {
  test('an RFC 3339 time is its Unix seconds', () => {
    expect(parseSince('2026-01-31T12:00:00Z', NOW)).toBe(1_769_860_800);
    expect(parseSince('2026-01-31T13:00:00+01:00', NOW)).toBe(1_769_860_800);
    expect(parseSince('2026-01-31 12:00Z', NOW)).toBe(1_769_860_800);
  });

  test('a duration is that long before now', () => {
    expect(parseSince('2h', NOW)).toBe(NOW / 1000 - 7200);
    expect(parseSince('1h30m', NOW)).toBe(NOW / 1000 - 5400);
  });

  test('a moment before 1970 is refused, however it is spelled', () => {
    expect(parseSince('1970-01-01T00:00:00Z', NOW)).toBe(0);
    expect(parseSince('1969-12-31T23:59:59Z', NOW)).toBeUndefined();
    expect(parseSince('1970-01-01T00:30:00+01:00', NOW)).toBeUndefined();
    expect(parseSince('500000h', NOW)).toBeUndefined();
  });

  test('anything else is refused', () => {
    for (const bad of ['', 'yesterday', '-5m', '0', '2026-01-31', '2026-13-45T99:00:00Z', '5']) {
      expect(parseSince(bad, NOW)).toBeUndefined();
    }
  });
});
