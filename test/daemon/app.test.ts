// The app around the routes: what happens when a route fails with something that is not an Error.
import { afterAll, describe, expect, test } from 'bun:test';
import { serve } from '../../src/daemon/app.ts';
import { createAuthenticator } from '../../src/daemon/auth.ts';
import { signToken } from '../../src/shared/jwt.ts';
import { fakeClock } from '../support/fake-clock.ts';
import { MemoryBackend } from '../support/memory-backend.ts';

const SECRET = 'a9Q2v9ZrX4mN7pL1sT6wY3bH5jD0gF2c';

describe('the app', () => {
  const backend = new MemoryBackend();
  const lines: string[] = [];
  const log = (line: string) => lines.push(line);
  const server = serve({
    backend,
    auth: createAuthenticator({ secret: SECRET, log }),
    hostname: '127.0.0.1',
    port: 0,
    log,
  });
  afterAll(() => server.stop(true));

  test('a thrown object without a prototype is a 500 with its text, and is logged', async () => {
    backend.failWith = Object.create(null) as Error;
    const { token } = await signToken({
      username: 'mcp-client',
      roles: ['admin'],
      lifetimeMs: 60_000,
      secret: SECRET,
    });
    const response = await fetch(`http://127.0.0.1:${server.port}/v1/containers`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    expect(response.status).toBe(500);
    expect(await response.json()).toEqual({
      code: 500,
      error: 'rpc error: code = Internal desc = [object Object]',
    });
    expect(lines).toContain('error: GET /v1/containers: [object Object]');
  });

  test('/health says unreachable once its wait on the clock ends, while Incus never answers', async () => {
    const clock = fakeClock();
    const hanging = new MemoryBackend();
    hanging.ping = () => new Promise<boolean>(() => {});
    const app = serve({
      backend: hanging,
      auth: createAuthenticator({ secret: SECRET }),
      hostname: '127.0.0.1',
      port: 0,
      clock,
    });
    try {
      const response = await fetch(`http://127.0.0.1:${app.port}/health`);
      expect(await response.json()).toEqual({ status: 'healthy', incus: 'unreachable' });
      expect(clock.slept).toEqual([2000]);
    } finally {
      await app.stop(true);
    }
  });
});
