// What a tool is: plain data plus a handler. defineTool exists only for type inference.
import * as v from 'valibot';
import { CPU_FORM, parseCpu, parseSize, SIZE_FORM } from '../../shared/sizes.ts';
import { MAX_SSH_KEYS, normalizeSshKey, SSH_KEY_FORM } from '../../shared/ssh-key.ts';
import { USERNAME, USERNAME_FORM } from '../../shared/username.ts';
import type { ContainariumClient } from '../client.ts';
import type { Question } from '../confirm.ts';
import type { Resource } from '../errors.ts';

/** Tells a client that asked for progress how the call is going (nothing when it did not ask). */
export type Progress = (message: string) => void;

export type ToolContext = {
  client: ContainariumClient;
  signal: AbortSignal;
  /** Runs `task` in one of the slots calls to the daemon share (for a bulk tool's items). */
  slot<T>(task: () => Promise<T>): Promise<T>;
  /** A failure of one call of `tool` with `input` as the sentence that call would answer. */
  explain(error: unknown, tool: AnyTool, input: unknown): string;
  /**
   * Tells a client that asked for progress what the call is doing now ("deleting
   * alice-container"); the server repeats it with the seconds elapsed while the call runs.
   */
  progress: Progress;
  /** How a long call follows the daemon's work (create's polls). */
  polling: Polling;
  /** The question the person confirmed, read again after the answer (none was asked: unset). */
  confirmed?: Question;
};

/** How create follows an async create: the first pause, the longest pause, and the most in all. */
export type Polling = { firstMs: number; maxMs: number; limitMs: number };
/** Every 0.5 s at first, backing off to every 2 s; at most 15 minutes, like an image download. */
export const POLLING: Polling = { firstMs: 500, maxMs: 2000, limitMs: 15 * 60_000 };

/** The four MCP annotations, always all set: derived from what the tool does. */
export type Effect = 'read' | 'create' | 'destroy' | 'change';
export const ANNOTATIONS = {
  read: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  create: {
    readOnlyHint: false,
    destructiveHint: false,
    idempotentHint: false,
    openWorldHint: false,
  },
  destroy: {
    readOnlyHint: false,
    destructiveHint: true,
    idempotentHint: true,
    openWorldHint: false,
  },
  change: {
    readOnlyHint: false,
    destructiveHint: false,
    idempotentHint: true,
    openWorldHint: false,
  },
} as const;

/** The groups of tools, one per file of tools. */
export type Toolset =
  | 'containers'
  | 'monitoring'
  | 'images'
  | 'keys'
  | 'resources'
  | 'templates'
  | 'bulk'
  | 'exec'
  | 'logs'
  | 'snapshots';

export type Tool<I extends v.GenericSchema, O extends v.GenericSchema> = {
  name: string;
  title: string;
  /** Written for the model: what it does, when to use it, what comes back. */
  description: string;
  effect: Effect;
  /** The group CONTAINARIUM_TOOLSETS selects it by: the file it is defined in. */
  toolset: Toolset;
  /** What it acts on (CONTAINER, or a resource of its own file), so errors name it; null for none. */
  resource: Resource | null;
  input: I;
  output: O;
  /** What this call is doing, for error sentences ("delete the container for alice"). */
  action(input: v.InferOutput<I>): string;
  handle(
    input: v.InferOutput<I>,
    ctx: ToolContext,
  ): Promise<{ text: string; structured: v.InferOutput<O>; isError?: boolean }>;
  /** Acts on many items, each in a slot of its own (ctx.slot), instead of one slot for the call. */
  bulk?: true;
  /**
   * Every destructive tool has it: the question asked before acting, from fresh state (read again
   * after the answer, to check the target is still the same one), and the structured content of a
   * call that did nothing, saying why.
   */
  confirm?: {
    ask(input: v.InferOutput<I>, ctx: ToolContext): Promise<Question>;
    untouched(input: v.InferOutput<I>, why: string): v.InferOutput<O>;
  };
};

// biome-ignore lint/suspicious/noExplicitAny: the registry holds tools of every input type
export type AnyTool = Tool<any, any>;

