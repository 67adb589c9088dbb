// Real HEAD response bodies (fixtures-head/) against the swagger contract and the client's lenient
// wire schemas; also proves the swagger validator is strict where the contract is.
import { describe, expect, test } from 'bun:test';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as v from 'valibot';
import {
  CreateContainerResponseSchema,
  GetContainerResponseSchema,
  GetMetricsResponseSchema,
  GetSystemInfoResponseSchema,
  ListContainersResponseSchema,
  ZERO_TIME,
} from '../../src/shared/wire.ts';
import {
  HEAD,
  loadOpenApi,
  loadSwagger,
  operations,
  responseDefinition,
  type Schema,
  SWAGGER_PATH,
  V03,
  validate,
} from '../support/swagger.ts';

const FIXTURES = path.resolve(import.meta.dir, '../fixtures/head');
// CI clones the repository with the team's shared/ folder beside it.
const SHARED = path.resolve(import.meta.dir, '../../..', 'shared/contract');
const doc = loadSwagger();
const fixture = (name: string): unknown =>
  JSON.parse(readFileSync(path.join(FIXTURES, `${name}.json`), 'utf8'));

const DEFINITIONS: Record<string, string> = {
  create_container_response: 'CreateContainerResponse',
  get_container_response: 'GetContainerResponse',
  list_containers_response: 'ListContainersResponse',
  get_metrics_response: 'GetMetricsResponse',
  get_system_info_response: 'GetSystemInfoResponse',
};

describe('the committed copies', () => {
  test('every HEAD fixture has a definition to check it against', () => {
    const names = readdirSync(FIXTURES).map((f) => f.replace(/\.json$/, ''));
    expect(names.sort()).toEqual(Object.keys(DEFINITIONS).sort());
  });

  test.skipIf(!existsSync(SHARED))('match ../shared/contract byte for byte', () => {
    const same = (copy: string, original: string) =>
      expect(readFileSync(copy, 'utf8')).toBe(readFileSync(original, 'utf8'));
    same(SWAGGER_PATH, path.join(SHARED, 'containarium.swagger.json'));
    for (const file of readdirSync(path.join(SHARED, 'fixtures-head'))) {
      same(path.join(FIXTURES, file), path.join(SHARED, 'fixtures-head', file));
    }
  });
});

