import { describe, expect, test } from 'bun:test';
import { createHmac } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { serve } from '../../src/daemon/app.ts';
import { type AuthOptions, createAuthenticator } from '../../src/daemon/auth.ts';
import { type Cidr, parseCidr } from '../../src/shared/address.ts';
import { signToken } from '../../src/shared/jwt.ts';
import { MemoryBackend } from '../support/memory-backend.ts';

const SECRET = 'k8Q2v9ZrX4mN7pL1sT6wY3bH5jD0gF2c';
const KEY = new TextEncoder().encode(SECRET);
const HOUR = 3_600_000;
const now = () => Math.floor(Date.now() / 1000);

function startDaemon(authOptions: Partial<AuthOptions> = {}, trustedProxies: string[] = []) {
  const backend = new MemoryBackend();
  const lines: string[] = [];
  const log = (line: string) => lines.push(line);
  const auth = createAuthenticator({ secret: SECRET, log, ...authOptions });
  const server = serve({
    backend,
    auth,
    hostname: '127.0.0.1',
    port: 0,
    log,
    trustedProxies: trustedProxies.map((text) => parseCidr(text) as Cidr),
  });
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
    [
      'exp more than ten years ahead',
      () => craft({ ...valid, exp: now() + 87_600 * 3600 + 3600 }),
      /exp is more than 87600h \(10 years\) ahead/,
    ],
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

/** An authenticator on a clock the test moves; `status` answers 200 for a principal. */
function clocked(options: Partial<AuthOptions> = {}) {
  let time = 1_000_000;
  const lines: string[] = [];
  const auth = createAuthenticator({
    secret: SECRET,
    log: (line) => lines.push(line),
    now: () => time,
    ...options,
  });
  const status = async (address: string, token: string | null) => {
    const headers: Record<string, string> = token === null ? {} : bearer(token);
    const result = await auth.authenticate(
      new Request('http://127.0.0.1/v1/containers', { headers }),
      address,
    );
    return result.ok ? 200 : result.response.status;
  };
  return {
    lines,
    status,
    /** `count` failed attempts, one from each address `address(i)` gives. */
    fail: async (count: number, address: (i: number) => string) => {
      const statuses: number[] = [];
      for (let i = 0; i < count; i++) statuses.push(await status(address(i), 'bad.token.here'));
      return statuses;
    },
    advance: (ms: number) => {
      time += ms;
    },
  };
}

const goodToken = async () =>
  (await signToken({ username: 'alice', roles: ['admin'], lifetimeMs: HOUR, secret: SECRET }))
    .token;

describe('failed attempts slow down only whoever makes them', () => {
  test('an address that fails too often gets 429 for failures, its valid token still passes', async () => {
    const a = clocked({ maxFailures: 3, failureWindowMs: 60_000, lockoutMs: 30_000 });
    const good = await goodToken();
    // Missing headers are not guesses and are never counted.
    for (let i = 0; i < 5; i++) expect(await a.status('10.0.0.1', null)).toBe(401);
    expect(await a.fail(4, () => '10.0.0.1')).toEqual([401, 401, 401, 429]);
    expect(a.lines.join('\n')).toContain(
      'auth: failed attempts from address 10.0.0.1 get 429 for 30s after 3 failures',
    );
    expect(await a.status('10.0.0.1', good)).toBe(200);
    expect(await a.status('10.0.0.1', 'bad.token.here')).toBe(429);
    // Another address, and another network, are not slowed down.
    expect(await a.status('10.0.0.2', 'bad.token.here')).toBe(401);
    expect(await a.status('10.9.0.1', 'bad.token.here')).toBe(401);
    a.advance(30_000);
    expect(await a.status('10.0.0.1', 'bad.token.here')).toBe(401);
  });

  test('no lock-out of any kind refuses a valid token, from any address', async () => {
    const a = clocked({ maxFailures: 2, maxNetworkFailures: 4, maxTotalFailures: 6 });
    const good = await goodToken();
    await a.fail(6, (i) => `10.0.${i}.1`);
    // The address, its network and the whole daemon are locked out for failures now.
    for (const address of ['10.0.0.1', '10.0.0.77', '192.0.2.1', '2001:db8::1']) {
      expect(await a.status(address, 'bad.token.here')).toBe(429);
      expect(await a.status(address, good)).toBe(200);
      expect(await a.status(address, 'Basic eA==')).toBe(429);
    }
  });

  test("429 is upstream's text/plain body with Retry-After", async () => {
    const auth = createAuthenticator({ secret: SECRET, maxFailures: 1, now: () => 5_000 });
    const request = () => new Request('http://127.0.0.1/', { headers: bearer('bad.token.here') });
    await auth.authenticate(request(), '10.0.0.1');
    const locked = await auth.authenticate(request(), '10.0.0.1');
    if (locked.ok) throw new Error('accepted');
    expect(locked.response.status).toBe(429);
    expect(locked.response.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(locked.response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(locked.response.headers.get('retry-after')).toBe('60');
    expect(await locked.response.text()).toBe(
      '{"error": "too many failed authentication attempts; try again later", "code": 429}\n',
    );
  });

  test('failures answered with 429 are not counted, so they do not use up the network budget', async () => {
    const a = clocked({ maxFailures: 2, maxNetworkFailures: 3 });
    expect(await a.fail(50, () => '10.0.0.1')).toEqual([401, 401, ...Array(48).fill(429)]);
    expect(await a.status('10.0.0.2', 'bad.token.here')).toBe(401);
  });
});

describe('rotating addresses does not buy more guesses', () => {
  test('addresses of one IPv4 /24 share the network budget', async () => {
    const a = clocked({ maxFailures: 3, maxNetworkFailures: 5 });
    expect(await a.fail(6, (i) => `198.51.100.${i + 1}`)).toEqual([401, 401, 401, 401, 401, 429]);
    expect(a.lines.join('\n')).toContain('from network 198.51.100.0/24 get 429');
    expect(await a.status('198.51.100.250', 'bad.token.here')).toBe(429);
    expect(await a.status('198.51.101.1', 'bad.token.here')).toBe(401);
  });

  test('addresses of one IPv6 /64 share the network budget', async () => {
    const a = clocked({ maxFailures: 3, maxNetworkFailures: 5 });
    expect(await a.fail(6, (i) => `2001:db8:0:1::${(i + 1).toString(16)}`)).toEqual([
      401, 401, 401, 401, 401, 429,
    ]);
    expect(a.lines.join('\n')).toContain('from network 2001:db8:0:1::/64 get 429');
    expect(await a.status('2001:db8:0:1:ffff::1', 'bad.token.here')).toBe(429);
    expect(await a.status('2001:db8:0:2::1', 'bad.token.here')).toBe(401);
  });

  test('IPv4-mapped IPv6 is the same address as plain IPv4', async () => {
    const a = clocked({ maxFailures: 2 });
    await a.fail(2, () => '::ffff:203.0.113.9');
    expect(await a.status('203.0.113.9', 'bad.token.here')).toBe(429);
  });

  test('every network together has one budget', async () => {
    const a = clocked({
      maxFailures: 5,
      maxNetworkFailures: 5,
      maxTotalFailures: 8,
      failureWindowMs: 80_000,
      lockoutMs: 20_000,
    });
    const statuses = await a.fail(9, (i) => `10.${i}.0.1`);
    expect(statuses).toEqual([...Array(8).fill(401), 429]);
    expect(a.lines.join('\n')).toContain(
      'auth: failed attempts from all addresses get 429 for 20s after 8 failures',
    );
    expect(await a.status('172.16.0.1', 'bad.token.here')).toBe(429);
    a.advance(19_999);
    expect(await a.status('172.16.0.1', 'bad.token.here')).toBe(429);
    a.advance(1);
    expect(await a.fail(9, (i) => `10.${100 + i}.0.1`)).toEqual([...Array(8).fill(401), 429]);
  });
});

describe('the lock-out tables stay bounded and keep live lock-outs', () => {
  test('flooding with new addresses does not erase a lock-out', async () => {
    const a = clocked({
      maxFailures: 2,
      maxNetworkFailures: 1000,
      maxTotalFailures: 1000,
      maxTrackedAddresses: 3,
    });
    await a.fail(2, () => '10.0.0.1');
    expect(await a.status('10.0.0.1', 'bad.token.here')).toBe(429);
    await a.fail(200, (i) => `10.1.${i}.1`);
    expect(await a.status('10.0.0.1', 'bad.token.here')).toBe(429);
  });

  test('when every remembered address is locked out, newcomers are still caught by their network', async () => {
    const a = clocked({ maxFailures: 2, maxNetworkFailures: 4, maxTrackedAddresses: 2 });
    await a.fail(2, () => '10.0.1.1');
    await a.fail(2, () => '10.0.2.1');
    // 10.0.3.1 finds no room beside two live lock-outs; its network counts it instead.
    expect(await a.fail(5, () => '10.0.3.1')).toEqual([401, 401, 401, 401, 429]);
    expect(await a.status('10.0.1.1', 'bad.token.here')).toBe(429);
    expect(await a.status('10.0.2.1', 'bad.token.here')).toBe(429);
  });
});

describe('over HTTP on a real port', () => {
  test('a valid token keeps working while the same address floods bad tokens', async () => {
    await using d = startDaemon({ maxFailures: 5, maxNetworkFailures: 10 });
    const good = await goodToken();
    const flood = await Promise.all(
      Array.from({ length: 40 }, () => d.get('/v1/containers', bearer('bad.token.here'))),
    );
    const statuses = flood.map((response) => response.status);
    expect(statuses.filter((status) => status === 401)).toHaveLength(5);
    expect(statuses.filter((status) => status === 429)).toHaveLength(35);
    const interleaved = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        d.get('/v1/containers', bearer(i % 2 === 0 ? good : 'bad.token.here')),
      ),
    );
    expect(interleaved.map((response) => response.status)).toEqual(
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? 200 : 429)),
    );
    expect(d.lines.join('\n')).toContain('from address 127.0.0.1 get 429');
  });

  test('X-Forwarded-For names the client only when the peer is a trusted proxy', async () => {
    const bad = (forwardedFor: string) => ({
      ...bearer('bad.token.here'),
      'X-Forwarded-For': forwardedFor,
    });
    const good = await goodToken();
    {
      // The daemon sits behind a proxy on loopback: each client is counted on its own.
      await using d = startDaemon({ maxFailures: 2 }, ['127.0.0.0/8']);
      // A client cannot pose as someone else: what it writes left of the proxy's entry is ignored.
      for (let i = 0; i < 2; i++) {
        await d.get('/v1/containers', bad(`198.51.100.${i}, 203.0.113.7`));
      }
      expect((await d.get('/v1/containers', bad('203.0.113.7'))).status).toBe(429);
      expect((await d.get('/v1/containers', bad('192.0.2.1'))).status).toBe(401);
      const user = { ...bearer(good), 'X-Forwarded-For': '203.0.113.7' };
      expect((await d.get('/v1/containers', user)).status).toBe(200);
      expect(d.lines.join('\n')).toContain('auth: refused 203.0.113.7');
      expect(d.lines.some((line) => line.startsWith('203.0.113.7 GET /v1/containers 200'))).toBe(
        true,
      );
    }
    {
      // A peer that is not a trusted proxy cannot choose its address with the header.
      await using d = startDaemon({ maxFailures: 2 }, ['10.0.0.0/8']);
      expect((await d.get('/v1/containers', bad('203.0.113.1'))).status).toBe(401);
      expect((await d.get('/v1/containers', bad('203.0.113.2'))).status).toBe(401);
      expect((await d.get('/v1/containers', bad('203.0.113.3'))).status).toBe(429);
      expect(d.lines.join('\n')).toContain('auth: refused 127.0.0.1');
      expect(d.lines.join('\n')).not.toContain('203.0.113');
    }
  });
});
