// What exec and logs ask of a container, against a scripted Guest: the argv they run and how they
// read the answer.
import { describe, expect, test } from 'bun:test';
import { LOG_TAIL_BYTES, readLogs, runCommand } from '../../src/daemon/commands.ts';
import type { ExecOptions, ExecResult, Guest } from '../../src/daemon/provision.ts';

/** A guest whose programs all exist; `answer` decides what each other command prints. */
function scriptedGuest(answer: (argv: string[]) => ExecResult) {
  const calls: { argv: string[]; options: ExecOptions | undefined }[] = [];
  const guest: Guest = {
    name: 'alice-container',
    async exec(argv, options) {
      calls.push({ argv, options });
      if (argv[0] === 'test') return { exitCode: 0, stdout: '', stderr: '' };
      return answer(argv);
    },
    writeFile: async () => {},
    makeDirectory: async () => {},
    readFile: async () => ({ content: 'root:x:0:0::/root:/bin/sh\n' }) as never,
    consoleLog: async () => ({ text: '', cut: false }),
  };
  return { guest, calls: () => calls.filter((c) => c.argv[0] !== 'test') };
}

describe('readLogs', () => {
  test('without since, journalctl gives the last `lines` entries', async () => {
    const { guest, calls } = scriptedGuest(() => ({ exitCode: 0, stdout: 'a\n', stderr: '' }));
    await readLogs(guest, { lines: 5 });
    expect(calls()[0]?.argv).toEqual([
      '/usr/bin/journalctl',
      '--no-pager',
      '--quiet',
      '-o',
      'short-iso',
      '-n',
      '5',
    ]);
  });

  test('with since, no -n (which would keep the oldest): the tail of the output is read', async () => {
    const { guest, calls } = scriptedGuest(() => ({
      exitCode: 0,
      stdout: 'old\nnew\n',
      stderr: '',
    }));
    const read = await readLogs(guest, { lines: 1, since: 1_769_860_800 });
    const call = calls()[0];
    expect(call?.argv).toEqual([
      '/usr/bin/journalctl',
      '--no-pager',
      '--quiet',
      '-o',
      'short-iso',
      '--since=@1769860800',
    ]);
    expect(call?.options?.tail).toBe(LOG_TAIL_BYTES);
    expect(read.text).toBe('old\nnew\n');
  });
});

describe('runCommand', () => {
  test('a wait that ran out is timedOut, even when no time seems to have passed', async () => {
    const { guest } = scriptedGuest(() => ({
      exitCode: 124,
      stdout: 'started\n',
      stderr: '',
      timedOut: true,
    }));
    const clock = { now: () => 0, sleep: async () => {} };
    const outcome = await runCommand(
      guest,
      { command: 'sleep 99', user: 'root', timeoutSeconds: 5 },
      clock,
    );
    expect(outcome).toMatchObject({ exitCode: 124, stdout: 'started\n', timedOut: true });
  });
});
