// The image cache's command line: --image-cache-max-age and `containarium image-cache list|clear`.
import { describe, expect, test } from 'bun:test';
import {
  DAEMON_HELP,
  IMAGE_CACHE_HELP,
  MAIN_HELP,
  parseCommandLine,
} from '../../src/daemon/cli.ts';
import { refused } from '../support/cli.ts';

const env = { CONTAINARIUM_JWT_SECRET: 'E'.repeat(32) };

function maxAge(args: string[]): number {
  const command = parseCommandLine(['daemon', ...args], env);
  if (command.kind !== 'daemon') throw new Error(`expected a daemon command, got ${command.kind}`);
  return command.imageCacheMaxAgeMs;
}

describe('image cache flags and command', () => {
  test('--image-cache-max-age: 7 days by default, days or a Go duration, 0 turns it off', () => {
    expect(maxAge([])).toBe(7 * 86_400_000);
    expect(maxAge(['--image-cache-max-age', '30d'])).toBe(30 * 86_400_000);
    expect(maxAge(['--image-cache-max-age=36h'])).toBe(36 * 3_600_000);
    expect(maxAge(['--image-cache-max-age', '0'])).toBe(0);
    for (const bad of ['', 'week', '-1h', '1.5d']) {
      expect(refused(['daemon', `--image-cache-max-age=${bad}`], env).message).toStartWith(
        `invalid --image-cache-max-age "${bad}": expected whole days like "7d" or a Go duration`,
      );
    }
    expect(DAEMON_HELP).toContain('--image-cache-max-age D');
  });

  test('image-cache list and clear take where Incus is; anything else is refused', () => {
    expect(parseCommandLine(['image-cache', 'list'])).toEqual({
      kind: 'image-cache',
      action: 'list',
      incus: {},
      daemonId: 'default',
    });
    expect(parseCommandLine(['image-cache', 'clear', '--incus-socket', '/run/x.socket'])).toEqual({
      kind: 'image-cache',
      action: 'clear',
      incus: { socket: '/run/x.socket' },
      daemonId: 'default',
    });
    expect(parseCommandLine(['image-cache'])).toEqual({ kind: 'help', text: IMAGE_CACHE_HELP });
    expect(IMAGE_CACHE_HELP).toContain('--incus-socket PATH');
    expect(MAIN_HELP).toContain('containarium image-cache list|clear');
    const unknown = refused(['image-cache', 'purge']);
    expect(unknown.message).toBe(
      'unknown command "image-cache purge"; expected "image-cache list" or "image-cache clear"',
    );
    expect(unknown.exitCode).toBe(2);
    expect(refused(['image-cache', 'list', '--jwt-secret', 'x']).message).toStartWith(
      'unknown flag --jwt-secret for containarium image-cache list',
    );
  });

  test('image-cache takes --daemon-id as the daemon does: the same default and the same check', () => {
    for (const action of ['list', 'clear'] as const) {
      expect(parseCommandLine(['image-cache', action, '--daemon-id', 'ci-7'])).toEqual({
        kind: 'image-cache',
        action,
        incus: {},
        daemonId: 'ci-7',
      });
    }
    expect(parseCommandLine(['image-cache', 'list', '--daemon-id=prod'])).toMatchObject({
      daemonId: 'prod',
    });
    for (const bad of ['', '-x', 'a b', 'x'.repeat(64)]) {
      const daemonRefusal = refused(['daemon', `--daemon-id=${bad}`], env).message;
      expect(daemonRefusal).toStartWith(`invalid --daemon-id "${bad}": expected a name of 1 to 63`);
      expect(refused(['image-cache', 'clear', `--daemon-id=${bad}`]).message).toBe(daemonRefusal);
    }
    expect(IMAGE_CACHE_HELP).toContain('--daemon-id NAME');
    expect(IMAGE_CACHE_HELP).toContain('(default "default")');
    expect(IMAGE_CACHE_HELP).toContain('image-cache list|clear [--daemon-id NAME]');
  });
});
