// The README's generated sections: current with the settings table and the tool registry.
import { describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import * as v from 'valibot';
import { README, settingsTable, toolsTable, updated } from '../../scripts/docs.ts';
import { defineTool } from '../../src/mcp/tools/define.ts';

describe('bun run docs', () => {
  test('the README is what `bun run docs` makes of it (run it after changing a tool or a setting)', () => {
    const readme = readFileSync(README, 'utf8');
    expect(updated(readme)).toBe(readme);
  });

  test('a section is replaced between its markers, and nothing else changes', () => {
    const stale = [
      'intro',
      '<!-- generated:settings:start (bun run docs) -->',
      '| old |',
      '<!-- generated:settings:end (bun run docs) -->',
      'middle',
      '<!-- generated:tools:start (bun run docs) -->',
      '<!-- generated:tools:end (bun run docs) -->',
      'outro',
    ].join('\n');
    const fresh = updated(stale);
    expect(fresh).not.toContain('| old |');
    expect(fresh).toContain(
      `start (bun run docs) -->\n${settingsTable()}\n<!-- generated:settings:end`,
    );
    expect(fresh).toContain(`start (bun run docs) -->\n${toolsTable()}\n<!-- generated:tools:end`);
    expect(fresh.startsWith('intro\n')).toBe(true);
    expect(fresh).toContain('\nmiddle\n');
    expect(fresh.endsWith('\noutro')).toBe(true);
  });

  test('a README without the markers is refused, not silently left stale', () => {
    expect(() => updated('no markers here')).toThrow('lacks the markers');
  });

  test("a tool's row shows its toolset, each parameter's default from its schema and its first sentence", () => {
    const tool = defineTool({
      name: 'list_things',
      title: 'List things',
      description: 'List the things of a user, e.g. "a|b". Then more.',
      effect: 'read',
      toolset: 'containers',
      resource: null,
      input: v.strictObject({
        who: v.string(),
        limit: v.optional(v.number(), 20),
      }),
      output: v.object({}),
      action: () => 'list things',
      handle: async () => ({ text: '', structured: {} }),
    });
    expect(toolsTable([tool]).split('\n')[2]).toBe(
      '| `list_things` | containers | `who` (required), `limit` (default `20`) | List the things of a user, e.g. "a\\|b". |',
    );
  });
});
