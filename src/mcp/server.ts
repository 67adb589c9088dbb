// The one module that uses the MCP SDK's server API: tools/list and tools/call on the low-level
// Server, served over a stdio transport in both protocol eras (2025 handshake and 2026-07-28).
import { createHash } from 'node:crypto';
import {
  type CallToolResult,
  CLIENT_CAPABILITIES_META_KEY,
  createMcpHandler,
  createRequestStateCodec,
  type InputRequiredResult,
  inputRequired,
  inputResponse,
  type McpHttpHandler,
  type McpRequestContext,
  type Tool as McpTool,
  ProtocolErrorCode,
  type RequestStateCodec,
  Server,
  type ServerContext,
  type StandardSchemaV1Sync,
  SUPPORTED_PROTOCOL_VERSIONS,
  specTypeSchemas,
  type Transport,
} from '@modelcontextprotocol/server';
import { serveStdio } from '@modelcontextprotocol/server/stdio';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/server/validators/ajv';
import type { toJsonSchema } from '@valibot/to-json-schema';
import * as v from 'valibot';
import { clip } from '../shared/clip.ts';
import { VERSION } from '../shared/version.ts';
import type { ContainariumClient } from './client.ts';
import { asSentences, type Config, secretsOf } from './config.ts';
import { CONFIRM_KEY, confirmSchema, confirms, type Question, UNCONFIRMED } from './confirm.ts';
import { describeFailure } from './errors.ts';
import { TEXT_BUDGET } from './format.ts';
import { type Guards, hiddenBy, hiddenToolText, NO_GUARDS } from './guards.ts';
import { redact } from './log.ts';
import { createSlots } from './slots.ts';
import { isId } from './stdio.ts';
import {
  ANNOTATIONS,
  type AnyTool,
  POLLING,
  type Polling,
  type Progress,
  type ToolContext,
} from './tools/define.ts';

export const SERVER_NAME = 'containarium-mcp-server';

const INSTRUCTIONS =
  'Manages LXC containers on a Containarium server: one container per user, named <username>-container. ' +
  'Call list_containers to see what exists before acting on a user. Deleting is permanent: confirm first.';

/** JSON Schema of a valibot schema, as MCP wants it (no $schema key). */
function jsonSchema(convert: typeof toJsonSchema, schema: v.GenericSchema): McpTool['inputSchema'] {
  const { $schema: _, ...rest } = convert(schema, {
    typeMode: 'input',
    errorMode: 'throw',
    // Custom checks have no JSON Schema form; the server enforces them and names the field.
    ignoreActions: ['trim', 'check'],
  });
  return rest as McpTool['inputSchema'];
}

type Catalog = {
  listed: McpTool[];
  byName: Map<string, AnyTool>;
  /** The tools the guard rails hide, with the setting that hides each. */
  hidden: Map<string, string>;
};

/**
 * The tools as tools/list shows them, converted once and in the order of TOOLS (the same list, in
 * the same order, on every call), and by name for tools/call. Loaded by the first of those: the
 * handshake needs neither the tools nor the converter, so the first answer does not wait for them.
 */
export async function loadCatalog(
  tools?: readonly AnyTool[],
  guards: Guards = NO_GUARDS,
): Promise<Catalog> {
  const [{ toJsonSchema: convert }, { TOOLS }] = await Promise.all([
    import('@valibot/to-json-schema'),
    import('./tools/index.ts'),
  ]);
  const all = tools ?? TOOLS;
  const hidden = new Map(
    all.flatMap((tool) => {
      const reason = hiddenBy(guards, tool);
      return reason ? [[tool.name, reason] as const] : [];
    }),
  );
  const chosen = all.filter((tool) => !hidden.has(tool.name));
  return {
    hidden,
    listed: chosen.map((tool) => ({
      name: tool.name,
      title: tool.title,
      description: tool.description,
      inputSchema: jsonSchema(convert, tool.input),
      outputSchema: jsonSchema(convert, tool.output) as McpTool['outputSchema'],
      annotations: { title: tool.title, ...ANNOTATIONS[tool.effect] },
    })),
    byName: new Map(chosen.map((tool) => [tool.name, tool])),
  };
}

