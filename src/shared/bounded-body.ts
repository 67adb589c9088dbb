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

/**
 * Reads a body whole, or throws BodyTooLargeError once it declares or passes `limit` bytes,
 * reading no further. Every chunk is counted even under a Content-Length: a compressed body
 * grows when decoded. When `signal` aborts first, the read stops with its reason.
 */
export async function readBounded(
  body: ReadableStream<Uint8Array> | null,
  limit: number,
  options: { declaredLength?: string | null; signal?: AbortSignal } = {},
): Promise<Uint8Array> {
  if (Number(options.declaredLength ?? 0) > limit) {
    await body?.cancel().catch(() => undefined);
    throw new BodyTooLargeError(limit);
  }
  if (!body) return new Uint8Array(0);
  const reader = body.getReader();
  const { signal } = options;
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
  try {
    for (;;) {
      const { done, value } = await (aborted
        ? Promise.race([reader.read(), aborted])
        : reader.read());
      if (done) return Buffer.concat(chunks, total);
      total += value.byteLength;
      if (total > limit) throw new BodyTooLargeError(limit);
      chunks.push(value);
    }
  } catch (error) {
    void reader.cancel().catch(() => undefined);
    throw error;
  } finally {
    if (stop) signal?.removeEventListener('abort', stop);
  }
}

/**
 * The response with its body already read through readBounded, for use as a `fetch` wrapper:
 * whatever reads it later (ky's `.json()`, `.text()`) can never hold more than `limit` bytes.
 */
export async function boundedResponse(response: Response, limit: number): Promise<Response> {
  const body = await readBounded(response.body, limit, {
    declaredLength: response.headers.get('content-length'),
  });
  return new Response(body, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
}
