// A small validator for the Swagger 2.0 subset in containarium.swagger.json, strict where protojson is.
import { expect } from 'bun:test';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as v from 'valibot';
import {
  CreateContainerResponseSchema,
  DeleteContainerResponseSchema,
  GetContainerResponseSchema,
  GetMetricsResponseSchema,
  GetSystemInfoResponseSchema,
  ListContainersResponseSchema,
  StartStopContainerResponseSchema,
} from '../../src/shared/wire.ts';

export type Schema = {
  $ref?: string;
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  format?: string;
  enum?: string[];
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: Schema;
};
type Operation = {
  responses: Record<string, { schema?: Schema }>;
  /** "HEAD" on a route upstream's later daemons define and this file adds in their shape. */
  'x-containarium-upstream'?: string;
};
export type Swagger = {
  paths: Record<string, Record<string, Operation>>;
  definitions: Record<string, Schema>;
};

/**
 * `complete`: every declared property must be present (protojson's EmitUnpopulated), except
 * `renamed` ones; `closed`: no undeclared property (a v0.3 daemon), except the `extra` ones named
 * for an object by its path ("$.container"). HEAD bodies add fields, renamed `dockerEnabled`, and
 * its wire fixtures leave some out.
 */
export type Strictness = {
  complete: boolean;
  closed: boolean;
  renamed?: string[];
  extra?: Record<string, readonly string[]>;
};
export const V03: Strictness = { complete: true, closed: true };
/**
 * Our daemon's one documented addition to v0.3: `sshCommand` in the container of GET
 * /v1/containers/{username} and of start (README, "The daemon").
 */
export const V03_WITH_SSH: Strictness = { ...V03, extra: { '$.container': ['sshCommand'] } };
export const HEAD: Strictness = { complete: false, closed: false };

/** The committed copy, so tests need nothing outside the repository. */
export const SWAGGER_PATH = path.resolve(import.meta.dir, '../fixtures/containarium.swagger.json');
export const loadSwagger = (): Swagger => JSON.parse(readFileSync(SWAGGER_PATH, 'utf8'));

/** This project's own OpenAPI file: upstream's document unchanged, plus the routes it adds. */
export const OPENAPI_PATH = path.resolve(import.meta.dir, '../../api/containarium.openapi.json');
export const loadOpenApi = (): Swagger => JSON.parse(readFileSync(OPENAPI_PATH, 'utf8'));

/**
 * GET /v1/containers/{username}: sshCommand and what the daemon knows of the create, the
 * properties of api/containarium.openapi.json's ContainerCreateStatus.
 */
export const V03_GET: Strictness = {
  ...V03,
  extra: {
    '$.container': [
      'sshCommand',
      ...Object.keys(loadOpenApi().definitions.ContainerCreateStatus?.properties ?? {}),
    ],
  },
};

/** Every operation of a document as "method path", e.g. "get /v1/images". */
export const operations = (doc: Swagger): string[] =>
  Object.entries(doc.paths).flatMap(([route, methods]) =>
    Object.keys(methods).map((method) => `${method} ${route}`),
  );

/** The definition named by an operation's 200 response, e.g. ('get', '/v1/containers') → ListContainersResponse. */
export function responseDefinition(doc: Swagger, method: string, route: string): string {
  const ref = doc.paths[route]?.[method]?.responses['200']?.schema?.$ref;
  if (!ref) throw new Error(`no 200 schema for ${method} ${route}`);
  return ref.replace('#/definitions/', '');
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Returns one line per violation ("$.container.createdAt: ..."); empty when `value` conforms. */
export function validate(doc: Swagger, definition: string, value: unknown, strict: Strictness) {
  const errors: string[] = [];
  const resolve = (s: Schema) =>
    s.$ref ? doc.definitions[s.$ref.replace('#/definitions/', '')] : s;
  const walk = (schema: Schema | undefined, v: unknown, at: string, nullable: boolean): void => {
    const s = schema && resolve(schema);
    const fail = (why: string) => errors.push(`${at}: ${why}, got ${JSON.stringify(v)}`);
    if (!s) {
      errors.push(`${at}: no schema ${schema?.$ref}`);
    } else if (v === null && nullable && schema?.$ref && s.type === 'object') {
      // protojson writes an unset message field as null; never an unset scalar, list or map.
    } else if (s.type === 'object') {
      if (!isObject(v)) return void fail('expected an object');
      for (const [key, prop] of Object.entries(s.properties ?? {})) {
        if (key in v) walk(prop, v[key], `${at}.${key}`, true);
        else if (strict.complete && !strict.renamed?.includes(key))
          errors.push(`${at}.${key}: missing`);
      }
      for (const key of Object.keys(v)) {
        if (s.properties?.[key]) continue;
        if (s.additionalProperties) walk(s.additionalProperties, v[key], `${at}[${key}]`, false);
        else if (strict.closed && !strict.extra?.[at]?.includes(key)) {
          errors.push(`${at}.${key}: not in the contract`);
        } else if (strict.extra?.[at]?.includes(key) && typeof v[key] !== 'string') {
          errors.push(`${at}.${key}: expected a string, got ${JSON.stringify(v[key])}`);
        }
      }
    } else if (s.type === 'array') {
      if (!Array.isArray(v)) return void fail('expected an array');
      for (const [i, item] of v.entries()) walk(s.items, item, `${at}[${i}]`, false);
    } else if (s.type === 'string') {
      if (typeof v !== 'string') return void fail('expected a string');
      if (/^u?int64$/.test(s.format ?? '') && !/^-?\d+$/.test(v)) fail('expected an int64 string');
      if (s.enum && !s.enum.includes(v)) fail(`expected one of ${s.enum.join(', ')}`);
    } else if (s.type === 'integer') {
      const int32 = (n: number) => s.format !== 'int32' || (n >= -(2 ** 31) && n < 2 ** 31);
      if (!Number.isInteger(v) || !int32(v as number)) fail(`expected an integer (${s.format})`);
    } else if (s.type === 'number' && typeof v !== 'number') {
      fail('expected a number');
    } else if (s.type === 'boolean' && typeof v !== 'boolean') {
      fail('expected a boolean');
    } // No type (Any's values): anything goes.
  };
  walk({ $ref: `#/definitions/${definition}` }, value, '$', false);
  return errors;
}

/** The client's own wire schema for each swagger response definition it reads. */
const WIRE: Record<string, v.GenericSchema> = {
  CreateContainerResponse: CreateContainerResponseSchema,
  ListContainersResponse: ListContainersResponseSchema,
  GetContainerResponse: GetContainerResponseSchema,
  DeleteContainerResponse: DeleteContainerResponseSchema,
  StartContainerResponse: StartStopContainerResponseSchema,
  StopContainerResponse: StartStopContainerResponseSchema,
  GetMetricsResponse: GetMetricsResponseSchema,
  GetSystemInfoResponse: GetSystemInfoResponseSchema,
};

/**
 * A success body of METHOD ROUTE is the swagger's response, and the client's schema reads it:
 * `wire` for a route this project adds (its tool file declares the schema), else WIRE's.
 */
export function expectContractBody(
  doc: Swagger,
  method: string,
  route: string,
  body: unknown,
  strictness: Strictness,
  wire?: v.GenericSchema,
): void {
  const definition = responseDefinition(doc, method, route);
  expect(validate(doc, definition, body, strictness)).toEqual([]);
  const schema = wire ?? WIRE[definition];
  if (schema) v.parse(schema, body);
}
