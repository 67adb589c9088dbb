// HTTP bodies read with a size cap, for both binaries: a peer that sends without end costs at most the cap.
import { formatBytes } from './sizes.ts';

/** Most either binary reads of one response from the service behind it (Incus, the daemon). */
export const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

export class BodyTooLargeError extends Error {
  override name = 'BodyTooLargeError';
  constructor(readonly limit: number) {
    super(`body larger than ${formatBytes(limit)}`);
  }
}

/** The bytes a shared budget had left were not enough for one more part of a response. */
export class BudgetExceededError extends BodyTooLargeError {
  override name = 'BudgetExceededError';
}

/**
 * One byte budget for all the responses being read at the same time, so that many large answers
 * at once cost at most `limit` bytes (plus `floor` per response) instead of the per-response cap
 * times the number of calls. Each response may always hold its first `floor` bytes, so small
 * answers never fail because large ones are in flight; past the floor it reserves whole `step`s.
 * `reclaim` hears of the bytes of each response given up (garbage from then on).
 */
export function createByteBudget(
  limit: number,
  floor = 0,
  reclaim: (bytes: number) => void = () => {},
  step = 1,
) {
  let used = 0;
  // What a response holding `held` bytes counts against the budget: its bytes up to the floor,
  // then whole steps.
  const cost = (held: number) => (held <= floor ? held : Math.ceil(held / step) * step);
  return {
    limit,
    /** Bytes held (or reserved) now by the responses being read. */
    get used() {
      return used;
    },
    /** Takes `bytes` more for a response already holding `held`; false when the budget is spent. */
    take(bytes: number, held: number): boolean {
      const more = cost(held + bytes) - cost(held);
      if (held + bytes > floor && used + more > limit) return false;
      used += more;
      return true;
    },
    /** Gives back what a response held; `dropped` when it was thrown away, not kept. */
    give(held: number, dropped = false): void {
      if (dropped && held > 0) reclaim(held);
      used -= cost(held);
    },
  };
}
export type ByteBudget = ReturnType<typeof createByteBudget>;

/**
 * Reads a body whole, or throws BodyTooLargeError once it declares or passes `limit` bytes,
 * reading no further. Every chunk is counted even under a Content-Length: a compressed body
 * grows when decoded. When `signal` aborts first, the read stops with its reason. With a
 * `budget`, each chunk is also taken from it (and given back once the read ends): when the budget
 * is spent, the read fails with BudgetExceededError, reading no further.
 */
export async function readBounded(
  body: ReadableStream<Uint8Array> | null,
  limit: number,
  options: { declaredLength?: string | null; signal?: AbortSignal; budget?: ByteBudget } = {},
): Promise<Uint8Array> {
  if (Number(options.declaredLength ?? 0) > limit) {
    await body?.cancel().catch(() => undefined);
    throw new BodyTooLargeError(limit);
  }
  if (!body) return new Uint8Array(0);
  const reader = body.getReader();
  const { signal, budget } = options;
  let stop: (() => void) | undefined;
  const aborted = signal
    ? new Promise<never>((_, reject) => {
        stop = () => reject(signal.reason);
        if (signal.aborted) stop();
        else signal.addEventListener('abort', stop, { once: true });
      })
    : undefined;
  const chunks: Uint8Array[] = [];
  let total = 0;
  let held = 0;
  let kept = false;
  try {
    for (;;) {
      const { done, value } = await (aborted
        ? Promise.race([reader.read(), aborted])
        : reader.read());
      if (done) {
        kept = true;
        return Buffer.concat(chunks, total);
      }
      total += value.byteLength;
      if (total > limit) throw new BodyTooLargeError(limit);
      if (budget && !budget.take(value.byteLength, held))
        throw new BudgetExceededError(budget.limit);
      held += value.byteLength;
      chunks.push(value);
    }
  } catch (error) {
    void reader.cancel().catch(() => undefined);
    throw error;
  } finally {
    // What a failed read held is garbage now: dropped here, so that reclaiming it can free it.
    if (!kept) chunks.length = 0;
    budget?.give(held, !kept);
    if (stop) signal?.removeEventListener('abort', stop);
  }
}

/**
 * The response with its body already read through readBounded, for use as a `fetch` wrapper:
 * whatever reads it later (ky's `.json()`, `.text()`) can never hold more than `limit` bytes.
 */
export async function boundedResponse(
  response: Response,
  limit: number,
  budget?: ByteBudget,
): Promise<Response> {
  const body = await readBounded(response.body, limit, {
    declaredLength: response.headers.get('content-length'),
    ...(budget && { budget }),
  });
  return new Response(body, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
}
