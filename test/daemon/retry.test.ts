import { describe, expect, test } from 'bun:test';
import { DaemonError } from '../../src/daemon/errors.ts';
import { isTransient, retrying } from '../../src/daemon/retry.ts';
import { fakeClock } from '../support/fake-clock.ts';
import { rejection } from '../support/rejection.ts';

describe('retrying', () => {
  test('a transient failure is tried again after a growing pause, and logged', async () => {
    const clock = fakeClock();
    const lines: string[] = [];
    const retry = retrying({ attempts: 3, delayMs: 1000, clock, log: (l) => lines.push(l) });
    let calls = 0;
    const result = await retry('apt-get update in x', async () => {
      calls += 1;
      if (calls < 3) throw new Error('websocket: close 1006');
      return 'done';
    });
    expect(result).toBe('done');
    expect(clock.slept).toEqual([1000, 2000]);
    expect(lines).toEqual([
      'apt-get update in x: websocket: close 1006; trying again (1/2)',
      'apt-get update in x: websocket: close 1006; trying again (2/2)',
    ]);
  });

  test('the last transient failure, and any other failure at once, is thrown', async () => {
    const clock = fakeClock();
    const retry = retrying({ attempts: 2, delayMs: 5, clock, log: () => {} });
    const transient = await rejection(
      retry('x', async () => {
        throw new DaemonError('unavailable', 'ECONNRESET');
      }),
    );
    expect(transient.message).toBe('ECONNRESET');
    expect(clock.slept).toEqual([5]);
    const other = await rejection(
      retry('x', async () => {
        throw new DaemonError('internal', 'exit 100');
      }),
    );
    expect(other.message).toBe('exit 100');
    expect(clock.slept).toEqual([5]);
    expect(isTransient(new Error('Failed to retrieve PID of executing child process'))).toBe(true);
    expect(isTransient(new Error('No space left on device'))).toBe(false);
  });
});
