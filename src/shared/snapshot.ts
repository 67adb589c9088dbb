// Snapshot names, one rule for both binaries: what Incus takes as a snapshot name (never "/",
// which would name a path) and what fits in a URL segment without escaping.

export const SNAPSHOT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export const SNAPSHOT_NAME_FORM =
  'a snapshot name of 1 to 63 letters, digits, ".", "_" or "-", starting with a letter or digit (like "before-upgrade")';

export const isValidSnapshotName = (name: string): boolean => SNAPSHOT_NAME.test(name);

/** The name a snapshot gets when none is given: its UTC time, like "snap-20261129-071500". */
export function defaultSnapshotName(at: Date): string {
  const digits = at.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return `snap-${digits.slice(0, 8)}-${digits.slice(8)}`;
}
