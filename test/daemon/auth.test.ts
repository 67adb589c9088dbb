import { describe, expect, test } from 'bun:test';
import { createHmac } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { type AuthOptions, createAuthenticator } from '../../src/daemon/auth.ts';
import { serve } from '../../src/daemon/http.ts';
import { signToken } from '../../src/shared/jwt.ts';
import { MemoryBackend } from '../support/memory-backend.ts';

const SECRET = 'k8Q2v9ZrX4mN7pL1sT6wY3bH5jD0gF2c';
const KEY = new TextEncoder().encode(SECRET);
const HOUR = 3_600_000;
const now = () => Math.floor(Date.now() / 1000);

function startDaemon(authOptions: Partial<AuthOptions> = {}) {
  const backend = new MemoryBackend();
  const lines: string[] = [];
  const log = (line: string) => lines.push(line);
  const auth = createAuthenticator({ secret: SECRET, log, ...authOptions });
  const server = serve({ backend, auth, hostname: '127.0.0.1', port: 0, log });
  const base = `http://127.0.0.1:${server.port}`;
  return {
    backend,
    lines,
    base,
    get: (path: string, headers: Record<string, string> = {}) =>
      fetch(`${base}${path}`, { headers }),
    [Symbol.asyncDispose]: () => server.stop(true),
  };
}

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

/** A token signed however the test says, for the rejections. */
function craft(claims: Record<string, unknown>, alg = 'HS256', key: Uint8Array | CryptoKey = KEY) {
  return new SignJWT({ username: 'alice', roles: ['admin'], ...claims })
    .setProtectedHeader({ alg, typ: 'JWT' })
    .sign(key);
}

const valid = { iss: 'containarium', exp: now() + 3600, iat: now() };

async function expectPlain401(response: Response, error: string) {
  expect(response.status).toBe(401);
  expect(response.headers.get('content-type')).toBe('text/plain; charset=utf-8');
  expect(response.headers.get('x-content-type-options')).toBe('nosniff');
  expect(await response.text()).toBe(`{"error": "${error}", "code": 401}\n`);
}

describe('401 bodies, byte for byte (contract §3.2)', () => {
  test('missing header', async () => {
    await using d = startDaemon();
    await expectPlain401(await d.get('/v1/containers'), 'missing authorization header');
  });

  test.each(['Basic YWxpY2U6cHc=', 'Token abc', 'Bearer', 'eyJhbGciOiJIUzI1NiJ9.e30.x'])(
    'bad scheme %p',
    async (header) => {
      await using d = startDaemon();
      await expectPlain401(
        await d.get('/v1/containers', { Authorization: header }),
        "invalid authorization header format, expected 'Bearer <token>'",
      );
    },
  );

  test('any token failure is the generic "invalid token", with the reason only in the log', async () => {
    await using d = startDaemon();
    const expired = await craft({ ...valid, exp: now() - 3600 });
    await expectPlain401(await d.get('/v1/containers', bearer(expired)), 'invalid token');
    const logged = d.lines.join('\n');
    expect(logged).toContain('token is expired');
    expect(logged).not.toContain(expired);
    expect(logged).not.toContain(expired.split('.')[2] as string);
  });
});

