// Request bodies: bounded in size and time, then JSON, an empty body being {}.
import { describe, expect, test } from 'bun:test';
import { BodyLateError, parseJson, readBody } from '../../src/daemon/body.ts';
import { DaemonError } from '../../src/daemon/errors.ts';

const bytes = (text: string) => new TextEncoder().encode(text);

describe('body', () => {
  test('JSON, with an empty body read as {}', () => {
    expect(parseJson(bytes('{"a":1}'))).toEqual({ a: 1 });
    expect(parseJson(bytes('  '))).toEqual({});
  });

  test('bad JSON and bad UTF-8 are 400s that say so', () => {
    expect(() => parseJson(bytes('{'))).toThrow(DaemonError);
    expect(() => parseJson(bytes('{'))).toThrow('malformed JSON body');
    expect(() => parseJson(new Uint8Array([0xff]))).toThrow('malformed JSON body: not UTF-8 text');
  });

  test('a body over the limit is a 400 naming the limit', async () => {
    const request = new Request('http://x/', { method: 'POST', body: 'x'.repeat(2048) });
    await expect(readBody(request, 1024, 1000)).rejects.toThrow('request body larger than 1 KiB');
  });

  test('a body that never ends is late, with the deadline in the message', async () => {
    const stream = new ReadableStream({ start() {} });
    const request = new Request('http://x/', { method: 'POST', body: stream });
    const error = await readBody(request, 1024, 20).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BodyLateError);
    expect((error as Error).message).toBe('request body did not arrive within 20 ms');
  });
});
