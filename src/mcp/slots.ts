// A bound on tool calls running against the daemon at once: the rest wait their turn in order,
// so a burst of calls costs queue entries, not connections and buffered responses.

/** Tool calls that may talk to the daemon at the same time. */
export const MAX_CONCURRENT_CALLS = 32;

export function createSlots(limit: number = MAX_CONCURRENT_CALLS) {
  let running = 0;
  // Insertion-ordered, and a cancelled waiter leaves it in O(1).
  const waiting = new Set<() => void>();

  /** Resolves once a slot is held; rejects with the signal's reason if cancelled while waiting. */
  const acquire = (signal: AbortSignal): Promise<void> => {
    if (signal.aborted) return Promise.reject(signal.reason);
    if (running < limit) {
      running += 1;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const turn = () => {
        signal.removeEventListener('abort', cancel);
        resolve();
      };
      const cancel = () => {
        waiting.delete(turn);
        reject(signal.reason);
      };
      waiting.add(turn);
      signal.addEventListener('abort', cancel, { once: true });
    });
  };

  /** Hands the slot to the first waiter, or frees it. */
  const release = () => {
    const next = waiting.values().next();
    if (next.done) running -= 1;
    else {
      waiting.delete(next.value);
      next.value();
    }
  };

  return {
    /** Runs `task` once a slot is free; a call cancelled while it waits never runs. */
    async run<T>(signal: AbortSignal, task: () => Promise<T>): Promise<T> {
      await acquire(signal);
      try {
        return await task();
      } finally {
        release();
      }
    },
  };
}
