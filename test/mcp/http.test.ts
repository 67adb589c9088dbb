// `mcp-server http`: the compiled binary serving Streamable HTTP on 127.0.0.1 to real clients (the
// v1 and v2 TypeScript SDKs), each caller with its own token, against the fake daemon.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Client as ClientV2,
  StreamableHTTPClientTransport as HttpV2,
} from '@modelcontextprotocol/client';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as HttpV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createClient } from '../../src/mcp/client.ts';
import { loadConfig } from '../../src/mcp/config.ts';
import { originAllowed, parseHttpArgs, plainHttpWarning } from '../../src/mcp/http.ts';
import { createHttpHandler } from '../../src/mcp/server.ts';
import { ConfigError } from '../../src/mcp/settings.ts';
import { TOOLS } from '../../src/mcp/tools/index.ts';
import { type FakeDaemon, startFakeDaemon } from '../support/fake-daemon.ts';
import { type HttpMcp, startHttpMcp } from '../support/http.ts';
import { makeToken } from '../support/mcp.ts';
import { runPythonClient } from '../support/python.ts';
import { BINARY, binaryBuilt } from '../support/stdio.ts';

const NAMES = TOOLS.map((tool) => tool.name);
const MODERN = '2026-07-28';

// The fake daemon accepts only `alice`; `bob` holds a well-formed token it refuses, and the
// server's own environment holds alice's token, which must never stand in for bob's.
const alice = await makeToken({ username: 'alice', roles: ['admin'] });
const bob = await makeToken({ username: 'bob', roles: [] });

const textOf = (result: unknown) =>
  (result as { content: { type: string; text?: string }[] }).content
    .map((block) => block.text ?? '')
    .join('\n');

const call = (id: number, name = 'list_containers') => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name, arguments: {} },
});

/** A 2025-era JSON-RPC POST (no envelope: served by the stateless legacy leg). */
function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...headers,
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

