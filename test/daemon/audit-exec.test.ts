// The audit line of an exec: which program ran as whom, never the command's arguments.
import { describe, expect, test } from 'bun:test';
import { createHash } from 'node:crypto';
import { auditEntry } from '../../src/daemon/audit.ts';
import { ROUTES } from '../../src/daemon/routes/index.ts';

const execEntry = (body: unknown) =>
  auditEntry(
    {
      request: new Request('http://127.0.0.1/v1/containers/alice/exec', { method: 'POST' }),
      address: '192.0.2.1',
      requestId: 'r1',
      response: new Response('{}', { status: 200 }),
      body: new TextEncoder().encode(JSON.stringify(body)),
      durationMs: 3,
    },
    ROUTES,
    new Date(0),
  );

const sha256 = (value: unknown) => createHash('sha256').update(JSON.stringify(value)).digest('hex');

describe('the audit line of an exec', () => {
  test('names the program and hashes the command; its arguments never appear', () => {
    const command = 'mysql -u root -pS3cretPassw0rd -e "drop table x"';
    const entry = execEntry({ command, user: 'root' });
    expect(entry).toMatchObject({
      route: 'POST /v1/containers/{username}/exec',
      targetUser: 'alice',
      command: { program: 'mysql', sha256: sha256(command) },
      runAs: 'root',
    });
    expect(JSON.stringify(entry)).not.toContain('S3cretPassw0rd');
  });

  test('argv: the base name of its first word', () => {
    const command = ['/usr/bin/env', 'TOKEN=abc123', 'deploy'];
    const entry = execEntry({ command });
    expect(entry?.command).toEqual({ program: 'env', sha256: sha256(command) });
    expect(entry).not.toHaveProperty('runAs');
    expect(JSON.stringify(entry)).not.toContain('abc123');
  });

  test('a first word that is not a plain name is not shown', () => {
    expect(execEntry({ command: 'PASSWORD=hunter2 ./run' })?.command?.program).toBe('(not shown)');
    expect(execEntry({ command: ['echo', 'x'], user: 'Root; rm' })?.runAs).toBe('(not an account)');
  });

  test('other routes carry no command', () => {
    const entry = auditEntry(
      {
        request: new Request('http://127.0.0.1/v1/containers', { method: 'POST' }),
        address: '192.0.2.1',
        requestId: 'r2',
        response: new Response('{}', { status: 200 }),
        body: new TextEncoder().encode(JSON.stringify({ username: 'bob', command: 'ls' })),
        durationMs: 1,
      },
      ROUTES,
      new Date(0),
    );
    expect(entry).not.toHaveProperty('command');
  });
});
