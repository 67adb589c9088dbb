// list_images through a real MCP client: against this project's daemon (its HTTP app over the
// memory backend), and against the fake v0.3 and HEAD daemons, which have no GET /v1/images.
import { describe, expect, test } from 'bun:test';
import { serve } from '../../../src/daemon/app.ts';
import { createAuthenticator } from '../../../src/daemon/auth.ts';
import { DaemonError } from '../../../src/daemon/errors.ts';
import { signToken } from '../../../src/shared/jwt.ts';
import { type FakeDaemon, type Generation, startFakeDaemon } from '../../support/fake-daemon.ts';
import { connectMcp, makeToken } from '../../support/mcp.ts';
import { MemoryBackend } from '../../support/memory-backend.ts';

const SECRET = 'images-Secret-0a1b2c3d4e5f6a7b8c9d0e1f';
const UNSUPPORTED =
  "This daemon does not support listing images (it has no GET /v1/images route); upgrade the Containarium daemon (this project's `containarium daemon --rest` serves it). The other tools still work.";

/** This project's daemon over the memory backend, and mcp-server connected to it as `roles`. */
async function ownDaemon(roles = ['admin']) {
  const backend = new MemoryBackend();
  const server = serve({
    backend,
    auth: createAuthenticator({ secret: SECRET, log: () => {} }),
    hostname: '127.0.0.1',
    port: 0,
    log: () => {},
  });
  const { token } = await signToken({
    username: roles.includes('admin') ? 'mcp-client' : 'alice',
    roles,
    lifetimeMs: 3_600_000,
    secret: SECRET,
  });
  const mcp = await connectMcp({
    CONTAINARIUM_SERVER_URL: `http://127.0.0.1:${server.port}`,
    CONTAINARIUM_JWT_TOKEN: token,
  });
  return {
    backend,
    mcp,
    url: `http://127.0.0.1:${server.port}`,
    async [Symbol.asyncDispose]() {
      await mcp[Symbol.asyncDispose]();
      await server.stop(true);
    },
  };
}

describe("list_images against this project's daemon", () => {
  test('one line per image, then the remotes; structured content in plain units', async () => {
    await using d = await ownDaemon();
    const result = await d.mcp.call('list_images');
    expect(result.isError).toBeFalsy();
    expect(result.text).toBe(
      [
        "2 local images (create_container's image takes the alias):",
        'busybox    busybox v1.35.0 x86_64  1009 KiB',
        'debian/12  Debian bookworm x86_64  53.9 MiB',
        'Image servers (download on create, e.g. "images:debian/12"): images, ubuntu, ubuntu-daily.',
      ].join('\n'),
    );
    expect(result.structuredContent).toEqual({
      images: d.backend.images.map((i) => ({
        ...i,
        createdAt: new Date(i.createdAt * 1000).toISOString().replace('.000Z', 'Z'),
      })),
      remotes: ['images', 'ubuntu', 'ubuntu-daily'],
    });
  });

  test("a user's token may list them too", async () => {
    await using d = await ownDaemon(['user']);
    const result = await d.mcp.call('list_images');
    expect(result.isError).toBeFalsy();
    expect(result.text).toContain('debian/12  Debian bookworm x86_64  53.9 MiB');
  });

  test('several aliases share a line; an image without OS facts shows its description', async () => {
    await using d = await ownDaemon();
    d.backend.images = [
      {
        ...d.backend.images[1]!,
        aliases: ['debian/12', 'bookworm'],
      },
      {
        ...d.backend.images[0]!,
        aliases: ['tiny'],
        os: '',
        release: '',
        architecture: '',
        description: 'a tiny image',
        createdAt: 0,
      },
    ];
    const result = await d.mcp.call('list_images');
    expect(result.text.split('\n').slice(1, 3)).toEqual([
      'debian/12, bookworm  Debian bookworm x86_64  53.9 MiB',
      'tiny                 a tiny image  1009 KiB',
    ]);
    expect((result.structuredContent as { images: { createdAt: unknown }[] }).images[1]).toEqual(
      expect.objectContaining({ createdAt: null }),
    );
  });

  test('no local images: every create downloads one', async () => {
    await using d = await ownDaemon();
    d.backend.images = [];
    const result = await d.mcp.call('list_images');
    expect(result.isError).toBeFalsy();
    expect(result.text).toBe(
      'This server has no local images, so every create downloads one. Image servers (download on create, e.g. "images:debian/12"): images, ubuntu, ubuntu-daily.',
    );
  });

  test('an argument it does not take is refused, and nothing is asked of the daemon', async () => {
    await using d = await ownDaemon();
    const result = await d.mcp.call('list_images', { os: 'debian' });
    expect(result.isError).toBe(true);
    expect(result.text).toContain('os');
    expect(d.backend.calls).toEqual([]);
  });

  test('a token the daemon rejects is the usual 401 sentence', async () => {
    await using d = await ownDaemon();
    const { token } = await signToken({
      username: 'mcp-client',
      roles: ['admin'],
      lifetimeMs: 3_600_000,
      secret: `${SECRET}-other`,
    });
    await using forged = await connectMcp({
      CONTAINARIUM_SERVER_URL: d.url,
      CONTAINARIUM_JWT_TOKEN: token,
    });
    const result = await forged.call('list_images');
    expect(result.isError).toBe(true);
    expect(result.text).toStartWith('The daemon rejected the API token (401: invalid token)');
  });

  test('Incus down is the usual 503 sentence, not an unsupported route', async () => {
    await using d = await ownDaemon();
    d.backend.failWith = new DaemonError('unavailable', 'Incus is not reachable');
    const result = await d.mcp.call('list_images');
    expect(result.isError).toBe(true);
    expect(result.text).toBe(
      'The daemon could not reach its container backend while trying to list images (503: Incus is not reachable). Check that Incus is running on the server, then retry.',
    );
  });
});

describe('list_images against a daemon without the route', () => {
  /** list_images against the fake daemon of `generation`, after `prepare` (e.g. a failure). */
  async function listOn(generation: Generation, prepare: (fake: FakeDaemon) => void = () => {}) {
    const token = await makeToken();
    await using fake = startFakeDaemon({ generation, token, containers: [{ username: 'alice' }] });
    prepare(fake);
    await using mcp = await connectMcp({
      CONTAINARIUM_SERVER_URL: fake.url,
      CONTAINARIUM_JWT_TOKEN: token,
    });
    const result = await mcp.call('list_images');
    return { result, sent: fake.requests.map((r) => `${r.method} ${r.path} ${r.status}`) };
  }

  for (const generation of ['v0.3', 'head'] as const) {
    test(`${generation} answers 404: the daemon does not support it, nothing is missing`, async () => {
      const { result, sent } = await listOn(generation);
      expect(result.isError).toBe(true);
      expect(result.text).toBe(UNSUPPORTED);
      expect(sent).toEqual(['GET /v1/images 404']);
    });
  }

  test('a 501 for it says the same', async () => {
    const { result, sent } = await listOn('head', (fake) =>
      fake.fail('*', {
        status: 501,
        body: { code: 501, error: 'rpc error: code = Unimplemented' },
      }),
    );
    expect(result.text).toBe(UNSUPPORTED);
    expect(sent).toEqual(['GET /v1/images 501']);
  });
});