/** One sentence naming each bad argument and the form it should take. */
export function describeIssues(
  issues: readonly v.BaseIssue<unknown>[],
  input?: v.GenericSchema,
): string {
  const entries =
    (input as { entries?: Record<string, v.GenericSchema> } | undefined)?.entries ?? {};
  const parts = issues.slice(0, 5).map((issue) => {
    const path = issue.path?.map((p) => String(p.key)).join('.') ?? '';
    // A rule over several arguments ("at least one of ...") says so itself.
    if (!path)
      return issue.kind === 'validation' ? issue.message : 'the arguments must be an object';
    if (issue.expected === 'never') return `"${path}" is not an argument of this tool`;
    if (issue.input === undefined) {
      const entry = entries[path];
      const about = entry ? v.getDescription(entry) : undefined;
      return `"${path}" is required${about ? ` (${about.replace(/\.$/, '')})` : ''}`;
    }
    const got = JSON.stringify(issue.input) ?? String(issue.input);
    // Too long to quote: described, not cut in the middle of a word.
    const shown =
      got.length <= 60
        ? got
        : typeof issue.input === 'string'
          ? `a string of ${issue.input.length} characters`
          : `a value of ${got.length} characters as JSON`;
    return `"${path}" ${issue.message} (got ${shown})`;
  });
  return `Invalid arguments: ${parts.join('; ')}. Nothing was changed; correct the arguments and call the tool again.`;
}

/** The newest 2025 protocol version the SDK speaks: what an initialize that names none gets. */
const DEFAULT_PROTOCOL_VERSION = SUPPORTED_PROTOCOL_VERSIONS.filter((version) =>
  version.startsWith('2025-'),
)
  .sort()
  .at(-1) as string;

/** What an initialize leaves out means: the default version, no capabilities, an unknown client. */
const INITIALIZE_DEFAULTS = {
  protocolVersion: DEFAULT_PROTOCOL_VERSION,
  capabilities: {},
  clientInfo: { name: 'unknown', version: 'unknown' },
};

type Request = { method: string; params?: unknown };
type SchemaIssue = {
  code: string;
  path: PropertyKey[];
  expected?: string;
  values?: unknown[];
  errors?: SchemaIssue[][];
};
type RequestSchema = StandardSchemaV1Sync;

/** The SDK's schema for each request this server answers, by method. */
const REQUEST_SCHEMAS = new Map<string, RequestSchema>([
  ['initialize', specTypeSchemas.InitializeRequest],
  ['ping', specTypeSchemas.PingRequest],
  ['tools/list', specTypeSchemas.ListToolsRequest],
  ['tools/call', specTypeSchemas.CallToolRequest],
]);

const FORMS: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  object: 'an object',
  record: 'an object',
  array: 'an array',
};

/** "must be a string", "must be a string or a number", "must be one of ...", from the SDK's issue. */
function mustBe(issue: SchemaIssue): string | undefined {
  if (issue.code === 'invalid_type' && issue.expected)
    return FORMS[issue.expected] ?? issue.expected;
  if (issue.code === 'invalid_value' && issue.values) {
    return `one of ${issue.values.map((value) => JSON.stringify(value)).join(', ')}`;
  }
  if (issue.code === 'invalid_union' && issue.errors) {
    const forms = issue.errors.flat().map(mustBe);
    if (forms.every((form) => form !== undefined)) return [...new Set(forms)].join(' or ');
  }
  return undefined;
}

const kindOf = (value: unknown) =>
  value === null
    ? 'null'
    : Array.isArray(value)
      ? 'an array'
      : (FORMS[typeof value] ?? typeof value);

/** One sentence naming the first bad field of a request and the form it takes. */
function describeRequestIssues(request: Request, issues: readonly SchemaIssue[]): string {
  const [issue, ...more] = issues as [SchemaIssue, ...SchemaIssue[]];
  const field = issue.path.length > 1 ? issue.path.slice(1).map(String).join('.') : 'params';
  const value = issue.path.reduce<unknown>(
    (at, key) => (at as Record<PropertyKey, unknown> | undefined)?.[key],
    request,
  );
  const form = mustBe(issue);
  const problem =
    form === undefined
      ? `"${field}" is not valid`
      : value === undefined
        ? `"${field}" is missing; it must be ${form}`
        : `"${field}" must be ${form}, not ${kindOf(value)}`;
  const rest = more.length ? ` (and ${more.length} more problem${more.length > 1 ? 's' : ''})` : '';
  return `Invalid params for ${request.method}: ${problem}${rest}.`;
}

