import { describe, expect, test } from 'bun:test';
import { createLockoutTable } from '../../src/daemon/lockout.ts';

const limit = { max: 4, windowMs: 40_000, lockoutMs: 15_000 };

describe('lock-out table', () => {
  test('max quick failures lock a key for lockoutMs; the bucket refills at max per window', () => {
    const table = createLockoutTable(limit, 10);
    expect([1, 2, 3].map(() => table.fail('a', 0))).toEqual([false, false, false]);
    // 20 s refill 2 of the 3 used: two more failures fit, the third locks.
    expect(table.fail('a', 20_000)).toBe(false);
    expect(table.fail('a', 20_000)).toBe(false);
    expect(table.lockedUntil('a', 20_000)).toBe(0);
    expect(table.fail('a', 20_000)).toBe(true);
    expect(table.lockedUntil('a', 20_000)).toBe(35_000);
    expect(table.lockedUntil('a', 34_999)).toBe(35_000);
    expect(table.lockedUntil('a', 35_000)).toBe(0);
    // Once the lock-out is over the key starts afresh.
    expect([1, 2, 3].map(() => table.fail('a', 35_000))).toEqual([false, false, false]);
    expect(table.fail('a', 35_000)).toBe(true);
  });

  test('a full table forgets the least recently failing count, never a live lock-out', () => {
    const table = createLockoutTable(limit, 3);
    for (let i = 0; i < 4; i++) table.fail('locked', 0);
    table.fail('old', 1);
    table.fail('recent', 2);
    table.fail('old', 3);
    table.fail('new', 4); // evicts "recent", whose last failure is the oldest
    expect(table.size).toBe(3);
    // "old" kept its two failures: two more lock it; "recent" starts again from nothing.
    table.fail('old', 5);
    expect(table.fail('old', 5)).toBe(true);
    for (let i = 0; i < 1000; i++) table.fail(`flood-${i}`, 6);
    expect(table.size).toBe(3);
    expect(table.lockedUntil('locked', 6)).toBe(15_000);
    expect(table.lockedUntil('old', 6)).toBe(15_005);
  });

  test('when every entry is a live lock-out, a newcomer is not counted; expired lock-outs make room', () => {
    const table = createLockoutTable({ ...limit, max: 1 }, 2);
    expect(table.fail('a', 0)).toBe(true);
    expect(table.fail('b', 1)).toBe(true);
    expect(table.fail('c', 2)).toBe(false);
    expect(table.lockedUntil('c', 2)).toBe(0);
    expect(table.size).toBe(2);
    expect(table.lockedUntil('a', 2)).toBe(15_000);
    // At 15 s "a" has expired: "c" takes its place, and "b" stays.
    expect(table.fail('c', 15_000)).toBe(true);
    expect(table.size).toBe(2);
    expect(table.lockedUntil('b', 15_000)).toBe(15_001);
  });
});