describe.if(binaryBuilt('the http mode tests'))('mcp-server http', () => {
  let fake: FakeDaemon;
  let mcp: HttpMcp;
  beforeAll(async () => {
    fake = startFakeDaemon({
      generation: 'head',
      token: alice,
      containers: [{ username: 'alice' }],
    });
    mcp = await startHttpMcp({ CONTAINARIUM_SERVER_URL: fake.url, CONTAINARIUM_JWT_TOKEN: alice });
  });
  afterAll(async () => {
    await mcp?.stop();
    await fake?.stop();
  });

  test('SIGTERM lets a call in flight finish before the server exits', async () => {
    const slow = startFakeDaemon({
      generation: 'head',
      token: alice,
      containers: [{ username: 'alice' }],
      latencyMs: 1500,
    });
    const server = await startHttpMcp({ CONTAINARIUM_SERVER_URL: slow.url });
    try {
      const answer = post(server.url, call(7), { authorization: `Bearer ${alice}` });
      await Bun.sleep(300);
      const stopped = server.stop();
      const response = await answer;
      expect(response.status).toBe(200);
      expect(await response.text()).toContain('alice-container');
      await stopped;
    } finally {
      await server.stop();
      await slow.stop();
    }
  });

  test('GET /health answers without a token', async () => {
    const response = await fetch(new URL('/health', mcp.url));
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ status: 'ok' });
  });

  test('a request without a bearer token is 401 with WWW-Authenticate: Bearer', async () => {
    const response = await post(mcp.url, call(1));
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toStartWith('Bearer');
    expect(JSON.stringify(await response.json())).toContain('Authorization: Bearer');
  });

  test('a malformed or expired token is refused here, with the reason', async () => {
    const malformed = await post(mcp.url, call(1), { authorization: 'Bearer not-a-jwt' });
    expect(malformed.status).toBe(401);
    expect(malformed.headers.get('www-authenticate')).toContain('error="invalid_token"');
    expect(JSON.stringify(await malformed.json())).toContain('not a JWT');
    const expired = await makeToken({
      username: 'alice',
      expiresIn: Math.floor(Date.now() / 1000) - 60,
    });
    // A real JWT whose claims have the wrong type is refused naming the claim, not as "not a JWT".
    const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const oddRoles = `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ username: 'alice', roles: 'admin', exp: 4102444800 })}.c2lnbmF0dXJlLXNpZ25hdHVyZQ`;
    const odd = await post(mcp.url, call(1), { authorization: `Bearer ${oddRoles}` });
    expect(odd.status).toBe(401);
    const oddText = JSON.stringify(await odd.json());
    expect(oddText).toContain('its roles claim is not valid');
    expect(oddText).not.toContain('not a JWT');
    const late = await post(mcp.url, call(1), { authorization: `Bearer ${expired}` });
    expect(late.status).toBe(401);
    expect(JSON.stringify(await late.json())).toContain('expired at');
    // Refused before the daemon was asked.
    expect(fake.requests.some((r) => r.headers.authorization === `Bearer ${expired}`)).toBe(false);
  });

  test('on a loopback bind only localhost Host and Origin values pass', async () => {
    const auth = { authorization: `Bearer ${alice}` };
    expect((await post(mcp.url, call(1), { ...auth, host: 'evil.example.com' })).status).toBe(403);
    const origin = await post(mcp.url, call(1), { ...auth, origin: 'http://evil.example.com' });
    expect(origin.status).toBe(403);
    const local = await post(mcp.url, call(1), { ...auth, origin: 'http://localhost:3000' });
    expect(local.status).toBe(200);
  });

  test('a request without a usable Host is 400, not an internal error', async () => {
    const { port } = new URL(mcp.url);
    for (const head of ['POST /mcp HTTP/1.0', 'POST /mcp HTTP/1.1\r\nHost: localhost@evil.com']) {
      const answer = await new Promise<string>((resolve, reject) => {
        let text = '';
        const socket = connect(Number(port), '127.0.0.1', () => {
          socket.end(`${head}\r\nAuthorization: Bearer ${alice}\r\nContent-Length: 0\r\n\r\n`);
        });
        socket.on('data', (chunk) => (text += chunk));
        socket.on('end', () => resolve(text));
        socket.on('error', reject);
      });
      expect(answer).toStartWith('HTTP/1.1 400');
    }
    expect(mcp.stderr()).not.toContain('request failed');
  });

  test('a body over the limit is 413 and reaches no tool', async () => {
    const before = fake.requests.length;
    const big = JSON.stringify({
      ...call(1),
      params: { name: 'x', arguments: { pad: 'a'.repeat(2 * 1024 * 1024) } },
    });
    const response = await post(mcp.url, big, { authorization: `Bearer ${alice}` });
    expect(response.status).toBe(413);
    expect(fake.requests.length).toBe(before);
  });

  test('the v1 SDK client over HTTP (2025-11-25)', async () => {
    const client = new ClientV1({ name: 'v1-http', version: '1' });
    await client.connect(
      new HttpV1(new URL(mcp.url), {
        requestInit: { headers: { authorization: `Bearer ${alice}` } },
      }),
    );
    expect(client.getServerVersion()?.name).toBe('containarium-mcp-server');
    expect((await client.listTools()).tools.map((tool) => tool.name)).toEqual(NAMES);
    const result = await client.callTool({ name: 'list_containers', arguments: {} });
    expect(result.isError).toBeFalsy();
    expect(textOf(result)).toContain('alice-container');
    await client.close();
  });

  for (const [label, mode, version] of [
    ['legacy', 'legacy', '2025-11-25'],
    ['auto', 'auto', MODERN],
  ] as const) {
    test(`the v2 SDK client over HTTP, ${label}`, async () => {
      const client = new ClientV2(
        { name: 'v2-http', version: '1' },
        { versionNegotiation: { mode } },
      );
      await client.connect(
        new HttpV2(new URL(mcp.url), {
          requestInit: { headers: { authorization: `Bearer ${alice}` } },
        }),
      );
      expect(client.getNegotiatedProtocolVersion()).toBe(version);
      expect((await client.listTools()).tools.map((tool) => tool.name)).toEqual(NAMES);
      const result = await client.callTool({ name: 'list_containers', arguments: {} });
      expect(result.isError).toBeFalsy();
      expect(textOf(result)).toContain('alice-container');
      await client.close();
    });
  }

  test('the Python SDK (mcp 2.x) over HTTP, in 2026-07-28 mode', async () => {
    const seen = await runPythonClient(MODERN, [mcp.url], {
      PATH: process.env.PATH ?? '',
      CONTAINARIUM_JWT_TOKEN: alice,
    });
    expect(seen).toMatchObject({
      protocol_version: MODERN,
      tools: NAMES,
      list_is_error: false,
      invalid_is_error: true,
    });
    expect(seen.list_text).toContain('alice-container');
  }, 60_000);

  test("each caller's own token goes to the daemon; the server's own is never used for them", async () => {
    const asBob = await post(mcp.url, call(7), { authorization: `Bearer ${bob}` });
    expect(asBob.status).toBe(200);
    const text = await asBob.text();
    // The fake refuses bob's token: had the server sent alice's from its environment, it would pass.
    expect(text).toContain('rejected the API token');
    expect(text).toContain('"isError":true');
    expect(fake.requests.some((r) => r.headers.authorization === `Bearer ${bob}`)).toBe(true);
    const asAlice = await post(mcp.url, call(8), { authorization: `Bearer ${alice}` });
    expect(await asAlice.text()).toContain('alice-container');
  });

  test('one log line per tool call (tool, caller, outcome, duration), and never a token', async () => {
    await post(mcp.url, call(9), { authorization: `Bearer ${bob}` });
    await Bun.sleep(50);
    const log = mcp.stderr();
    expect(log).toMatch(/tool=list_containers caller="alice" outcome=ok ms=\d+/);
    expect(log).toMatch(/tool=list_containers caller="bob" outcome=error ms=\d+/);
    for (const token of [alice, bob]) {
      expect(log).not.toContain(token);
      expect(log).not.toContain(token.split('.')[2] as string);
    }
  });

  test('each caller has a bounded number of requests in flight; others are not held up', async () => {
    fake.setLatency(3000);
    const held = Array.from({ length: 8 }, (_, i) =>
      post(mcp.url, call(100 + i), { authorization: `Bearer ${alice}` }).then((r) => r.text()),
    );
    while (fake.peakInFlight < 8) await Bun.sleep(20);
    const ninth = await post(mcp.url, call(200), { authorization: `Bearer ${alice}` });
    expect(ninth.status).toBe(429);
    expect(ninth.headers.get('retry-after')).toBe('1');
    expect(JSON.stringify(await ninth.json())).toContain('at most 8');
    const other = await post(
      mcp.url,
      { jsonrpc: '2.0', id: 201, method: 'tools/list' },
      {
        authorization: `Bearer ${bob}`,
      },
    );
    expect(other.status).toBe(200);
    fake.setLatency(0);
    for (const text of await Promise.all(held)) expect(text).toContain('alice-container');
    // Once they are answered, alice may call again.
    expect((await post(mcp.url, call(202), { authorization: `Bearer ${alice}` })).status).toBe(200);
  });

  test('a batch counts as the requests it carries against the limit', async () => {
    const auth = { authorization: `Bearer ${alice}` };
    const batch = (from: number, count: number) =>
      Array.from({ length: count }, (_, i) => call(from + i));
    const before = fake.requests.length;
    const tooBig = await post(mcp.url, batch(300, 9), auth);
    expect(tooBig.status).toBe(400);
    expect(JSON.stringify(await tooBig.json())).toContain('at most 8');
    expect(fake.requests.length).toBe(before);

    fake.setLatency(3000);
    const started = fake.requests.length;
    const held = post(mcp.url, batch(310, 8), auth).then((r) => r.text());
    while (fake.requests.length === started) await Bun.sleep(20);
    const more = await post(mcp.url, call(320), auth);
    expect(more.status).toBe(429);
    fake.setLatency(0);
    expect(await held).toContain('alice-container');
    expect((await post(mcp.url, call(321), auth)).status).toBe(200);
  });
});

