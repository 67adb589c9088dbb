// The REST client's waits: retries of reads honour Retry-After up to a cap, through an injected
// wait, so no test sleeps or measures time.
import { afterAll, describe, expect, test } from 'bun:test';
import { HTTPError } from 'ky';
import * as v from 'valibot';
import {
  createClient,
  MAX_RESPONSES_BYTES,
  MAX_RETRY_WAIT_MS,
  RouteUnsupportedError,
  retryWait,
} from '../../src/mcp/client.ts';
import type { Config } from '../../src/mcp/config.ts';
import { MAX_RESPONSE_BYTES } from '../../src/shared/bounded-body.ts';
import { connectMcp, makeToken } from '../support/mcp.ts';

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

describe('get: a read a tool file declares itself', () => {
  const daemon = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    fetch(request) {
      const status = Number(new URL(request.url).pathname.split('/').at(-1));
      return status === 200
        ? Response.json({ things: ['a'] })
        : Response.json({ code: status, error: 'rpc error: code = X desc = no' }, { status });
    },
  });
  afterAll(() => daemon.stop(true));

  const client = async () => {
    const token = await makeToken();
    return createClient({
      serverUrl: daemon.url.href.replace(/\/$/, ''),
      token: { origin: 'CONTAINARIUM_JWT_TOKEN', get: () => token, expiresAt: () => undefined },
      debug: false,
    });
  };
  const Things = v.object({ things: v.array(v.string()) });

  test('reads the answer with the schema it is given', async () => {
    expect(await (await client()).get('v1/things/200', Things)).toEqual({ things: ['a'] });
  });

  test('a route this project added: 404 and 501 mean the daemon lacks it', async () => {
    for (const status of [404, 501]) {
      const error = await (await client())
        .get(`v1/things/${status}`, Things, { feature: 'listing things' })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RouteUnsupportedError);
      expect(error).toMatchObject({
        route: `GET /v1/things/${status}`,
        feature: 'listing things',
        status,
      });
    }
  });

  test('other failures, and any failure of an upstream route, stay HTTP errors', async () => {
    const c = await client();
    const failed = (path: string, call = {}) => c.get(path, Things, call).catch((e: unknown) => e);
    expect(await failed('v1/things/500', { feature: 'listing things' })).toBeInstanceOf(HTTPError);
    expect(await failed('v1/things/404')).toBeInstanceOf(HTTPError);
  });
});

describe('many oversized answers at once', () => {
  // Every container read answers with a body that never ends, in 64 KiB chunks.
  const chunk = new Uint8Array(64 * 1024).fill(0x20);
  const daemon = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    fetch: (request) =>
      new URL(request.url).pathname.startsWith('/v1/containers/')
        ? new Response(
            new ReadableStream({
              pull(controller) {
                controller.enqueue(chunk);
              },
            }),
            { headers: { 'content-type': 'application/json' } },
          )
        : Response.json({ code: 404, error: 'no route' }, { status: 404 }),
  });
  afterAll(() => daemon.stop(true));

  test('share one budget: every call is answered, those over it with the sentence that says so', async () => {
    const token = await makeToken();
    const mcp = await connectMcp({
      CONTAINARIUM_SERVER_URL: daemon.url.href,
      CONTAINARIUM_JWT_TOKEN: token,
    });
    try {
      // Eight responses of 16 MiB each would hold 128 MiB; the budget is half of that.
      expect(8 * MAX_RESPONSE_BYTES).toBeGreaterThan(MAX_RESPONSES_BYTES);
      const results = await Promise.all(
        Array.from({ length: 8 }, () => mcp.call('get_container', { username: 'alice' })),
      );
      for (const result of results) {
        expect(result.isError).toBe(true);
        expect(result.text).toMatch(/^The daemon's responses? .*exceeded \d+ MiB/);
      }
      const together = results.filter((r) => r.text.includes('together'));
      expect(together.length).toBeGreaterThan(0);
      expect(together[0]!.text).toContain(
        `exceeded ${MAX_RESPONSES_BYTES / 1024 / 1024} MiB together`,
      );
      expect(together[0]!.text).toContain('Retry when fewer calls are running');
    } finally {
      await mcp[Symbol.asyncDispose]();
    }
  }, 60_000);
});
