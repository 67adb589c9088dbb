import { describe, expect, test } from 'bun:test';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { decodeJwt, decodeProtectedHeader, SignJWT } from 'jose';
import { generateToken } from '../../src/daemon/token.ts';
import { createVerifier, readClaims, signToken, TokenError } from '../../src/shared/jwt.ts';

const ROOT = resolve(import.meta.dir, '../..');
const SECRET = 'k8Q2v9ZrX4mN7pL1sT6wY3bH5jD0gF2c'; // 32 bytes
const HOUR = 3_600_000;

function run(args: string[], env: Record<string, string> = {}) {
  const proc = Bun.spawnSync(['bun', resolve(ROOT, 'src/daemon/main.ts'), ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
  });
  return { code: proc.exitCode, stdout: proc.stdout.toString(), stderr: proc.stderr.toString() };
}

describe('signToken', () => {
  test('mints HS256 with the claims both daemon generations accept', async () => {
    const now = new Date('2026-06-01T00:00:00Z');
    const { token, expiresAt } = await signToken({
      username: 'mcp-client',
      roles: ['admin'],
      lifetimeMs: 8760 * HOUR,
      secret: SECRET,
      now,
    });
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'HS256', typ: 'JWT' });
    const claims = decodeJwt(token);
    const iat = now.getTime() / 1000;
    expect(claims).toMatchObject({
      username: 'mcp-client',
      roles: ['admin'],
      iss: 'containarium',
      aud: ['containarium-api'],
      iat,
      nbf: iat,
      exp: iat + 8760 * 3600,
    });
    // 128 random bits, base64url: 22 characters.
    expect(claims.jti).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(expiresAt.getTime()).toBe((iat + 8760 * 3600) * 1000);
    const again = await signToken({
      username: 'x',
      roles: [],
      lifetimeMs: HOUR,
      secret: SECRET,
      now,
    });
    expect(decodeJwt(again.token).jti).not.toBe(claims.jti);
  });

  test('refuses a secret under 32 bytes, and a lifetime that is not positive', async () => {
    const input = { username: 'a', roles: ['user'], lifetimeMs: HOUR };
    await expect(signToken({ ...input, secret: 'your-secret-key' })).rejects.toThrow(
      /15 bytes; it must be at least 32 bytes.*openssl rand -base64 32/,
    );
    await expect(signToken({ ...input, secret: SECRET, lifetimeMs: 0 })).rejects.toThrow(
      /positive/,
    );
    await expect(
      signToken({ ...input, secret: SECRET, lifetimeMs: 87_600 * HOUR + 1000 }),
    ).rejects.toThrow('the token lifetime must be at most 87600h (10 years)');
  });

  test('the verifier refuses an exp further ahead than ten years (beyond the clock tolerance)', async () => {
    const now = new Date('2026-06-01T00:00:00Z');
    const nowSeconds = now.getTime() / 1000;
    const verify = createVerifier(SECRET, { now, clockToleranceSeconds: 30 });
    const signed = (exp: number) =>
      new SignJWT({ username: 'alice', roles: ['admin'] })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setIssuer('containarium')
        .setExpirationTime(exp)
        .sign(new TextEncoder().encode(SECRET));
    const tenYears = 87_600 * 3600;
    const longest = await signToken({
      username: 'alice',
      roles: [],
      lifetimeMs: 87_600 * HOUR,
      secret: SECRET,
      now,
    });
    expect((await verify(longest.token)).username).toBe('alice');
    expect((await verify(await signed(nowSeconds + tenYears + 30))).username).toBe('alice');
    await expect(verify(await signed(nowSeconds + tenYears + 31))).rejects.toThrow(
      'exp is more than 87600h (10 years) ahead',
    );
    await expect(verify(await signed(nowSeconds + 100 * tenYears))).rejects.toThrow(TokenError);
  });

  test('readClaims reads expiry without the secret, and undefined for garbage', async () => {
    const { token, expiresAt } = await signToken({
      username: 'bob',
      roles: ['user'],
      lifetimeMs: HOUR,
      secret: SECRET,
    });
    expect(readClaims(token)?.exp).toBe(expiresAt.getTime() / 1000);
    expect(readClaims(token)?.username).toBe('bob');
    expect(readClaims('not.a.token')).toBeUndefined();
  });
});

