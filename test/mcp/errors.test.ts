// Error sentences: they name what the tool acts on, report the timeout really used, never throw.
import { afterAll, describe, expect, test } from 'bun:test';
import { HTTPError } from 'ky';
import { createClient } from '../../src/mcp/client.ts';
import type { TokenSource } from '../../src/mcp/config.ts';
import {
  CONTAINER,
  daemonMessage,
  describeFailure,
  type FailureContext,
  type Resource,
} from '../../src/mcp/errors.ts';
import { makeToken } from '../support/mcp.ts';

const token = (value: string): TokenSource => ({
  origin: 'CONTAINARIUM_JWT_TOKEN',
  get: () => value,
  expiresAt: () => undefined,
});

const ctx = (over: Partial<FailureContext> = {}): FailureContext => ({
  action: 'do it',
  serverUrl: 'http://127.0.0.1:9',
  token: token('x'),
  timeoutMs: 30_000,
  ...over,
});

const httpError = (status: number, body: unknown = {}) => {
  const error = new HTTPError(
    new Response(JSON.stringify(body), { status }),
    new Request('http://127.0.0.1:9/v1/x'),
    // biome-ignore lint/suspicious/noExplicitAny: ky's normalized options are not needed here
    {} as any,
  );
  return Object.assign(error, { data: body });
};

const KEY: Resource = { noun: 'SSH key', article: 'an', list: 'list_ssh_keys' };

describe('resources', () => {
  test('a 404 names the resource the tool acts on and the tool that lists them', () => {
    expect(describeFailure(httpError(404), ctx({ resource: KEY, username: 'alice' }))).toBe(
      'No SSH key exists for user alice. Call list_ssh_keys to see which SSH keys exist.',
    );
    expect(describeFailure(httpError(404), ctx({ resource: CONTAINER, username: 'alice' }))).toBe(
      'No container exists for user alice. Call list_containers to see which containers exist.',
    );
  });

  test('a 404 for a tool that acts on nothing in particular is a missing route', () => {
    expect(describeFailure(httpError(404), ctx({ resource: null, username: 'alice' }))).toContain(
      'has no such route',
    );
  });

  test('a 409 names the resource, with the next steps it has', () => {
    expect(
      describeFailure(
        httpError(409, { error: 'exists' }),
        ctx({ resource: KEY, username: 'alice' }),
      ),
    ).toBe('An SSH key for user alice already exists. Call list_ssh_keys to see it.');
    expect(
      describeFailure(
        httpError(409, { error: 'container for user alice already exists' }),
        ctx({ resource: CONTAINER, username: 'alice' }),
      ),
    ).toBe(
      'A container for user alice already exists. Call get_container to inspect it, or delete_container first if it should be replaced.',
    );
  });

  test('a 409 that does not say "exists" passes the daemon\'s words on, never "already exists"', () => {
    const create = ctx({
      resource: CONTAINER,
      username: 'dave',
      action: 'create the container for dave',
      creates: true,
    });
    expect(describeFailure(httpError(409), create)).toBe(
      "The daemon refused to create the container for dave because of a conflict (409). Call get_container for dave to see the container's current state, then try again.",
    );
    expect(
      describeFailure(
        httpError(409, { error: 'rpc error: code = Aborted desc = quota frozen' }),
        create,
      ),
    ).toBe(
      "The daemon refused to create the container for dave because of a conflict (409: quota frozen). Call get_container for dave to see the container's current state, then try again.",
    );
  });

  test("a failed create's reason in the daemon's 409 is kept", () => {
    const said =
      'container for user erin already exists (its create failed: no address within 60s; delete it to try again)';
    expect(
      describeFailure(
        httpError(409, { error: said }),
        ctx({ resource: CONTAINER, username: 'erin' }),
      ),
    ).toBe(
      'A container for user erin already exists (its create failed: no address within 60s; delete it to try again). Call get_container to inspect it, or delete_container first if it should be replaced.',
    );
  });
});

describe('timeouts', () => {
  // A daemon that never answers; its pending requests end when the test's client gives up.
  const silent = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    fetch: () => new Promise<Response>(() => {}),
  });
  afterAll(() => silent.stop(true));

  test('the sentence reports the timeout the client really used, not the one expected', async () => {
    const config = {
      serverUrl: silent.url.href.replace(/\/$/, ''),
      token: token(await makeToken()),
      debug: false,
      timeoutMs: 200,
    };
    const error = await createClient(config)
      .listContainers()
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    const text = describeFailure(error, ctx({ action: 'list containers', timeoutMs: 600_000 }));
    expect(text).toContain('did not answer within 0.2 s while trying to list containers');
  });
});

describe('never throws', () => {
  test('a token file that cannot be read while a 401 is described', () => {
    const broken: TokenSource = {
      origin: 'CONTAINARIUM_JWT_TOKEN_FILE',
      get: () => {
        throw new Error('gone');
      },
      expiresAt: () => {
        throw new Error('gone');
      },
    };
    expect(
      describeFailure(httpError(401, { error: 'token expired' }), ctx({ token: broken })),
    ).toBe(
      'The API token expired. Generate a new one with `containarium token generate` and update CONTAINARIUM_JWT_TOKEN_FILE.',
    );
  });

  test('a thrown value that cannot even be turned into text', () => {
    const hostile = {
      toString() {
        throw new Error('no');
      },
    };
    expect(describeFailure(hostile, ctx())).toBe(
      "Could not do it: an error that cannot be shown. Retry, or check the daemon's logs.",
    );
  });
});

describe('unavailable and refused', () => {
  const said = (status: number, desc: string) =>
    describeFailure(
      httpError(status, { code: status, error: `rpc error: code = Unavailable desc = ${desc}` }),
      ctx({ action: 'get the container for alice' }),
    );

  test('a daemon shutting down is not blamed on Incus: retry once it is back', () => {
    const text = said(503, 'the daemon is shutting down; try again once it is back');
    expect(text).toStartWith('The daemon is shutting down, so it could not get the container');
    expect(text).toContain('Retry once the daemon is back');
    expect(text).not.toContain('Incus');
  });

  test('only a 503 about Incus says to check Incus', () => {
    expect(said(503, 'Incus is not reachable at /var/lib/incus/unix.socket: ENOENT')).toContain(
      'Check that Incus is running',
    );
    const busy = said(503, 'busy');
    expect(busy).not.toContain('Incus');
    expect(busy).toContain('Retry in a moment');
  });

  test('a 429 does not claim the lock-out is this address when a wider budget may have tripped', () => {
    const text = said(429, 'too many failed authentication attempts; try again later');
    expect(text).not.toContain('from this address');
    expect(text).toContain('from this client, its network or anywhere');
    expect(text).toContain('Fix the token');
  });
});

describe('daemonMessage', () => {
  test('one over-long word keeps its start and its length, not just "…"', () => {
    const url = `https://images.example/${'x'.repeat(577)}`;
    const text = daemonMessage({ error: url });
    expect(text.length).toBeLessThanOrEqual(500);
    expect(text).toStartWith('https://images.example/xxx');
    expect(text).toEndWith('…(600 characters)');
  });
});
