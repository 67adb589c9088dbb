import { describe, expect, test } from 'bun:test';
import { BodyTooLargeError, readBounded } from '../../src/shared/bounded-body.ts';

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