describe.if(binaryBuilt('the allowed-host test'))(
  'mcp-server http --allowed-host on loopback',
  () => {
    test('a name a local proxy passes on is let through, others still refused', async () => {
      await using fake = startFakeDaemon({ generation: 'head', token: alice });
      const mcp = await startHttpMcp({ CONTAINARIUM_SERVER_URL: fake.url }, [
        '--allowed-host',
        'mcp.example.com',
      ]);
      try {
        const auth = { authorization: `Bearer ${alice}` };
        const list = { jsonrpc: '2.0', id: 1, method: 'tools/list' };
        expect((await post(mcp.url, list, { ...auth, host: 'mcp.example.com' })).status).toBe(200);
        expect((await post(mcp.url, list, { ...auth, host: 'localhost' })).status).toBe(200);
        expect((await post(mcp.url, list, { ...auth, host: 'evil.example.com' })).status).toBe(403);
      } finally {
        await mcp.stop();
      }
    });
  },
);

describe.if(binaryBuilt('the allowed-origin test'))('mcp-server http --allowed-origin', () => {
  test('an origin URL lets that origin call, not another scheme or port of its host', async () => {
    await using fake = startFakeDaemon({ generation: 'head', token: alice });
    const mcp = await startHttpMcp({ CONTAINARIUM_SERVER_URL: fake.url }, [
      '--allowed-origin',
      'https://app.example.com',
    ]);
    try {
      const auth = { authorization: `Bearer ${alice}` };
      const list = { jsonrpc: '2.0', id: 1, method: 'tools/list' };
      const from = (origin: string) => post(mcp.url, list, { ...auth, origin });
      expect((await from('https://app.example.com')).status).toBe(200);
      expect((await from('http://app.example.com')).status).toBe(403);
      expect((await from('https://app.example.com:8443')).status).toBe(403);
      expect((await from('http://localhost:3000')).status).toBe(200);
    } finally {
      await mcp.stop();
    }
  });
});