const isObject = (value: unknown) =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** What tools/call params need beyond the schema's wording: the tool name, arguments by name. */
function toolCallProblem(params: unknown): string | undefined {
  if (params === undefined) return 'tools/call needs params with the tool name';
  if (!isObject(params)) return 'params must be an object';
  const { name, arguments: args } = params as { name?: unknown; arguments?: unknown };
  if (typeof name !== 'string') return 'tools/call params need "name", the tool name as a string';
  if (args !== undefined && !isObject(args)) {
    return 'tools/call arguments must be an object of named arguments';
  }
  return undefined;
}

/** One sentence naming the first field of a request that breaks the protocol's schema. */
function schemaProblem(request: Request): string | undefined {
  const schema = REQUEST_SCHEMAS.get(request.method);
  // The SDK's schemas are Zod's: each issue has Zod's code, path and expected form.
  const issues = schema?.['~standard'].validate(request).issues;
  return issues?.length
    ? describeRequestIssues(request, issues as unknown as SchemaIssue[])
    : undefined;
}

/** Whether `_meta` breaks the JSON-RPC request shape the SDK expects of every request. */
function badMeta(params: unknown): boolean {
  const meta = (params as { _meta?: unknown } | undefined)?._meta;
  if (meta === undefined) return false;
  if (!isObject(meta)) return true;
  const { progressToken: token, 'io.modelcontextprotocol/related-task': task } = meta as Record<
    string,
    unknown
  >;
  return (token !== undefined && !isId(token)) || (task !== undefined && !isObject(task));
}

/**
 * Readies a request for the SDK, or says in one sentence why its params are invalid (a -32602).
 * The SDK drops without an answer a request whose params are not an object or whose `_meta` is
 * malformed. An initialize may leave out protocolVersion, capabilities and clientInfo (the seed's
 * own test line sends `"params":{}`): they get their defaults here. Only cheap checks run on
 * every request; the schema runs only for one already found wrong.
 */
function prepareRequest(request: Request): string | undefined {
  if (request.method === 'tools/call') {
    const problem = toolCallProblem(request.params);
    if (problem) return `Invalid params: ${problem}`;
  }
  if (request.params !== undefined && !isObject(request.params)) {
    return 'Invalid params: params must be an object';
  }
  if (badMeta(request.params)) {
    return (
      schemaProblem(request) ??
      `Invalid params for ${request.method}: "_meta" must be an object whose "progressToken" is a string or a number.`
    );
  }
  if (request.method === 'initialize') {
    const given = Object.entries(request.params ?? {}).filter(([, value]) => value !== null);
    request.params = { ...INITIALIZE_DEFAULTS, ...Object.fromEntries(given) };
  }
  return undefined;
}

/**
 * The SDK answers params its schema rejects with -32603 (or -32602) and the validator's whole
 * issue list as JSON. For a request this server answers whose params break the protocol's
 * schema, this is one sentence naming the field instead. Checked only once the SDK has refused
 * the request, so a good request costs nothing more.
 */
function rewordError(request: Request, error: { code: number }): string | undefined {
  const refused =
    error.code === ProtocolErrorCode.InvalidParams ||
    error.code === ProtocolErrorCode.InternalError;
  return refused ? schemaProblem(request) : undefined;
}

/** What the stdio framing does to requests on their way to the SDK, and to its errors. */
export const requestHooks = { prepare: prepareRequest, reword: rewordError };

const failure = (text: string): CallToolResult => ({
  content: [{ type: 'text', text }],
  isError: true,
});

/** Where the CONTAINARIUM_* settings of a server started by an MCP client live. */
const SETTINGS_HOME =
  'The CONTAINARIUM_* settings live in the "env" of this server\'s entry in the MCP client\'s config (or rerun `mcp-server install`); restart the client after changing them.';

/** A configuration error as one paragraph: each line a sentence, then where the settings live. */
export const configFailureText = (message: string): string =>
  asSentences([...message.split('\n'), SETTINGS_HOME]);

/** What tools/call answers: a tool result, or the question a destructive tool asks first. */
type CallResult = CallToolResult | InputRequiredResult;

