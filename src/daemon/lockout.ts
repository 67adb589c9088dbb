// Failed-login accounting: a token bucket per key (an address, a network, or the whole daemon), in a
// table of bounded size that makes room by forgetting counts, never a live lock-out.

export type Limit = {
  /** Failures a key may make at once; the bucket refills at `max` per `windowMs`. */
  max: number;
  windowMs: number;
  /** How long a key that used up its bucket stays locked out. */
  lockoutMs: number;
};

type Bucket = { tokens: number; at: number };

export type LockoutTable = ReturnType<typeof createLockoutTable>;

/** Keys are tracked while they fail and forgotten once they could not be told from a new key. */
export function createLockoutTable(limit: Limit, capacity: number) {
  /** Keys with failures but no lock-out, least recently failed first. */
  const counting = new Map<string, Bucket>();
  /** Keys locked out until the given time; every lock lasts `lockoutMs`, so oldest first. */
  const locked = new Map<string, number>();

  const lockedUntil = (key: string, time: number): number => {
    const until = locked.get(key);
    if (until === undefined) return 0;
    if (until > time) return until;
    locked.delete(key);
    return 0;
  };

  /** Makes room for one more key; false when every entry is a live lock-out. */
  const makeRoom = (time: number): boolean => {
    if (counting.size + locked.size < capacity) return true;
    for (const [key, until] of locked) {
      if (until > time) break;
      locked.delete(key);
    }
    if (counting.size + locked.size < capacity) return true;
    const oldest = counting.keys().next();
    if (oldest.done) return false;
    counting.delete(oldest.value);
    return true;
  };

  return {
    /** When the key's lock-out ends (epoch ms), or 0 when it is not locked out. */
    lockedUntil,
    /**
     * Counts one failure of a key that is not locked out; true when this failure uses up its
     * bucket and starts a lock-out. A key the full table has no room for is not counted: the
     * wider tables (network, everyone) still count it.
     */
    fail(key: string, time: number): boolean {
      let bucket = counting.get(key);
      if (bucket) counting.delete(key);
      else if (makeRoom(time)) bucket = { tokens: limit.max, at: time };
      else return false;
      bucket.tokens = Math.min(
        limit.max,
        bucket.tokens + ((time - bucket.at) * limit.max) / limit.windowMs,
      );
      bucket.at = time;
      bucket.tokens -= 1;
      // Locked as soon as the bucket cannot pay for another failure: `max` quick failures lock.
      if (bucket.tokens < 1) {
        locked.set(key, time + limit.lockoutMs);
        return true;
      }
      counting.set(key, bucket);
      return false;
    },
    /** Entries held (for tests of the bound). */
    get size() {
      return counting.size + locked.size;
    },
  };
}
