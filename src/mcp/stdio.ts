// stdio for mcp-server: newline-delimited JSON-RPC that survives bad input, then the process wiring.
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { createClient } from './client.ts';
import { ConfigError, configWarnings, loadConfig, secretsOf } from './config.ts';
import { log, redact } from './log.ts';

/** Longest accepted line; a longer one is answered with an error and skipped, never fatal. */
export const MAX_LINE_BYTES = 16 * 1024 * 1024;
/**
 * Unanswered requests at which stdin stops being read until half of them are answered: a burst
 * waits in the pipe rather than in memory.
 */
export const MAX_PENDING_REQUESTS = 256;

type Id = string | number;
type Request = { method: string; params?: unknown };
const isId = (id: unknown): id is Id =>
  typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id));

const errorReply = (id: Id | null, code: number, message: string) =>
  ({ jsonrpc: '2.0', id, error: { code, message } }) as unknown as JSONRPCMessage;

const isObject = (value: unknown) =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Why a request's params break the MCP schema, for a -32602 the SDK would send as -32603. */
function paramsProblem(method: string, params: unknown): string | undefined {
  if (params === undefined) {
    return method === 'tools/call' ? 'tools/call needs params with the tool name' : undefined;
  }
  if (!isObject(params)) return 'params must be an object';
  if (method !== 'tools/call') return undefined;
  const { name, arguments: args } = params as { name?: unknown; arguments?: unknown };
  if (typeof name !== 'string') return 'tools/call params need "name", the tool name as a string';
  if (args !== undefined && !isObject(args)) {
    return 'tools/call arguments must be an object of named arguments';
  }
  return undefined;
}

/**
 * The SDK's stdio transport drops unparsable lines without an answer and closes on a long one;
 * this one answers them as JSON-RPC requires (-32700, -32600) and keeps serving. It also lets
 * requests in flight finish when stdin ends, so `printf '...' | mcp-server` gets its answers.
 */
export class LineTransport implements Transport {
  onmessage?: (message: JSONRPCMessage) => void;
  onclose?: () => void;
  onerror?: (error: Error) => void;

  private chunks: Buffer[] = [];
  private size = 0;
  private skipping = false;
  private pending = new Set<Id>();
  private ended = false;
  private closed = false;
  private paused = false;
  /** Data read from stdin but not yet split into lines, kept while paused. */
  private unread: Buffer | undefined;
  /** Settles when stdout drains; one wait shared by every reply written meanwhile. */
  private drained: Promise<void> | undefined;

  constructor(
    private readonly input: NodeJS.ReadableStream = process.stdin,
    private readonly output: NodeJS.WritableStream = process.stdout,
    private readonly debug: ((line: string) => void) | undefined = undefined,
    /** Readies a request for the server, or says why its params are invalid (a -32602). */
    private readonly prepare: ((request: Request) => string | undefined) | undefined = undefined,
  ) {}

  async start(): Promise<void> {
    this.input.on('data', this.onData);
    this.input.on('end', this.onEnd);
    this.input.on('error', (error: Error) => this.onerror?.(error));
  }

  private onData = (chunk: Buffer | string) => {
    const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    this.unread = this.unread ? Buffer.concat([this.unread, data]) : data;
    this.readLines();
  };

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
      const problem = paramsProblem(m.method, m.params);
      if (problem) {
        if (hasId) this.reply(errorReply(m.id as Id, -32602, `Invalid params: ${problem}`));
        return;
      }
      const invalid = hasId ? this.prepare?.(m as Request) : undefined;
      if (invalid) {
        this.reply(errorReply(m.id as Id, -32602, invalid));
        return;
      }
      if (hasId) {
        this.pending.add(m.id as Id);
        if (this.pending.size >= MAX_PENDING_REQUESTS && !this.paused) {
          this.paused = true;
          this.input.pause();
        }
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

  private onEnd = () => {
    this.ended = true;
    this.closeWhenIdle();
  };

  private closeWhenIdle() {
    if (this.ended && this.pending.size === 0) void this.close();
  }

  private reply(message: JSONRPCMessage) {
    void this.send(message);
  }

  async send(message: JSONRPCMessage): Promise<void> {
    if (this.closed) return;
    const line = JSON.stringify(message);
    this.debug?.(`-> ${line}`);
    const m = message as { id?: unknown; method?: unknown };
    if (!this.output.write(`${line}\n`)) {
      this.drained ??= new Promise<void>((resolve) =>
        this.output.once('drain', () => {
          this.drained = undefined;
          resolve();
        }),
      );
      await this.drained;
    }
    // Answered once flushed: a reader slow to take replies slows the reading of requests too.
    if (isId(m.id) && m.method === undefined) this.forget(m.id);
  }

  private forget(id: Id) {
    if (!this.pending.delete(id)) return;
    if (this.paused && this.pending.size <= MAX_PENDING_REQUESTS / 2) {
      this.paused = false;
      this.readLines();
      if (!this.paused) this.input.resume();
    }
    this.closeWhenIdle();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.input.off('data', this.onData);
    this.input.off('end', this.onEnd);
    this.onclose?.();
  }
}

/** mcp-server's main loop: config from the environment, then MCP over stdin/stdout. */
export async function serveStdio(): Promise<void> {
  let config: ReturnType<typeof loadConfig> | undefined;
  let configError: string | undefined;
  try {
    config = loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    // Still served: each tool call answers with this, where the client shows it.
    configError = error.message;
    process.stderr.write(`${redact(configError)}\n`);
  }
  for (const warning of config ? configWarnings(config) : []) log(`warning: ${warning}`);
  const debug = config?.debug
    ? (line: string) =>
        process.stderr.write(
          `containarium-mcp: ${redact(line, secretsOf(config)).slice(0, 4000)}\n`,
        )
    : undefined;
  const { createServer, prepareRequest } = await import('./server.ts');
  const server = createServer(
    config ? { client: createClient(config), config } : { configError: configError ?? '' },
  );
  const transport = new LineTransport(process.stdin, process.stdout, debug, (request) =>
    prepareRequest(server, request),
  );
  // Exit once the last answer has been flushed to the pipe.
  transport.onclose = () => process.stdout.write('', () => process.exit(0));
  await server.connect(transport);
  log(
    config
      ? `serving MCP on stdio for ${config.serverUrl}${config.debug ? ' (debug on)' : ''}`
      : 'serving MCP on stdio; every tool call reports the configuration error above',
  );
}
