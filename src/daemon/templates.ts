// Create templates: named sets of create values (image, limits, Docker, packages, labels). The
// built-ins small, medium and large, and those of --templates FILE (JSON or YAML), which may
// replace a built-in of the same name. A create naming one gets its values for what it leaves out.
import * as v from 'valibot';
import { Bool, Cpu, describeIssue, Image, Labels, size } from './requests.ts';

/** A template as creates use it; a field left out fills nothing. */
export type Template = {
  name: string;
  image?: string;
  cpu?: number;
  memory?: string;
  disk?: string;
  docker?: boolean;
  /** Extra apt packages provisioning installs. */
  packages: string[];
  labels: Record<string, string>;
};

/** By name, in the order GET /v1/templates lists them: the built-ins first, then the file's. */
export type Templates = ReadonlyMap<string, Template>;

const NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/;
const NAME_FORM =
  'a name of 1 to 32 lowercase letters, digits, "_" or "-", starting with a letter or digit, like "gpu-dev"';
// Debian's rule for package names (Policy 5.6.1).
const PACKAGE = /^[a-z0-9][a-z0-9+.-]+$/;
const PACKAGE_FORM =
  'Debian package names like "git" or "python3-venv" (lowercase letters, digits, "+", "-" and ".")';
const MAX_PACKAGES = 100;

export const BUILTIN_TEMPLATES: readonly Template[] = [
  { name: 'small', cpu: 1, memory: '1GB', disk: '10GB', packages: [], labels: {} },
  { name: 'medium', cpu: 2, memory: '4GB', disk: '20GB', packages: [], labels: {} },
  { name: 'large', cpu: 4, memory: '8GB', disk: '50GB', packages: [], labels: {} },
];

export const builtinTemplates = (): Templates =>
  new Map(BUILTIN_TEMPLATES.map((template) => [template.name, template]));

const TemplateSchema = v.strictObject(
  {
    image: v.optional(Image),
    cpu: v.optional(Cpu),
    memory: v.optional(size()),
    disk: v.optional(size()),
    docker: v.optional(Bool),
    packages: v.optional(
      v.pipe(
        v.array(
          v.pipe(
            v.string(`expected ${PACKAGE_FORM}`),
            v.regex(PACKAGE, `expected ${PACKAGE_FORM}`),
          ),
          `expected a list of ${PACKAGE_FORM}`,
        ),
        v.maxLength(MAX_PACKAGES, `expected at most ${MAX_PACKAGES} packages`),
      ),
    ),
    labels: v.optional(Labels),
  },
  'expected an object with any of image, cpu, memory, disk, docker, packages and labels',
);

const FileSchema = v.strictObject(
  {
    templates: v.record(
      v.pipe(v.string(), v.regex(NAME, `expected ${NAME_FORM}`)),
      v.unknown(),
      'expected an object of templates by name',
    ),
  },
  'expected an object with one key, "templates", holding the templates by name',
);

/**
 * The templates of a parsed file over the built-ins. Throws an Error whose message names the
 * template and the field, like `template "gpu": invalid memory: expected ...`.
 */
export function parseTemplates(data: unknown): Templates {
  const file = v.safeParse(FileSchema, data);
  if (!file.success) throw new Error(describeIssue(file.issues[0]));
  const templates = new Map(builtinTemplates());
  for (const [name, raw] of Object.entries(file.output.templates)) {
    const parsed = v.safeParse(TemplateSchema, raw);
    if (!parsed.success) throw new Error(`template "${name}": ${describeIssue(parsed.issues[0])}`);
    const { image, cpu, memory, disk, docker, packages, labels } = parsed.output;
    templates.set(name, {
      name,
      ...(image ? { image } : {}),
      ...(cpu !== undefined ? { cpu } : {}),
      ...(memory !== undefined ? { memory } : {}),
      ...(disk !== undefined ? { disk } : {}),
      ...(docker !== undefined ? { docker } : {}),
      packages: [...new Set(packages ?? [])],
      labels: labels ?? {},
    });
  }
  return templates;
}

/** The text of --templates FILE: JSON for a .json file, else YAML (Bun's own parser). */
export function parseTemplatesText(text: string, path: string): Templates {
  const json = path.endsWith('.json');
  let data: unknown;
  try {
    data = json ? JSON.parse(text) : Bun.YAML.parse(text);
  } catch (error) {
    throw new Error(`it is not valid ${json ? 'JSON' : 'YAML'} (${(error as Error).message})`);
  }
  return parseTemplates(data);
}