describe('token checks', () => {
  const rejected: Array<[string, () => Promise<string>, RegExp]> = [
    [
      'alg none',
      async () => {
        const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
        return `${part({ alg: 'none', typ: 'JWT' })}.${part({ username: 'alice', roles: ['admin'], ...valid })}.`;
      },
      /not HS256|malformed/,
    ],
    ['HS384', () => craft(valid, 'HS384'), /not HS256/],
    ['HS512', () => craft(valid, 'HS512'), /not HS256/],
    [
      'RS256',
      async () => {
        const { privateKey } = await generateKeyPair('RS256');
        return craft(valid, 'RS256', privateKey);
      },
      /not HS256/,
    ],
    ['expired', () => craft({ ...valid, exp: now() - 120 }), /expired/],
    ['wrong issuer', () => craft({ ...valid, iss: 'someone-else' }), /iss/],
    ['no issuer', () => craft({ exp: now() + 3600 }), /iss/],
    ['no expiry', () => craft({ iss: 'containarium' }), /exp/],
    [
      'wrong secret',
      () => craft(valid, 'HS256', new TextEncoder().encode(`${SECRET}x`)),
      /signature/,
    ],
    ['not valid yet', () => craft({ ...valid, nbf: now() + 600 }), /nbf/],
    ['wrong audience', () => craft({ ...valid, aud: ['other-api'] }), /audience/],
    ['refresh token', () => craft({ ...valid, tt: 'refresh' }), /refresh/],
    ['no username', () => craft({ ...valid, username: '' }), /username/],
    ['roles not a list', () => craft({ ...valid, roles: 'admin' }), /roles/],
    [
      'signed garbage',
      async () => {
        const unsigned = `${Buffer.from('{"alg":"HS256"}').toString('base64url')}.${Buffer.from('not json').toString('base64url')}`;
        return `${unsigned}.${createHmac('sha256', SECRET).update(unsigned).digest('base64url')}`;
      },
      /malformed/,
    ],
    ['not a JWT', async () => 'hello', /malformed/],
  ];

  test.each(rejected)('%s is rejected', async (_name, make, reason) => {
    await using d = startDaemon();
    const token = await make();
    const response = await d.get('/v1/containers', bearer(token));
    await expectPlain401(response, 'invalid token');
    expect(d.backend.calls).toEqual([]);
    expect(d.lines.find((l) => l.startsWith('auth: refused'))).toMatch(reason);
  });

  test('accepted: our own tokens, v0.3 tokens (no aud, no jti), lowercase scheme, small clock skew', async () => {
    await using d = startDaemon();
    const ours = (
      await signToken({ username: 'alice', roles: ['admin'], lifetimeMs: HOUR, secret: SECRET })
    ).token;
    const v03 = await craft({ iss: 'containarium', exp: now() + 3600, nbf: now(), iat: now() });
    const skewed = await craft({ ...valid, nbf: now() + 10 });
    const justExpired = await craft({ ...valid, exp: now() - 5 });
    const withAudString = await craft({ ...valid, aud: 'containarium-api' });
    for (const token of [ours, v03, skewed, justExpired, withAudString]) {
      const response = await d.get('/v1/containers', bearer(token));
      expect(response.status).toBe(200);
    }
    const lower = await d.get('/v1/containers', { Authorization: `bearer ${ours}` });
    expect(lower.status).toBe(200);
  });

  test('a JWK-shaped secret does not confuse the verifier (HS256 with the raw bytes only)', async () => {
    await using d = startDaemon();
    const { publicKey } = await generateKeyPair('ES256');
    const jwk = await exportJWK(publicKey);
    const token = await craft(valid, 'HS256', new TextEncoder().encode(JSON.stringify(jwk)));
    await expectPlain401(await d.get('/v1/containers', bearer(token)), 'invalid token');
  });
});

describe('lockout after repeated failures', () => {
  test('429 from that address once the limit is reached, then it lifts', async () => {
    await using d = startDaemon({ maxFailures: 3, failureWindowMs: 5_000, lockoutMs: 400 });
    const good = (
      await signToken({ username: 'alice', roles: ['admin'], lifetimeMs: HOUR, secret: SECRET })
    ).token;
    // Missing headers are not guesses and never lock anyone out.
    for (let i = 0; i < 5; i++) expect((await d.get('/v1/containers')).status).toBe(401);
    for (let i = 0; i < 3; i++) {
      expect((await d.get('/v1/containers', bearer('bad.token.here'))).status).toBe(401);
    }
    const locked = await d.get('/v1/containers', bearer(good));
    expect(locked.status).toBe(429);
    expect(locked.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(locked.headers.get('retry-after')).toBe('1');
    expect(await locked.text()).toBe(
      '{"error": "too many failed authentication attempts; try again later", "code": 429}\n',
    );
    expect(d.backend.calls).toEqual([]);
    // /health needs no token and stays open.
    expect((await d.get('/health')).status).toBe(200);
    await Bun.sleep(450);
    expect((await d.get('/v1/containers', bearer(good))).status).toBe(200);
  });

  test('remembers a bounded number of addresses, forgetting the oldest first', async () => {
    const auth = createAuthenticator({ secret: SECRET, maxFailures: 2, maxTrackedAddresses: 2 });
    const good = (
      await signToken({ username: 'alice', roles: ['admin'], lifetimeMs: HOUR, secret: SECRET })
    ).token;
    const attempt = (address: string, token: string) =>
      auth.authenticate(
        new Request('http://127.0.0.1/v1/containers', { headers: bearer(token) }),
        address,
      );
    const status = async (address: string, token: string) => {
      const result = await attempt(address, token);
      return result.ok ? 200 : result.response.status;
    };
    await attempt('10.0.0.1', 'bad.token.here');
    await attempt('10.0.0.1', 'bad.token.here');
    expect(await status('10.0.0.1', good)).toBe(429);
    // Another address fits beside it; the third pushes the oldest, 10.0.0.1, out.
    await attempt('10.0.0.2', 'bad.token.here');
    expect(await status('10.0.0.1', good)).toBe(429);
    await attempt('10.0.0.3', 'bad.token.here');
    expect(await status('10.0.0.1', good)).toBe(200);
    // The newer ones are still remembered: one more failure locks 10.0.0.3 out.
    await attempt('10.0.0.3', 'bad.token.here');
    expect(await status('10.0.0.3', good)).toBe(429);
  });
});
