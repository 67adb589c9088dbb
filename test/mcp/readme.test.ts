// The README's quick start, read as the commands a newcomer types top to bottom.
import { describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCommandLine } from '../../src/daemon/cli.ts';
import { ROOT } from '../support/stdio.ts';

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** The text of one "## " section. */
function section(title: string): string {
  const start = readme.indexOf(`\n## ${title}\n`);
  expect(start).toBeGreaterThan(-1);
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end === -1 ? undefined : end);
}

/** The commands of a section's ```bash blocks, in order, continuation lines joined. */
function commands(text: string): string[] {
  const blocks = [...text.matchAll(/```bash\n([\s\S]*?)```/g)].map((m) => m[1]!);
  return blocks
    .join('\n')
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .map((line) => line.replace(/\s+#.*$/, '').trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

describe('README', () => {
  const quickStart = commands(section('Quick start'));

  test('the token file is written from a variable an earlier quick-start command set', () => {
    const write = quickStart.findIndex((line) => /> ~\/\.config\/containarium\/token/.test(line));
    expect(write).toBeGreaterThan(-1);
    const variable = /"\$(\w+)"/.exec(quickStart[write]!)?.[1];
    expect(variable).toBeDefined();
    const sets = new RegExp(`(^|\\s)(read\\b.*\\s${variable}\\b|${variable}=)`);
    expect(quickStart.slice(0, write).some((line) => sets.test(line))).toBe(true);
  });

  test('installing under a PREFIX puts PREFIX/bin on PATH before mcp-server is run', () => {
    const install = quickStart.findIndex((line) => /make install-mcp PREFIX=/.test(line));
    expect(install).toBeGreaterThan(-1);
    const prefix = /PREFIX=(\S+)/.exec(quickStart[install]!)?.[1] ?? '';
    expect(prefix).not.toBe('');
    const firstUse = quickStart.findIndex((line) => /^mcp-server\b/.test(line));
    const path = quickStart.findIndex((line) => line.includes(`export PATH="${prefix}/bin:$PATH"`));
    expect(path).toBeGreaterThan(install);
    expect(path).toBeLessThan(firstUse);
  });

  test('the one-machine daemon listens on 127.0.0.1 only, with the secret file doctor names', () => {
    const stack = commands(section('Running the whole stack on one Linux machine'));
    // The secret file the example makes, here a private stand-in: both commands must parse as printed.
    const folder = mkdtempSync(join(tmpdir(), 'readme-'));
    const secret = join(folder, 'secret');
    writeFileSync(secret, 'a-secret-of-more-than-32-bytes-for-the-test\n', { mode: 0o600 });
    const argv = (line: string) =>
      line
        .replace(/\s*&$/, '')
        .replace(/^.*\$\(/, '')
        .replace(/\)$/, '')
        .replaceAll('/etc/containarium-jwt.secret', secret)
        .split(/\s+/)
        .slice(1);
    const daemon = stack.find((line) => line.startsWith('dist/containarium daemon'));
    expect(daemon).toContain('--jwt-secret-file /etc/containarium-jwt.secret');
    expect(parseCommandLine(argv(daemon!))).toMatchObject({
      kind: 'daemon',
      hostname: '127.0.0.1',
      port: 8080,
    });
    const token = stack.find((line) => line.includes('dist/containarium token generate'));
    expect(parseCommandLine(argv(token!))).toMatchObject({ kind: 'token', roles: ['admin'] });
    expect(stack).toContain('export CONTAINARIUM_SERVER_URL=http://127.0.0.1:8080');
    rmSync(folder, { recursive: true, force: true });
  });
});
