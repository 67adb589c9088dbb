// exec and logs of the Incus backend on the real Incus of this machine, in one busybox container
// (no journal, so its logs are the console log), including the exits Incus fails on (126/127).
// Random names; the container is deleted after.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { existsSync } from 'node:fs';
import type { ExecRequest } from '../../src/daemon/backend.ts';
import { RAW_TAIL_BYTES } from '../../src/daemon/commands.ts';
import { DaemonError } from '../../src/daemon/errors.ts';
import { createIncusClient, INCUS_SOCKET } from '../../src/daemon/incus.ts';
import { createIncusBackend } from '../../src/daemon/incus-backend.ts';
import { rejection } from '../support/rejection.ts';

const present = existsSync(INCUS_SOCKET);
const ci = process.env.CI === 'true' || process.env.CI === '1';
if (!present && !ci) {
  console.warn(`incus-exec.test.ts: SKIPPED — no Incus socket at ${INCUS_SOCKET}`);
}

const run = Math.random().toString(36).slice(2, 7);
const username = `x${run}exec`;

describe.skipIf(!present && !ci)('exec and logs on real Incus (busybox)', () => {
  const client = createIncusClient({ socket: INCUS_SOCKET });
  const backend = createIncusBackend(client, { daemonId: `test-${run}`, log: () => undefined });
  const name = `${username}-container`;
  /** The exec output logs Incus still keeps for the container: none once exec has read them. */
  const outputLogs = async () =>
    (await client.request('GET', `1.0/instances/${name}/logs/exec-output`)).metadata;
  const exec = (over: Partial<ExecRequest>) =>
    backend.exec(username, { command: 'true', user: 'root', timeoutSeconds: 60, ...over });

  beforeAll(async () => {
    await backend.create(
      {
        username,
        cpu: 1,
        memory: '128MB',
        disk: '1GB',
        sshKeys: [],
        labels: {},
        image: 'busybox',
        enableDocker: false,
      },
      { async: false },
    );
  }, 120_000);

  afterAll(async () => {
    await backend.delete(username, { force: true }).catch(() => undefined);
  }, 60_000);

  test('a command runs as root and answers its exit code, stdout and stderr', async () => {
    const result = await exec({ command: 'echo out; echo err >&2; exit 3' });
    expect(result).toEqual({
      exitCode: 3,
      stdout: 'out\n',
      stderr: 'err\n',
      stdoutCut: false,
      stderrCut: false,
      timedOut: false,
    });
  });

  test('argv runs without a shell: its words arrive literally', async () => {
    const result = await exec({ command: ['echo', '$HOME; rm -rf /'] });
    expect(result.stdout).toBe('$HOME; rm -rf /\n');
  });

  test('another account runs with its own uid, in its home directory', async () => {
    await exec({ command: 'echo "bob:x:1234:1234::/tmp:/bin/sh" >> /etc/passwd' });
    const result = await exec({ command: 'id -u; id -g; pwd; echo $HOME', user: 'bob' });
    expect(result.stdout).toBe('1234\n1234\n/tmp\n/tmp\n');
  });

  test('an account the container lacks is refused, pointing at root', async () => {
    // busybox has no useradd, so create made no account for the user.
    const error = await rejection(exec({ user: username }));
    expect(error).toBeInstanceOf(DaemonError);
    expect((error as DaemonError).kind).toBe('invalid');
    expect((error as DaemonError).message).toMatch(/no account .* run as user "root"/);
  });

  test('a command past its time is stopped and reported timed out', async () => {
    // exec: busybox's timeout signals only its child, not what a shell started.
    const result = await exec({ command: 'echo started; exec sleep 30', timeoutSeconds: 1 });
    expect(result.timedOut).toBe(true);
    expect(result.exitCode).not.toBe(0);
    expect(result.stdout).toBe('started\n');
    // It was killed, not left running.
    const left = await exec({ command: 'ps -o args | grep -cx "sleep 30" || true' });
    expect(left.stdout.trim()).toBe('0');
  }, 30_000);

  test('only the tail of a large output is read, and marked cut', async () => {
    const result = await exec({ command: 'seq 1 40000' });
    expect(result.stdoutCut).toBe(true);
    expect(result.stdout.endsWith('39999\n40000\n')).toBe(true);
    expect(Buffer.byteLength(result.stdout)).toBeLessThanOrEqual(RAW_TAIL_BYTES);
    expect(result.stderrCut).toBe(false);
  });

  test('exit 127 and a missing program are exit code 127 with their output, not errors', async () => {
    const shell = await exec({ command: 'echo before; echo oops >&2; exit 127' });
    expect(shell).toMatchObject({ exitCode: 127, stdout: 'before\n', stderr: 'oops\n' });
    expect((await exec({ command: 'no-such-program-here' })).exitCode).toBe(127);
    expect((await exec({ command: ['/no/such/program'] })).exitCode).toBe(127);
    expect((await exec({ command: 'exit 126' })).exitCode).toBe(126);
    expect(await outputLogs()).toEqual([]);
  }, 60_000);

  test('a wait that runs out answers timed out with the output so far', async () => {
    const result = await client.exec(name, ['sh', '-c', 'echo started; exec sleep 4'], {
      timeout: 1,
    });
    expect(result).toMatchObject({ exitCode: 124, stdout: 'started\n', timedOut: true });
    expect(await outputLogs()).toEqual([]);
  }, 30_000);

  test('without a journal, logs are the console log', async () => {
    const marker = `console-${run}-${Date.now()}`;
    await exec({ command: `echo ${marker} > /dev/console` });
    const logs = await backend.logs(username, { lines: 100 });
    expect(logs.source).toBe('console');
    expect(logs.text).toContain(marker);
  });

  test('a stopped container is refused for exec and logs, saying to start it', async () => {
    await backend.stop(username, { force: true });
    for (const call of [() => exec({}), () => backend.logs(username, { lines: 10 })]) {
      const error = await rejection(call());
      expect((error as DaemonError).kind).toBe('invalid');
      expect((error as DaemonError).message).toMatch(/is not running \(stopped\); start it first/);
    }
  }, 60_000);

  test('a user without a container is not found', async () => {
    const error = await rejection(
      backend.exec(`x${run}none`, { command: 'true', user: 'root', timeoutSeconds: 5 }),
    );
    expect((error as DaemonError).kind).toBe('not_found');
  });
});
