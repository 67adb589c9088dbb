// tools/list is a public contract: compared with a reviewed golden file, never rewritten silently.
import { expect, test } from 'bun:test';
import { resolve } from 'node:path';
import * as v from 'valibot';
import { defaulted, shownDefault } from '../../src/mcp/tools/define.ts';
import { expectGolden, goldenMode } from '../support/golden.ts';
import { connectMcp, makeToken } from '../support/mcp.ts';

const GOLDEN = resolve(import.meta.dir, '__snapshots__/tools-list.golden.json');

test('tools/list matches the reviewed golden file', async () => {
  await using mcp = await connectMcp({
    CONTAINARIUM_SERVER_URL: 'http://127.0.0.1:9',
    CONTAINARIUM_JWT_TOKEN: await makeToken(),
  });
  const { tools } = await mcp.client.listTools();
  // UPDATE_GOLDEN=1 rewrites it locally for review; under CI it is only ever compared.
  expectGolden(GOLDEN, `${JSON.stringify(tools, null, 2)}\n`);
});

test('the whole tools/list stays under 9,000 tokens (bytes / 4), as a model pays for it on every turn', async () => {
  await using mcp = await connectMcp({
    CONTAINARIUM_SERVER_URL: 'http://127.0.0.1:9',
    CONTAINARIUM_JWT_TOKEN: await makeToken(),
  });
  const { tools } = await mcp.client.listTools();
  const bytes = new TextEncoder().encode(JSON.stringify({ tools })).length;
  expect(bytes / 4).toBeLessThan(9000);
});

test('golden files are compared under CI, and a rewrite is only ever asked for', () => {
  expect(goldenMode({ CI: 'true' })).toBe('compare');
  expect(goldenMode({})).toBe('compare');
  expect(goldenMode({ UPDATE_GOLDEN: '1' })).toBe('update');
  expect(() => goldenMode({ UPDATE_GOLDEN: '1', CI: 'true' })).toThrow('refused under CI');
});

test('every tool is fully described', async () => {
  await using mcp = await connectMcp({
    CONTAINARIUM_SERVER_URL: 'http://127.0.0.1:9',
    CONTAINARIUM_JWT_TOKEN: await makeToken(),
  });
  const { tools } = await mcp.client.listTools();
  expect(tools.map((t) => t.name)).toEqual([
    'create_container',
    'list_containers',
    'get_container',
    'delete_container',
    'start_container',
    'stop_container',
    'get_metrics',
    'get_system_info',
    'list_images',
    'add_ssh_key',
    'remove_ssh_key',
    'resize_container',
    'get_quota',
    'list_templates',
    'create_containers',
    'delete_containers',
    'exec_command',
    'get_logs',
    'create_snapshot',
    'list_snapshots',
    'restore_snapshot',
    'delete_snapshot',
  ]);
  for (const tool of tools) {
    expect(tool.title).toBeTruthy();
    expect(tool.outputSchema?.type).toBe('object');
    const a = tool.annotations!;
    for (const hint of [
      'readOnlyHint',
      'destructiveHint',
      'idempotentHint',
      'openWorldHint',
    ] as const) {
      expect(typeof a[hint]).toBe('boolean');
    }
  }
  const hints = Object.fromEntries(tools.map((t) => [t.name, t.annotations]));
  const reads = [
    'list_containers',
    'get_container',
    'get_metrics',
    'get_system_info',
    'list_images',
    'list_templates',
    'list_snapshots',
  ];
  for (const name of reads) {
    expect(hints[name]?.readOnlyHint).toBe(true);
  }
  expect(hints.delete_container?.destructiveHint).toBe(true);
  expect(hints.delete_containers?.destructiveHint).toBe(true);
  expect(hints.restore_snapshot?.destructiveHint).toBe(true);
  expect(hints.delete_snapshot?.destructiveHint).toBe(true);
  expect(hints.start_container?.idempotentHint).toBe(true);
  expect(hints.stop_container?.idempotentHint).toBe(true);
  const create = tools[0]!.inputSchema as {
    required: string[];
    properties: Record<string, { default?: unknown }>;
  };
  expect(create.required).toEqual(['username']);
  // Left to the daemon, which fits its defaults to the host: mcp-server fills none of them in.
  for (const left of ['cpu', 'memory', 'disk', 'image']) {
    expect(create.properties[left]).not.toHaveProperty('default');
  }
  // Left out when not given, so a template's setting applies; the tool sends true otherwise.
  expect(create.properties.enable_docker).not.toHaveProperty('default');
  expect(create.properties.ssh_keys?.default).toEqual([]);
});

test('every "Default: …" in an argument description is the default the server applies', async () => {
  await using mcp = await connectMcp({
    CONTAINARIUM_SERVER_URL: 'http://127.0.0.1:9',
    CONTAINARIUM_JWT_TOKEN: await makeToken(),
  });
  const { tools } = await mcp.client.listTools();
  let described = 0;
  for (const tool of tools) {
    const properties = (tool.inputSchema.properties ?? {}) as Record<
      string,
      { description?: string; default?: unknown }
    >;
    for (const [name, property] of Object.entries(properties)) {
      const said = /Default: (.*)\.$/.exec(property.description ?? '')?.[1];
      if (said === undefined) continue;
      described++;
      // "the daemon's, …": mcp-server leaves the argument out and applies nothing itself.
      expect({ tool: tool.name, name, said }).toEqual({
        tool: tool.name,
        name,
        said: said.startsWith("the daemon's, ") ? said : shownDefault(property.default),
      });
      if (said.startsWith("the daemon's, ")) expect(property).not.toHaveProperty('default');
    }
  }
  expect(described).toBeGreaterThan(0);
});

test('defaulted writes the fallback into the description', () => {
  const schema = defaulted(['a'], 'Things.', (description) =>
    v.pipe(v.array(v.string()), description),
  );
  expect(v.getDescription(schema.wrapped)).toBe('Things. Default: ["a"].');
  expect(v.parse(schema, undefined)).toEqual(['a']);
  expect(shownDefault([])).toBe('none');
  expect(shownDefault('4GB')).toBe('"4GB"');
});