describe('generateToken', () => {
  test('writes only the token and a newline to stdout, the expiry to stderr', async () => {
    let stdout = '';
    let stderr = '';
    const token = await generateToken(
      {
        kind: 'token',
        username: 'mcp-client',
        roles: ['admin'],
        lifetimeMs: 8760 * HOUR,
        secret: SECRET,
      },
      {
        stdout: { write: (t: string) => (stdout += t) },
        stderr: { write: (t: string) => (stderr += t) },
      },
      new Date('2026-06-01T00:00:00Z'),
    );
    expect(stdout).toBe(`${token}\n`);
    expect(stderr).toContain('expires 2027-06-01T00:00:00.000Z');
    expect(stderr).not.toContain(token);
    const verify = createVerifier(SECRET, { now: new Date('2026-06-02T00:00:00Z') });
    expect(await verify(token)).toMatchObject({ username: 'mcp-client', roles: ['admin'] });
  });
});

describe('containarium token generate (real process)', () => {
  test('stdout is exactly the token, and the daemon verifier accepts it', async () => {
    const result = run([
      'token',
      'generate',
      '--username',
      'mcp-client',
      '--roles',
      'admin,ops',
      '--expiry=8760h',
      '--secret',
      SECRET,
    ]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\n$/);
    const token = result.stdout.trim();
    expect(result.stderr).toMatch(/token for mcp-client \(roles: admin, ops\) expires \d{4}-/);
    expect(result.stderr).not.toContain(SECRET);
    const claims = await createVerifier(SECRET)(token);
    expect(claims.roles).toEqual(['admin', 'ops']);
    expect(claims.exp - (claims.iat ?? 0)).toBe(8760 * 3600);
  });

  test('--secret-file is trimmed, so a file from `openssl rand > f` works', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'containarium-token-'));
    const file = join(dir, 'jwt.secret');
    writeFileSync(file, `  ${SECRET}\n\n`, { mode: 0o600 });
    const result = run(['token', 'generate', '--username', 'alice', '--secret-file', file]);
    expect(result.code).toBe(0);
    const claims = await createVerifier(SECRET)(result.stdout.trim());
    // Defaults: role "user", 24h.
    expect(claims.roles).toEqual(['user']);
    expect(claims.exp - (claims.iat ?? 0)).toBe(24 * 3600);
  });

  test('a --secret-file others can read is refused with the chmod 600 fix, and no token', () => {
    const dir = mkdtempSync(join(tmpdir(), 'containarium-token-'));
    const file = join(dir, 'jwt.secret');
    writeFileSync(file, `${SECRET}\n`);
    chmodSync(file, 0o644);
    const result = run(['token', 'generate', '--username', 'alice', '--secret-file', file]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      `containarium: --secret-file ${file} can be read by other users (mode 644); run chmod 600 ${file}\n`,
    );
  });

  test('--expiry is at most 87600h (ten years), which the daemon still accepts', async () => {
    const generate = (expiry: string) =>
      run(['token', 'generate', '--username', 'a', '--expiry', expiry, '--secret', SECRET]);
    const longest = generate('87600h');
    expect(longest.code).toBe(0);
    const claims = await createVerifier(SECRET)(longest.stdout.trim());
    expect(claims.exp - (claims.iat ?? 0)).toBe(87600 * 3600);
    const longer = generate('87601h');
    expect(longer.code).toBe(1);
    expect(longer.stdout).toBe('');
    expect(longer.stderr).toContain('invalid --expiry "87601h": at most 87600h (10 years)');
  });

  test.each([
    [
      ['--secret', 'your-secret-key'],
      /--secret: the JWT secret is 15 bytes; it must be at least 32 bytes.*openssl rand -base64 32/,
    ],
    [['--secret', SECRET, '--expiry', '0'], /invalid --expiry "0"/],
    [['--secret', SECRET, '--expiry', '-1h'], /invalid --expiry "-1h"/],
    [
      ['--secret', SECRET, '--expiry', '1 year'],
      /invalid --expiry "1 year": expected a Go duration/,
    ],
    [['--secret', SECRET, '--expiry', '10'], /invalid --expiry "10"/],
  ])('%p is refused with a reason and nothing on stdout', (extra, message) => {
    const result = run(['token', 'generate', '--username', 'alice', ...extra]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(message);
  });

  test('usage mistakes exit 2', () => {
    const noSecret = run(['token', 'generate', '--username', 'alice']);
    expect(noSecret.code).toBe(2);
    expect(noSecret.stderr).toContain('--secret or --secret-file is required');
    const badUser = run(['token', 'generate', '--username', 'Alice_1', '--secret', SECRET]);
    expect(badUser.code).toBe(1);
    expect(badUser.stderr).toContain('invalid --username "Alice_1"');
    const unknown = run(['token', 'generate', '--username', 'alice', '--secert', SECRET]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown flag --secert');
    expect(unknown.stderr).not.toContain(SECRET);
  });

  test('--help describes the flags on stdout', () => {
    const result = run(['token', 'generate', '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('--expiry D');
    expect(result.stdout).toContain('--secret-file F');
  });
});
