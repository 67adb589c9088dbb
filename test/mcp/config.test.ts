import { afterAll, describe, expect, test } from 'bun:test';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/mcp/config.ts';
import { isTrue } from '../../src/shared/parse-bool.ts';
import { makeToken } from '../support/mcp.ts';

const dir = mkdtempSync(join(tmpdir(), 'mcp-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const token = await makeToken();
const env = (extra: Record<string, string | undefined>) => ({
  CONTAINARIUM_SERVER_URL: 'http://localhost:8080',
  CONTAINARIUM_JWT_TOKEN: token,
  ...extra,
});

describe('loadConfig', () => {
  test('reads the seed variables and trims a trailing slash', () => {
    const config = loadConfig(
      env({ CONTAINARIUM_SERVER_URL: 'http://localhost:8080/', CONTAINARIUM_DEBUG: 'true' }),
    );
    expect(config.serverUrl).toBe('http://localhost:8080');
    expect(config.token.get()).toBe(token);
    expect(config.debug).toBe(true);
  });

  test('keeps a path prefix in the base URL', () => {
    expect(loadConfig(env({ CONTAINARIUM_SERVER_URL: 'https://h.example/api/' })).serverUrl).toBe(
      'https://h.example/api',
    );
  });

  test('a missing URL uses the seed words', () => {
    expect(() => loadConfig(env({ CONTAINARIUM_SERVER_URL: undefined }))).toThrow(
      'CONTAINARIUM_SERVER_URL environment variable is required',
    );
  });

  test('a missing token uses the seed words', () => {
    expect(() => loadConfig(env({ CONTAINARIUM_JWT_TOKEN: '' }))).toThrow(
      'CONTAINARIUM_JWT_TOKEN environment variable is required',
    );
  });

  test.each([
    ['not a url', 'not a valid URL'],
    ['ftp://host', 'must start with http:// or https://'],
    ['http://user:pw@host', 'without credentials'],
  ])('refuses the URL %p', (url, message) => {
    expect(() => loadConfig(env({ CONTAINARIUM_SERVER_URL: url }))).toThrow(message);
  });

  test('refuses a token that is not a JWT, without echoing it', () => {
    try {
      loadConfig(env({ CONTAINARIUM_JWT_TOKEN: 'hunter2-secret-value' }));
      throw new Error('expected a ConfigError');
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toContain('is not a JWT');
      expect((error as Error).message).not.toContain('hunter2');
    }
  });

  test('reports the expiry of the token', async () => {
    const expired = await makeToken({ expiresIn: Math.floor(Date.now() / 1000) - 60 });
    const expiry = loadConfig(env({ CONTAINARIUM_JWT_TOKEN: expired })).token.expiresAt();
    expect(expiry!.getTime()).toBeLessThan(Date.now());
  });

  test('reads a token file and follows its rotation', async () => {
    const file = join(dir, 'token');
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
    const config = loadConfig(
      env({ CONTAINARIUM_JWT_TOKEN: undefined, CONTAINARIUM_JWT_TOKEN_FILE: file }),
    );
    expect(config.token.get()).toBe(token);
    const rotated = await makeToken({ username: 'rotated' });
    await Bun.sleep(5);
    writeFileSync(file, rotated, { mode: 0o600 });
    expect(config.token.get()).toBe(rotated);
  });

  test('refuses a token file others can read', () => {
    const file = join(dir, 'open-token');
    writeFileSync(file, token);
    chmodSync(file, 0o644);
    expect(() => loadConfig(env({ CONTAINARIUM_JWT_TOKEN_FILE: file }))).toThrow('chmod 600');
  });

  test('checks CONTAINARIUM_CA_CERT and CONTAINARIUM_TIMEOUT', () => {
    const pem = join(dir, 'ca.pem');
    writeFileSync(pem, 'not a certificate');
    expect(() => loadConfig(env({ CONTAINARIUM_CA_CERT: pem }))).toThrow('not a PEM certificate');
    expect(() => loadConfig(env({ CONTAINARIUM_TIMEOUT: 'soon' }))).toThrow('CONTAINARIUM_TIMEOUT');
    expect(loadConfig(env({ CONTAINARIUM_TIMEOUT: '5' })).timeoutMs).toBe(5000);
  });

  test('parses booleans like Go', () => {
    for (const yes of ['1', 't', 'true', 'TRUE', 'True']) expect(isTrue(yes)).toBe(true);
    for (const no of ['0', 'yes', '', undefined, 'false']) expect(isTrue(no)).toBe(false);
  });
});