export const defineTool = <I extends v.GenericSchema, O extends v.GenericSchema>(
  tool: Tool<I, O>,
): Tool<I, O> => tool;

// ---- Shared argument schemas --------------------------------------------------------------------

export const username = (description: string) =>
  v.pipe(
    v.string(`must be ${USERNAME_FORM}`),
    v.description(description),
    v.trim(),
    v.regex(USERNAME, `must be ${USERNAME_FORM}`),
  );

/** How a fallback reads in a description: JSON, or "none" for an empty list. */
export const shownDefault = (fallback: unknown): string =>
  Array.isArray(fallback) && fallback.length === 0 ? 'none' : JSON.stringify(fallback);

// biome-ignore lint/suspicious/noExplicitAny: a description fits a pipe of any input type
type Description = v.DescriptionAction<any, string>;

/**
 * An optional argument whose description ends with "Default: …", written from the fallback
 * itself, so the text and the value the server applies cannot drift apart. `build` places the
 * description in its pipe before any transform (JSON Schema describes the input).
 */
export const defaulted = <S extends v.GenericSchema, const F extends v.InferInput<S>>(
  fallback: F,
  about: string,
  build: (description: Description) => S,
): v.OptionalSchema<S, F> =>
  v.optional(build(v.description(`${about} Default: ${shownDefault(fallback)}.`)), fallback);

/**
 * An optional argument left out of the request when not given, so the daemon applies its own
 * default (and this project's daemon lowers it to fit a smaller host); the description says which.
 */
export const daemonDefault = <S extends v.GenericSchema>(
  daemons: string,
  about: string,
  build: (description: Description) => S,
): v.OptionalSchema<S, undefined> =>
  v.optional(build(v.description(`${about} Default: the daemon's, ${daemons}.`)));

const FITS = 'a smaller host gets what it has';

/** A size with a unit by the shared rule, passed on as Incus spells it ("4GB"). */
export const sizeValue = (description: Description) =>
  v.pipe(
    v.string(`must be ${SIZE_FORM}`),
    description,
    v.check((s) => parseSize(s) !== undefined, `must be ${SIZE_FORM}`),
    v.transform((s) => parseSize(s)!.incus),
  );

/** Whole CPU cores by the shared rule, as a string ("4"). */
export const cpuValue = (description: Description) =>
  v.pipe(
    v.union([v.string(), v.number()], `must be ${CPU_FORM}`),
    description,
    v.check((c) => parseCpu(c) !== undefined, `must be ${CPU_FORM}`),
    v.transform((c) => String(parseCpu(c))),
  );

export const size = (about: string, daemons: string) =>
  daemonDefault(`${daemons}; ${FITS}`, about, sizeValue);

export const cpu = daemonDefault(`4 cores; ${FITS}`, 'Number of CPU cores, e.g. "4".', cpuValue);

export const sshKeys = defaulted(
  [],
  'OpenSSH public keys to authorize for the user, one key per item.',
  (description) =>
    v.pipe(
      v.array(
        v.pipe(
          v.string(`must be ${SSH_KEY_FORM}`),
          v.check((k) => normalizeSshKey(k) !== undefined, `must be ${SSH_KEY_FORM}`),
          v.transform((k) => normalizeSshKey(k)!),
        ),
        'must be a list of SSH public keys',
      ),
      v.maxLength(MAX_SSH_KEYS, `may hold at most ${MAX_SSH_KEYS} keys`),
      description,
    ),
);

/** The most items a page of a list-like tool holds. */
export const MAX_LIMIT = 500;
const LIMIT_FORM = `must be a whole number from 1 to ${MAX_LIMIT}`;

/** An optional page size, 1 to MAX_LIMIT; absent means every item (within the text budget). */
export const limit = (about: string) =>
  v.optional(
    v.pipe(
      v.number(LIMIT_FORM),
      v.integer(LIMIT_FORM),
      v.minValue(1, LIMIT_FORM),
      v.maxValue(MAX_LIMIT, LIMIT_FORM),
      v.description(about),
    ),
  );

export const force = (about: string) =>
  defaulted(false, about, (description) => v.pipe(v.boolean('must be true or false'), description));
