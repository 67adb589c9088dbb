// Who is calling: Bearer JWT checks with upstream's exact 401 bodies, failed-login lock-outs that
// only ever slow down failing requests, role scoping.

import { canonicalAddress, networkOf } from '../shared/address.ts';
import { type Claims, createVerifier, TokenError } from '../shared/jwt.ts';
import { DaemonError } from './errors.ts';
import { createLockoutTable } from './lockout.ts';
import { type Logger, silent } from './log.ts';

export type Principal = {
  username: string;
  /** The admin role may act on every container; any other role only on its own. */
  admin: boolean;
  /** The token's roles as signed. */
  roles: readonly string[];
  /** The token's id (its jti claim), when it has one. */
  tokenId?: string;
};

/** Why a request was refused, in words that never hold the token. */
export type Refusal = 'missing header' | 'bad scheme' | 'invalid token' | 'locked out';

export type AuthOptions = {
  secret: string;
  /** Seconds of clock skew allowed on exp and nbf (default 30). */
  clockToleranceSeconds?: number;
  /** Failed attempts one address may make at once (default 10); it regains them over the window. */
  maxFailures?: number;
  /** The same for all addresses of one /24 (IPv4) or /64 (IPv6) network together (default 50). */
  maxNetworkFailures?: number;
  /** The same for every address together (default 200). */
  maxTotalFailures?: number;
  /** How long a budget takes to refill completely (default 60 s). */
  failureWindowMs?: number;
  /** How long failing requests get 429 once a budget is used up (default 60 s). */
  lockoutMs?: number;
  /** Addresses, and networks, remembered at most (default 10,000 each). */
  maxTrackedAddresses?: number;
  /** Where the reason for each refusal goes (never the token). */
  log?: Logger;
  /** The clock for lock-outs (epoch ms), for tests. */
  now?: () => number;
};

export type AuthResult =
  | { ok: true; principal: Principal }
  | { ok: false; response: Response; refusal: Refusal };

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

/**
 * The token is checked first (an HMAC, cheap), so a valid token always passes, whatever others
 * did from its address. Only failures are counted, and only failures get 429: against the
 * address, its network and the daemon as a whole, so that rotating addresses runs into the
 * network's and then everyone's budget.
 */
export function createAuthenticator(options: AuthOptions) {
  const verify = createVerifier(options.secret, {
    ...(options.clockToleranceSeconds === undefined
      ? {}
      : { clockToleranceSeconds: options.clockToleranceSeconds }),
  });
  const windowMs = options.failureWindowMs ?? 60_000;
  const lockoutMs = options.lockoutMs ?? 60_000;
  const capacity = options.maxTrackedAddresses ?? 10_000;
  const now = options.now ?? Date.now;
  const log = options.log ?? silent;
  const tier = (what: string, max: number, size: number, key: (address: string) => string) => ({
    what,
    max,
    key,
    table: createLockoutTable({ max, windowMs, lockoutMs }, size),
  });
  const tiers = [
    tier('address', options.maxFailures ?? 10, capacity, canonicalAddress),
    tier('network', options.maxNetworkFailures ?? 50, capacity, networkOf),
    tier('all addresses', options.maxTotalFailures ?? 200, 1, () => ''),
  ];

  const fail = (
    address: string,
    reason: string,
    refusal: Refusal,
  ): { ok: false; response: Response; refusal: Refusal } => {
    const time = now();
    const counted = tiers.map((t) => ({ ...t, key: t.key(address) }));
    const until = Math.max(...counted.map((t) => t.table.lockedUntil(t.key, time)));
    if (until > time) {
      // Already slowed down: not counted again, so a locked-out client cannot drain the wider budgets.
      const seconds = Math.ceil((until - time) / 1000);
      const response = plainError(429, TOO_MANY, { 'Retry-After': String(seconds) });
      return { ok: false, response, refusal: 'locked out' };
    }
    for (const t of counted) {
      if (t.table.fail(t.key, time)) {
        log(
          `auth: failed attempts from ${`${t.what} ${t.key}`.trim()} get 429 for ${Math.ceil(lockoutMs / 1000)}s after ${t.max} failures`,
        );
      }
    }
    log(`auth: refused ${address}: ${reason}`);
    const response = plainError(401, reason === BAD_SCHEME ? BAD_SCHEME : INVALID_TOKEN);
    return { ok: false, response, refusal };
  };

  return {
    /** Checks the Authorization header of a request from `address` (the client's IP). */
    async authenticate(request: Request, address: string): Promise<AuthResult> {
      const header = request.headers.get('authorization');
      // No credentials is not an attempt at guessing, so it is neither counted nor slowed down.
      if (header === null || header === '') {
        return { ok: false, response: plainError(401, MISSING_HEADER), refusal: 'missing header' };
      }
      const space = header.indexOf(' ');
      const scheme = space === -1 ? header : header.slice(0, space);
      const token = space === -1 ? '' : header.slice(space + 1);
      if (space === -1 || scheme.toLowerCase() !== 'bearer') {
        return fail(address, BAD_SCHEME, 'bad scheme');
      }
      let claims: Claims;
      try {
        claims = await verify(token);
      } catch (error) {
        const reason = error instanceof TokenError ? error.message : 'token could not be checked';
        return fail(address, `invalid token: ${reason}`, 'invalid token');
      }
      return {
        ok: true,
        principal: {
          username: claims.username,
          admin: claims.roles.includes('admin'),
          roles: claims.roles,
          ...(claims.jti === undefined ? {} : { tokenId: claims.jti }),
        },
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
