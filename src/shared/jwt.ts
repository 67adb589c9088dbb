// Containarium API tokens (CONTAINARIUM-API.md §3): HS256 JWTs with username and roles claims.
// The daemon signs and verifies them; mcp-server only decodes them to report expiry.
import { decodeJwt, errors, jwtVerify, SignJWT } from 'jose';
import * as v from 'valibot';

export const ISSUER = 'containarium';
/** HEAD daemons require this audience; v0.3 daemons ignore it. */
export const AUDIENCE = 'containarium-api';
/** HEAD refuses shorter secrets: an HS256 key should be as long as the hash. */
export const MIN_SECRET_BYTES = 32;
export const SECRET_HINT = 'make one with: openssl rand -base64 32';
/**
 * The longest lifetime `token generate` mints (87600h: ten years of 365 days). A token whose exp
 * lies further ahead was not made by it, and the daemon refuses it.
 */
export const MAX_LIFETIME_MS = 87_600 * 3_600_000;
export const MAX_LIFETIME_TEXT = '87600h (10 years)';

/** The claims a valid token must carry, checked after the signature. */
export const ClaimsSchema = v.object({
  username: v.pipe(v.string(), v.nonEmpty()),
  roles: v.optional(v.array(v.string()), []),
  iss: v.optional(v.string()),
  aud: v.optional(v.union([v.string(), v.array(v.string())])),
  jti: v.optional(v.string()),
  iat: v.optional(v.number()),
  nbf: v.optional(v.number()),
  exp: v.number(),
  /** HEAD's token type: refresh tokens are not for the API. */
  tt: v.optional(v.string()),
});
export type Claims = v.InferOutput<typeof ClaimsSchema>;

/** Why a secret cannot sign tokens, or undefined when it can. */
export function secretProblem(secret: string): string | undefined {
  const bytes = Buffer.byteLength(secret, 'utf8');
  if (bytes === 0) return `the JWT secret is empty; ${SECRET_HINT}`;
  if (bytes < MIN_SECRET_BYTES) {
    return `the JWT secret is ${bytes} bytes; it must be at least ${MIN_SECRET_BYTES} bytes so tokens cannot be guessed (${SECRET_HINT})`;
  }
  return undefined;
}

const keyOf = (secret: string) => new TextEncoder().encode(secret);

/** A random 128-bit token id, base64url (HEAD's jti). */
const newJti = () => Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('base64url');

export type SignInput = {
  username: string;
  roles: readonly string[];
  /** Lifetime in milliseconds; must be positive. */
  lifetimeMs: number;
  secret: string;
  /** For tests: the signing time. */
  now?: Date;
};

/** Mints a token both v0.3 and HEAD daemons accept: HS256, iss, aud, jti, iat, nbf, exp. */
export async function signToken(input: SignInput): Promise<{ token: string; expiresAt: Date }> {
  const problem = secretProblem(input.secret);
  if (problem) throw new Error(problem);
  if (!(input.lifetimeMs > 0)) throw new Error('the token lifetime must be positive');
  if (input.lifetimeMs > MAX_LIFETIME_MS) {
    throw new Error(`the token lifetime must be at most ${MAX_LIFETIME_TEXT}`);
  }
  const iat = Math.floor((input.now ?? new Date()).getTime() / 1000);
  const exp = iat + Math.max(1, Math.floor(input.lifetimeMs / 1000));
  const token = await new SignJWT({ username: input.username, roles: [...input.roles] })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(ISSUER)
    .setAudience([AUDIENCE])
    .setJti(newJti())
    .setIssuedAt(iat)
    .setNotBefore(iat)
    .setExpirationTime(exp)
    .sign(keyOf(input.secret));
  return { token, expiresAt: new Date(exp * 1000) };
}

/** A token the daemon refuses; `reason` is for the daemon's log, never for the client. */
export class TokenError extends Error {
  override name = 'TokenError';
}

export type VerifyOptions = {
  /** Seconds of clock skew allowed on exp and nbf. */
  clockToleranceSeconds?: number;
  /** For tests: the verification time. */
  now?: Date;
};

/**
 * Prepares a verifier for one secret: HS256 only, exp required and at most ten years ahead, iss
 * checked, aud checked if present.
 */
export function createVerifier(secret: string, options: VerifyOptions = {}) {
  const key = keyOf(secret);
  const clockTolerance = options.clockToleranceSeconds ?? 30;
  return async (token: string): Promise<Claims> => {
    let payload: unknown;
    try {
      ({ payload } = await jwtVerify(token, key, {
        algorithms: ['HS256'],
        issuer: ISSUER,
        requiredClaims: ['exp'],
        clockTolerance,
        ...(options.now ? { currentDate: options.now } : {}),
      }));
    } catch (error) {
      throw new TokenError(describeJoseError(error));
    }
    const parsed = v.safeParse(ClaimsSchema, payload);
    if (!parsed.success) {
      const issue = parsed.issues[0];
      throw new TokenError(
        `malformed claims: ${v.getDotPath(issue) ?? 'payload'}: ${issue.message}`,
      );
    }
    const claims = parsed.output;
    const nowSeconds = (options.now ?? new Date()).getTime() / 1000;
    if (claims.exp > nowSeconds + MAX_LIFETIME_MS / 1000 + clockTolerance) {
      throw new TokenError(`exp is more than ${MAX_LIFETIME_TEXT} ahead`);
    }
    if (claims.aud !== undefined) {
      const audiences = typeof claims.aud === 'string' ? [claims.aud] : claims.aud;
      if (!audiences.includes(AUDIENCE)) throw new TokenError(`audience is not ${AUDIENCE}`);
    }
    if (claims.tt !== undefined && claims.tt !== 'access') {
      throw new TokenError(`a ${claims.tt} token is not an API token`);
    }
    return claims;
  };
}

function describeJoseError(error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'token is expired';
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'nbf') return 'token is not valid yet (nbf)';
    return `claim ${error.claim} invalid: ${error.reason}`;
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return 'signing algorithm is not HS256';
  if (error instanceof errors.JWSSignatureVerificationFailed)
    return 'signature does not match the secret';
  if (error instanceof errors.JOSEError) return `malformed token (${error.code})`;
  return 'malformed token';
}

const PartialClaims = v.partial(ClaimsSchema);

/** Reads a token's claims without checking the signature (for expiry reports); undefined if unreadable. */
export function readClaims(token: string): v.InferOutput<typeof PartialClaims> | undefined {
  try {
    const payload = decodeJwt(token);
    const parsed = v.safeParse(PartialClaims, payload);
    return parsed.success ? parsed.output : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Why a token that is shaped like a JWT carries no usable claims: the first claim of the wrong type
 * ("the roles claim is not a list of strings"), or that its middle part is not JSON claims.
 */
export function claimsProblem(token: string): string | undefined {
  let payload: unknown;
  try {
    payload = decodeJwt(token);
  } catch {
    return 'its middle part is not base64url JSON claims';
  }
  const parsed = v.safeParse(PartialClaims, payload);
  if (parsed.success) return undefined;
  const issue = parsed.issues[0];
  const claim = issue.path?.map((p) => String(p.key)).join('.');
  return claim
    ? `its ${claim} claim is not valid (${issue.message})`
    : 'its claims are not a JSON object';
}
