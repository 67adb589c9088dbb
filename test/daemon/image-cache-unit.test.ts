// The image cache's pure parts: the entry key and which images count as entries.
import { describe, expect, test } from 'bun:test';
import { cacheEntries, cacheKey, PROP } from '../../src/daemon/image-cache.ts';
import type { IncusImage } from '../../src/daemon/incus-wire.ts';

const image = (over: Partial<IncusImage>): IncusImage => ({
  fingerprint: 'ab'.repeat(32),
  type: 'container',
  architecture: 'x86_64',
  size: 1000,
  created_at: '',
  aliases: [],
  properties: {},
  ...over,
});

describe('image cache keys and entries', () => {
  test('the key is canonical in the package set and changes with the fingerprint or the packages', () => {
    const key = cacheKey('f1', ['sudo', 'openssh-server']);
    expect(key).toMatch(/^[0-9a-f]{16}$/);
    expect(cacheKey('f1', ['openssh-server', 'sudo', 'sudo'])).toBe(key);
    expect(cacheKey('f2', ['openssh-server', 'sudo'])).not.toBe(key);
    expect(cacheKey('f1', ['docker.io', 'openssh-server', 'sudo'])).not.toBe(key);
  });

  test('only images with our marker are entries, read from their properties', () => {
    const ours = image({
      fingerprint: 'c'.repeat(64),
      aliases: [{ name: 'containarium-cache/0123456789abcdef' }],
      properties: {
        [PROP.marker]: 'true',
        [PROP.key]: '0123456789abcdef',
        [PROP.sourceImage]: 'debian/12',
        [PROP.sourceFingerprint]: 'f1',
        [PROP.packages]: 'openssh-server sudo',
        [PROP.built]: '2026-11-29T07:00:00.000Z',
        [PROP.daemon]: 'prod',
      },
    });
    // Someone else's image with a look-alike alias but no marker is not ours.
    const theirs = image({ aliases: [{ name: 'containarium-cache/x' }], properties: {} });
    expect(cacheEntries([ours, theirs])).toEqual([
      {
        alias: 'containarium-cache/0123456789abcdef',
        fingerprint: 'c'.repeat(64),
        key: '0123456789abcdef',
        sourceImage: 'debian/12',
        sourceFingerprint: 'f1',
        packages: ['openssh-server', 'sudo'],
        builtAt: Date.parse('2026-11-29T07:00:00.000Z'),
        sizeBytes: 1000,
        daemon: 'prod',
      },
    ]);
  });
});
