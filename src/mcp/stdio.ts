// Newline-delimited JSON-RPC over stdin/stdout that survives bad input: framing only, on Bun's
// own I/O (Bun.stdin's stream and Bun.stdout's writer start faster than process.stdin/stdout).
import type { JSONRPCMessage, Transport } from '@modelcontextprotocol/server';

/** Longest accepted line; a longer one is answered with an error and skipped, never fatal. */
export const MAX_LINE_BYTES = 16 * 1024 * 1024;
/**
 * Unanswered requests at which stdin stops being read until half of them are answered: a burst
 * waits in the pipe rather than in memory.
 */
export const MAX_PENDING_REQUESTS = 256;

/** Where replies go: Bun's FileSink (`Bun.stdout.writer()`), or anything shaped like it. */
export type LineSink = {
  write(chunk: string): unknown;
  /** Sends what was written; a promise while the reader has not taken it yet. */
  flush(): number | Promise<number>;
};

type Id = string | number;
type Request = { method: string; params?: unknown };

/** What the server module does to requests on their way in, and to its error answers. */
export type RequestHooks = {
  /** Readies a request for the server, or says why its params are invalid (a -32602). */
  prepare?(request: Request): string | undefined;
  /** One sentence to answer with (a -32602) instead of the server's error, or undefined to keep it. */
  reword?(request: Request, error: { code: number; message: string }): string | undefined;
  /** Cleans the message of every error answer (the framing's own echo part of the input). */
  redact?(text: string): string;
};
/** A JSON-RPC id (or progress token): a string or a finite number. */
export const isId = (id: unknown): id is Id =>
  typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id));

const errorReply = (id: Id | null, code: number, message: string) =>
  ({ jsonrpc: '2.0', id, error: { code, message } }) as unknown as JSONRPCMessage;

/**
 * The SDK's stdio transport drops unparsable lines without an answer, refuses lines past its
 * buffer cap, and aborts the requests in flight when stdin ends. This one answers bad lines as
 * JSON-RPC requires (-32700, -32600) and keeps serving, takes lines up to 16 MiB, and lets
 * requests in flight finish when stdin ends, so `printf '...' | mcp-server` gets its answers. The
 * SDK's stdio entry serves both protocol eras over it; what a request means is the hooks' business.
 */
export class LineTransport implements Transport {
  onmessage?: (message: JSONRPCMessage) => void;
  onclose?: () => void;
  onerror?: (error: Error) => void;

  /** Settles once the transport has closed and every reply has been flushed. */
  readonly finished: Promise<void>;
  private finish!: () => void;
  private chunks: Buffer[] = [];
  private size = 0;
  private skipping = false;
  /** Requests not yet answered, by id: what an error answer is reworded from. */
  private pending = new Map<Id, Request>();
  private ended = false;
  private closed = false;
  private paused = false;
  /** Data read from stdin but not yet split into lines, kept while paused. */
  private unread: Buffer | undefined;
  /** Settles when stdout has taken the replies; one wait shared by every reply written meanwhile. */
  private drained: Promise<void> | undefined;
  /** Replies written while a flush was under way: they need one more. */
  private dirty = false;
  private reader: { cancel(): Promise<void> } | undefined;
  /** Wakes the read loop when reading may go on after a pause. */
  private resumeReading: (() => void) | undefined;

  constructor(
    private readonly input: ReadableStream<Uint8Array>,
    private readonly output: LineSink,
    private readonly debug: ((line: string) => void) | undefined = undefined,
    private readonly hooks: RequestHooks = {},
  ) {
    this.finished = new Promise((resolve) => {
      this.finish = resolve;
    });
  }

  async start(): Promise<void> {
    void this.read();
  }

  /** Reads until end of input, waiting while paused: unread data stays in the pipe meanwhile. */
  private async read() {
    const reader = this.input.getReader();
    this.reader = reader;
    try {
      for (;;) {
        if (this.paused) await new Promise<void>((resolve) => (this.resumeReading = resolve));
        if (this.closed) return;
        const { done, value } = await reader.read();
        if (done) break;
        const data = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
        this.unread = this.unread ? Buffer.concat([this.unread, data]) : data;
        this.readLines();
      }
    } catch (error) {
      if (this.closed) return;
      this.onerror?.(error as Error);
    }
    this.ended = true;
    this.closeWhenIdle();
  }

  /** Handles the unread lines until too many requests are unanswered; the rest waits. */
  private readLines() {
    let data = this.unread;
    this.unread = undefined;
    if (!data) return;
    for (let newline = data.indexOf(10); newline !== -1; newline = data.indexOf(10)) {
      this.push(data.subarray(0, newline));
      const line = Buffer.concat(this.chunks, this.size);
      const skipped = this.skipping;
      this.chunks = [];
      this.size = 0;
      this.skipping = false;
      if (!skipped) this.handleLine(line.toString('utf8'));
      data = data.subarray(newline + 1);
      if (this.paused) {
        if (data.length > 0) this.unread = data;
        return;
      }
    }
    this.push(data);
  }

