// GET /v1/templates: the create templates, by name. This project's own route (upstream has none;
// see the README and api/containarium.openapi.json), in upstream's conventions: lowerCamelCase,
// every field present ("" and false for what a template leaves to the create's defaults), the
// limits as strings like upstream's ResourceLimits. Any authenticated caller may list.
import * as v from 'valibot';
import { route } from '../router.ts';
import type { Template } from '../templates.ts';

export const WireTemplateSchema = v.strictObject({
  name: v.string(),
  image: v.string(),
  resources: v.strictObject({ cpu: v.string(), memory: v.string(), disk: v.string() }),
  enableDocker: v.boolean(),
  packages: v.array(v.string()),
  labels: v.record(v.string(), v.string()),
});
export type WireTemplate = v.InferOutput<typeof WireTemplateSchema>;

export const WireTemplatesSchema = v.strictObject({ templates: v.array(WireTemplateSchema) });

export const emitTemplate = (t: Template): WireTemplate => ({
  name: t.name,
  image: t.image ?? '',
  resources: {
    cpu: t.cpu === undefined ? '' : String(t.cpu),
    memory: t.memory ?? '',
    disk: t.disk ?? '',
  },
  enableDocker: t.docker ?? false,
  packages: [...t.packages],
  labels: { ...t.labels },
});

export const listTemplates = route('GET', '/v1/templates', async (c) => ({
  templates: [...c.templates.values()].map(emitTemplate),
}));
