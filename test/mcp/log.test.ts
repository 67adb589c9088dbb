// mcp-server's logger: one prefix per line, secrets and JWTs redacted, debug lines only when on.
import { describe, expect, test } from 'bun:test';
import { createLogger, MAX_DEBUG_CHARS, PREFIX } from '../../src/mcp/log.ts';

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
