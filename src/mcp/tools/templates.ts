// Template tools: the daemon's create templates. GET /v1/templates is a route this project added
// (see the README), so its request and wire schema live here, not in client.ts or shared/wire.ts.
import * as v from 'valibot';
import { text } from '../../shared/wire.ts';
import type { ContainariumClient } from '../client.ts';
import type { Resource } from '../errors.ts';
import { defineTool } from './define.ts';

export const TEMPLATE: Resource = { noun: 'template', list: 'list_templates' };

/** GET /v1/templates as the daemon sends it (api/containarium.openapi.json), read leniently. */
export const ListTemplatesResponseSchema = v.object({
  templates: v.nullish(
    v.array(
      v.object({
        name: v.string(),
        image: text,
        resources: v.nullish(v.object({ cpu: text, memory: text, disk: text }), {}),
        enableDocker: v.nullish(v.boolean(), false),
        packages: v.nullish(v.array(v.string()), []),
        labels: v.nullish(v.record(v.string(), v.string()), {}),
      }),
    ),
    [],
  ),
});

const TemplateOut = v.object({
  name: v.string(),
  image: v.pipe(v.string(), v.description('"" when the daemon\'s default image applies')),
  cpu: v.string(),
  memory: v.string(),
  disk: v.string(),
  enableDocker: v.boolean(),
  packages: v.array(v.string()),
  labels: v.record(v.string(), v.string()),
});
type TemplateView = v.InferOutput<typeof TemplateOut>;

/** The daemon's templates; a daemon without the route gives RouteUnsupportedError. */
export async function fetchTemplates(
  client: ContainariumClient,
  signal: AbortSignal,
): Promise<TemplateView[]> {
  const response = await client.get('v1/templates', ListTemplatesResponseSchema, {
    signal,
    feature: 'templates',
  });
  return response.templates.map((t) => ({
    name: t.name,
    image: t.image,
    cpu: t.resources.cpu,
    memory: t.resources.memory,
    disk: t.resources.disk,
    enableDocker: t.enableDocker,
    packages: t.packages,
    labels: t.labels,
  }));
}

/**
 * Throws unless the daemon has every template named: checked before a create, so a daemon that
 * does not know templates never creates something without the template's values.
 */
export async function checkTemplates(
  names: readonly string[],
  client: ContainariumClient,
  signal: AbortSignal,
): Promise<void> {
  if (names.length === 0) return;
  const known = (await fetchTemplates(client, signal)).map((t) => t.name);
  const missing = [...new Set(names)].filter((name) => !known.includes(name));
  if (missing.length > 0) {
    const quoted = missing.map((name) => `"${name}"`).join(', ');
    throw new Error(
      `this daemon has no template ${quoted} (it has ${known.join(', ') || 'none'}), so nothing was created; pick one of those, or call list_templates`,
    );
  }
}

/** `gpu-dev  2 CPU, 2GB, 8GB disk, image debian/12, docker, packages git jq, labels team=ml`. */
function templateLine(t: TemplateView): string {
  const parts = [
    t.cpu && `${t.cpu} CPU`,
    t.memory && `${t.memory} memory`,
    t.disk && `${t.disk} disk`,
    t.image && `image ${t.image}`,
    t.enableDocker && 'Docker',
    t.packages.length > 0 && `packages ${t.packages.join(' ')}`,
    Object.keys(t.labels).length > 0 &&
      `labels ${Object.entries(t.labels)
        .map(([k, value]) => `${k}=${value}`)
        .join(' ')}`,
  ].filter(Boolean);
  return `${t.name}: ${parts.join(', ') || "the daemon's defaults"}`;
}

const listTemplates = defineTool({
  name: 'list_templates',
  title: 'List templates',
  description:
    "List the server's create templates (limits, image, Docker, packages, labels); pass a name as create_container's template.",
  effect: 'read',
  toolset: 'templates',
  resource: TEMPLATE,
  input: v.strictObject({}),
  output: v.object({ templates: v.array(TemplateOut) }),
  action: () => 'list templates',
  async handle(_input, { client, signal }) {
    const templates = await fetchTemplates(client, signal);
    const text = templates.length
      ? `${templates.length} ${templates.length === 1 ? 'template' : 'templates'} (a create's own values win over a template's):\n${templates.map(templateLine).join('\n')}`
      : 'This server has no templates.';
    return { text, structured: { templates } };
  },
});

export default [listTemplates];
