import { describe, expect, test } from 'bun:test';
import { clip } from '../../src/shared/clip.ts';

describe('clip', () => {
  test('short text is unchanged', () => {
    expect(clip('disk quota exceeded', 19)).toBe('disk quota exceeded');
  });

  test('a cut falls between words and is marked', () => {
    expect(clip('Failed to run: btrfs qgroup limit', 20)).toBe('Failed to run:…');
    expect(clip('Failed to run: btrfs qgroup limit', 21)).toBe('Failed to run: btrfs…');
    for (let max = 6; max < 40; max++) {
      const out = clip('alpha beta gamma delta epsilon zeta eta theta', max);
      expect(out.length).toBeLessThanOrEqual(max);
      expect(
        out
          .replace(/…$/, '')
          .split(' ')
          .every((w) => /^(alpha|beta|gamma|delta|epsilon|zeta|eta|theta)$/.test(w)),
      ).toBe(true);
    }
  });

  test('one word longer than the room is cut where it must be', () => {
    expect(clip('https://images.linuxcontainers.org/streams', 10)).toBe('https://i…');
  });
});
