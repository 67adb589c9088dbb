// Create templates: the file (JSON or YAML) and its checks, the --templates flag, GET /v1/templates
// and a create that names a template, over the memory backend.
import { afterAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as v from 'valibot';
import { CliError, parseCommandLine } from '../../src/daemon/cli.ts';
import { WireTemplatesSchema } from '../../src/daemon/routes/templates.ts';
import { parseTemplates, parseTemplatesText, type Templates } from '../../src/daemon/templates.ts';
import { startOwnDaemon } from '../support/own-daemon.ts';

const SECRET = 't3mplate-Secret-0a1b2c3d4e5f6a7b8c9d';
const dir = mkdtempSync(join(tmpdir(), 'containarium-templates-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const YAML = `templates:
  gpu-dev:
    image: debian/12
    cpu: 2
    memory: 2GB
    disk: 8GB
    docker: true
    packages: [git, jq]
    labels:
      team: ml
  small:
    cpu: "1"
    memory: 512MiB
`;

const failure = (data: unknown) => {
  try {
    parseTemplates(data);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('accepted');
};

describe('the templates file', () => {
  test('YAML: its templates join the built-ins, and one of the same name replaces a built-in', () => {
    const templates = parseTemplatesText(YAML, '/etc/containarium/templates.yaml');
    expect([...templates.keys()]).toEqual(['small', 'medium', 'large', 'gpu-dev']);
    expect(templates.get('gpu-dev')).toEqual({
      name: 'gpu-dev',
      image: 'debian/12',
      cpu: 2,
      memory: '2GB',
      disk: '8GB',
      docker: true,
      packages: ['git', 'jq'],
      labels: { team: 'ml' },
    });
    expect(templates.get('small')).toEqual({
      name: 'small',
      cpu: 1,
      memory: '512MiB',
      packages: [],
      labels: {},
    });
    expect(templates.get('large')).toMatchObject({ cpu: 4, memory: '8GB', disk: '50GB' });
  });

  test('JSON by its extension, with JSON syntax errors named as such', () => {
    const json = JSON.stringify({ templates: { web: { packages: ['nginx'] } } });
    expect(parseTemplatesText(json, 't.json').get('web')?.packages).toEqual(['nginx']);
    expect(() => parseTemplatesText('{"templates": ', 't.json')).toThrow(/^it is not valid JSON/);
    expect(() => parseTemplatesText('templates: [oops', 't.yaml')).toThrow(/^it is not valid YAML/);
  });

  test('every mistake names the template and the field, with the expected form', () => {
    expect(failure({ templates: { gpu: { memory: 'lots' } } })).toBe(
      'template "gpu": invalid memory: expected a size of at least 1MiB with a unit, like "4GB", "2048MB", "4GiB" or "512MiB"',
    );
    expect(failure({ templates: { gpu: { cpu: 0 } } })).toStartWith('template "gpu": invalid cpu:');
    expect(failure({ templates: { gpu: { packages: ['Git'] } } })).toStartWith(
      'template "gpu": invalid packages[0]: expected Debian package names',
    );
    expect(failure({ templates: { gpu: { docker: 'yes' } } })).toBe(
      'template "gpu": invalid docker: expected true or false',
    );
    expect(failure({ templates: { gpu: { gpus: 1 } } })).toStartWith(
      'template "gpu": invalid gpus: expected an object with any of image, cpu, memory',
    );
    expect(failure({ templates: { 'GPU box': {} } })).toStartWith('invalid templates.GPU box:');
    expect(failure({ gpu: {} })).toBe('templates is required');
  });
});

describe('--templates FILE', () => {
  const daemon = (...args: string[]) =>
    parseCommandLine(['daemon', '--jwt-secret', SECRET, ...args], {});

  test('without it, the built-ins', () => {
    const command = daemon();
    if (command.kind !== 'daemon') throw new Error(command.kind);
    expect([...command.templates.keys()]).toEqual(['small', 'medium', 'large']);
  });

  test('loads the file', () => {
    const file = join(dir, 'templates.yaml');
    writeFileSync(file, YAML);
    const command = daemon('--templates', file);
    if (command.kind !== 'daemon') throw new Error(command.kind);
    expect(command.templates.get('gpu-dev')?.packages).toEqual(['git', 'jq']);
  });

  test('a bad file stops the daemon with the flag, the file, the template and the field', () => {
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ templates: { web: { disk: '10 parsecs' } } }));
    expect(() => daemon('--templates', file)).toThrow(
      new CliError(
        `invalid --templates ${file}: template "web": invalid disk: expected a size of at least 1MiB with a unit, like "4GB", "2048MB", "4GiB" or "512MiB"`,
      ),
    );
    expect(() => daemon('--templates', join(dir, 'missing.yaml'))).toThrow(
      /cannot read --templates .*missing\.yaml \(ENOENT\)/,
    );
  });
});

describe('GET /v1/templates and a create naming a template', () => {
  async function start(templates?: Templates) {
    const daemon = await startOwnDaemon(templates);
    const admin = await daemon.token('mcp-client', { roles: ['admin'] });
    const alice = await daemon.token('alice');
    const call = (method: string, path: string, body?: unknown, token = admin) =>
      fetch(new URL(path, daemon.url), {
        method,
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    const { backend } = daemon;
    /** What the backend was asked to create by the last create. */
    const created = () => backend.calls.filter((c) => c.method === 'create').at(-1)?.args[0];
    return {
      backend,
      call,
      alice,
      created,
      [Symbol.asyncDispose]: () => daemon[Symbol.asyncDispose](),
    };
  }
  const withFile = () => parseTemplatesText(YAML, 'templates.yaml');

  test('lists the built-ins by default, every field present, limits as strings', async () => {
    await using d = await start();
    const response = await d.call('GET', '/v1/templates', undefined, d.alice);
    expect(response.status).toBe(200);
    const body = v.parse(WireTemplatesSchema, await response.json());
    expect(body.templates.map((t) => t.name)).toEqual(['small', 'medium', 'large']);
    expect(body.templates[0]).toEqual({
      name: 'small',
      image: '',
      resources: { cpu: '1', memory: '1GB', disk: '10GB' },
      enableDocker: false,
      packages: [],
      labels: {},
    });
  });

  test("lists the file's templates", async () => {
    await using d = await start(withFile());
    const body = v.parse(WireTemplatesSchema, await (await d.call('GET', '/v1/templates')).json());
    expect(body.templates.find((t) => t.name === 'gpu-dev')).toEqual({
      name: 'gpu-dev',
      image: 'debian/12',
      resources: { cpu: '2', memory: '2GB', disk: '8GB' },
      enableDocker: true,
      packages: ['git', 'jq'],
      labels: { team: 'ml' },
    });
    expect(body.templates.find((t) => t.name === 'small')?.resources.disk).toBe('');
  });

  test('the template fills what the call leaves out; its values count as given', async () => {
    await using d = await start(withFile());
    const response = await d.call('POST', '/v1/containers', {
      username: 'bob',
      template: 'gpu-dev',
    });
    expect(response.status).toBe(200);
    expect(d.created()).toEqual({
      username: 'bob',
      cpu: 2,
      memory: '2GB',
      disk: '8GB',
      sshKeys: [],
      labels: { team: 'ml' },
      image: 'debian/12',
      enableDocker: true,
      packages: ['git', 'jq'],
    });
    expect(d.backend.containers.get('bob')?.resources).toEqual({
      cpu: '2',
      memory: '2GB',
      disk: '8GB',
    });
  });

  test('what the call gives wins; labels merge; what neither gives stays defaulted', async () => {
    await using d = await start(withFile());
    await d.call('POST', '/v1/containers', {
      username: 'carol',
      template: 'gpu-dev',
      resources: { memory: '3GB' },
      image: 'images:debian/12',
      enableDocker: false,
      labels: { team: 'web', owner: 'carol' },
    });
    expect(d.created()).toMatchObject({
      cpu: 2,
      memory: '3GB',
      image: 'images:debian/12',
      enableDocker: false,
      labels: { team: 'web', owner: 'carol' },
    });
    // A template without disk and image: those are still the defaults the host may lower.
    await d.call('POST', '/v1/containers', { username: 'dave', template: 'small' });
    expect(d.created()).toMatchObject({ cpu: 1, memory: '512MiB', disk: '50GB' });
    expect(d.created()).toHaveProperty('defaulted', ['disk', 'image']);
    expect(d.created()).not.toHaveProperty('packages');
  });

  test('an unknown template is a 400 naming the field and the names, and nothing is created', async () => {
    await using d = await start();
    const response = await d.call('POST', '/v1/containers', { username: 'erin', template: 'huge' });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: string }).error).toBe(
      'rpc error: code = InvalidArgument desc = unknown template "huge": expected one of small, medium, large',
    );
    expect(d.backend.calls).toEqual([]);
    const wrongType = await d.call('POST', '/v1/containers', { username: 'erin', template: 3 });
    expect(await wrongType.text()).toContain('invalid template: expected a template name');
  });
});
