import { afterAll, describe, expect, test } from 'bun:test';
import { chmodSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as v from 'valibot';
import { BUNDLE_TARGETS, manifest } from '../../scripts/bundle.ts';
import { ConfigError, loadConfig } from '../../src/mcp/config.ts';
import { INSTALL_HELP } from '../../src/mcp/install.ts';
import { flagUsage, SETTINGS, settingsHelp } from '../../src/mcp/settings.ts';
import { isTrue } from '../../src/shared/parse-bool.ts';
import { makeToken } from '../support/mcp.ts';
import { ROOT } from '../support/stdio.ts';

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
    writeFileSync(file, rotated, { mode: 0o600 });
    // A new modification time, as a later write has, without waiting for the clock to move.
    utimesSync(file, new Date(), new Date(Date.now() + 60_000));
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

describe('the settings table', () => {
  test('--help lists every setting of the table, in its order', () => {
    const help = Bun.spawnSync([process.execPath, join(ROOT, 'src/mcp/main.ts'), '--help'], {
      env: { PATH: process.env.PATH ?? '' },
    }).stdout.toString();
    expect(help).toContain(`Environment:\n${settingsHelp()}`);
    const listed = [...help.matchAll(/^ {2}(CONTAINARIUM_\w+) +\S/gm)].map((m) => m[1]);
    expect(listed).toEqual(SETTINGS.map((s) => s.env));
  });

  test('install offers every setting marked for it: by its flag, or copied when set', () => {
    for (const s of SETTINGS.filter((s) => s.install)) {
      expect(INSTALL_HELP).toContain(s.flag ? flagUsage(s.flag) : s.env);
    }
    expect(INSTALL_HELP).toContain(
      'CONTAINARIUM_CA_CERT, CONTAINARIUM_TIMEOUT and CONTAINARIUM_DEBUG are copied when set.',
    );
  });

  test("the bundle asks for the settings marked for it, secrets as sensitive, into the server's env", () => {
    const m = manifest(BUNDLE_TARGETS);
    const asked = SETTINGS.filter((s) => s.bundle);
    expect(Object.keys(m.user_config)).toEqual(asked.map((s) => s.bundle!.key));
    for (const s of asked) {
      expect(m.server.mcp_config.env[s.env as keyof typeof m.server.mcp_config.env]).toBe(
        `\${user_config.${s.bundle!.key}}`,
      );
      expect(Boolean(m.user_config[s.bundle!.key]?.sensitive)).toBe(s.secret);
    }
    expect(m.user_config.debug).toMatchObject({ type: 'boolean', default: false });
  });

  test("install's help keeps a long flag from running into its words", () => {
    expect(INSTALL_HELP).toContain(
      '\n  --disable-destructive\n                      tools that destroy',
    );
    expect(INSTALL_HELP).not.toMatch(/NAMES[a-z]/);
  });

  test('the bundle offers the guard rails, each with a default so an empty option is unset', () => {
    const m = manifest(BUNDLE_TARGETS);
    expect(m.user_config.read_only).toMatchObject({ type: 'boolean', default: false });
    expect(m.user_config.disable_destructive).toMatchObject({ type: 'boolean', default: false });
    for (const key of ['toolsets', 'tools', 'exclude_tools']) {
      expect(m.user_config[key]).toMatchObject({ type: 'string', required: false, default: '' });
    }
    // What the host passes for the defaults starts the server with no guard rail.
    const guards = loadConfig(
      env({
        CONTAINARIUM_READ_ONLY: 'false',
        CONTAINARIUM_DISABLE_DESTRUCTIVE: 'false',
        CONTAINARIUM_TOOLSETS: '',
        CONTAINARIUM_TOOLS: '',
        CONTAINARIUM_EXCLUDE_TOOLS: '',
      }),
    ).guards;
    expect(guards).toEqual({ readOnly: false, disableDestructive: false });
  });

  test('each rule is valibot: a refusal is an issue naming the setting', () => {
    const timeout = SETTINGS.find((s) => s.env === 'CONTAINARIUM_TIMEOUT')!;
    const result = v.safeParse(timeout.schema, ' 0 ');
    expect(result.success).toBe(false);
    expect(result.issues?.[0]?.message).toBe(
      'CONTAINARIUM_TIMEOUT must be a number of seconds from 1 to 3600, got "0"',
    );
    expect(v.parse(timeout.schema, ' 90 ')).toBe(90_000);
  });
});
