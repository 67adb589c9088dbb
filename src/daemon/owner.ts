// Which daemon process is working on a create: "<host> <pid> <start time>", stored on the instance
// while it is being created, so a later daemon can tell an abandoned create from a live one.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

/**
 * The process's state letter (field 3 of /proc/PID/stat) and start time in clock ticks since boot
 * (field 22); undefined when there is no such process.
 */
function stat(pid: number): { state: string; started: string } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0] ?? '', started: fields[19] ?? '' };
  } catch {
    return undefined;
  }
}

/** This process's tag. */
export const ownerTag = (pid = process.pid): string =>
  `${hostname()} ${pid} ${stat(pid)?.started ?? ''}`;

/**
 * True when the tagged process is still running on this host: the same pid with the same start
 * time (not a later process that reused the pid), and not a zombie (killed, not yet reaped by
 * its parent, as right after a kill -9). A tag from another host cannot be checked from here, so
 * it counts as gone (one daemon per Incus and daemon id is the normal set-up).
 */
export function ownerAlive(tag: string): boolean {
  const [host, pid, started] = tag.split(' ');
  if (host !== hostname() || !pid || !/^\d+$/.test(pid) || !started) return false;
  const now = stat(Number(pid));
  return now !== undefined && now.started === started && now.state !== 'Z' && now.state !== 'X';
}
