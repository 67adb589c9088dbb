// Connection timeouts as the daemon really runs: the body deadline answers 408 before Bun's idle
// cut-off, a slow but legitimate body is answered, and only long changes lift the idle cut-off.
import { afterAll, describe, expect, test } from 'bun:test';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve } from '../../src/daemon/app.ts';
import { createAuthenticator } from '../../src/daemon/auth.ts';
import { signToken } from '../../src/shared/jwt.ts';
import { generateToken, startDaemon, stopAll } from '../e2e/harness.ts';
import { MemoryBackend } from '../support/memory-backend.ts';

const SECRET = 'tI7m3oUtS-9f8e7d6c5b4a3f2e1d0c9b8a';

/** Sends headers with Content-Length `length`, then one byte every `everyMs` until done or closed. */
async function trickle(port: number, path: string, token: string, length: number, everyMs: number) {
  const seen = { text: '', closed: false, sent: 0 };
  const socket = net.connect(port, '127.0.0.1');
  socket.on('data', (data) => {
    seen.text += data.toString();
  });
  socket.on('close', () => {
    seen.closed = true;
  });
  socket.on('error', () => undefined);
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(
    `POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`,
  );
  while (!seen.closed && seen.sent < length && seen.text === '') {
    await Bun.sleep(everyMs);
    if (seen.closed || seen.text !== '') break;
    socket.write(seen.sent === 0 ? '{' : seen.sent === length - 1 ? '}' : ' ');
    seen.sent += 1;
  }
  // Wait for the answer (or the close) to arrive in full.
  for (let i = 0; i < 200 && !seen.closed && !seen.text.includes('\r\n\r\n{'); i++) {
    await Bun.sleep(50);
  }
  await Bun.sleep(100);
  socket.destroy();
  return seen;
}

describe('the compiled daemon with its default deadline', () => {
  const dir = mkdtempSync(join(tmpdir(), 'containarium-timeouts-'));
  const secretFile = join(dir, 'secret');
  writeFileSync(secretFile, SECRET);
  chmodSync(secretFile, 0o600);
  afterAll(async () => {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a body slower than 10 s is answered, one slower than 30 s gets 408 and a close', async () => {
    // No Incus behind it: the slow body's route answers 503, which is an answer all the same.
    const daemon = await startDaemon({
      secretFile,
      incusSocket: join(dir, 'no-incus.socket'),
    });
    const token = generateToken({ username: 'mcp-client', roles: 'admin', secretFile });
    const [slow, late] = await Promise.all([
      // 24 bytes at one every 0.5 s: the body is complete after about 12 s.
      trickle(daemon.port, '/v1/containers/alice/stop', token, 24, 500),
      // 1000 bytes at one every 0.5 s would take 500 s; the deadline is 30 s.
      trickle(daemon.port, '/v1/containers/alice/stop', token, 1000, 500),
    ]);
    expect(slow.sent).toBe(24);
    expect(slow.text).toStartWith('HTTP/1.1 503 ');
    expect(late.text).toStartWith('HTTP/1.1 408 ');
    expect(late.text.toLowerCase()).toContain('connection: close');
    expect(late.text).toContain('request body did not arrive within 30 s');
    expect(late.sent).toBeLessThan(1000);
    expect(daemon.log()).not.toContain('timed out a request');
  }, 60_000);
});

describe('the idle cut-off', () => {
  const backend = new MemoryBackend();
  // Enough containers that the list does not fit in the socket buffers of a client not reading.
  for (let i = 0; i < 400; i++) {
    backend.seed(`user${i}`, { labels: { note: 'x'.repeat(20_000) } });
  }
  const server = serve({
    backend,
    auth: createAuthenticator({ secret: SECRET }),
    hostname: '127.0.0.1',
    port: 0,
    idleTimeoutSeconds: 2,
  });
  afterAll(() => server.stop(true));
  const admin = () =>
    signToken({ username: 'mcp-client', roles: ['admin'], lifetimeMs: 60_000, secret: SECRET });

  test('a client that stops reading a read answer loses its connection', async () => {
    const { token } = await admin();
    const socket = net.connect(server.port ?? 0, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(
      `GET /v1/containers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`,
    );
    socket.pause();
    for (let i = 0; i < 100 && server.pendingRequests === 0; i++) await Bun.sleep(20);
    expect(server.pendingRequests).toBe(1);
    // Never read: the server gives the request up after its idle cut-off.
    for (let i = 0; i < 100 && server.pendingRequests > 0; i++) await Bun.sleep(100);
    expect(server.pendingRequests).toBe(0);
    socket.destroy();
  }, 20_000);

  test('a long change runs past the idle cut-off and is answered', async () => {
    const { token } = await admin();
    backend.seed('alice', { state: 'CONTAINER_STATE_RUNNING' });
    const stop = backend.stop.bind(backend);
    backend.stop = async (username, options) => {
      await Bun.sleep(4000);
      return stop(username, options);
    };
    const response = await fetch(`http://127.0.0.1:${server.port}/v1/containers/alice/stop`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}` },
      body: '{}',
    });
    expect(response.status).toBe(200);
  }, 20_000);
});
