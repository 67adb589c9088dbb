// The guard rails: which tools exist under each setting, what a hidden tool answers, flags over
// variables, unknown names, and install writing them into the client's entry.
import { afterAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Io } from '../../src/mcp/clients.ts';
import { ConfigError, loadConfig } from '../../src/mcp/config.ts';
import { describeGuards } from '../../src/mcp/guards.ts';
import { runInstall } from '../../src/mcp/install.ts';
import { servingFlagsEnv } from '../../src/mcp/settings.ts';
import { TOOLS } from '../../src/mcp/tools/index.ts';
import { connectMcp, makeToken } from '../support/mcp.ts';
import { spawnMcp } from '../support/stdio.ts';

const token = await makeToken();
const base = { CONTAINARIUM_SERVER_URL: 'http://127.0.0.1:9', CONTAINARIUM_JWT_TOKEN: token };
const ALL = TOOLS.map((tool) => tool.name);

async function listed(env: Record<string, string>) {
  await using mcp = await connectMcp({ ...base, ...env });
  return (await mcp.client.listTools()).tools.map((tool) => tool.name);
}

describe('settings', () => {
  test('the switches take only true or false, naming the setting', () => {
    expect(loadConfig({ ...base, CONTAINARIUM_READ_ONLY: 'true' }).guards?.readOnly).toBe(true);
    expect(loadConfig({ ...base, CONTAINARIUM_READ_ONLY: '0' }).guards?.readOnly).toBe(false);
    expect(() => loadConfig({ ...base, CONTAINARIUM_READ_ONLY: 'yes' })).toThrow(
      'CONTAINARIUM_READ_ONLY must be true or false, got "yes"',
    );
    expect(() => loadConfig({ ...base, CONTAINARIUM_DISABLE_DESTRUCTIVE: 'on' })).toThrow(
      'CONTAINARIUM_DISABLE_DESTRUCTIVE must be true or false, got "on"',
    );
  });

  test('names are comma-separated, trimmed, each once', () => {
    const guards = loadConfig({
      ...base,
      CONTAINARIUM_TOOLSETS: ' monitoring , containers,monitoring,',
      CONTAINARIUM_EXCLUDE_TOOLS: 'delete_container',
    }).guards;
    expect(guards?.toolsets).toEqual(['monitoring', 'containers']);
    expect(guards?.excludeTools).toEqual(['delete_container']);
    expect(() => loadConfig({ ...base, CONTAINARIUM_TOOLS: ' , ' })).toThrow(
      'CONTAINARIUM_TOOLS must be a comma-separated list of names',
    );
  });

  test('an unknown toolset or tool is refused with the list of valid ones', () => {
    expect(() => loadConfig({ ...base, CONTAINARIUM_TOOLSETS: 'containers,network' })).toThrow(
      new ConfigError(
        'CONTAINARIUM_TOOLSETS names "network", which does not exist; the valid names are containers, monitoring, images, keys, resources, templates, bulk, exec, logs, snapshots',
      ),
    );
    const refusal = () =>
      loadConfig({
        ...base,
        CONTAINARIUM_TOOLS: 'list_container',
        CONTAINARIUM_EXCLUDE_TOOLS: 'rm',
      });
    expect(refusal).toThrow(
      `CONTAINARIUM_TOOLS names "list_container", which does not exist; the valid names are ${ALL.join(', ')}`,
    );
    expect(refusal).toThrow('CONTAINARIUM_EXCLUDE_TOOLS names "rm", which does not exist');
  });

  test('serving flags name the variables; unknown flags are refused', () => {
    expect(
      servingFlagsEnv(['--read-only', '--toolsets', 'monitoring', '--exclude-tools=get_metrics']),
    ).toEqual({
      CONTAINARIUM_READ_ONLY: 'true',
      CONTAINARIUM_TOOLSETS: 'monitoring',
      CONTAINARIUM_EXCLUDE_TOOLS: 'get_metrics',
    });
    expect(() => servingFlagsEnv(['--read-onyl'])).toThrow(ConfigError);
    expect(() => servingFlagsEnv(['--tools', ' '])).toThrow('--tools needs a value');
  });

  test('doctor words the guard rails in force', () => {
    expect(describeGuards(loadConfig(base).guards!)).toBe('none');
    const guards = loadConfig({
      ...base,
      CONTAINARIUM_READ_ONLY: 'true',
      CONTAINARIUM_TOOLSETS: 'containers',
      CONTAINARIUM_EXCLUDE_TOOLS: 'get_container',
    }).guards!;
    expect(describeGuards(guards)).toBe('read-only; toolsets containers; excluding get_container');
  });
});