describe.if(binaryBuilt('the confirmation over HTTP test'))('confirmations over HTTP', () => {
  test('a 2026 client answers the delete question across stateless requests; the call then deletes', async () => {
    await using fake = startFakeDaemon({
      generation: 'head',
      token: alice,
      containers: [{ username: 'alice' }],
    });
    const mcp = await startHttpMcp({ CONTAINARIUM_SERVER_URL: fake.url });
    const asked: string[] = [];
    const client = new ClientV2(
      { name: 'v2-http', version: '1' },
      { versionNegotiation: { mode: 'auto' }, capabilities: { elicitation: { form: {} } } },
    );
    client.setRequestHandler('elicitation/create', (async (request: {
      params: { message: string };
    }) => {
      asked.push(request.params.message);
      return { action: 'accept', content: { username: 'alice' } };
    }) as never);
    try {
      await client.connect(
        new HttpV2(new URL(mcp.url), {
          requestInit: { headers: { authorization: `Bearer ${alice}` } },
        }),
      );
      expect(client.getNegotiatedProtocolVersion()).toBe(MODERN);
      const result = await client.callTool({
        name: 'delete_container',
        arguments: { username: 'alice', force: true },
      });
      expect(result.isError).toBeFalsy();
      expect(asked).toHaveLength(1);
      expect(asked[0]).toContain('Delete alice-container');
      expect(fake.state.container('alice')).toBeUndefined();
      await Bun.sleep(50);
      expect(mcp.stderr()).toMatch(/tool=delete_container caller="alice" outcome=asking/);
      expect(mcp.stderr()).toMatch(/tool=delete_container caller="alice" outcome=ok/);
    } finally {
      await client.close();
      await mcp.stop();
    }
  });
});

