// The audit trail (--audit-log): one JSON line per mutating request and per refused
// authentication. It names who did what to whose container and how it ended; it never holds a
// token or a secret, and SSH keys appear only as their SHA256 fingerprints.
import { closeSync, fstatSync, openSync, write } from 'node:fs';
import { errorText } from '../shared/error-text.ts';
import { privateFileProblem } from '../shared/private-file.ts';
import { isValidSnapshotName } from '../shared/snapshot.ts';
import { sshKeyFingerprint } from '../shared/ssh-key.ts';
import type { Principal, Refusal } from './auth.ts';
import type { Logger } from './log.ts';
import { matchRoute, type Route } from './router.ts';

/** One line of the audit log, in this key order. */
export type AuditEntry = {
  /** When the answer was sent, ISO 8601 UTC. */
  time: string;
  requestId: string;
  /** The token's username claim; null when authentication was refused. */
  subject: string | null;
  roles: readonly string[];
  /** The token's jti; null when it has none or authentication was refused. */
  tokenId: string | null;
  /** The client address, behind trusted proxies the forwarded one. */
  source: string;
  method: string;
  /** The route pattern, like "DELETE /v1/containers/{username}"; null when no route matched. */
  route: string | null;
  /** Whose container: from the path, or the body of a create; null when there is none. */
  targetUser: string | null;
  outcome: 'ok' | 'refused' | 'error';
  /** Why authentication was refused ("invalid token", "locked out", ...). */
  reason?: Refusal;
  /** The gRPC code of an error answer ("NotFound", "PermissionDenied", ...). */
  code?: string;
  /** The SSH keys the request adds or removes (a key add, remove, or create), as fingerprints. */
  sshKeys?: string[];
  /**
   * An exec's command: the name of its program and the SHA-256 of the whole command (its JSON)
   * in hex, never its arguments, which may hold secrets. The program is "(not shown)" when its
   * first word is not a plain name.
   */
  command?: { program: string; sha256: string };
  /** The account an exec asked to run as, when it named one. */
  runAs?: string;
  /** The snapshot a snapshot route names (in its path, or the body of a create that gives one). */
  snapshot?: string;
  status: number;
  durationMs: number;
};

/** What the app knows about one finished request. */
export type RequestFacts = {
  request: Request;
  /** The client address as the app resolved it. */
  address: string;
  requestId: string;
  response: Response;
  /** The caller, once authenticated. */
  principal?: Principal;
  /** Why authentication refused the request. */
  refusal?: Refusal;
  /** The request body as read (only when authentication passed). */
  body?: Uint8Array;
  durationMs: number;
};

/** Where lines go; resolves once the line is written, rejects when it cannot be. */
export type AuditSink = (line: string) => Promise<void>;

export type AuditLog = {
  /** Writes the request's line if it is audited; never throws, never waits for the write. */
  record(facts: RequestFacts): void;
  /** Resolves when every line recorded so far is written (or has failed). */
  flushed(): Promise<void>;
};

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * Opens FILE for append, creating it readable by its owner alone; throws with the reason when it
 * cannot be opened or when others can read it (it names who did what).
 */
export function openAuditFile(path: string): AuditSink {
  const fd = openSync(path, 'a', 0o600);
  const problem = privateFileProblem(path, fstatSync(fd).mode);
  if (problem) {
    closeSync(fd);
    throw new Error(problem);
  }
  return (line) =>
    new Promise((resolve, reject) => {
      write(fd, line, (error) => (error ? reject(error) : resolve()));
    });
}

/** The audit log over a sink: lines are written in order; the first failure goes to `log`, once. */
export function createAuditLog(
  sink: AuditSink,
  options: { log: Logger; routes: readonly Route[]; now?: () => Date },
): AuditLog {
  const now = options.now ?? (() => new Date());
  let queue = Promise.resolve();
  let reported = false;
  return {
    record(facts) {
      let entry: AuditEntry | undefined;
      let code: Promise<string | undefined>;
      try {
        entry = auditEntry(facts, options.routes, now());
        if (entry === undefined) return;
        // Copied now, before the body is sent; read while earlier lines are written.
        code = codeOf(facts.response).catch(() => undefined);
      } catch (error) {
        report(error);
        return;
      }
      const { status, durationMs, ...head } = entry;
      queue = queue.then(async () => {
        try {
          const known = await code;
          const line = {
            ...head,
            ...(known === undefined ? {} : { code: known }),
            status,
            durationMs,
          };
          await sink(`${JSON.stringify(line)}\n`);
        } catch (error) {
          report(error);
        }
      });
    },
    flushed: () => queue,
  };

  function report(error: unknown) {
    if (reported) return;
    reported = true;
    options.log(`audit log: cannot write (${errorText(error)}); further failures are not logged`);
  }
}