describe("this project's OpenAPI file", () => {
  const project = loadOpenApi();

  /** A definition without the properties this project marks as its additions. */
  const upstreamPart = (definition: Schema | undefined) => {
    if (!definition?.properties) return definition;
    const kept = Object.entries(definition.properties).filter(
      ([, property]) => !(property as Record<string, unknown>)['x-containarium-added'],
    );
    return { ...definition, properties: Object.fromEntries(kept) };
  };

  test("holds every upstream path and definition unchanged, so upstream's checks still hold", () => {
    for (const [route, methods] of Object.entries(doc.paths)) {
      expect(project.paths[route]).toEqual(methods);
    }
    for (const [name, definition] of Object.entries(doc.definitions)) {
      expect(upstreamPart(project.definitions[name])).toEqual(definition);
    }
  });

  test('marks each property it adds to an upstream definition', () => {
    const added: string[] = [];
    for (const [name, definition] of Object.entries(doc.definitions)) {
      for (const [key, property] of Object.entries(project.definitions[name]?.properties ?? {})) {
        if (definition.properties?.[key]) continue;
        expect(property).toHaveProperty('x-containarium-added', true);
        added.push(`${name}.${key}`);
      }
    }
    expect(added).toContain('ContainerMetrics.cpuUsagePercent');
    expect(added).toContain('SystemInfo.committedCpus');
  });

  test('adds only marked fields to upstream definitions: the create request takes a template', () => {
    const template = project.definitions.CreateContainerRequest?.properties?.template;
    expect(template).toMatchObject({ type: 'string', 'x-containarium-added': true });
    expect(doc.definitions.CreateContainerRequest?.properties).not.toHaveProperty('template');
  });

  test('marks each route and definition it adds', () => {
    const added = operations(project).filter((op) => !operations(doc).includes(op));
    expect(added).toContain('get /v1/images');
    expect(added).toContain('get /v1/templates');
    for (const op of added) {
      const [method, route] = op.split(' ') as [string, string];
      expect(project.paths[route]?.[method]).toHaveProperty('x-containarium-added', true);
    }
    for (const name of Object.keys(project.definitions)) {
      if (!(name in doc.definitions)) {
        expect(project.definitions[name]).toHaveProperty('x-containarium-added', true);
      }
    }
  });

  test('marks the routes upstream HEAD defined (CONTAINARIUM-API.md §10) as such, and only those', () => {
    const head = new Set([
      'put /v1/containers/{username}/resize',
      'get /v1/containers/{username}/snapshots',
      'post /v1/containers/{username}/snapshots',
      'delete /v1/containers/{username}/snapshots/{name}',
      'post /v1/containers/{username}/snapshots/{name}/rollback',
    ]);
    const added = operations(project).filter((op) => !operations(doc).includes(op));
    const marked = added.filter((op) => {
      const [method, route] = op.split(' ') as [string, string];
      return project.paths[route]?.[method]?.['x-containarium-upstream'] === 'HEAD';
    });
    expect(marked).toContain('put /v1/containers/{username}/resize');
    expect(added.filter((op) => head.has(op)).sort()).toEqual(marked.sort());
  });

  // §10's snapshot routes, field for field; anything else in them must be marked as this
  // project's own addition.
  const SNAPSHOT_ROUTES: Record<string, [string, string[]]> = {
    'get /v1/containers/{username}/snapshots': ['ListSnapshotsResponse', ['snapshots']],
    'post /v1/containers/{username}/snapshots': ['CreateSnapshotResponse', ['snapshot', 'message']],
    'delete /v1/containers/{username}/snapshots/{name}': [
      'DeleteSnapshotResponse',
      ['message', 'freedBytes'],
    ],
    'post /v1/containers/{username}/snapshots/{name}/rollback': [
      'RollbackSnapshotResponse',
      ['message', 'containerStopped', 'destroyedSnapshots'],
    ],
  };
  const HEAD_FIELDS: Record<string, string[]> = {
    Snapshot: ['name', 'usedBytes', 'referencedBytes'],
    CreateSnapshotBody: ['name'],
    RollbackSnapshotBody: ['force', 'destroyNewer'],
  };
  const marks = (item: object | undefined) => item as Record<string, unknown> | undefined;
  const isHead = (item: object | undefined) => marks(item)?.['x-containarium-upstream'] === 'HEAD';
  const isOurs = (item: object | undefined) => marks(item)?.['x-containarium-added'] === true;

  test("the snapshot routes are upstream HEAD's, in §10's shapes; createdAt is marked as ours", () => {
    for (const [op, [definition, fields]] of Object.entries(SNAPSHOT_ROUTES)) {
      const [method, route] = op.split(' ') as [string, string];
      expect([op, isHead(project.paths[route]?.[method])]).toEqual([op, true]);
      expect(responseDefinition(project, method, route)).toBe(definition);
      HEAD_FIELDS[definition] = fields;
    }
    for (const [name, fields] of Object.entries(HEAD_FIELDS)) {
      const definition = project.definitions[name];
      expect([name, isHead(definition)]).toEqual([name, true]);
      const properties = Object.entries(definition?.properties ?? {});
      const upstream = properties.filter(([, p]) => !isOurs(p)).map(([key]) => key);
      expect([name, upstream]).toEqual([name, fields]);
    }
    const createdAt = project.definitions.Snapshot?.properties?.createdAt;
    expect([isOurs(createdAt), createdAt?.type, createdAt?.format]).toEqual([
      true,
      'string',
      'int64',
    ]);
    const int64 = (def: string, field: string) => project.definitions[def]?.properties?.[field];
    for (const [def, field] of [
      ['Snapshot', 'usedBytes'],
      ['Snapshot', 'referencedBytes'],
      ['DeleteSnapshotResponse', 'freedBytes'],
    ] as const) {
      expect(int64(def, field)).toMatchObject({ type: 'string', format: 'int64' });
    }
  });
});

describe('HEAD fixtures against the swagger contract', () => {
  for (const [name, definition] of Object.entries(DEFINITIONS)) {
    test(`${name} is a valid ${definition}, extra HEAD fields tolerated`, () => {
      expect(validate(doc, definition, fixture(name), HEAD)).toEqual([]);
    });
  }

  test('they would not pass as v0.3 bodies: HEAD added and renamed fields', () => {
    const errors = validate(doc, 'GetContainerResponse', fixture('get_container_response'), V03);
    expect(errors).toContain('$.container.podmanEnabled: not in the contract');
    expect(errors).toContain('$.container.resources.gpu: not in the contract');
    expect(errors).toContain('$.container.dockerEnabled: missing');
  });
});

