// Time for code that waits (retry pauses, polls, deadlines): injectable, so tests step it instead
// of sleeping.
export type Clock = {
  /** Epoch milliseconds. */
  now(): number;
  sleep(ms: number): Promise<void>;
};

export const systemClock: Clock = { now: () => Date.now(), sleep: (ms) => Bun.sleep(ms) };
