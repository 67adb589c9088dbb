// Retrying an idempotent step after a transient Incus failure, with a growing pause.
import { errorText } from '../shared/error-text.ts';
import type { Clock } from './clock.ts';
import type { Logger } from './log.ts';

/** Incus failures that say nothing about the container and pass when tried again (seen under load). */
export const isTransient = (error: unknown): boolean =>
  /Failed to retrieve PID of executing child process|websocket|Operation not found|connection reset|ECONNRESET|socket connection was closed/i.test(
    message(error),
  );

/** The text of a failure, for messages and logs. */
export const message = (error: unknown) => errorText(error);

export type Retry = <T>(what: string, step: () => Promise<T>) => Promise<T>;

/**
 * Runs one idempotent step, again after a transient Incus failure (up to `attempts` in all,
 * pausing `delayMs`, then twice that, ...); any other failure, or the last one, is thrown.
 */
export function retrying(options: {
  attempts: number;
  delayMs: number;
  clock: Clock;
  log: Logger;
}): Retry {
  const { attempts, delayMs, clock, log } = options;
  return async (what, step) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await step();
      } catch (error) {
        if (attempt >= attempts || !isTransient(error)) throw error;
        log(`${what}: ${message(error)}; trying again (${attempt}/${attempts - 1})`);
        await clock.sleep(delayMs * attempt);
      }
    }
  };
}
