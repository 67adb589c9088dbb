// POST /v1/containers/{username}/exec and GET .../logs over the memory backend: validation,
// access, and the output hygiene and caps the routes apply to whatever the backend read.
import { afterAll, describe, expect, test } from 'bun:test';
import { OUTPUT_CAP_BYTES } from '../../src/shared/output.ts';
import { startOwnDaemon } from '../support/own-daemon.ts';

const daemon = await startOwnDaemon();
afterAll(() => daemon[Symbol.asyncDispose]());
const { backend } = daemon;
const admin = await daemon.token('mcp-client', { roles: ['admin'] });
const alice = await daemon.token('alice');

const call = (method: string, path: string, body?: unknown, as = admin) =>
  fetch(new URL(path, daemon.url), {
    method,
    headers: { Authorization: `Bearer ${as}`, 'Content-Type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });

/** A 400 whose upstream-style error text names the field. */
async function expectInvalid(response: Response, field: RegExp) {
  expect(response.status).toBe(400);
  const body = (await response.json()) as { code: number; error: string };
  expect(Object.keys(body)).toEqual(['code', 'error']);
  expect(body.error).toMatch(field);
}

const execCalls = () => backend.calls.filter((c) => c.method === 'exec');

describe('POST /v1/containers/{username}/exec', () => {
  backend.seed('alice');
  backend.seed('bob');
  backend.seed('sleepy', { state: 'stopped' });

  test('runs as the container user by default with a 60 s limit, and answers the wire shape', async () => {
    const response = await call('POST', '/v1/containers/alice/exec', { command: ['echo', 'hi'] });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      exitCode: 0,
      stdout: 'echo hi\n',
      stderr: '',
      stdoutTruncated: false,
      stderrTruncated: false,
      timedOut: false,
    });
    expect(execCalls().at(-1)?.args).toEqual([
      'alice',
      { command: ['echo', 'hi'], user: 'alice', timeoutSeconds: 60 },
    ]);
  });

  test('takes a string command, another user and a timeout (snake_case too)', async () => {
    await call('POST', '/v1/containers/alice/exec', {
      command: 'id -u',
      user: 'root',
      timeout_seconds: '600',
    });
    expect(execCalls().at(-1)?.args[1]).toEqual({
      command: 'id -u',
      user: 'root',
      timeoutSeconds: 600,
    });
  });

  test('a non-zero exit and a timeout are answers, not errors', async () => {
    backend.execAnswer = () => ({
      exitCode: 124,
      stdout: '',
      stderr: 'slow\n',
      stdoutCut: false,
      stderrCut: false,
      timedOut: true,
    });
    const response = await call('POST', '/v1/containers/alice/exec', { command: 'sleep 99' });
    expect(response.status).toBe(200);
    const body = (await response.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ exitCode: 124, stderr: 'slow\n', timedOut: true });
  });

  test('strips escapes and controls, caps each stream at 16 KiB keeping its tail', async () => {
    const big = `${'x'.repeat(OUTPUT_CAP_BYTES)}\nLAST\n`;
    backend.execAnswer = () => ({
      exitCode: 0,
      stdout: `\u001b[31mred\u001b[0m\r\nbell\u0007\n`,
      stderr: big,
      stdoutCut: false,
      stderrCut: false,
      timedOut: false,
    });
    const body = (await (
      await call('POST', '/v1/containers/alice/exec', { command: 'x' })
    ).json()) as Record<string, unknown>;
    expect(body.stdout).toBe('red\nbell\n');
    expect(body.stdoutTruncated).toBe(false);
    expect(body.stderrTruncated).toBe(true);
    expect(String(body.stderr).endsWith('LAST\n')).toBe(true);
    expect(Buffer.byteLength(String(body.stderr))).toBe(OUTPUT_CAP_BYTES);
  });

  test('a stream the backend read only the tail of is reported truncated', async () => {
    backend.execAnswer = () => ({
      exitCode: 0,
      stdout: 'tail',
      stderr: '',
      stdoutCut: true,
      stderrCut: false,
      timedOut: false,
    });
    const body = (await (
      await call('POST', '/v1/containers/alice/exec', { command: 'x' })
    ).json()) as Record<string, unknown>;
    expect(body).toMatchObject({ stdout: 'tail', stdoutTruncated: true, stderrTruncated: false });
  });

  test('bad input is a 400 naming the field, and runs nothing', async () => {
    const before = execCalls().length;
    const path = '/v1/containers/alice/exec';
    await expectInvalid(await call('POST', path, {}), /command is required/);
    await expectInvalid(await call('POST', path, { command: '' }), /invalid command: expected/);
    await expectInvalid(await call('POST', path, { command: [] }), /invalid command/);
    await expectInvalid(await call('POST', path, { command: ['a\u0000b'] }), /invalid command/);
    await expectInvalid(await call('POST', path, { command: 42 }), /invalid command/);
    await expectInvalid(
      await call('POST', path, { command: 'x'.repeat(16 * 1024 + 1) }),
      /invalid command/,
    );
    await expectInvalid(
      await call('POST', path, { command: 'ls', timeoutSeconds: 601 }),
      /invalid timeoutSeconds: expected a whole number of seconds from 1 to 600/,
    );
    await expectInvalid(
      await call('POST', path, { command: 'ls', timeoutSeconds: 0 }),
      /invalid timeoutSeconds/,
    );
    await expectInvalid(
      await call('POST', path, { command: 'ls', timeoutSeconds: 5, timeout_seconds: 5 }),
      /either timeoutSeconds or timeout_seconds/,
    );
    await expectInvalid(
      await call('POST', path, { command: 'ls', user: 'Root;rm' }),
      /invalid user: expected an account name/,
    );
    await expectInvalid(
      await call('POST', '/v1/containers/Bad_Name/exec', { command: 'ls' }),
      /invalid username/,
    );
    expect(execCalls().length).toBe(before);
  });

  test('a user may exec only in their own container', async () => {
    const before = execCalls().length;
    const denied = await call('POST', '/v1/containers/bob/exec', { command: 'ls' }, alice);
    expect(denied.status).toBe(403);
    expect(execCalls().length).toBe(before);
    const own = await call('POST', '/v1/containers/alice/exec', { command: 'ls' }, alice);
    expect(own.status).toBe(200);
  });

  test('a missing container is 404; a stopped one is a 400 saying to start it', async () => {
    const missing = await call('POST', '/v1/containers/nobody/exec', { command: 'ls' });
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: string }).error).toMatch(/container.*not found/);
    await expectInvalid(
      await call('POST', '/v1/containers/sleepy/exec', { command: 'ls' }),
      /not running.*start it first/,
    );
  });
});