  private push(part: Buffer) {
    if (this.skipping || part.length === 0) return;
    if (this.size + part.length > MAX_LINE_BYTES) {
      this.chunks = [];
      this.size = 0;
      this.skipping = true;
      this.reply(
        errorReply(null, -32600, `Invalid Request: message longer than ${MAX_LINE_BYTES} bytes`),
      );
      return;
    }
    this.chunks.push(part);
    this.size += part.length;
  }

  private handleLine(raw: string) {
    const line = raw.trim();
    if (line === '') return;
    this.debug?.(`<- ${line}`);
    let message: unknown;
    try {
      message = JSON.parse(line);
    } catch (error) {
      this.reply(errorReply(null, -32700, `Parse error: ${(error as Error).message}`));
      return;
    }
    if (typeof message !== 'object' || message === null || Array.isArray(message)) {
      const why = Array.isArray(message) ? 'batches are not supported' : 'expected a JSON object';
      this.reply(errorReply(null, -32600, `Invalid Request: ${why}`));
      return;
    }
    const m = message as Record<string, unknown>;
    // "id": null is present, so it makes an invalid request rather than a notification.
    const hasId = 'id' in m;
    const validId = hasId && isId(m.id);
    if (m.jsonrpc !== '2.0' || (hasId && !validId)) {
      // A notification is never answered, even a broken one.
      if (typeof m.method === 'string' && !hasId) return;
      const id = validId ? (m.id as Id) : null;
      this.reply(
        errorReply(id, -32600, 'Invalid Request: expected JSON-RPC 2.0 with a string or number id'),
      );
      return;
    }
    if (typeof m.method === 'string') {
      const invalid = hasId ? this.hooks.prepare?.(m as Request) : undefined;
      if (invalid) {
        this.reply(errorReply(m.id as Id, -32602, invalid));
        return;
      }
      if (hasId) {
        this.pending.set(m.id as Id, m as Request);
        if (this.pending.size >= MAX_PENDING_REQUESTS) this.paused = true;
      }
      // A cancelled request gets no answer, so it must not keep the process alive at EOF.
      if (m.method === 'notifications/cancelled') {
        const id = (m.params as { requestId?: unknown } | undefined)?.requestId;
        if (isId(id)) queueMicrotask(() => this.forget(id));
      }
    } else if (!hasId || !('result' in m || 'error' in m)) {
      this.reply(errorReply(hasId ? (m.id as Id) : null, -32600, 'Invalid Request: no method'));
      return;
    }
    this.onmessage?.(m as JSONRPCMessage);
  }

  private closeWhenIdle() {
    if (this.ended && this.pending.size === 0) void this.close();
  }

  private reply(message: JSONRPCMessage) {
    void this.send(message);
  }

  async send(message: JSONRPCMessage): Promise<void> {
    if (this.closed) return;
    const line = JSON.stringify(this.reworded(message));
    this.debug?.(`-> ${line}`);
    const m = message as { id?: unknown; method?: unknown };
    this.output.write(`${line}\n`);
    await this.flush();
    // Answered once flushed: a reader slow to take replies slows the reading of requests too.
    if (isId(m.id) && m.method === undefined) this.forget(m.id);
  }

  /** The message, or its error answer reworded by the hook. */
  private reworded(message: JSONRPCMessage): JSONRPCMessage {
    const { id, error } = message as { id?: unknown; error?: { code: number; message: string } };
    const request = error && isId(id) ? this.pending.get(id) : undefined;
    const sentence =
      request && this.hooks.reword?.(request, error as { code: number; message: string });
    if (sentence) return errorReply(id as Id, -32602, this.hooks.redact?.(sentence) ?? sentence);
    const { redact } = this.hooks;
    if (!error || !redact || typeof error.message !== 'string') return message;
    return { ...message, error: { ...error, message: redact(error.message) } } as JSONRPCMessage;
  }

  /** Flushes stdout; while one flush waits for the reader, later replies wait for it too. */
  private flush(): Promise<void> | undefined {
    if (this.drained) {
      this.dirty = true;
      return this.drained;
    }
    const flushed = this.output.flush();
    if (typeof flushed === 'number') return undefined;
    this.drained = flushed.then(() => {
      this.drained = undefined;
      if (!this.dirty) return;
      this.dirty = false;
      return this.flush();
    });
    return this.drained;
  }

  private forget(id: Id) {
    if (!this.pending.delete(id)) return;
    if (this.paused && this.pending.size <= MAX_PENDING_REQUESTS / 2) {
      this.paused = false;
      this.readLines();
      if (!this.paused) this.resumeReading?.();
    }
    this.closeWhenIdle();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // The last replies reach the pipe before anyone learns the transport is closed.
    await this.flush();
    this.closed = true;
    this.resumeReading?.();
    if (!this.ended) void this.reader?.cancel().catch(() => {});
    this.onclose?.();
    this.finish();
  }
}