/** The entry for a request, or undefined when it is not audited. */
export function auditEntry(
  facts: RequestFacts,
  routes: readonly Route[],
  time: Date,
): AuditEntry | undefined {
  const { request, response, principal, refusal } = facts;
  const method = request.method;
  if (refusal === undefined && !MUTATING.has(method)) return undefined;
  const url = new URL(request.url);
  const match = matchRoute(routes, method, url.pathname);
  const found = match !== undefined && 'route' in match ? match : undefined;
  const status = response.status;
  const body = found && facts.body ? jsonOf(facts.body) : undefined;
  const target = found?.params.username ?? field(body, 'username');
  const keys = [
    found?.params.key === undefined ? undefined : decoded(found.params.key),
    field(body, 'sshPublicKey'),
    field(body, 'ssh_public_key'),
    ...strings(body, 'sshKeys'),
    ...strings(body, 'ssh_keys'),
  ];
  const fingerprints = keys.flatMap((key) => {
    const fingerprint = key === undefined ? undefined : sshKeyFingerprint(key);
    return fingerprint === undefined ? [] : [fingerprint];
  });
  const snapshot = found?.route.segments.includes('snapshots')
    ? found.params.name === undefined
      ? field(body, 'name') || undefined
      : decoded(found.params.name)
    : undefined;
  return {
    time: time.toISOString(),
    requestId: facts.requestId,
    subject: principal?.username ?? null,
    roles: principal?.roles ?? [],
    tokenId: principal?.tokenId ?? null,
    source: facts.address,
    method,
    route: found ? `${method} ${pattern(found.route)}` : null,
    targetUser: targetOf(target),
    outcome: status < 400 ? 'ok' : refusal !== undefined || status === 403 ? 'refused' : 'error',
    ...(refusal === undefined ? {} : { reason: refusal }),
    ...(fingerprints.length === 0 ? {} : { sshKeys: [...new Set(fingerprints)] }),
    ...(found?.route.segments.at(-1) === 'exec' ? execFacts(body) : {}),
    ...(snapshot === undefined ? {} : { snapshot: snapshotOf(snapshot) }),
    status,
    durationMs: facts.durationMs,
  };
}

/** "/v1/containers/{username}/ssh-keys/{key}" from the route's segments. */
const pattern = (route: Route) =>
  `/${route.segments.map((s) => (/^[:*]/.test(s) ? `{${s.slice(1)}}` : s)).join('/')}`;

const jsonOf = (bytes: Uint8Array): unknown => {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return undefined;
  }
};

const member = (body: unknown, name: string): unknown =>
  typeof body === 'object' && body !== null ? Reflect.get(body, name) : undefined;

const field = (body: unknown, name: string): string | undefined => {
  const value = member(body, name);
  return typeof value === 'string' ? value : undefined;
};

/** The strings of an array field (at most 64 looked at). */
const strings = (body: unknown, name: string): string[] => {
  const value = member(body, name);
  return Array.isArray(value)
    ? value.slice(0, 64).filter((item): item is string => typeof item === 'string')
    : [];
};

const decoded = (text: string): string | undefined => {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
};

/** The gRPC code of an error answer, read from upstream's `{"code","error"}` body. */
async function codeOf(response: Response): Promise<string | undefined> {
  const type = response.headers.get('content-type') ?? '';
  if (response.status < 400 || !type.startsWith('application/json')) return undefined;
  const text = await response.clone().text();
  return /"rpc error: code = (\w+) desc = /.exec(text)?.[1];
}

/** What the audit line says of an exec: see AuditEntry.command. */
function execFacts(body: unknown): Pick<AuditEntry, 'command' | 'runAs'> {
  const command = member(body, 'command');
  const words = typeof command === 'string' ? command.trim().split(/\s+/) : command;
  const facts: Pick<AuditEntry, 'command' | 'runAs'> = {};
  if (Array.isArray(words) || typeof command === 'string') {
    const first = Array.isArray(words) ? words[0] : undefined;
    const program = typeof first === 'string' ? (first.split('/').pop() ?? '') : '';
    facts.command = {
      program: /^[\w.+-]{1,64}$/.test(program) ? program : '(not shown)',
      sha256: new Bun.CryptoHasher('sha256').update(JSON.stringify(command)).digest('hex'),
    };
  }
  const user = field(body, 'user');
  if (user !== undefined)
    facts.runAs = /^[a-z_][a-z0-9_-]{0,31}$/.test(user) ? user : '(not an account)';
  return facts;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** The caller's X-Request-Id when it is a short plain token, else a fresh one. */
export function requestIdOf(request: Request): string {
  const given = request.headers.get('x-request-id');
  return given !== null && REQUEST_ID.test(given) ? given : crypto.randomUUID();
}

/** A snapshot name as the request gave it, when it has a snapshot name's shape. */
const snapshotOf = (name: string): string =>
  isValidSnapshotName(name) ? name : '(not a snapshot name)';

/**
 * A target as the request named it, when it has a username's shape; anything else (a key pasted
 * as the username, say) is logged as "(not a username)", so no such text reaches the file.
 */
function targetOf(target: string | undefined): string | null {
  if (target === undefined) return null;
  const name = decoded(target) ?? target;
  return /^[A-Za-z0-9_-]{1,64}$/.test(name) ? name : '(not a username)';
}