/** Everything that leaves the server, text and structured content alike, redacted like the logs. */
function redactResult<R extends CallResult>(result: R, secrets: readonly string[]): R {
  // A question's requestState is minted here and signed (its form looks like a JWT to the
  // redactor): it passes as it is, and holds no secret.
  const { requestState, ...rest } = result as R & { requestState?: unknown };
  const redacted = JSON.parse(redact(JSON.stringify(rest), secrets)) as R;
  return requestState === undefined ? redacted : { ...redacted, requestState };
}

/** How long a 2026 client may keep the tool list: it is fixed for the life of the process. */
export const TOOLS_TTL_MS = 60 * 60 * 1000;

/**
 * Checks answers to elicitation against their schema. Built when first needed (these tools never
 * elicit), not with every Server: building Ajv is a good part of the cost of the first answer.
 */
let ajv: AjvJsonSchemaValidator | undefined;
const jsonSchemaValidator = {
  getValidator<T>(schema: Parameters<AjvJsonSchemaValidator['getValidator']>[0]) {
    ajv ??= new AjvJsonSchemaValidator();
    return ajv.getValidator<T>(schema);
  },
};

// The guard rails come from `config.guards`; with a configError every tool is listed.
type Deps = ({ client: ContainariumClient; config: Config } | { configError: string }) & {
  tools?: readonly AnyTool[];
  /**
   * HTTP mode: the client and config of the caller a request comes from (its own token), from
   * the `authInfo` the HTTP layer passed with the request. Without it every call uses `client`.
   */
  callerOf?: (ctx: McpRequestContext) => Caller;
  /** Told of every tool call once it is answered (HTTP mode logs one line each). */
  onToolCall?: (call: ToolCallRecord) => void;
  /** How often a running call reports progress to a client that asked for it (tests shorten it). */
  progressEveryMs?: number;
  /** How create follows an async create (tests shorten it); POLLING by default. */
  polling?: Polling;
};

/**
 * A running call tells a client that asked for progress that it is still working this often:
 * well within 10 s, so a client that restarts its timeout on progress never gives up on it.
 */
export const PROGRESS_EVERY_MS = 5_000;
/** How many calls' progress the server remembers between the re-entries of a confirmation. */
const PROGRESS_TOKENS = 1_024;
/** A confirmation's verified state as a key of the progress it continues. */
const stateKey = (state: unknown, caller: Caller | undefined) =>
  state === undefined ? undefined : progressKey(`state:${JSON.stringify(state)}`, caller);
/** A progress token's key: tokens of different callers (over HTTP) are different calls. */
const progressKey = (token: string | number, caller: Caller | undefined) =>
  `${caller?.config.token.get() ?? ''}\n${typeof token}:${token}`;

/** Who a tool call acts as: the REST client with the caller's token, and the config it uses. */
export type Caller = { client: ContainariumClient; config: Config };

export type ToolCallRecord = {
  tool: string;
  context: McpRequestContext | undefined;
  /** `asking`: the call waits for the user's answer to a question (a 2026 input_required). */
  outcome: 'ok' | 'error' | 'asking';
  ms: number;
};

/**
 * The server, as a factory of one Server per connection and era (the SDK may build one for a
 * `server/discover` probe and another for the handshake that follows). Given `configError`
 * instead of a client (the environment is unusable), it still completes the handshake and lists
 * the tools, and every tool call answers with that message: a client that sees the server die
 * before the handshake shows only "connection closed".
 */
