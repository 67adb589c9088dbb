// The REST client's waits: retries of reads honour Retry-After up to a cap, through an injected
// wait, so no test sleeps or measures time.
import { afterAll, describe, expect, test } from 'bun:test';
import { HTTPError } from 'ky';
import { createClient, MAX_RETRY_WAIT_MS, retryWait } from '../../src/mcp/client.ts';
import type { Config } from '../../src/mcp/config.ts';
import { makeToken } from '../support/mcp.ts';

const busy = (headers: Record<string, string> = {}) =>
  new HTTPError(
    new Response('{}', { status: 503, headers }),
    new Request('http://127.0.0.1:9/v1/containers'),
    // biome-ignore lint/suspicious/noExplicitAny: ky's normalized options are not needed here
    {} as any,
  );

describe('retryWait', () => {
  test('without Retry-After: 300 ms, doubling', () => {
    expect([1, 2, 3].map((n) => retryWait(busy(), n))).toEqual([300, 600, 1200]);
  });

  test('Retry-After in seconds counts, up to the cap', () => {
    expect(retryWait(busy({ 'retry-after': '1' }), 1)).toBe(1000);
    expect(retryWait(busy({ 'retry-after': '60' }), 1)).toBe(MAX_RETRY_WAIT_MS);
  });

  test('Retry-After as a date counts from the injected now', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryWait(busy({ 'retry-after': 'Thu, 01 Jan 2026 00:00:01 GMT' }), 1, now)).toBe(1000);
    expect(retryWait(busy({ 'retry-after': 'Wed, 31 Dec 2025 00:00:00 GMT' }), 1, now)).toBe(0);
  });
});

describe('a read retried after 503', () => {
  let answers = 0;
  const daemon = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    fetch: () =>
      ++answers <= 2
        ? new Response('{"error":"busy","code":503}', {
            status: 503,
            headers: { 'content-type': 'application/json', 'retry-after': '60' },
          })
        : Response.json({ containers: [], totalCount: 0 }),
  });
  afterAll(() => daemon.stop(true));

  test('waits through the injected wait, as long as Retry-After says up to the cap', async () => {
    const token = await makeToken();
    const config: Config = {
      serverUrl: daemon.url.href.replace(/\/$/, ''),
      token: { origin: 'CONTAINARIUM_JWT_TOKEN', get: () => token, expiresAt: () => undefined },
      debug: false,
    };
    const waits: number[] = [];
    const client = createClient(config, {
      wait: async (ms) => {
        waits.push(ms);
      },
    });
    const { containers } = await client.listContainers();
    expect(containers).toEqual([]);
    expect(answers).toBe(3);
    expect(waits).toEqual([MAX_RETRY_WAIT_MS, MAX_RETRY_WAIT_MS]);
  });
});
