// Golden files: compared everywhere, CI included; rewritten only on an explicit UPDATE_GOLDEN=1,
// and never under CI, where a rewrite would make the comparison pass whatever changed.
import { expect } from 'bun:test';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

export const inCi = (env: Record<string, string | undefined> = process.env) =>
  env.CI === 'true' || env.CI === '1';

/** What to do with a golden file: rewrite it first, or only compare. Throws for a rewrite under CI. */
export function goldenMode(
  env: Record<string, string | undefined> = process.env,
): 'update' | 'compare' {
  if (env.UPDATE_GOLDEN !== '1') return 'compare';
  if (inCi(env)) {
    throw new Error(
      'UPDATE_GOLDEN=1 is refused under CI: rewrite golden files locally and commit the reviewed diff',
    );
  }
  return 'update';
}

/** Fails on any difference between `actual` and the golden file at `path`. */
export function expectGolden(path: string, actual: string): void {
  if (goldenMode() === 'update') writeFileSync(path, actual);
  expect(existsSync(path)).toBe(true);
  expect(actual).toBe(readFileSync(path, 'utf8'));
}
