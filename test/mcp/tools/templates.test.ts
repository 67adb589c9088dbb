// list_templates, and create_container's template, through a real MCP client: against this
// project's daemon (its HTTP app over the memory backend) and the fake v0.3 and HEAD daemons,
// which have no GET /v1/templates.
import { describe, expect, test } from 'bun:test';
import { parseTemplatesText } from '../../../src/daemon/templates.ts';
import { type Generation, startFakeDaemon } from '../../support/fake-daemon.ts';
import { connectMcp, makeToken } from '../../support/mcp.ts';
import { startOwnDaemon } from '../../support/own-daemon.ts';

const UNSUPPORTED =
  "This daemon does not support templates (it has no GET /v1/templates route); upgrade the Containarium daemon (this project's `containarium daemon --rest` serves it). The other tools still work.";

const FILE = JSON.stringify({
  templates: {
    'gpu-dev': {
      image: 'debian/12',
      cpu: 2,
      memory: '2GB',
      docker: true,
      packages: ['git', 'jq'],
      labels: { team: 'ml' },
    },
  },
});

async function ownDaemon() {
  const daemon = await startOwnDaemon(parseTemplatesText(FILE, 'templates.json'));
  const mcp = await daemon.connect(await daemon.token('mcp-client', { roles: ['admin'] }));
  return { daemon, mcp, [Symbol.asyncDispose]: () => daemon[Symbol.asyncDispose]() };
}

describe("against this project's daemon", () => {
  test('list_templates: one line per template, and the fields as structured content', async () => {
    await using d = await ownDaemon();
    const result = await d.mcp.call('list_templates');
    expect(result.isError).toBeFalsy();
    expect(result.text).toBe(
      [
        "4 templates (a create's own values win over a template's):",
        'small: 1 CPU, 1GB memory, 10GB disk',
        'medium: 2 CPU, 4GB memory, 20GB disk',
        'large: 4 CPU, 8GB memory, 50GB disk',
        'gpu-dev: 2 CPU, 2GB memory, image debian/12, Docker, packages git jq, labels team=ml',
      ].join('\n'),
    );
    expect((result.structuredContent as { templates: unknown[] }).templates[3]).toEqual({
      name: 'gpu-dev',
      image: 'debian/12',
      cpu: '2',
      memory: '2GB',
      disk: '',
      enableDocker: true,
      packages: ['git', 'jq'],
      labels: { team: 'ml' },
    });
  });

  test("create_container with a template: the daemon fills in the template's values", async () => {
    await using d = await ownDaemon();
    const result = await d.mcp.call('create_container', {
      username: 'bob',
      template: 'gpu-dev',
      disk: '5GB',
    });
    expect(result.isError).toBeFalsy();
    expect(result.text).toContain('Resources: 2 cores, 2 GB memory, 5 GB disk');
    const asked = d.daemon.backend.calls.find((c) => c.method === 'create')?.args[0];
    expect(asked).toMatchObject({
      cpu: 2,
      memory: '2GB',
      disk: '5GB',
      image: 'debian/12',
      // Not sent, so the template's true applies.
      enableDocker: true,
      packages: ['git', 'jq'],
      labels: { team: 'ml' },
    });
    // The create's own polls of the container follow the POST.
    expect(new Set(d.daemon.routes())).toEqual(
      new Set(['GET /v1/templates', 'POST /v1/containers', 'GET /v1/containers/bob']),
    );
    expect(d.daemon.routes().slice(0, 2)).toEqual(['GET /v1/templates', 'POST /v1/containers']);
  });

  test("an explicit enable_docker false wins over the template's true", async () => {
    await using d = await ownDaemon();
    await d.mcp.call('create_container', {
      username: 'carol',
      template: 'gpu-dev',
      enable_docker: false,
    });
    expect(d.daemon.backend.calls.find((c) => c.method === 'create')?.args[0]).toMatchObject({
      enableDocker: false,
    });
  });

  test('without a template, Docker is on as before', async () => {
    await using d = await ownDaemon();
    await d.mcp.call('create_container', { username: 'dave' });
    expect(d.daemon.backend.calls.find((c) => c.method === 'create')?.args[0]).toMatchObject({
      enableDocker: true,
    });
    expect(d.daemon.routes()[0]).toBe('POST /v1/containers');
    expect(new Set(d.daemon.routes())).toEqual(
      new Set(['POST /v1/containers', 'GET /v1/containers/dave']),
    );
  });

  test('create_containers asks the daemon for its templates once, not once per item', async () => {
    await using d = await ownDaemon();
    const result = await d.mcp.call('create_containers', {
      containers: ['ann', 'ben', 'cat'].map((username) => ({ username, template: 'gpu-dev' })),
    });
    expect(result.isError).toBeFalsy();
    expect(d.daemon.routes().filter((r) => r === 'GET /v1/templates')).toEqual([
      'GET /v1/templates',
    ]);
    expect(d.daemon.backend.calls.filter((c) => c.method === 'create')).toHaveLength(3);
  });

  test('an unknown template: nothing is created, and the names are listed', async () => {
    await using d = await ownDaemon();
    const result = await d.mcp.call('create_container', { username: 'erin', template: 'huge' });
    expect(result.isError).toBe(true);
    expect(result.text).toBe(
      'Could not create the container for erin: this daemon has no template "huge" (it has small, medium, large, gpu-dev), so nothing was created; pick one of those, or call list_templates.',
    );
    expect(d.daemon.routes()).toEqual(['GET /v1/templates']);
  });

  test('an empty template name is refused before the daemon is asked', async () => {
    await using d = await ownDaemon();
    const result = await d.mcp.call('create_container', { username: 'erin', template: ' ' });
    expect(result.isError).toBe(true);
    expect(result.text).toContain('"template" must be a template name');
    expect(d.daemon.routes()).toEqual([]);
  });
});

describe('against a daemon without templates', () => {
  for (const generation of ['v0.3', 'head'] as Generation[]) {
    test(`${generation}: list_templates says it is unsupported; create with a template creates nothing`, async () => {
      const token = await makeToken();
      await using fake = startFakeDaemon({ generation, token });
      await using mcp = await connectMcp({
        CONTAINARIUM_SERVER_URL: fake.url,
        CONTAINARIUM_JWT_TOKEN: token,
      });
      const listed = await mcp.call('list_templates');
      expect(listed.isError).toBe(true);
      expect(listed.text).toBe(UNSUPPORTED);
      const created = await mcp.call('create_container', { username: 'bob', template: 'small' });
      expect(created.isError).toBe(true);
      expect(created.text).toBe(UNSUPPORTED);
      expect(fake.requests.map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual([
        'GET /v1/templates 404',
        'GET /v1/templates 404',
      ]);
    });
  }
});
