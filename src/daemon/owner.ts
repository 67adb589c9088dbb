// Which daemon process is working on a create: "<host> <pid> <start time>", stored on the instance
// while it is being created, so a later daemon can tell an abandoned create from a live one.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

/** The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), or ''. */
function startTime(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  } catch {
    return '';
  }
}

/** This process's tag. */
export const ownerTag = (pid = process.pid): string => `${hostname()} ${pid} ${startTime(pid)}`;

/**
 * True when the tagged process is still running on this host. A tag from another host cannot be
 * checked from here, so it counts as gone (one daemon per Incus is the normal set-up).
 */
export function ownerAlive(tag: string): boolean {
  const [host, pid] = tag.split(' ');
  if (host !== hostname() || !pid || !/^\d+$/.test(pid)) return false;
  if (ownerTag(Number(pid)) !== tag) return false;
  try {
    process.kill(Number(pid), 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
