// Nothing mcp-server sends the client carries the token, even from a daemon that echoes the
// Authorization header back in forms a plain search would miss.
import { afterAll, expect, test } from 'bun:test';
import { connectMcp, makeToken } from '../support/mcp.ts';

const token = await makeToken();
const [, payload, signature] = token.split('.') as [string, string, string];

// Echoes the header it got: percent-encoded dots in errors, payload.signature in a label,
// base64 of the header value in system info's error.
const daemon = Bun.serve({
  hostname: '127.0.0.1',
  port: 0,
  fetch(request) {
    const auth = request.headers.get('authorization') ?? '';
    const path = new URL(request.url).pathname;
    const error = (status: number, said: string) =>
      Response.json(
        { code: status, error: `rpc error: code = Unknown desc = ${said}` },
        { status },
      );
    if (path === '/v1/containers/alice')
      return error(500, `bad request header ${encodeURIComponent(auth).replaceAll('.', '%2E')}`);
    if (path === '/v1/containers') {
      const echoed = auth.split('.').slice(1).join('.');
      return Response.json({
        containers: [
          {
            name: 'bob-container',
            username: 'bob',
            labels: {
              seen: echoed,
              // Decoded, this would put a quote and a backslash into the result's JSON.
              raw: encodeURIComponent(`"\\ ${auth}`),
            },
          },
        ],
        totalCount: 1,
      });
    }
    if (path === '/v1/system/info')
      return error(502, `proxy saw ${Buffer.from(auth).toString('base64')}`);
    return error(404, 'no route');
  },
});
afterAll(() => daemon.stop(true));

const mcp = await connectMcp({
  CONTAINARIUM_SERVER_URL: `http://127.0.0.1:${daemon.port}`,
  CONTAINARIUM_JWT_TOKEN: token,
});
afterAll(() => mcp[Symbol.asyncDispose]());

const leaks = (result: unknown) => {
  const out = JSON.stringify(result);
  const decoded = decodeURIComponent(out.replace(/%(?![0-9A-Fa-f]{2})/g, '%25'));
  return [payload, signature].some((part) => out.includes(part) || decoded.includes(part));
};

test('an error echoing the header with percent-encoded dots is redacted', async () => {
  const result = await mcp.call('get_container', { username: 'alice' });
  expect(result.isError).toBe(true);
  expect(result.text).toContain('[redacted]');
  expect(leaks(result)).toBe(false);
});

test('payload.signature without the header, in a label, is redacted in text and structure', async () => {
  const result = await mcp.call('list_containers');
  expect(result.isError).toBeFalsy();
  expect(JSON.stringify(result.structuredContent)).toContain('[redacted]');
  expect(leaks(result)).toBe(false);
});

test('the base64 of the header value is redacted', async () => {
  const result = await mcp.call('get_system_info');
  expect(result.isError).toBe(true);
  expect(result.text).toContain('[redacted]');
  expect(result.text).not.toContain(Buffer.from(`Bearer ${token}`).toString('base64').slice(0, 40));
});
