import { describe, expect, test } from 'bun:test';
import { defaultSnapshotName, isValidSnapshotName } from '../../src/shared/snapshot.ts';

describe('snapshot names', () => {
  test('the default name is the UTC time to the second', () => {
    expect(defaultSnapshotName(new Date('2026-11-29T07:15:00.999Z'))).toBe('snap-20261129-071500');
    expect(defaultSnapshotName(new Date('2027-01-02T23:04:05Z'))).toBe('snap-20270102-230405');
  });

  test.each(['before-upgrade', 'v1.2_rc', 'A', `a${'b'.repeat(62)}`, 'snap-20261129-071500'])(
    '%p is a name',
    (name) => expect(isValidSnapshotName(name)).toBe(true),
  );

  test.each(['', 'a/b', '../x', '.x', '-x', 'a b', `a${'b'.repeat(63)}`, 'é', 'a\n'])(
    '%p is not',
    (name) => expect(isValidSnapshotName(name)).toBe(false),
  );
});