describe('the validator is strict where protojson is', () => {
  const container = () =>
    structuredClone((fixture('get_container_response') as { container: object }).container);
  const check = (patch: Record<string, unknown>, strict = HEAD) =>
    validate(doc, 'Container', { ...container(), ...patch }, strict);

  test('int64 must be a decimal string', () => {
    expect(check({ createdAt: 1771122760 })).toEqual([
      '$.createdAt: expected a string, got 1771122760',
    ]);
    expect(check({ createdAt: '17e8' })[0]).toStartWith('$.createdAt: expected an int64 string');
    expect(check({ createdAt: '-62135596800' })).toEqual([]);
  });

  test('int32 must be a number', () => {
    const metrics = { name: 'x', processCount: '42' };
    expect(validate(doc, 'ContainerMetrics', metrics, HEAD)).toEqual([
      '$.processCount: expected an integer (int32), got "42"',
    ]);
    expect(validate(doc, 'ContainerMetrics', { processCount: 2 ** 31 }, HEAD)).toHaveLength(1);
  });

  test('enums by name from the list', () => {
    expect(check({ state: 'Running' })[0]).toStartWith('$.state: expected one of');
    expect(check({ state: 1 })[0]).toStartWith('$.state: expected a string');
  });

  test('null only for message fields; maps and lists are typed', () => {
    expect(check({ network: null, resources: null })).toEqual([]);
    expect(check({ sshKeys: null })).toEqual(['$.sshKeys: expected an array, got null']);
    expect(check({ labels: { team: 1 } })).toEqual(['$.labels[team]: expected a string, got 1']);
    expect(check({ dockerEnabled: 'true' })).toEqual([
      '$.dockerEnabled: expected a boolean, got "true"',
    ]);
  });

  test('a v0.3 body must carry every field and nothing else', () => {
    const {
      podmanEnabled: _p,
      backendId: _b,
      osType: _o,
      accessType: _a,
      ...rest
    } = container() as Record<string, unknown>;
    const v03: Record<string, unknown> = {
      ...rest,
      resources: { cpu: '4', memory: '4GB', disk: '' },
      dockerEnabled: true,
    };
    expect(validate(doc, 'Container', v03, V03)).toEqual([]);
    const { image: _i, ...missing } = v03;
    expect(validate(doc, 'Container', missing, V03)).toEqual(['$.image: missing']);
  });
});

describe('HEAD fixtures through the client’s wire schemas', () => {
  test('get: int64 strings become numbers, podmanEnabled is read, metrics parsed', () => {
    const body = v.parse(GetContainerResponseSchema, fixture('get_container_response'));
    expect(body.container).toMatchObject({
      name: 'alice-container',
      state: 'CONTAINER_STATE_RUNNING',
      createdAt: 1771122760,
      updatedAt: 1771209160,
      podmanEnabled: true,
      labels: { team: 'demo', project: 'blog' },
      resources: { cpu: '4', memory: '8GB', disk: '50GB' },
    });
    expect(body.container?.dockerEnabled).toBeUndefined();
    expect(body.metrics).toEqual({
      name: 'alice-container',
      cpuUsageSeconds: 1234,
      cpuUsagePercent: null,
      memoryUsageBytes: 536870912,
      memoryPeakBytes: 1073741824,
      diskUsageBytes: 5368709120,
      networkRxBytes: 104857600,
      networkTxBytes: 52428800,
      processCount: 42,
    });
  });

  test('list: the zero time survives as -62135596800, unknown fields are dropped', () => {
    const body = v.parse(ListContainersResponseSchema, fixture('list_containers_response'));
    expect(body.totalCount).toBe(3);
    expect(body.containers.map((c) => c.createdAt)).toEqual([1771122760, 1771606611, ZERO_TIME]);
    expect(ZERO_TIME).toBe(-62135596800);
    expect(body.containers[2]).toMatchObject({
      username: 'ws2022',
      state: 'CONTAINER_STATE_STOPPED',
    });
    expect(body.containers[2]?.network?.ipAddress).toBe('');
    expect(Object.keys(body.containers[0] ?? {})).not.toContain('backendId');
  });

  test('create: container, message and ssh command', () => {
    const body = v.parse(CreateContainerResponseSchema, fixture('create_container_response'));
    expect(body.message).toBe('Container created successfully');
    expect(body.sshCommand).toBe('ssh alice@10.0.0.10');
    expect(body.container?.createdAt).toBe(1771209160);
    expect(body.container?.sshKeys).toHaveLength(1);
  });

  test('metrics: large byte counts read exactly', () => {
    const body = v.parse(GetMetricsResponseSchema, fixture('get_metrics_response'));
    expect(body.metrics[1]).toMatchObject({
      name: 'bob-gpu-container',
      cpuUsageSeconds: 98765,
      memoryUsageBytes: 34359738368,
      diskUsageBytes: 214748364800,
      processCount: 187,
    });
  });

  test('system info: fields HEAD left out read as zero', () => {
    const body = v.parse(GetSystemInfoResponseSchema, fixture('get_system_info_response'));
    expect(body.info).toMatchObject({
      incusVersion: '6.23.0',
      containersRunning: 22,
      containersTotal: 24,
      totalCpus: 0,
      totalMemoryBytes: 0,
      daemonVersion: '',
    });
  });
});
