// Files holding a secret or a token must be readable by their owner alone; both binaries refuse
// anything looser with the one-line fix.

/** Why a file with this mode is not private (group or others have any access), or undefined. */
export function privateFileProblem(path: string, mode: number): string | undefined {
  if (process.platform === 'win32' || (mode & 0o077) === 0) return undefined;
  return `can be read by other users (mode ${(mode & 0o777).toString(8)}); run chmod 600 ${path}`;
}