describe('tools/list and tools/call through an MCP client', () => {
  test('with no guard rail every tool exists, in the registry order', async () => {
    expect(await listed({})).toEqual(ALL);
  });

  test('read-only: only the tools marked readOnlyHint', async () => {
    const names = await listed({ CONTAINARIUM_READ_ONLY: 'true' });
    expect(names).toEqual([
      'list_containers',
      'get_container',
      'get_metrics',
      'get_system_info',
      'list_images',
      'get_quota',
      'list_templates',
      'get_logs',
      'list_snapshots',
    ]);
  });

  test('disable-destructive: the tools marked destructiveHint are gone', async () => {
    expect(await listed({ CONTAINARIUM_DISABLE_DESTRUCTIVE: 'true' })).toEqual(
      ALL.filter(
        (name) =>
          ![
            'delete_container',
            'delete_containers',
            'exec_command',
            'restore_snapshot',
            'delete_snapshot',
          ].includes(name),
      ),
    );
  });

  test('toolsets, plus tools, minus excluded tools', async () => {
    expect(await listed({ CONTAINARIUM_TOOLSETS: 'monitoring' })).toEqual([
      'get_metrics',
      'get_system_info',
    ]);
    expect(
      await listed({
        CONTAINARIUM_TOOLSETS: 'monitoring',
        CONTAINARIUM_TOOLS: 'list_images,list_containers',
      }),
    ).toEqual(['list_containers', 'get_metrics', 'get_system_info', 'list_images']);
    expect(await listed({ CONTAINARIUM_TOOLS: 'get_container' })).toEqual(['get_container']);
    expect(
      await listed({
        CONTAINARIUM_TOOLSETS: 'containers',
        CONTAINARIUM_EXCLUDE_TOOLS: 'create_container',
      }),
    ).toEqual([
      'list_containers',
      'get_container',
      'delete_container',
      'start_container',
      'stop_container',
    ]);
  });

  test('a call to a hidden tool says which setting hides it and changes nothing', async () => {
    await using mcp = await connectMcp({ ...base, CONTAINARIUM_READ_ONLY: 'true' });
    const result = await mcp.call('delete_container', { username: 'alice' });
    expect(result.isError).toBe(true);
    expect(result.text).toStartWith(
      'Tool "delete_container" is hidden by CONTAINARIUM_READ_ONLY=true (read-only mode',
    );
    expect(result.text).toContain('nothing was done');
    await using other = await connectMcp({
      ...base,
      CONTAINARIUM_TOOLSETS: 'monitoring',
      CONTAINARIUM_EXCLUDE_TOOLS: 'get_metrics',
    });
    expect((await other.call('get_metrics', { username: 'alice' })).text).toContain(
      'hidden by CONTAINARIUM_EXCLUDE_TOOLS=get_metrics',
    );
    expect((await other.call('list_images')).text).toContain(
      'hidden by CONTAINARIUM_TOOLSETS=monitoring (it is in the "images" toolset)',
    );
  });

  test('an unknown tool keeps its protocol error, listing only the tools that exist', async () => {
    await using mcp = await connectMcp({ ...base, CONTAINARIUM_TOOLSETS: 'monitoring' });
    await expect(mcp.call('no_such_tool')).rejects.toThrow(
      'Unknown tool "no_such_tool"; available tools: get_metrics, get_system_info',
    );
  });
});

