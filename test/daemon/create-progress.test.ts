// The create flow's phase hook: what GET shows of a create while it runs and once it ended, and
// the phases provisioning reports, each as its steps begin.
import { describe, expect, test } from 'bun:test';
import { createProgress, PHASES } from '../../src/daemon/create-progress.ts';
import { type Guest, provision } from '../../src/daemon/provision.ts';
import { retrying } from '../../src/daemon/retry.ts';
import { fakeClock } from '../support/fake-clock.ts';

describe('createProgress', () => {
  test('the phase while a create runs; its message or reason once it ended', () => {
    const progress = createProgress();
    expect(progress.phase('alice')).toBe('');
    progress.enter('alice', PHASES.creating);
    progress.enter('alice', PHASES.network);
    expect(progress.phase('alice')).toBe('waiting for network');
    progress.end('alice', { message: 'Container alice-container created successfully' });
    expect(progress.phase('alice')).toBe('');
    expect(progress.message('alice')).toBe('Container alice-container created successfully');
    progress.end('bob', { error: 'image "x" could not be fetched' });
    expect(progress.failure('bob')).toBe('image "x" could not be fetched');
    // The claim's release ends it again without an outcome: what was kept stays.
    progress.end('alice', undefined);
    expect(progress.message('alice')).toBe('Container alice-container created successfully');
  });

  test("a new create forgets the last one's end; a delete forgets everything", () => {
    const progress = createProgress();
    progress.end('bob', { error: 'failed' });
    progress.enter('bob', PHASES.creating);
    expect(progress.failure('bob')).toBe('');
    expect(progress.phase('bob')).toBe('creating instance');
    progress.end('bob', { message: 'done' });
    progress.forget('bob');
    expect([progress.phase('bob'), progress.message('bob'), progress.failure('bob')]).toEqual([
      '',
      '',
      '',
    ]);
  });
});

describe('provision reports its phases', () => {
  /** A guest with these executables whose every command succeeds; useradd makes alice. */
  const guest = (executables: string[]): Guest => {
    let passwd = 'root:x:0:0::/root:/bin/sh\n';
    return {
      name: 'alice-container',
      async exec(argv) {
        if (argv[0] === 'useradd') passwd += 'alice:x:1000:1000::/home/alice:/bin/bash\n';
        const found = argv[0] !== 'test' || executables.includes(argv[2] ?? '');
        return { exitCode: found ? 0 : 1, stdout: '', stderr: '' };
      },
      async writeFile() {},
      async consoleLog() {
        return { text: '', cut: false };
      },
      async makeDirectory() {},
      async readFile() {
        return { content: passwd, uid: 0, gid: 0, mode: 0o644 };
      },
    };
  };
  const retry = retrying({ attempts: 1, delayMs: 0, clock: fakeClock(), log: () => {} });
  const request = { username: 'alice', sshKeys: [], enableDocker: false };

  test('an apt image: packages, then the user, then the keys', async () => {
    const seen: string[] = [];
    await provision(guest(['/usr/bin/apt-get', '/usr/sbin/useradd']), request, retry, (phase) =>
      seen.push(phase),
    );
    expect(seen).toEqual(['installing packages', 'adding user', 'adding keys']);
  });

  test('an image with neither apt nor useradd reports none of them', async () => {
    const seen: string[] = [];
    await provision(guest([]), request, retry, (phase) => seen.push(phase));
    expect(seen).toEqual([]);
  });
});
