// Telling a live create's daemon process from one that is gone.
import { expect, test } from 'bun:test';
import { hostname } from 'node:os';
import { ownerAlive, ownerTag } from '../../src/daemon/owner.ts';

test('a tag names host, pid and start time; only the very process it names is alive', () => {
  const mine = ownerTag();
  expect(mine).toMatch(new RegExp(`^${hostname()} ${process.pid} \\d+$`));
  expect(ownerAlive(mine)).toBe(true);
  // A process that has exited.
  expect(ownerAlive(`${hostname()} ${Bun.spawnSync(['true']).pid} 1`)).toBe(false);
  // The same pid with another start time: the pid was reused by a later process.
  expect(ownerAlive(`${hostname()} ${process.pid} 1`)).toBe(false);
  // Another host cannot be checked from here, so its process counts as gone.
  expect(ownerAlive(`elsewhere ${process.pid} ${mine.split(' ')[2]}`)).toBe(false);
  expect(ownerAlive('junk')).toBe(false);
});

test('a killed process its parent has not reaped yet (a zombie) is gone', async () => {
  // sh starts a child, then becomes `sleep`, which never reaps it: once killed, it stays a zombie.
  const parent = Bun.spawn(['sh', '-c', 'sleep 30 & echo $!; exec sleep 30'], { stdout: 'pipe' });
  try {
    const reader = parent.stdout.getReader();
    const { value } = await reader.read();
    const pid = Number(new TextDecoder().decode(value).trim());
    const tag = ownerTag(pid);
    expect(ownerAlive(tag)).toBe(true);
    process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 100; i++) {
      if (!ownerAlive(tag)) break;
      await Bun.sleep(20);
    }
    // Still in the process table with the same start time, but dead.
    expect(ownerTag(pid)).toBe(tag);
    expect(ownerAlive(tag)).toBe(false);
  } finally {
    parent.kill('SIGKILL');
  }
});
