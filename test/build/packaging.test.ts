// The systemd units under packaging/: each starts its program with flags that program accepts, and
// with the hardening options the README promises.
import { describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCommandLine } from '../../src/daemon/cli.ts';
import { parseHttpArgs } from '../../src/mcp/http.ts';
import { ROOT } from '../support/stdio.ts';

const unit = (name: string) => readFileSync(join(ROOT, 'packaging/systemd', name), 'utf8');
const execStart = (text: string) => /^ExecStart=(.+)$/m.exec(text)?.[1]?.trim().split(/\s+/) ?? [];
const HARDENING = [
  'NoNewPrivileges=yes',
  'ProtectSystem=strict',
  'ProtectHome=yes',
  'PrivateTmp=yes',
  'CapabilityBoundingSet=',
  'RestrictAddressFamilies=',
];

describe('systemd units', () => {
  test('containarium-daemon.service runs a daemon command line the daemon accepts', () => {
    const text = unit('containarium-daemon.service');
    const [program, ...argv] = execStart(text);
    expect(program).toBe('/usr/local/bin/containarium');
    // The unit's secret file, stood in for by one of this test's own.
    const dir = mkdtempSync(join(tmpdir(), 'unit-'));
    try {
      const secret = join(dir, 'secret');
      writeFileSync(secret, `${'s'.repeat(44)}\n`, { mode: 0o600 });
      const at = argv.indexOf('/etc/containarium-jwt.secret');
      expect(at).toBeGreaterThan(0);
      argv[at] = secret;
      expect(parseCommandLine(argv)).toMatchObject({ kind: 'daemon' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    for (const option of HARDENING) expect(text).toContain(option);
  });

  test('containarium-daemon.service keeps an audit log where ProtectSystem=strict lets it write', () => {
    const text = unit('containarium-daemon.service');
    const argv = execStart(text);
    const file = argv[argv.indexOf('--audit-log') + 1] ?? '';
    const logs = /^LogsDirectory=(\S+)$/m.exec(text)?.[1];
    expect(argv).toContain('--audit-log');
    expect(logs).toBeDefined();
    expect(file.startsWith(`/var/log/${logs}/`)).toBe(true);
    expect(text).toMatch(/^LogsDirectoryMode=0700$/m);
  });

  test('mcp-server-http.service runs `mcp-server http` with flags it accepts, as a dynamic user', () => {
    const text = unit('mcp-server-http.service');
    const [program, command, ...argv] = execStart(text);
    expect([program, command]).toEqual(['/usr/local/bin/mcp-server', 'http']);
    expect(parseHttpArgs(argv).options).toMatchObject({ host: '127.0.0.1', port: 8090 });
    expect(text).toContain('DynamicUser=yes');
    // Callers bring their tokens: the unit must not hold one.
    expect(text).not.toContain('CONTAINARIUM_JWT_TOKEN');
    for (const option of HARDENING) expect(text).toContain(option);
  });
});
