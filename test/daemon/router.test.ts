// Path matching: literal segments, ":param" for one segment, "*rest" for the rest of the path.
import { describe, expect, test } from 'bun:test';
import { matchRoute, route } from '../../src/daemon/router.ts';
import { ROUTES } from '../../src/daemon/routes/index.ts';
import { loadOpenApi, operations } from '../support/swagger.ts';

const handle = async () => ({});
const routes = [
  route('GET', '/v1/things', handle),
  route('GET', '/v1/things/:name', handle),
  route('DELETE', '/v1/things/:name', handle),
  route('DELETE', '/v1/things/:name/keys/*key', handle),
];

describe('matchRoute', () => {
  test('a method and path find the route and its still-encoded parameters', () => {
    const found = matchRoute(routes, 'DELETE', '/v1/things/a%20b');
    expect(found && 'route' in found && found.route).toBe(routes[2] as (typeof routes)[number]);
    expect(found && 'params' in found && found.params).toEqual({ name: 'a%20b' });
  });

  test('"*key" takes the rest of the path, unencoded slashes included', () => {
    const found = matchRoute(routes, 'DELETE', '/v1/things/x/keys/ssh-ed25519 AAA/B');
    expect(found && 'params' in found && found.params).toEqual({
      name: 'x',
      key: 'ssh-ed25519 AAA/B',
    });
    expect(matchRoute(routes, 'DELETE', '/v1/things/x/keys/')).toBeUndefined();
  });

  test('a known path with another method lists the allowed ones; an unknown path is undefined', () => {
    expect(matchRoute(routes, 'POST', '/v1/things/x')).toEqual({ allowed: ['GET', 'DELETE'] });
    expect(matchRoute(routes, 'GET', '/v1/things/x/y')).toBeUndefined();
    expect(matchRoute(routes, 'GET', '/v1/things/')).toBeUndefined();
  });

  test("the route table is the OpenAPI file's operations, each method and path once", () => {
    const keys = ROUTES.map((r) => `${r.method} /${r.segments.join('/')}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys).toContain('DELETE /v1/containers/:username/ssh-keys/*key');
    // Parameter names aside: upstream's 11 routes and those this project adds, no more, no fewer.
    const shape = (key: string) => key.replace(/[:*]\w+|\{\w+\}/g, '{}').toUpperCase();
    expect(keys.map(shape).sort()).toEqual(operations(loadOpenApi()).map(shape).sort());
  });
});
