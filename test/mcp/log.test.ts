// mcp-server's logger: one prefix per line, secrets and JWTs redacted, debug lines only when on.
import { describe, expect, test } from 'bun:test';
import { createLogger, MAX_DEBUG_CHARS, PREFIX, redact } from '../../src/mcp/log.ts';
import { makeToken } from '../support/mcp.ts';

const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJ1c2VybmFtZSI6ImEifQ.c2lnbmF0dXJl';

const capture = (options: Parameters<typeof createLogger>[0] = {}) => {
  const lines: string[] = [];
  const logger = createLogger({ ...options, write: (line) => lines.push(line) });
  return { logger, lines };
};

describe('createLogger', () => {
  test('each line carries the prefix once, even for a message that already has it', () => {
    const { logger, lines } = capture();
    logger.info('serving');
    logger.info(`${PREFIX}: passed on`);
    logger.warn('warning: expired');
    expect(lines).toEqual([
      `${PREFIX}: serving\n`,
      `${PREFIX}: passed on\n`,
      `${PREFIX}: warning: expired\n`,
    ]);
  });

  test('redacts JWTs and the secrets of the moment', () => {
    let secret = 'first-secret-value';
    const { logger, lines } = capture({ secrets: () => [secret] });
    logger.info(`token ${JWT} and ${secret}`);
    secret = 'rotated-secret-value';
    logger.info(`now ${secret}`);
    expect(lines).toEqual([
      `${PREFIX}: token [redacted] and [redacted]\n`,
      `${PREFIX}: now [redacted]\n`,
    ]);
  });

  test('debug lines appear only when debugging, cut after redaction so no token part survives', () => {
    const off = capture();
    off.logger.debug('hidden');
    expect(off.lines).toEqual([]);
    const on = capture({ debug: true });
    // The token straddles the cut: redacted first, it cannot leak half of itself.
    const message = `${'x'.repeat(MAX_DEBUG_CHARS - 10)}${JWT}`;
    on.logger.debug(message);
    expect(on.lines[0]).not.toContain(JWT.slice(0, 10));
    expect(on.lines[0]!.length).toBeLessThanOrEqual(PREFIX.length + 2 + MAX_DEBUG_CHARS + 1);
    expect(on.logger.debugging).toBe(true);
  });
});

const token = await makeToken();

describe('redact', () => {
  const [header, payload, signature] = token.split('.') as [string, string, string];
  const bearer = `Bearer ${token}`;
  const percent = (text: string) =>
    [...text].map((c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).join('');

  // What a daemon or a proxy echoing the Authorization header might send back.
  const echoes: Record<string, string> = {
    'dots percent-encoded': `header was ${encodeURIComponent(bearer).replaceAll('.', '%2E')}`,
    'dots percent-encoded, lower case': `auth=${token.replaceAll('.', '%2e')}&x=1`,
    'every character percent-encoded': `auth=${percent(bearer)}`,
    'encoded twice': `auth=${encodeURIComponent(encodeURIComponent(bearer).replaceAll('.', '%2E'))}`,
    'payload and signature without the header': `label: ${payload}.${signature}`,
    'the signature alone': `sig=${signature}!`,
    'the payload alone, not at a word start': `x${payload}`,
    'base64 of the header value': `echo: ${Buffer.from(bearer).toString('base64')}`,
    'base64 of the token': `echo: ${Buffer.from(token).toString('base64')}`,
    'base64url of the whole header line': Buffer.from(`Authorization: ${bearer}`).toString(
      'base64url',
    ),
    'base64 of the payload.signature': Buffer.from(`${payload}.${signature}`).toString('base64'),
  };
  for (const [form, text] of Object.entries(echoes)) {
    test(`the configured token never survives: ${form}`, () => {
      const out = redact(text, [token]);
      expect(out).toContain('[redacted]');
      for (const part of [payload, signature]) {
        expect(out).not.toContain(part);
        expect(percentDecodeAll(out)).not.toContain(part);
      }
      expect(out).not.toContain(Buffer.from(bearer).toString('base64').slice(8, 40));
    });
  }

  test('a JWT shape is redacted without knowing the secret, even with encoded dots', () => {
    expect(redact(`x ${token.replaceAll('.', '%2E')} y`)).toBe('x [redacted] y');
    expect(redact(`Unexpected identifier "${header}"`)).toBe('Unexpected identifier "[redacted]"');
  });

  test('ordinary text, URLs and base64 that hide nothing are left alone', () => {
    const text =
      'GET https://images.example/streams/v1/index.json%3Fa%3D1 failed; key AAAAC3NzaC1lZDI1NTE5AAAAIJ; 10.0.3.5 alice-container';
    expect(redact(text, [token])).toBe(text);
  });
});

const percentDecodeAll = (text: string) => {
  let out = text;
  for (let i = 0; i < 3; i++)
    out = out.replace(/%([0-9A-Fa-f]{2})/g, (_, h: string) =>
      String.fromCharCode(Number.parseInt(h, 16)),
    );
  return out;
};
