// Exec on the real Incus of this machine when Incus fails the operation (exit 126/127) or the
// wait runs out: results, not errors, and no output log left behind. One busybox container with a
// random name, deleted after.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { existsSync } from 'node:fs';
import { createIncusClient, INCUS_SOCKET } from '../../src/daemon/incus.ts';
import { createIncusBackend } from '../../src/daemon/incus-backend.ts';

const present = existsSync(INCUS_SOCKET);
const ci = process.env.CI === 'true' || process.env.CI === '1';
if (!present && !ci) {
  console.warn(`incus-exec-exit.test.ts: SKIPPED — no Incus socket at ${INCUS_SOCKET}`);
}

const run = Math.random().toString(36).slice(2, 7);
const username = `x${run}exit`;
const name = `${username}-container`;

describe.skipIf(!present && !ci)('exec exit codes Incus fails on (busybox)', () => {
  const client = createIncusClient({ socket: INCUS_SOCKET });
  const backend = createIncusBackend(client, { daemonId: `test-${run}`, log: () => undefined });
  const outputLogs = async () => {
    const envelope = await client.request('GET', `1.0/instances/${name}/logs/exec-output`);
    return envelope.metadata as string[];
  };

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

  test('exit 127 and a missing program are exit code 127 with their output', async () => {
    const exec = (command: string | string[]) =>
      backend.exec(username, { command, user: 'root', timeoutSeconds: 30 });
    const shell = await exec('echo before; echo oops >&2; exit 127');
    expect(shell).toMatchObject({ exitCode: 127, stdout: 'before\n', stderr: 'oops\n' });
    expect((await exec('no-such-program-here')).exitCode).toBe(127);
    expect((await exec(['/no/such/program'])).exitCode).toBe(127);
    expect((await exec('exit 126')).exitCode).toBe(126);
    expect(await outputLogs()).toEqual([]);
  }, 60_000);

  test('a wait that runs out answers timed out with the output so far', async () => {
    const result = await client.exec(name, ['sh', '-c', 'echo started; exec sleep 4'], {
      timeout: 1,
    });
    expect(result).toMatchObject({ exitCode: 124, stdout: 'started\n', timedOut: true });
    expect(await outputLogs()).toEqual([]);
  }, 30_000);
});
