// `bun run docs`: rewrites the README's generated sections (the settings table and the tool table)
// from the settings table and the tool registry. A test fails while the README is stale.
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as v from 'valibot';
import { SETTINGS } from '../src/mcp/settings.ts';
import type { AnyTool } from '../src/mcp/tools/define.ts';
import { TOOLS } from '../src/mcp/tools/index.ts';

export const README = join(resolve(import.meta.dir, '..'), 'README.md');

const cell = (text: string) => text.replaceAll('|', '\\|').replaceAll('\n', ' ');

/** `CONTAINARIUM_*` | required | meaning, one row per setting. */
export function settingsTable(): string {
  const rows = SETTINGS.map(
    (s) => `| \`${s.env}\` | ${cell(s.required ?? 'no')} | ${cell(s.doc)} |`,
  );
  return ['| Variable | Required | Meaning |', '|---|---|---|', ...rows].join('\n');
}

/** An optional argument's default, or what its description says the daemon uses instead. */
function shownFallback(schema: v.OptionalSchema<v.GenericSchema, unknown>): string {
  const fallback = v.getDefault(schema);
  if (fallback !== undefined) return `default \`${JSON.stringify(fallback)}\``;
  const said = /Default: (.*?)(?:;|\.$)/.exec(v.getDescription(schema.wrapped) ?? '')?.[1];
  return said ? `default: ${said}` : 'optional';
}

/** `name` (required) or `name` (default `…`), from the tool's input schema. */
function parameters(tool: AnyTool): string {
  const entries = Object.entries(
    (tool.input as { entries?: Record<string, v.GenericSchema> }).entries ?? {},
  );
  if (entries.length === 0) return 'none';
  return entries
    .map(([name, schema]) =>
      schema.type === 'optional'
        ? `\`${name}\` (${shownFallback(schema as v.OptionalSchema<v.GenericSchema, unknown>)})`
        : `\`${name}\` (required)`,
    )
    .join(', ');
}

/** The description's first sentence: up to a full stop followed by a capital, or the end. */
const firstSentence = (text: string) => /^.*?[.!?](?=\s+[A-Z]|$)/s.exec(text)?.[0] ?? text;

/** Tool | toolset | parameters | what it does, one row per tool in tools/list order. */
export function toolsTable(tools: readonly AnyTool[] = TOOLS): string {
  const rows = tools.map(
    (t) =>
      `| \`${t.name}\` | ${t.toolset} | ${cell(parameters(t))} | ${cell(firstSentence(t.description))} |`,
  );
  return ['| Tool | Toolset | Parameters | What it does |', '|---|---|---|---|', ...rows].join(
    '\n',
  );
}

export const SECTIONS: Record<string, () => string> = {
  settings: settingsTable,
  tools: () => toolsTable(),
};

const marker = (name: string, end: 'start' | 'end') =>
  `<!-- generated:${name}:${end} (bun run docs) -->`;

/** The README with each generated section between its markers replaced; throws if a marker is missing. */
export function updated(readme: string): string {
  let text = readme;
  for (const [name, render] of Object.entries(SECTIONS)) {
    const start = text.indexOf(marker(name, 'start'));
    const end = text.indexOf(marker(name, 'end'));
    if (start === -1 || end < start) {
      throw new Error(`README.md lacks the markers of the generated ${name} section`);
    }
    const head = text.slice(0, start + marker(name, 'start').length);
    text = `${head}\n${render()}\n${text.slice(end)}`;
  }
  return text;
}

if (import.meta.main) {
  const before = readFileSync(README, 'utf8');
  const after = updated(before);
  if (after === before) console.log('README.md is up to date');
  else {
    writeFileSync(README, after);
    console.log('README.md: generated sections rewritten');
  }
}
