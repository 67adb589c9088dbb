// Who is calling: Bearer JWT checks with upstream's exact 401 bodies, per-address lockout, role scoping.
import { type Claims, createVerifier, TokenError } from '../shared/jwt.ts';
import { DaemonError } from './errors.ts';

export type Principal = {
  username: string;
  /** The admin role may act on every container; any other role only on its own. */
  admin: boolean;
};

export type AuthOptions = {
  secret: string;
  /** Seconds of clock skew allowed on exp and nbf (default 30). */
  clockToleranceSeconds?: number;
  /** Failed attempts from one address within `failureWindowMs` that trigger a lockout (default 10). */
  maxFailures?: number;
  failureWindowMs?: number;
  /** How long a locked-out address gets 429 (default 60 s). */
  lockoutMs?: number;
  /** Addresses remembered at most (default 10,000); past that the oldest is forgotten first. */
  maxTrackedAddresses?: number;
  /** Where the reason for each refusal goes (never the token). */
  log?: (message: string) => void;
  /** For tests. */
  now?: () => number;
};

export type AuthResult = { ok: true; principal: Principal } | { ok: false; response: Response };

/**
 * Upstream writes auth errors with Go's http.Error: text/plain, nosniff, JSON-looking text with a
 * space after each colon, trailing newline (CONTAINARIUM-API.md §3.2). Clients match on these bytes.
 */
function plainError(status: number, error: string, headers: Record<string, string> = {}): Response {
  return new Response(`{"error": "${error}", "code": ${status}}\n`, {
    status,
    headers: {
      'Content-Type': 'text/plain; charset=utf-8',
      'X-Content-Type-Options': 'nosniff',
      ...headers,
    },
  });
}

export const MISSING_HEADER = 'missing authorization header';
export const BAD_SCHEME = "invalid authorization header format, expected 'Bearer <token>'";
export const INVALID_TOKEN = 'invalid token';
export const TOO_MANY = 'too many failed authentication attempts; try again later';

type Attempts = { failures: number[]; lockedUntil: number };

export function createAuthenticator(options: AuthOptions) {
  const verify = createVerifier(options.secret, {
    ...(options.clockToleranceSeconds === undefined
      ? {}
      : { clockToleranceSeconds: options.clockToleranceSeconds }),
  });
  const maxFailures = options.maxFailures ?? 10;
  const windowMs = options.failureWindowMs ?? 60_000;
  const lockoutMs = options.lockoutMs ?? 60_000;
  const maxTracked = options.maxTrackedAddresses ?? 10_000;
  const now = options.now ?? Date.now;
  const log = options.log ?? (() => {});
  const byAddress = new Map<string, Attempts>();

  const lockedFor = (address: string): number => {
    const entry = byAddress.get(address);
    if (!entry) return 0;
    return Math.max(0, entry.lockedUntil - now());
  };

  const prune = () => {
    const time = now();
    for (const [address, entry] of byAddress) {
      if (entry.lockedUntil <= time && entry.failures.every((at) => at <= time - windowMs)) {
        byAddress.delete(address);
      }
    }
  };

  const fail = (address: string, reason: string): Response => {
    const time = now();
    if (byAddress.size >= maxTracked && !byAddress.has(address)) {
      prune();
      // Still full of live entries (many addresses at once): forget the oldest, so memory and
      // the cost of each refusal stay bounded.
      const oldest = byAddress.keys().next();
      if (byAddress.size >= maxTracked && !oldest.done) byAddress.delete(oldest.value);
    }
    const entry = byAddress.get(address) ?? { failures: [], lockedUntil: 0 };
    entry.failures = entry.failures.filter((at) => at > time - windowMs);
    entry.failures.push(time);
    if (entry.failures.length >= maxFailures) {
      entry.lockedUntil = time + lockoutMs;
      entry.failures = [];
      log(
        `auth: ${address} locked out for ${Math.ceil(lockoutMs / 1000)}s after ${maxFailures} failures`,
      );
    }
    byAddress.set(address, entry);
    log(`auth: refused ${address}: ${reason}`);
    return plainError(401, reason === BAD_SCHEME ? BAD_SCHEME : INVALID_TOKEN);
  };

  return {
    /** Checks the Authorization header of a request from `address` (the peer's IP). */
    async authenticate(request: Request, address: string): Promise<AuthResult> {
      const waitMs = lockedFor(address);
      if (waitMs > 0) {
        return {
          ok: false,
          response: plainError(429, TOO_MANY, { 'Retry-After': String(Math.ceil(waitMs / 1000)) }),
        };
      }
      const header = request.headers.get('authorization');
      // No credentials is not an attempt at guessing, so it does not count towards a lockout.
      if (header === null || header === '') {
        return { ok: false, response: plainError(401, MISSING_HEADER) };
      }
      const space = header.indexOf(' ');
      const scheme = space === -1 ? header : header.slice(0, space);
      const token = space === -1 ? '' : header.slice(space + 1);
      if (space === -1 || scheme.toLowerCase() !== 'bearer') {
        return { ok: false, response: fail(address, BAD_SCHEME) };
      }
      let claims: Claims;
      try {
        claims = await verify(token);
      } catch (error) {
        const reason = error instanceof TokenError ? error.message : 'token could not be checked';
        return { ok: false, response: fail(address, `invalid token: ${reason}`) };
      }
      return {
        ok: true,
        principal: { username: claims.username, admin: claims.roles.includes('admin') },
      };
    },
  };
}

export type Authenticator = ReturnType<typeof createAuthenticator>;

/** Throws 403 unless the caller may act on this user's container. */
export function authorizeUser(principal: Principal, username: string): void {
  if (!principal.admin && principal.username !== username) {
    throw new DaemonError('forbidden', `not authorized for user ${username}`);
  }
}

/** Throws 403 unless the caller has the admin role. */
export function requireAdmin(principal: Principal): void {
  if (!principal.admin) throw new DaemonError('forbidden', 'role required: admin');
}
