// GET /v1/images: the images a create can use without a download, and the image servers it may
// name instead. This project's own route (upstream has none; see the README and
// api/containarium.openapi.json), so its wire shape lives here, in upstream's conventions:
// lowerCamelCase, every field present, int64 as strings. Any authenticated caller may list.
import * as v from 'valibot';
import { Int64Schema } from '../../shared/wire.ts';
import type { Image } from '../backend.ts';
import { route } from '../router.ts';
import { int64 } from '../to-wire.ts';

export const WireImageSchema = v.strictObject({
  aliases: v.array(v.string()),
  fingerprint: v.string(),
  description: v.string(),
  os: v.string(),
  release: v.string(),
  architecture: v.string(),
  sizeBytes: Int64Schema,
  createdAt: Int64Schema,
});
export type WireImage = v.InferOutput<typeof WireImageSchema>;

export const WireImagesSchema = v.strictObject({
  images: v.array(WireImageSchema),
  remotes: v.array(v.string()),
});

export const emitImage = (i: Image): WireImage => ({
  aliases: [...i.aliases],
  fingerprint: i.fingerprint,
  description: i.description,
  os: i.os,
  release: i.release,
  architecture: i.architecture,
  sizeBytes: int64(i.sizeBytes),
  createdAt: int64(i.createdAt),
});

export const listImages = route('GET', '/v1/images', async (c) => {
  const { images, remotes } = await c.backend.listImages();
  return { images: images.map(emitImage), remotes: [...remotes] };
});
