// A clock that moves only when code sleeps on it: waits cost no time and are recorded.
import type { Clock } from '../../src/daemon/clock.ts';

export function fakeClock(start = 1_736_930_000_000): Clock & { slept: number[] } {
  let time = start;
  const slept: number[] = [];
  return {
    slept,
    now: () => time,
    async sleep(ms) {
      slept.push(ms);
      time += ms;
    },
  };
}
