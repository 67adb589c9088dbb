import { describe, expect, test } from 'bun:test';
import {
  BodyTooLargeError,
  BudgetExceededError,
  createByteBudget,
  readBounded,
} from '../../src/shared/bounded-body.ts';

/** A stream of `chunks` chunks of `size` bytes, counting how many were pulled and whether it was cancelled. */
function source(chunks: number, size: number) {
  const seen = { pulled: 0, cancelled: false };
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (seen.pulled++ < chunks) controller.enqueue(new Uint8Array(size));
      else controller.close();
    },
    cancel() {
      seen.cancelled = true;
    },
  });
  return { stream, seen };
}

describe('readBounded', () => {
  test('a body of exactly the limit is read whole; one byte more is refused and cancelled', async () => {
    expect((await readBounded(source(4, 256).stream, 1024)).byteLength).toBe(1024);
    const over = source(4, 256);
    const error = await readBounded(over.stream, 1023).catch((e) => e);
    expect(error).toBeInstanceOf(BodyTooLargeError);
    expect(error.message).toBe('body larger than 1023 B');
    expect(over.seen.cancelled).toBe(true);
  });

  test('a declared length over the limit is refused before anything is read', async () => {
    const big = source(100, 1024);
    const error = await readBounded(big.stream, 1024, { declaredLength: '102400' }).catch((e) => e);
    expect(error).toBeInstanceOf(BodyTooLargeError);
    expect(big.seen.pulled).toBeLessThanOrEqual(1);
    expect(big.seen.cancelled).toBe(true);
  });

  test('a body that stalls stops with the signal, and the stream is cancelled', async () => {
    let cancelled = false;
    const stalled = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new Uint8Array(8));
      },
      cancel() {
        cancelled = true;
      },
    });
    const controller = new AbortController();
    const reading = readBounded(stalled, 1024, { signal: controller.signal });
    controller.abort(new Error('too slow'));
    await expect(reading).rejects.toThrow('too slow');
    expect(cancelled).toBe(true);
  });

  test('no body is an empty one', async () => {
    expect((await readBounded(null, 0)).byteLength).toBe(0);
  });
});

describe('a shared byte budget', () => {
  test('responses within their own limit fail once together they would pass the budget', async () => {
    const budget = createByteBudget(4096, 512);
    let peak = 0;
    const take = budget.take.bind(budget);
    budget.take = (bytes, held) => {
      const ok = take(bytes, held);
      peak = Math.max(peak, budget.used);
      return ok;
    };
    // Eight readers of 2 KiB each, 256-byte chunks, each under its own 4 KiB limit.
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, () => readBounded(source(8, 256).stream, 4096, { budget })),
    );
    const failed = results.filter((r) => r.status === 'rejected');
    expect(failed.length).toBeGreaterThan(0);
    for (const r of failed) {
      expect(r.reason).toBeInstanceOf(BudgetExceededError);
      // Caught where a response that is too large is: the same sentence family.
      expect(r.reason).toBeInstanceOf(BodyTooLargeError);
    }
    expect(results.some((r) => r.status === 'fulfilled')).toBe(true);
    // Never more than the budget, plus what each reader may always hold.
    expect(peak).toBeLessThanOrEqual(4096 + 8 * 512);
    // Every byte is given back once the reads end, whatever their outcome.
    expect(budget.used).toBe(0);
  });

  test('a small response is read while large ones hold the whole budget', async () => {
    const budget = createByteBudget(1024, 256);
    expect(budget.take(1024, 0)).toBe(true);
    expect((await readBounded(source(2, 100).stream, 4096, { budget })).byteLength).toBe(200);
    await expect(readBounded(source(4, 100).stream, 4096, { budget })).rejects.toBeInstanceOf(
      BudgetExceededError,
    );
    expect(budget.used).toBe(1024);
  });

  test('past the floor, a response reserves whole steps, so only a few large ones are read at once', () => {
    const dropped: number[] = [];
    const budget = createByteBudget(8192, 256, (bytes) => dropped.push(bytes), 4096);
    expect(budget.take(300, 0)).toBe(true);
    expect(budget.used).toBe(4096);
    // Growing within its step costs nothing more.
    expect(budget.take(3000, 300)).toBe(true);
    expect(budget.used).toBe(4096);
    expect(budget.take(300, 0)).toBe(true);
    expect(budget.used).toBe(8192);
    // A third large one does not fit; a small one still does.
    expect(budget.take(300, 0)).toBe(false);
    expect(budget.take(200, 0)).toBe(true);
    budget.give(200);
    // A response given up is reported, so that its garbage can be collected.
    budget.give(3300, true);
    budget.give(300);
    expect(budget.used).toBe(0);
    expect(dropped).toEqual([3300]);
  });
});
