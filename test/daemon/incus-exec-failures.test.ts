// Exec and operation waits when things do not simply succeed, against a fake Incus that answers
// as Incus 6.0 does (captured on this machine): a command that exits 126/127, a wait that runs out.
import { describe, expect, test } from 'bun:test';
import type { DaemonError } from '../../src/daemon/errors.ts';
import { createIncusClient } from '../../src/daemon/incus.ts';
import { rejection } from '../support/rejection.ts';
import { failure, fakeIncus, started, sync } from './incus-fake.ts';

const NAME = 'zprobe1-container';
const OP = 'ed43e109-ef11-448d-aa3b-b73241525a87';
const LOGS = `/1.0/instances/${NAME}/logs/exec-output/exec_${OP}`;

/** A fake Incus whose exec wait answers `waited`; the output logs hold hi / nothing. */
const execIncus = (waited: () => Response) =>
  fakeIncus({
    [`POST /1.0/instances/${NAME}/exec`]: () => started(OP),
    [`GET /1.0/operations/${OP}/wait`]: waited,
    [`DELETE /1.0/operations/${OP}`]: () => failure(400, "This operation can't be cancelled"),
    [`GET ${LOGS}.stdout`]: () => new Response('hi\n'),
    [`GET ${LOGS}.stderr`]: () => new Response(''),
    [`DELETE ${LOGS}.stdout`]: () => sync({}),
    [`DELETE ${LOGS}.stderr`]: () => sync({}),
  });

describe('operation waits', () => {
  test('a wait Incus ends with "context deadline exceeded" is unavailable, saying so', async () => {
    await using incus = fakeIncus({
      'POST /1.0/instances': () => started('op9'),
      'GET /1.0/operations/op9/wait': () => failure(500, 'context deadline exceeded'),
    });
    const error = (await rejection(
      createIncusClient({ socket: incus.socket }).operate('POST', '1.0/instances', { wait: 2 }),
    )) as DaemonError;
    expect(error.kind).toBe('unavailable');
    expect(error.status).toBe(503);
    expect(error.message).toBe('Incus operation did not finish within 2 s; it may still complete');
  });
});

describe('exec', () => {
  test('a command Incus reports as not found is exit code 127 with its output', async () => {
    await using incus = execIncus(() => failure(400, 'Command not found'));
    const client = createIncusClient({ socket: incus.socket });
    const result = await client.exec(NAME, ['sh', '-c', 'echo hi; exit 127']);
    expect(result).toEqual({ exitCode: 127, stdout: 'hi\n', stderr: '' });
    expect(incus.calls('DELETE', LOGS).map((c) => c.path)).toEqual(
      expect.arrayContaining([`${LOGS}.stdout`, `${LOGS}.stderr`]),
    );
  });

  test('a command Incus reports as not executable is exit code 126', async () => {
    await using incus = execIncus(() => failure(400, 'Command not executable'));
    const result = await createIncusClient({ socket: incus.socket }).exec(NAME, ['/etc']);
    expect(result.exitCode).toBe(126);
  });

  test('a wait that runs out asks Incus to cancel and answers timed out with the output so far', async () => {
    await using incus = execIncus(() => failure(500, 'context deadline exceeded'));
    const result = await createIncusClient({ socket: incus.socket }).exec(NAME, ['sleep', '99'], {
      timeout: 1,
    });
    expect(result).toEqual({ exitCode: 124, stdout: 'hi\n', stderr: '', timedOut: true });
    expect(incus.calls('GET', `/1.0/operations/${OP}/wait`)[0]?.search).toBe('?timeout=1');
    expect(incus.calls('DELETE', `/1.0/operations/${OP}`).length).toBe(1);
    expect(incus.calls('DELETE', LOGS).length).toBe(2);
  });

  test('any other failure is still an error, and the output logs are deleted anyway', async () => {
    await using incus = execIncus(() => failure(500, 'Failed to start the command'));
    const error = await rejection(createIncusClient({ socket: incus.socket }).exec(NAME, ['true']));
    expect(error.message).toBe('Failed to start the command');
    expect(incus.calls('DELETE', LOGS).length).toBe(2);
  });
});
