// What a test file needs on this machine (the Incus socket, the compiled binaries): missing on a
// laptop, the file is skipped with the reasons; missing under CI, it fails instead.
import { existsSync } from 'node:fs';

const ci = process.env.CI === 'true' || process.env.CI === '1';

/** The reasons `file` cannot run, from `needs` (a path and how to make it); empty when it can. */
export function missingPrerequisites(file: string, needs: Record<string, string>): string[] {
  const missing = Object.entries(needs)
    .filter(([path]) => !existsSync(path))
    .map(([path, how]) => `no ${path} (${how})`);
  if (missing.length > 0) {
    if (ci) throw new Error(`${file} cannot run in CI: ${missing.join('; ')}`);
    console.warn(`${file}: SKIPPED — ${missing.join('; ')}. With CI=true this fails instead.`);
  }
  return missing;
}

export const INCUS_SETUP = 'run scripts/incus-setup.sh as root';
export const BUILD = 'run bun run build';
