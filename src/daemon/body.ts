// Request bodies: read whole, bounded in size and time, before any route runs; then JSON.
import { BodyTooLargeError, readBounded } from '../shared/bounded-body.ts';
import { formatBytes } from '../shared/sizes.ts';
import { DaemonError } from './errors.ts';

export const MAX_BODY_BYTES = 1024 * 1024;
export const BODY_DEADLINE_MS = 30_000;

/** Bad input like any other: a 400 with the reason, and the rest of the body is never read. */
const tooLarge = (limit: number) =>
  new DaemonError('invalid', `request body larger than ${formatBytes(limit)}`);

/** A body that did not arrive within the deadline; the request is answered 408 and its connection closed. */
export class BodyLateError extends Error {
  constructor(readonly deadlineMs: number) {
    super(`request body did not arrive within ${formatDeadline(deadlineMs)}`);
  }
}

const formatDeadline = (ms: number) => (ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`);

/** Reads at most `limit` bytes, all within `deadlineMs`. */
export async function readBody(
  request: Request,
  limit: number,
  deadlineMs: number,
): Promise<Uint8Array> {
  try {
    return await readBounded(request.body, limit, {
      declaredLength: request.headers.get('content-length'),
      signal: AbortSignal.timeout(deadlineMs),
    });
  } catch (error) {
    if (error instanceof BodyTooLargeError) throw tooLarge(limit);
    if (error instanceof DOMException && error.name === 'TimeoutError') {
      throw new BodyLateError(deadlineMs);
    }
    throw error;
  }
}

/** The body as JSON; an empty body is `{}` (grpc-gateway tolerates EOF). */
export function parseJson(bytes: Uint8Array): unknown {
  const source = new TextDecoder('utf-8', { fatal: true });
  let text: string;
  try {
    text = source.decode(bytes);
  } catch {
    throw new DaemonError('invalid', 'malformed JSON body: not UTF-8 text');
  }
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch (error) {
    const detail = error instanceof Error ? error.message : 'syntax error';
    throw new DaemonError('invalid', `malformed JSON body: ${detail}`);
  }
}