describe('GET /v1/containers/{username}/logs', () => {
  const journal = Array.from({ length: 300 }, (_, i) =>
    i % 3 === 0 ? `line ${i} sshd: Accepted` : `line ${i} \u001b[1mcron\u001b[0m ran`,
  );
  const logCalls = () => backend.calls.filter((c) => c.method === 'logs');

  test('the last 100 lines by default, cleaned, with their source', async () => {
    backend.logAnswer = { source: 'journal', text: `${journal.join('\n')}\n`, cut: false };
    const response = await call('GET', '/v1/containers/alice/logs');
    expect(response.status).toBe(200);
    const body = (await response.json()) as { source: string; lines: string[]; truncated: boolean };
    expect(body.source).toBe('journal');
    expect(body.lines.length).toBe(100);
    expect(body.lines.at(-1)).toBe('line 299 cron ran');
    expect(body.truncated).toBe(false);
    expect(logCalls().at(-1)?.args).toEqual(['alice', { lines: 100 }]);
  });

  test('grep filters here, case-insensitively, over many more entries than asked', async () => {
    const response = await call('GET', '/v1/containers/alice/logs?lines=5&grep=ACCEPTED');
    const body = (await response.json()) as { lines: string[] };
    expect(body.lines).toEqual([
      'line 285 sshd: Accepted',
      'line 288 sshd: Accepted',
      'line 291 sshd: Accepted',
      'line 294 sshd: Accepted',
      'line 297 sshd: Accepted',
    ]);
    expect((logCalls().at(-1)!.args[1] as { lines: number }).lines).toBe(10_000);
  });

  test('since is passed on as Unix seconds, from a time or a duration ago', async () => {
    await call('GET', '/v1/containers/alice/logs?since=2026-01-31T12:00:00Z');
    expect(logCalls().at(-1)?.args[1]).toEqual({ lines: 100, since: 1_769_860_800 });
    const before = Math.floor(Date.now() / 1000);
    await call('GET', '/v1/containers/alice/logs?since=2h');
    const since = (logCalls().at(-1)!.args[1] as { since: number }).since;
    expect(since).toBeGreaterThanOrEqual(before - 7200 - 5);
    expect(since).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) - 7200);
  });

  test('lines beyond 16 KiB are dropped from the start and truncated says so', async () => {
    const long = Array.from({ length: 2000 }, (_, i) => `${i} ${'y'.repeat(100)}`);
    backend.logAnswer = { source: 'console', text: long.join('\n'), cut: false };
    const body = (await (await call('GET', '/v1/containers/alice/logs?lines=2000')).json()) as {
      source: string;
      lines: string[];
      truncated: boolean;
    };
    expect(body.source).toBe('console');
    expect(body.truncated).toBe(true);
    expect(body.lines.at(-1)).toBe(`1999 ${'y'.repeat(100)}`);
    expect(Buffer.byteLength(body.lines.join('\n'))).toBeLessThanOrEqual(OUTPUT_CAP_BYTES);
  });

  test('bad parameters are 400s naming them, and read nothing', async () => {
    const before = logCalls().length;
    const path = '/v1/containers/alice/logs';
    await expectInvalid(
      await call('GET', `${path}?lines=0`),
      /invalid lines: expected a whole number from 1 to 2000/,
    );
    await expectInvalid(await call('GET', `${path}?lines=2001`), /invalid lines/);
    await expectInvalid(await call('GET', `${path}?lines=ten`), /invalid lines/);
    await expectInvalid(await call('GET', `${path}?grep=${'g'.repeat(257)}`), /invalid grep/);
    await expectInvalid(await call('GET', `${path}?grep=a%0Ab`), /invalid grep/);
    await expectInvalid(
      await call('GET', `${path}?since=yesterday`),
      /invalid since: expected a time like/,
    );
    await expectInvalid(await call('GET', `${path}?since=-5m`), /invalid since/);
    await expectInvalid(
      await call('GET', `${path}?since=1969-12-31T23:59:59Z`),
      /invalid since: expected a time like "2026-01-31T12:00:00Z" \(RFC 3339, not before 1970\)/,
    );
    expect(logCalls().length).toBe(before);
  });

  test('a user reads only their own container', async () => {
    expect((await call('GET', '/v1/containers/bob/logs', undefined, alice)).status).toBe(403);
    expect((await call('GET', '/v1/containers/alice/logs', undefined, alice)).status).toBe(200);
  });
});