describe.if(binaryBuilt('the 2025 confirmation over HTTP test'))('a 2025 client over HTTP', () => {
  test('cannot be asked (no session), so CONTAINARIUM_CONFIRM=always refuses and nothing is deleted', async () => {
    await using fake = startFakeDaemon({
      generation: 'head',
      token: alice,
      containers: [{ username: 'alice' }],
    });
    const mcp = await startHttpMcp({ CONTAINARIUM_SERVER_URL: fake.url }, ['--confirm', 'always']);
    const client = new ClientV1(
      { name: 'v1-http', version: '1' },
      { capabilities: { elicitation: {} } },
    );
    try {
      await client.connect(
        new HttpV1(new URL(mcp.url), {
          requestInit: { headers: { authorization: `Bearer ${alice}` } },
        }),
      );
      const result = await client.callTool({
        name: 'delete_container',
        arguments: { username: 'alice', force: true },
      });
      expect(result.isError).toBe(true);
      expect(fake.state.container('alice')).toBeDefined();
    } finally {
      await client.close();
      await mcp.stop();
    }
  });
});

describe.if(binaryBuilt('the TLS test'))('mcp-server http --tls-cert --tls-key', () => {
  test('serves https with the given certificate', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mcp-http-tls-'));
    try {
      const made = Bun.spawnSync(
        [
          'openssl',
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:prime256v1',
          '-nodes',
          '-keyout',
          'key.pem',
          '-out',
          'cert.pem',
          '-days',
          '1',
          '-subj',
          '/CN=127.0.0.1',
          '-addext',
          'subjectAltName=IP:127.0.0.1',
        ],
        { cwd: dir, stderr: 'pipe' },
      );
      expect(made.exitCode).toBe(0);
      const cert = join(dir, 'cert.pem');
      await using fake = startFakeDaemon({ generation: 'head', token: alice });
      const mcp = await startHttpMcp({ CONTAINARIUM_SERVER_URL: fake.url }, [
        '--tls-cert',
        cert,
        '--tls-key',
        join(dir, 'key.pem'),
      ]);
      try {
        expect(mcp.url).toStartWith('https://127.0.0.1:');
        const ca = readFileSync(cert, 'utf8');
        const response = await fetch(mcp.url, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${alice}`,
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
          },
          body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
          tls: { ca },
        } as RequestInit);
        expect(response.status).toBe(200);
        expect(await response.text()).toContain('list_containers');
      } finally {
        await mcp.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('progress of a long call', () => {
  test('a client that sends a progressToken gets progress as SSE while the call runs', async () => {
    await using fake = startFakeDaemon({
      generation: 'head',
      token: alice,
      containers: [{ username: 'alice' }],
    });
    const config = loadConfig({ CONTAINARIUM_SERVER_URL: fake.url, CONTAINARIUM_JWT_TOKEN: alice });
    const handler = createHttpHandler(
      { client: createClient(config), config, progressEveryMs: 20 },
      { maxRequestBodySize: 1024 * 1024 },
    );
    // Many beats long: the call is still running when the first beat is due.
    fake.setLatency(1000);
    const request = (meta: Record<string, unknown>) =>
      handler.fetch(
        new Request('http://127.0.0.1/mcp', {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
          },
          body: JSON.stringify({
            jsonrpc: '2.0',
            id: 1,
            method: 'tools/call',
            params: { name: 'list_containers', arguments: {}, _meta: meta },
          }),
        }),
      );
    const streamed = await (await request({ progressToken: 'p1' })).text();
    const progress = streamed.indexOf('"method":"notifications/progress"');
    expect(progress).toBeGreaterThan(-1);
    expect(streamed).toContain('"progressToken":"p1"');
    expect(streamed).toContain('list_containers is still running');
    // The result comes last, after the progress.
    expect(streamed.indexOf('alice-container')).toBeGreaterThan(progress);
    // Without a token, no progress.
    const quiet = await (await request({})).text();
    expect(quiet).not.toContain('notifications/progress');
    expect(quiet).toContain('alice-container');
    await handler.close();
  });
});

describe('mcp-server http flags', () => {
  test('a non-loopback --host needs --allowed-host', () => {
    expect(() => parseHttpArgs(['--host', '10.0.0.5'])).toThrow(/--allowed-host must name/);
    const { options } = parseHttpArgs(['--host', '10.0.0.5', '--allowed-host', 'MCP.example.com']);
    expect(options.allowedHosts).toEqual(['mcp.example.com']);
  });

  test('bad values are named with their expected form', () => {
    expect(() => parseHttpArgs(['--port', 'eighty'])).toThrow(/--port "eighty": expected a number/);
    expect(() => parseHttpArgs(['--tls-cert', '/nonexistent.pem'])).toThrow(ConfigError);
    expect(() => parseHttpArgs(['--tls-cert', '/a', '--tls-key', '/nonexistent'])).toThrow(
      /does not exist/,
    );
    expect(() => parseHttpArgs(['--trusted-proxy', 'proxy'])).toThrow(/--trusted-proxy "proxy"/);
    expect(() => parseHttpArgs(['--bogus'])).toThrow(ConfigError);
  });

  test('origins may be given as host names or origin URLs; guard-rail flags apply too', () => {
    const { options, env } = parseHttpArgs([
      '--allowed-origin',
      'https://app.example.com',
      '--allowed-origin',
      'other.example.com',
      '--read-only',
    ]);
    expect(options.allowedOrigins).toEqual(['https://app.example.com', 'other.example.com']);
    expect(env.CONTAINARIUM_READ_ONLY).toBe('true');
  });

  test('an origin URL allows that exact origin; a host name allows any origin on that host', () => {
    const { allowedOrigins } = parseHttpArgs([
      '--allowed-origin',
      'https://app.example.com',
      '--allowed-origin',
      'other.example.com',
    ]).options;
    expect(originAllowed('https://app.example.com', allowedOrigins)).toBe(true);
    expect(originAllowed('http://app.example.com', allowedOrigins)).toBe(false);
    expect(originAllowed('https://app.example.com:8443', allowedOrigins)).toBe(false);
    expect(originAllowed('http://other.example.com:3000', allowedOrigins)).toBe(true);
    expect(originAllowed('https://evil.example.com', allowedOrigins)).toBe(false);
    expect(originAllowed('null', allowedOrigins)).toBe(false);
  });

  test('plain http off loopback warns, unless TLS ends at a trusted proxy', () => {
    const base = parseHttpArgs(['--host', '10.0.0.5', '--allowed-host', 'h']).options;
    expect(plainHttpWarning(base)).toContain('clear text');
    expect(plainHttpWarning({ ...base, trustedProxies: ['10.0.0.1'] })).toBeUndefined();
    expect(plainHttpWarning({ ...base, tls: { cert: 'c', key: 'k' } })).toBeUndefined();
    expect(plainHttpWarning(parseHttpArgs([]).options)).toBeUndefined();
  });

  test.if(binaryBuilt('the http help test'))(
    '`http --help` lists the flags; `--help` names http',
    () => {
      const help = Bun.spawnSync([BINARY, 'http', '--help'], { env: {} });
      expect(help.exitCode).toBe(0);
      for (const flag of ['--host', '--port', '--tls-cert', '--allowed-host', '--allowed-origin']) {
        expect(help.stdout.toString()).toContain(flag);
      }
      expect(Bun.spawnSync([BINARY, '--help'], { env: {} }).stdout.toString()).toContain(
        'mcp-server http [flags]',
      );
    },
  );

  test.if(binaryBuilt('the http flag exit test'))('bad flags exit 2 with the reason', async () => {
    const child = Bun.spawn([BINARY, 'http', '--host', '10.0.0.5'], {
      env: { CONTAINARIUM_SERVER_URL: 'http://127.0.0.1:9' },
      stderr: 'pipe',
      stdout: 'ignore',
    });
    expect(await child.exited).toBe(2);
    expect(await new Response(child.stderr).text()).toContain('--allowed-host');
  });
});