export function serverFactory(deps: Deps): () => Server {
  let catalog: Promise<Catalog> | undefined;
  const tools = () => {
    catalog ??= loadCatalog(deps.tools, 'config' in deps ? deps.config.guards : undefined);
    return catalog;
  };
  // Shared by every instance: the limit is on calls to the daemon, whichever era asked.
  const slots = createSlots();
  // Read for each answer: the token may be rotated in its file.
  const secrets = () => secretsOf('config' in deps ? deps.config : undefined);
  // A confirmation's state round-trips through the client: it is signed with a key of this
  // process (the SDK's HMAC codec; a forged or altered state is refused) and names the call it
  // confirms, so an answer cannot be replayed for other arguments.
  const stateCodec = createRequestStateCodec<Asked>({
    key: crypto.getRandomValues(new Uint8Array(32)),
    ttlSeconds: CONFIRM_TTL_S,
  });
  // The progress of each call a client follows, by its progress token: a call that pauses for a
  // confirmation is entered again with the answer under the same token (the SDK's 2025 shim), or
  // retried under a new one echoing the question's state (2026, also a key here), and its
  // progress goes on rising from where it was. Dropped with the final result; the oldest go first
  // past PROGRESS_TOKENS (a client that never answers).
  const progressOf = new Map<string, { sent: number; started: number }>();
  const rememberProgress = (key: string, counter: { sent: number; started: number }) => {
    progressOf.delete(key);
    progressOf.set(key, counter);
    for (const oldest of progressOf.keys()) {
      if (progressOf.size <= PROGRESS_TOKENS) break;
      progressOf.delete(oldest);
    }
  };

  return (context?: McpRequestContext) => {
    // The caller of this instance: per request over HTTP, the process's own otherwise.
    const caller =
      context && deps.callerOf && !('configError' in deps) ? deps.callerOf(context) : undefined;
    /**
     * A tools/call handler that reports each call, its outcome and duration, to `onToolCall`, and
     * while it runs tells a client that asked for progress (a `progressToken`) what it does: each
     * phase the tool reports at once, and every `progressEveryMs` the last one (or that it still
     * runs) with the seconds elapsed. Over HTTP that turns the answer into an SSE stream.
     */
    const tracked =
      <R extends { params: { name: string } }>(
        handle: (request: R, ctx: ServerContext, progress: Progress) => Promise<CallResult>,
      ) =>
      async (request: R, ctx: ServerContext): Promise<CallResult> => {
        const entered = performance.now();
        const token = ctx.mcpReq._meta?.progressToken;
        // The spec wants progress to grow with every notification: it counts them, across the
        // re-entries of a call that paused for a confirmation too.
        const echoed = stateKey(ctx.mcpReq.requestState(), caller);
        const key = token === undefined ? undefined : progressKey(token, caller);
        const counter = (key !== undefined &&
          (progressOf.get(key) ?? (echoed && progressOf.get(echoed)))) || {
          sent: 0,
          started: performance.now(),
        };
        if (key !== undefined) rememberProgress(key, counter);
        const { started } = counter;
        const callerSecrets = () => (caller ? secretsOf(caller.config) : secrets());
        let phase = '';
        const notify = (message: string) => {
          if (token === undefined) return;
          void ctx.mcpReq
            .notify({
              method: 'notifications/progress',
              params: {
                progressToken: token,
                progress: ++counter.sent,
                message: redact(message, callerSecrets()),
              },
            })
            .catch(() => {});
        };
        const progress = (message: string) => {
          phase = message;
          notify(message);
        };
        const beat =
          token === undefined
            ? undefined
            : setInterval(() => {
                const seconds = Math.round((performance.now() - started) / 1000);
                notify(
                  phase
                    ? `${phase} (${seconds} s)`
                    : `${request.params.name} is still running (${seconds} s)`,
                );
              }, deps.progressEveryMs ?? PROGRESS_EVERY_MS);
        try {
          const result = await handle(request, ctx, progress);
          if (key !== undefined) {
            const { requestState } = result as { requestState?: unknown };
            if (!('inputRequests' in result)) progressOf.delete(key);
            else if (typeof requestState === 'string') {
              const asked = stateKey(await stateCodec.verify(requestState, ctx), caller);
              if (asked) rememberProgress(asked, counter);
            }
            if (echoed) progressOf.delete(echoed);
          }
          deps.onToolCall?.({
            tool: request.params.name,
            context,
            outcome: 'inputRequests' in result ? 'asking' : result.isError ? 'error' : 'ok',
            ms: performance.now() - entered,
          });
          return result;
        } catch (error) {
          if (key !== undefined) progressOf.delete(key);
          throw error;
        } finally {
          clearInterval(beat);
        }
      };
    const server = new Server(
      { name: SERVER_NAME, title: 'Containarium', version: VERSION },
      {
        capabilities: { tools: { listChanged: false } },
        instructions: INSTRUCTIONS,
        cacheHints: { 'tools/list': { ttlMs: TOOLS_TTL_MS, cacheScope: 'public' } },
        jsonSchemaValidator,
        requestState: { verify: stateCodec.verify },
      },
    );
    server.setRequestHandler('tools/list', async () => ({ tools: (await tools()).listed }));
    server.setRequestHandler(
      'tools/call',
      tracked(async (request, ctx, progress): Promise<CallResult> => {
        const { byName, hidden } = await tools();
        const tool = byName.get(request.params.name);
        const hiddenReason = hidden.get(request.params.name);
        if (hiddenReason) return failure(hiddenToolText(request.params.name, hiddenReason));
        if (!tool) {
          // A protocol error, not a tool result: the SDK sends this code and message as they are.
          throw Object.assign(
            new Error(
              redact(
                `Unknown tool "${request.params.name}"; available tools: ${[...byName.keys()].join(', ')}`,
                secrets(),
              ),
            ),
            { code: ProtocolErrorCode.InvalidParams },
          );
        }
        const result = await callTool(
          tool,
          request.params.arguments,
          ctx,
          canElicit(server, ctx),
          caller,
          progress,
        );
        return redactResult(result, caller ? secretsOf(caller.config) : secrets());
      }),
    );
    return server;
  };

  async function callTool(
    tool: AnyTool,
    rawArgs: Record<string, unknown> | undefined,
    ctx: ServerContext,
    clientCanAsk: boolean,
    caller: Caller | undefined,
    progress: Progress,
  ): Promise<CallResult> {
    const signal = ctx.mcpReq.signal;
    if ('configError' in deps) {
      return failure(configFailureText(deps.configError));
    }
    const { client, config } = caller ?? deps;
    // Some clients send null for an argument they leave out: it means the default, for every tool.
    const args = Object.fromEntries(
      Object.entries(rawArgs ?? {}).filter(([, value]) => value !== null),
    );
    const parsed = v.safeParse(tool.input, args);
    if (!parsed.success) return failure(describeIssues(parsed.issues, tool.input));
    const input = parsed.output;
    /** The failure of `failed`'s call with `args` as one sentence. */
    const explain = (error: unknown, failed: AnyTool, args: unknown) =>
      describeFailure(error, {
        action: failed.action(args),
        resource: failed.resource,
        username: (args as { username?: string }).username || undefined,
        image: (args as { image?: string }).image,
        serverUrl: config.serverUrl,
        token: config.token,
        creates: failed.effect === 'create',
        timeoutMs: client.timeoutFor(
          failed.effect === 'create' ? 'create' : failed.effect === 'read' ? 'read' : 'change',
        ),
      });
    const toolCtx: ToolContext = {
      client,
      signal,
      slot: (task) => slots.run(signal, task),
      explain,
      progress,
      polling: deps.polling ?? POLLING,
    };
    try {
      const policy = config.confirm ?? 'auto';
      if (tool.confirm && policy !== 'never') {
        if (clientCanAsk) {
          // The question's reads count against the daemon's slots like any call.
          // The last question asked is the fresh read made after the answer: the tool acts on it.
          const ask = () =>
            slots.run(signal, async () => {
              toolCtx.confirmed = await tool.confirm!.ask(input, toolCtx);
              return toolCtx.confirmed;
            });
          const unconfirmed = await confirmation(tool, input, ask, ctx, stateCodec);
          if (unconfirmed) return unconfirmed;
        } else if (policy === 'always') {
          return failure(UNCONFIRMED.cannotAsk(tool.action(input)));
        }
        // auto, and the client cannot ask: its own approval prompt for a destructive tool stands.
      }
      // A bulk tool takes a slot per item itself (ctx.slot), so it holds none while it waits.
      const run = () => tool.handle(input, toolCtx);
      const { text, structured, isError } = await (tool.bulk ? run() : slots.run(signal, run));
      // List-like tools page within the budget themselves (format.ts withinBudget); this holds
      // every other answer to it too.
      return {
        content: [{ type: 'text', text: clip(text, TEXT_BUDGET) }],
        structuredContent: structured,
        ...(isError ? { isError: true } : {}),
      };
    } catch (error) {
      return failure(explain(error, tool, input));
    }
  }
}

