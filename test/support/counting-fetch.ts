// A fetch that counts the calls sent through it: how tests and the benchmark count Incus calls,
// so the daemon's code carries no counter of its own.

export function countingFetch(inner: typeof fetch = fetch) {
  const counter = {
    calls: 0,
    fetch: Object.assign(
      (input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) => {
        counter.calls += 1;
        return inner(input, init);
      },
      { preconnect: inner.preconnect },
    ) as typeof fetch,
  };
  return counter;
}
