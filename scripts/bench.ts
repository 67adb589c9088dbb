// `bun run bench`: performance figures measured side by side in one run. A report, never a
// pass/fail test: these machines are shared and noisy, so only ratios measured together count.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { SignJWT } from 'jose';
import { TEXT_BUDGET } from '../src/mcp/format.ts';
import { startFakeDaemon } from '../test/support/fake-daemon.ts';
import { benchCreate } from './bench-create.ts';
import { benchIncus } from './bench-incus.ts';

const ROOT = resolve(import.meta.dir, '..');
const BINARY = join(ROOT, 'dist/mcp-server');
const RUNS = Number(process.env.BENCH_RUNS ?? 15);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
};
const ms = (n: number) => `${n.toFixed(2)} ms`;
const rows: string[][] = [];
const report = (what: string, measured: string, target: string, ok: boolean | undefined) =>
  rows.push([what, measured, target, ok === undefined ? '' : ok ? 'meets' : 'MISSES']);

if (!(await Bun.file(BINARY).exists())) {
  console.error('dist/mcp-server is missing: run `bun run build` first');
  process.exit(1);
}

const token = await new SignJWT({ username: 'bench', roles: ['admin'] })
  .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
  .setIssuer('containarium')
  .setExpirationTime('1h')
  .sign(new TextEncoder().encode('bench-secret-bench-secret-bench-secret'));

// ---- The floor: a compiled Bun program that exits at once ---------------------------------------
const work = mkdtempSync(join(tmpdir(), 'containarium-bench-'));
writeFileSync(join(work, 'floor.ts'), 'process.exit(0);\n');
const floorBuild = Bun.spawnSync(
  [
    'bun',
    'build',
    '--compile',
    '--minify',
    '--bytecode',
    join(work, 'floor.ts'),
    '--outfile',
    join(work, 'floor'),
  ],
  { stdout: 'ignore', stderr: 'pipe' },
);
if (floorBuild.exitCode !== 0) throw new Error(floorBuild.stderr.toString());
const FLOOR = join(work, 'floor');

async function timeExit(cmd: string[]): Promise<number> {
  const start = performance.now();
  const proc = Bun.spawn(cmd, { stdout: 'ignore', stderr: 'ignore', stdin: 'ignore' });
  await proc.exited;
  return performance.now() - start;
}

/** An mcp-server process with a line reader: send requests, await replies by id. */
function spawnServer(url: string) {
  const proc = Bun.spawn([BINARY], {
    env: {
      PATH: process.env.PATH ?? '',
      CONTAINARIUM_SERVER_URL: url,
      CONTAINARIUM_JWT_TOKEN: token,
    },
    stdin: 'pipe',
    stdout: 'pipe',
    stderr: 'ignore',
  });
  const waiting = new Map<unknown, (line: string) => void>();
  let firstLine: ((t: number) => void) | undefined;
  const firstLineAt = new Promise<number>((r) => {
    firstLine = r;
  });
  (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of proc.stdout) {
      buffer += decoder.decode(chunk, { stream: true });
      for (let i = buffer.indexOf('\n'); i !== -1; i = buffer.indexOf('\n')) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 1);
        firstLine?.(performance.now());
        firstLine = undefined;
        const { id } = JSON.parse(line);
        waiting.get(id)?.(line);
        waiting.delete(id);
      }
    }
  })();
  let next = 1;
  const server = {
    proc,
    firstLineAt,
    write(lines: string[]) {
      proc.stdin.write(lines.join(''));
      proc.stdin.flush();
    },
    request(method: string, params: unknown): { line: string; reply: Promise<string> } {
      const id = next++;
      const reply = new Promise<string>((r) => waiting.set(id, r));
      return { line: `${JSON.stringify({ jsonrpc: '2.0', id, method, params })}\n`, reply };
    },
    async call(method: string, params: unknown) {
      const { line, reply } = server.request(method, params);
      server.write([line]);
      return reply;
    },
    async initialize() {
      await server.call('initialize', {
        protocolVersion: '2025-06-18',
        capabilities: {},
        clientInfo: { name: 'bench', version: '1' },
      });
      server.write([
        `${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' })}\n`,
      ]);
    },
    tool: (name: string, args: Record<string, unknown> = {}) =>
      server.call('tools/call', { name, arguments: args }),
    async stop() {
      proc.stdin.end();
      await proc.exited;
    },
  };
  return server;
}

const fake = startFakeDaemon({ generation: 'head', token, containers: [{ username: 'alice' }] });