/**
 * Whether the client of this request can answer an elicitation form: a 2026-07-28 request says so
 * in its envelope, a 2025 client in its initialize capabilities.
 */
function canElicit(server: Server, ctx: ServerContext): boolean {
  const envelope = ctx.mcpReq.envelope as Record<string, unknown> | undefined;
  const declared = envelope
    ? (envelope[CLIENT_CAPABILITIES_META_KEY] as { elicitation?: { form?: object; url?: object } })
    : server.getClientCapabilities();
  const elicitation = declared?.elicitation;
  // An empty elicitation capability means form mode, as the 2025 revisions had only that.
  return elicitation !== undefined && (elicitation.form !== undefined || !elicitation.url);
}

/**
 * Asks the user to confirm a destructive call, written once for both eras: a 2026-07-28 client
 * gets an input_required result and retries with the answer; for a 2025 client the SDK sends
 * elicitation/create and runs this again with the answer. The question is read from fresh state,
 * and its target's identity travels in requestState; after an accept the target is read again and
 * must be the same one. Undefined when confirmed, else the result of a call that did nothing.
 */
async function confirmation(
  tool: AnyTool,
  input: unknown,
  ask: () => Promise<Question>,
  ctx: ServerContext,
  codec: RequestStateCodec<Asked>,
): Promise<CallResult | undefined> {
  const confirm = tool.confirm!;
  const call = callOf(tool, input);
  const question = async () => {
    const { message, typed, identity } = await ask();
    return inputRequired({
      inputRequests: {
        [CONFIRM_KEY]: inputRequired.elicit({ message, requestedSchema: confirmSchema(typed) }),
      },
      requestState: await codec.mint({ typed, identity, call }),
    });
  };
  const answer = inputResponse(ctx.mcpReq.inputResponses, CONFIRM_KEY);
  if (answer.kind !== 'elicit') return question();
  const action = tool.action(input);
  const untouched = (text: string): CallToolResult => ({
    content: [{ type: 'text', text }],
    structuredContent: confirm.untouched(input, text),
  });
  if (answer.action === 'decline') return untouched(UNCONFIRMED.declined(action));
  if (answer.action === 'cancel') return untouched(UNCONFIRMED.cancelled(action));
  const asked = askedOf(ctx.mcpReq.requestState());
  // An answer without the state of its question: the question is asked again.
  if (!asked) return question();
  if (asked.call !== call) return untouched(UNCONFIRMED.otherCall(action));
  if (!confirms(answer.content, asked.typed)) {
    return untouched(UNCONFIRMED.mismatch(action, asked.typed));
  }
  const now = await ask();
  if (now.identity !== asked.identity || now.typed !== asked.typed) {
    return untouched(UNCONFIRMED.changed(action));
  }
  return undefined;
}