describe('mcp-server over stdio', () => {
  const list = async (env: Record<string, string>, args: string[]) => {
    const proc = spawnMcp(env, ['bun', join(import.meta.dir, '../../src/mcp/main.ts'), ...args]);
    await proc.initialize();
    proc.send({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
    const reply = await proc.reply(1);
    proc.send({
      jsonrpc: '2.0',
      id: 2,
      method: 'tools/call',
      params: { name: 'get_system_info', arguments: {} },
    });
    const call = (await proc.reply(2)).result as { isError?: boolean; content: { text: string }[] };
    const { stderr } = await proc.close();
    const tools = (reply.result as { tools: { name: string }[] }).tools.map((tool) => tool.name);
    return { tools, call, stderr };
  };

  test('a flag wins over its variable', async () => {
    const { tools } = await list({ ...base, CONTAINARIUM_TOOLSETS: 'containers' }, [
      '--toolsets',
      'monitoring',
      '--read-only',
    ]);
    expect(tools).toEqual(['get_metrics', 'get_system_info']);
  });

  test('an unknown name is reported on stderr and by every call, and the server still serves', async () => {
    const { call, stderr } = await list(base, ['--tools', 'nosuch']);
    expect(stderr).toContain(
      'CONTAINARIUM_TOOLS names "nosuch", which does not exist; the valid names are',
    );
    expect(call.isError).toBe(true);
    expect(call.content[0]!.text).toContain('CONTAINARIUM_TOOLS names "nosuch"');
  });

  test('an unknown flag is a usage error, exit 2', () => {
    const run = Bun.spawnSync(
      ['bun', join(import.meta.dir, '../../src/mcp/main.ts'), '--read-onyl'],
      {
        env: { PATH: process.env.PATH ?? '' },
      },
    );
    expect(run.exitCode).toBe(2);
    expect(run.stderr.toString()).toContain("Unknown option '--read-onyl'");
  });
});

describe('install', () => {
  const home = mkdtempSync(join(tmpdir(), 'mcp-guards-'));
  afterAll(() => rmSync(home, { recursive: true, force: true }));

  /** Runs install writing `file` with the URL, the token and `argv`; returns its code and stderr. */
  async function install(file: string, argv: string[]) {
    let stderr = '';
    const io: Io = {
      env: { HOME: home },
      platform: 'linux',
      cwd: home,
      command: '/opt/mcp-server',
      stdout: () => {},
      stderr: (text) => {
        stderr += text;
      },
    };
    const given = [
      '--config',
      file,
      '--server-url',
      base.CONTAINARIUM_SERVER_URL,
      '--token',
      token,
    ];
    const code = await runInstall([...given, ...argv], io);
    return { code, stderr };
  }

  test('writes the guard rails from its flags into the entry, and a rerun keeps them', async () => {
    const file = join(home, 'config.json');
    const guards = [
      '--read-only',
      '--toolsets',
      'containers,monitoring',
      '--exclude-tools',
      'get_metrics',
    ];
    expect(await install(file, guards)).toEqual({ code: 0, stderr: '' });
    const env = () => JSON.parse(readFileSync(file, 'utf8')).mcpServers.containarium.env;
    expect(env()).toMatchObject({
      CONTAINARIUM_READ_ONLY: 'true',
      CONTAINARIUM_TOOLSETS: 'containers,monitoring',
      CONTAINARIUM_EXCLUDE_TOOLS: 'get_metrics',
    });
    expect(env().CONTAINARIUM_DISABLE_DESTRUCTIVE).toBeUndefined();
    expect((await install(file, ['--disable-destructive'])).code).toBe(0);
    expect(env()).toMatchObject({
      CONTAINARIUM_READ_ONLY: 'true',
      CONTAINARIUM_DISABLE_DESTRUCTIVE: 'true',
      CONTAINARIUM_TOOLSETS: 'containers,monitoring',
    });
  });

  test('refuses an unknown toolset with the valid ones, writing nothing', async () => {
    const file = join(home, 'refused.json');
    const { code, stderr } = await install(file, ['--toolsets', 'disks']);
    expect(code).toBe(1);
    expect(stderr).toContain(
      'the valid names are containers, monitoring, images, keys, resources, templates, bulk',
    );
    expect(() => readFileSync(file)).toThrow();
  });
});
