// The quota rules on their own: whose quota applies, and how a refusal words sizes.
import { describe, expect, test } from 'bun:test';
import {
  DEFAULT_QUOTA,
  DEFAULT_QUOTAS,
  enforceQuota,
  parseQuotaFile,
  quotaOf,
} from '../../src/daemon/quotas.ts';

const refusal = (run: () => void) => {
  try {
    run();
  } catch (error) {
    return (error as Error).message;
  }
  return 'no refusal';
};

const none = { containers: 0, cpus: 0, memoryBytes: 0, diskBytes: 0 };

describe('quotaOf', () => {
  test('a username that is also a property of every object gets the default quota', () => {
    for (const name of ['constructor', 'hasownproperty', '__proto__', 'tostring']) {
      expect(quotaOf(DEFAULT_QUOTAS, name)).toEqual(DEFAULT_QUOTA);
    }
    // An entry for such a name would be dropped by the schema, so the file is refused instead.
    expect(() => parseQuotaFile('users:\n  constructor: {cpus: 2}\n')).toThrow(
      'has an invalid users: expected usernames other than constructor and prototype (those users get the default quota)',
    );
    const table = parseQuotaFile('users:\n  alice: {cpus: 2}\n');
    expect(quotaOf(table, 'constructor')).toEqual(DEFAULT_QUOTA);
  });
});

describe('enforceQuota', () => {
  test('use, ask and quota are shown in the same units, the quota also as spelled', () => {
    const message = refusal(() =>
      enforceQuota('alice', DEFAULT_QUOTA, none, { ...none, memoryBytes: 17 * 2 ** 30 }),
    );
    expect(message).toBe(
      'quota exceeded for alice: memory 0 B used + 17 GiB asked > 14.9 GiB quota (16GB); ask for less, or ask an administrator to raise the quota',
    );
    const binary = { ...DEFAULT_QUOTA, disk: '10GiB' };
    expect(
      refusal(() => enforceQuota('bob', binary, none, { ...none, diskBytes: 11 * 2 ** 30 })),
    ).toStartWith('quota exceeded for bob: disk 0 B used + 11 GiB asked > 10 GiB quota;');
    // The same size spelled the same way is not repeated.
    expect(refusal(() => enforceQuota('bob', binary, none, { ...none, cpus: 9 }))).toStartWith(
      'quota exceeded for bob: cpus 0 used + 9 asked > 8 quota;',
    );
  });
});
