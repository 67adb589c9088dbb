// CONTAINARIUM_CA_CERT: an https daemon whose certificate a private CA signed.
import { afterAll, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connectMcp, makeToken } from '../support/mcp.ts';

const dir = mkdtempSync(join(tmpdir(), 'mcp-tls-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function openssl(...args: string[]) {
  const result = Bun.spawnSync(['openssl', ...args], { cwd: dir, stderr: 'pipe' });
  if (result.exitCode !== 0) throw new Error(result.stderr.toString());
}

// A private CA, and a server certificate for 127.0.0.1 that it signs.
const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
openssl(
  'req',
  '-x509',
  ...ec,
  '-keyout',
  'ca.key',
  '-out',
  'ca.crt',
  '-days',
  '1',
  '-subj',
  '/CN=Test CA',
);
openssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
openssl(
  'x509',
  '-req',
  '-in',
  'server.csr',
  '-CA',
  'ca.crt',
  '-CAkey',
  'ca.key',
  '-CAcreateserial',
  '-out',
  'server.crt',
  '-days',
  '1',
  '-extfile',
  'san.ext',
);

const listBody = await Bun.file(
  resolve(import.meta.dir, '../fixtures/head/list_containers_response.json'),
).text();
const token = await makeToken();

test('a private CA is trusted only when CONTAINARIUM_CA_CERT names it', async () => {
  await using server = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    tls: { cert: Bun.file(join(dir, 'server.crt')), key: Bun.file(join(dir, 'server.key')) },
    fetch: (req) =>
      new URL(req.url).pathname === '/v1/containers'
        ? new Response(listBody, { headers: { 'content-type': 'application/json' } })
        : new Response('{"code":404,"error":"not found"}\n', { status: 404 }),
  });
  const url = `https://127.0.0.1:${server.port}`;

  await using trusted = await connectMcp({
    CONTAINARIUM_SERVER_URL: url,
    CONTAINARIUM_JWT_TOKEN: token,
    CONTAINARIUM_CA_CERT: join(dir, 'ca.crt'),
  });
  const ok = await trusted.call('list_containers');
  expect(ok.isError).toBeFalsy();
  expect(ok.text).toMatch(/^3 containers/);

  await using untrusted = await connectMcp({
    CONTAINARIUM_SERVER_URL: url,
    CONTAINARIUM_JWT_TOKEN: token,
  });
  const refused = await untrusted.call('list_containers');
  expect(refused.isError).toBe(true);
  expect(refused.text).toContain(`The TLS certificate of ${url} is not trusted`);
  expect(refused.text).toContain('CONTAINARIUM_CA_CERT');
});