/** What a question's state carries: the typed answer, the target's identity, the call asked about. */
type Asked = { typed: string; identity: string; call: string };

/** How long a person may take to answer a confirmation before it is asked again. */
const CONFIRM_TTL_S = 15 * 60;

/** The state the SDK's codec verified and decoded, when it has the shape of ours. */
function askedOf(state: unknown): Asked | undefined {
  const { typed, identity, call } = (state ?? {}) as Partial<Record<keyof Asked, unknown>>;
  return typeof typed === 'string' && typeof identity === 'string' && typeof call === 'string'
    ? { typed, identity, call }
    : undefined;
}

/** The call a confirmation is for: the tool and its parsed arguments, keys in a fixed order. */
function callOf(tool: AnyTool, input: unknown): string {
  const canonical = (value: unknown): unknown =>
    Array.isArray(value)
      ? value.map(canonical)
      : value !== null && typeof value === 'object'
        ? Object.fromEntries(
            Object.keys(value)
              .sort()
              .map((key) => [key, canonical((value as Record<string, unknown>)[key])]),
          )
        : value;
  return createHash('sha256')
    .update(`${tool.name}\0${JSON.stringify(canonical(input))}`)
    .digest('base64url');
}

/** One server, 2025 era, for in-process tests. */
export const createServer = (deps: Deps): Server => serverFactory(deps)();

/**
 * Serves both protocol eras over `transport`: the opening message picks the era (an
 * `initialize` handshake, or 2026-07-28 requests carrying the `_meta` envelope).
 */
export function serveBothEras(
  deps: Deps,
  transport: Transport,
  onerror?: (error: Error) => void,
): { close(): Promise<void> } {
  return serveStdio(serverFactory(deps), { transport, ...(onerror && { onerror }) });
}

/**
 * The web-standard HTTP handler (Streamable HTTP, both eras, stateless): one Server per request
 * from the same factory as stdio, so nothing lives between requests and any instance behind a
 * load balancer can answer any of them. The catalog and the call slots stay shared by all callers.
 */
export function createHttpHandler(
  deps: Deps,
  options: { maxRequestBodySize: number; onerror?: (error: Error) => void },
): McpHttpHandler {
  return createMcpHandler(serverFactory(deps), options);
}
