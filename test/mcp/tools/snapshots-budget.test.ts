// list_snapshots keeps to the text budget: with thousands of snapshots it shows the newest that
// fit, says how many older ones were left out, and its structured content holds only those shown.
import { expect, test } from 'bun:test';
import { TEXT_BUDGET } from '../../../src/mcp/format.ts';
import { startOwnDaemon } from '../../support/own-daemon.ts';

test('3,000 snapshots: the newest that fit, newest first, and how many older ones were left out', async () => {
  await using d = await startOwnDaemon();
  d.backend.seed('alice');
  const name = (i: number) => `snap-${String(i).padStart(4, '0')}`;
  d.backend.snapshots.set(
    'alice',
    Array.from({ length: 3000 }, (_, i) => ({
      name: name(i),
      usedBytes: 16384,
      referencedBytes: 0,
      createdAt: 1_780_000_000 + i,
    })),
  );
  const mcp = await d.connect(await d.token('mcp-client', { roles: ['admin'] }));
  const result = await mcp.call('list_snapshots', { username: 'alice' });
  expect(result.isError).toBeFalsy();
  const structured = result.structuredContent as {
    snapshots: { name: string }[];
    totalCount: number;
  };
  const shown = structured.snapshots.length;
  expect(structured.totalCount).toBe(3000);
  expect(shown).toBeGreaterThan(100);
  expect(shown).toBeLessThan(3000);
  // Newest first: the last one taken leads, and each is older than the one before.
  expect(structured.snapshots.map((s) => s.name)).toEqual(
    Array.from({ length: shown }, (_, i) => name(2999 - i)),
  );
  expect(result.text.length).toBeLessThanOrEqual(TEXT_BUDGET);
  const lines = result.text.split('\n');
  expect(lines[0]).toBe('3000 snapshots of alice-container, newest first:');
  expect(lines[1]).toStartWith('NAME');
  expect(lines[2]).toStartWith(`${name(2999)} `);
  expect(lines).toHaveLength(shown + 3);
  expect(lines.at(-2)).toStartWith(`${name(3000 - shown)} `);
  expect(lines.at(-1)).toBe(
    `… ${3000 - shown} older snapshots not shown (the answer's size limit); delete_snapshot removes the ones no longer needed.`,
  );
});