// ---- Cold start -----------------------------------------------------------------------------------
{
  const floor: number[] = [];
  const version: number[] = [];
  const init: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    floor.push(await timeExit([FLOOR]));
    version.push(await timeExit([BINARY, '--version']));
    const start = performance.now();
    const server = spawnServer(fake.url);
    const { line } = server.request('initialize', {
      protocolVersion: '2025-06-18',
      capabilities: {},
      clientInfo: { name: 'bench', version: '1' },
    });
    server.write([line]);
    init.push((await server.firstLineAt) - start);
    await server.stop();
  }
  const f = median(floor);
  report('floor: bare compiled Bun program, spawn to exit', ms(f), '', undefined);
  report(
    'cold start: spawn to initialize response',
    `${ms(median(init))} = ${(median(init) / f).toFixed(1)}× floor`,
    '≤ 8× floor',
    median(init) / f <= 8,
  );
  report(
    '--version: spawn to exit',
    `${ms(median(version))} = ${(median(version) / f).toFixed(1)}× floor`,
    '≤ 2.5× floor',
    median(version) / f <= 2.5,
  );
}

// ---- Concurrency: 50 calls at once against a 100 ms API ------------------------------------------
{
  fake.setLatency(100);
  const server = spawnServer(fake.url);
  await server.initialize();
  const single: number[] = [];
  for (let i = 0; i < 5; i++) {
    const start = performance.now();
    await server.tool('get_container', { username: 'alice' });
    single.push(performance.now() - start);
  }
  const batches: number[] = [];
  for (let i = 0; i < 3; i++) {
    const requests = Array.from({ length: 50 }, () =>
      server.request('tools/call', { name: 'get_container', arguments: { username: 'alice' } }),
    );
    const start = performance.now();
    server.write(requests.map((r) => r.line));
    await Promise.all(requests.map((r) => r.reply));
    batches.push(performance.now() - start);
  }
  const ratio = median(batches) / median(single);
  report('concurrency: one get_container, API latency 100 ms', ms(median(single)), '', undefined);
  report(
    'concurrency: 50 get_container written at once',
    `${ms(median(batches))} = ${ratio.toFixed(2)}× one call`,
    '≤ 3× one call',
    ratio <= 3,
  );
  await server.stop();
  fake.setLatency(0);
}

// ---- Overhead: a tool call against a direct GET of the same route --------------------------------
{
  const server = spawnServer(fake.url);
  await server.initialize();
  const direct: number[] = [];
  const tool: number[] = [];
  const headers = { authorization: `Bearer ${token}` };
  for (let i = 0; i < 50; i++) {
    await fetch(`${fake.url}/v1/containers/alice`, { headers }).then((r) => r.text());
    await server.tool('get_container', { username: 'alice' });
  }
  for (let i = 0; i < 400; i++) {
    let start = performance.now();
    await fetch(`${fake.url}/v1/containers/alice`, { headers }).then((r) => r.text());
    direct.push(performance.now() - start);
    start = performance.now();
    await server.tool('get_container', { username: 'alice' });
    tool.push(performance.now() - start);
  }
  const overhead = median(tool) - median(direct);
  report('overhead: direct GET /v1/containers/alice, p50', ms(median(direct)), '', undefined);
  report(
    'overhead: tools/call get_container, p50',
    `${ms(median(tool))} (+${ms(overhead)})`,
    '≤ +1 ms',
    overhead <= 1,
  );
  await server.stop();
}

// ---- Output size: list_containers for 1,000 containers -------------------------------------------
{
  const many = startFakeDaemon({
    generation: 'head',
    token,
    containers: Array.from({ length: 1000 }, (_, i) => ({
      username: `user-${String(i).padStart(4, '0')}`,
      memory: i % 2 ? '8GB' : '4GB',
      state: i % 3 ? ('CONTAINER_STATE_RUNNING' as const) : ('CONTAINER_STATE_STOPPED' as const),
      ipAddress: i % 3 ? `10.0.${Math.floor(i / 250)}.${(i % 250) + 2}` : '',
    })),
  });
  const server = spawnServer(many.url);
  await server.initialize();
  const reply = JSON.parse(await server.tool('list_containers'));
  const text: string = reply.result.content[0].text;
  // The text keeps to its budget: it shows what fits and says how to page to the rest.
  const shown: number = reply.result.structuredContent.containers.length;
  report(
    'list_containers text for 1,000 containers',
    `${text.length.toLocaleString('en')} characters, ${shown} shown`,
    `≤ ${TEXT_BUDGET.toLocaleString('en')} characters`,
    text.length <= TEXT_BUDGET,
  );
  const ours = (Buffer.byteLength(text) / shown) * 1000;
  const wire = await fetch(`${many.url}/v1/containers`, {
    headers: { authorization: `Bearer ${token}` },
  }).then((r) => r.json() as Promise<Parameters<typeof upstreamListText>[0]>);
  const upstream = Buffer.byteLength(upstreamListText(wire));
  report(
    'list_containers text per container (1,000)',
    `${(ours / 1000).toFixed(1)} bytes`,
    `≤ upstream ${(upstream / 1000).toFixed(1)} bytes`,
    ours <= upstream,
  );
  const tools = await server.call('tools/list', {});
  report('tools/list response', `${Buffer.byteLength(tools)} bytes`, '', undefined);
  await server.stop();
  await many.stop();
}

