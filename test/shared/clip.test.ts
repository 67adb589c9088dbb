import { describe, expect, test } from 'bun:test';
import { clip } from '../../src/shared/clip.ts';

describe('clip', () => {
  test('short text is unchanged', () => {
    expect(clip('disk quota exceeded', 19)).toBe('disk quota exceeded');
  });

  test('a cut falls between words and is marked', () => {
    expect(clip('Failed to run: btrfs qgroup limit', 20)).toBe('Failed to run:…');
    expect(clip('Failed to run: btrfs qgroup limit', 21)).toBe('Failed to run: btrfs…');
    // A list cut between its items does not end on the comma.
    expect(clip('local images: debian/12, busybox, alpine', 34)).toBe(
      'local images: debian/12, busybox…',
    );
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

  test('one word longer than the room keeps its start and says how long it was', () => {
    const url = `https://images.example/${'a'.repeat(577)}`;
    expect(url.length).toBe(600);
    const out = clip(url, 500);
    expect(out.length).toBeLessThanOrEqual(500);
    expect(out).toEndWith('…(600 characters)');
    expect(out).toStartWith('https://images.example/aaaa');
    // After a few short words too: the long word is not dropped for the words before it.
    const said = clip(`fetching ${url} failed`, 500);
    expect(said).toStartWith('fetching https://images.example/');
    expect(said).toEndWith('…(600 characters)');
    expect(said.length).toBeLessThanOrEqual(500);
  });

  test('where even the mark does not fit, the word is cut where it must be', () => {
    expect(clip('https://images.linuxcontainers.org/streams', 10)).toBe('https://i…');
  });
});
