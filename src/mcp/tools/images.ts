// Image tools: what a create can start from. GET /v1/images is a route this project added (see
// the README), so its request and wire schema live here, not in client.ts or shared/wire.ts.
import * as v from 'valibot';
import { formatBytes } from '../../shared/sizes.ts';
import { integer, text } from '../../shared/wire.ts';
import type { Resource } from '../errors.ts';
import { timestamp } from '../format.ts';
import { defineTool } from './define.ts';

export const IMAGE: Resource = { noun: 'image', article: 'an', list: 'list_images' };

/** GET /v1/images as the daemon sends it (api/containarium.openapi.json), read leniently. */
export const ListImagesResponseSchema = v.object({
  images: v.nullish(
    v.array(
      v.object({
        aliases: v.nullish(v.array(v.string()), []),
        fingerprint: text,
        description: text,
        os: text,
        release: text,
        architecture: text,
        sizeBytes: integer,
        createdAt: integer,
      }),
    ),
    [],
  ),
  remotes: v.nullish(v.array(v.string()), []),
});

const ImageOut = v.object({
  aliases: v.pipe(
    v.array(v.string()),
    v.description("Local aliases; pass one as create_container's image"),
  ),
  fingerprint: v.string(),
  description: v.string(),
  os: v.string(),
  release: v.string(),
  architecture: v.string(),
  sizeBytes: v.number(),
  createdAt: v.nullable(v.pipe(v.string(), v.description('ISO 8601; null when unknown'))),
});
type ImageView = v.InferOutput<typeof ImageOut>;

/** `debian/12  Debian bookworm x86_64  53.9 MiB`, the names padded to one width. */
function imageLines(images: ImageView[]): string[] {
  const names = images.map((i) => i.aliases.join(', '));
  const width = Math.max(...names.map((n) => n.length));
  return images.map((i, n) => {
    const what = [i.os, i.release, i.architecture].filter(Boolean).join(' ') || i.description;
    return [names[n]!.padEnd(width), what, formatBytes(i.sizeBytes)].join('  ');
  });
}

const listImages = defineTool({
  name: 'list_images',
  title: 'List images',
  description:
    'List the images this server can create containers from without a download: each local image\'s aliases (pass one as create_container\'s image), OS, release, architecture and size; and the image servers ("remotes") an image name may start with instead, like "images:debian/12", which the server must be able to download from. Call it before create_container to choose an image.',
  effect: 'read',
  toolset: 'images',
  resource: IMAGE,
  input: v.strictObject({}),
  output: v.object({ images: v.array(ImageOut), remotes: v.array(v.string()) }),
  action: () => 'list images',
  async handle(_input, { client, signal }) {
    const response = await client.get('v1/images', ListImagesResponseSchema, {
      signal,
      feature: 'listing images',
    });
    const images = response.images.map(
      (i): ImageView => ({ ...i, createdAt: timestamp(i.createdAt) }),
    );
    const remotes = response.remotes;
    const servers = remotes.length
      ? `Image servers (download on create, e.g. "${remotes[0]}:debian/12"): ${remotes.join(', ')}.`
      : 'No image servers are configured.';
    const text = images.length
      ? `${images.length} local ${images.length === 1 ? 'image' : 'images'} (create_container's image takes the alias):\n${imageLines(images).join('\n')}\n${servers}`
      : `This server has no local images, so every create downloads one. ${servers}`;
    return { text, structured: { images, remotes } };
  },
});

export default [listImages];