// ---- Idle RSS -------------------------------------------------------------------------------------
{
  const server = spawnServer(fake.url);
  await server.initialize();
  await server.tool('list_containers');
  await Bun.sleep(1000);
  const status = await Bun.file(`/proc/${server.proc.pid}/status`).text();
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
  report('idle RSS of dist/mcp-server', `${(kb / 1024).toFixed(1)} MB`, '≤ 50 MB', kb / 1024 <= 50);
  await server.stop();
}

// ---- Burst: 10,000 tool calls written at once --------------------------------------------------
{
  const server = spawnServer(fake.url);
  await server.initialize();
  const requests = Array.from({ length: 10_000 }, () =>
    server.request('tools/call', { name: 'get_container', arguments: { username: 'alice' } }),
  );
  server.write(requests.map((r) => r.line));
  const replies = await Promise.all(requests.map((r) => r.reply));
  const answered = replies.filter((line) => {
    const reply = JSON.parse(line);
    return reply.result !== undefined && reply.result.isError !== true;
  }).length;
  // VmHWM: the most resident memory the process ever had.
  const status = await Bun.file(`/proc/${server.proc.pid}/status`).text();
  const peak = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN) / 1024;
  report(
    'burst: 10,000 get_container written at once, peak RSS',
    `${peak.toFixed(1)} MB, ${answered.toLocaleString('en')} answered`,
    '< 150 MB, all answered',
    peak < 150 && answered === requests.length,
  );
  await server.stop();
}

// ---- Oversized answers: 64 get_container at once, each answered with 100 MB chunked -----------
{
  const HUGE = 100 * 1024 * 1024;
  const chunk = new Uint8Array(64 * 1024).fill(0x20);
  const huge = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    fetch() {
      let sent = 0;
      return new Response(
        new ReadableStream({
          pull(controller) {
            if (sent >= HUGE) return controller.close();
            sent += chunk.byteLength;
            controller.enqueue(chunk);
          },
        }),
        { headers: { 'content-type': 'application/json' } },
      );
    },
  });
  const server = spawnServer(`http://127.0.0.1:${huge.port}`);
  await server.initialize();
  const requests = Array.from({ length: 64 }, () =>
    server.request('tools/call', { name: 'get_container', arguments: { username: 'alice' } }),
  );
  server.write(requests.map((r) => r.line));
  const replies = await Promise.all(requests.map((r) => r.reply));
  const answered = replies.filter((line) =>
    /exceeded/.test(JSON.parse(line).result?.content?.[0]?.text ?? ''),
  ).length;
  const status = await Bun.file(`/proc/${server.proc.pid}/status`).text();
  const peak = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN) / 1024;
  report(
    'oversized: 64 get_container at once, 100 MB answers, peak RSS',
    `${peak.toFixed(1)} MB, ${answered} answered "exceeded"`,
    '< 150 MB, all answered',
    peak < 150 && answered === requests.length,
  );
  await server.stop();
  huge.stop(true);
}

await fake.stop();
rmSync(work, { recursive: true, force: true });

if (process.env.BENCH_INCUS !== '0') await benchIncus(report);
if (process.env.BENCH_INCUS !== '0') await benchCreate(report);

/** The upstream v0.3 MCP server's list format (CONTAINARIUM-API.md §4.6), for comparison. */
function upstreamListText(body: {
  containers: Array<{
    name: string;
    username: string;
    state: string;
    network: { ipAddress: string } | null;
    resources: { cpu: string; memory: string; disk: string } | null;
  }>;
  totalCount: number;
}): string {
  if (body.containers.length === 0) return 'No containers found.';
  let out = `Found ${body.totalCount} container(s):\n\n`;
  for (const c of body.containers) {
    out += `📦 ${c.name}\n   Username: ${c.username}\n   State: ${c.state}\n`;
    if (c.network?.ipAddress) out += `   IP: ${c.network.ipAddress}\n`;
    if (c.resources)
      out += `   Resources: CPU=${c.resources.cpu}, Memory=${c.resources.memory}, Disk=${c.resources.disk}\n`;
    out += '\n';
  }
  return out;
}

const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
console.log(`\nContainarium MCP benchmark (${RUNS} cold-start runs each; medians)\n`);
for (const r of rows)
  console.log(
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd(),
  );
