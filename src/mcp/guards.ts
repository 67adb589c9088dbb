// The guard rails: which tools exist under CONTAINARIUM_READ_ONLY, _DISABLE_DESTRUCTIVE, _TOOLSETS,
// _TOOLS and _EXCLUDE_TOOLS (or their flags), and the sentence a call to a hidden tool answers.
import { ANNOTATIONS, type AnyTool } from './tools/define.ts';

export type Guards = {
  readOnly: boolean;
  disableDestructive: boolean;
  toolsets?: readonly string[];
  tools?: readonly string[];
  excludeTools?: readonly string[];
};

export const NO_GUARDS: Guards = { readOnly: false, disableDestructive: false };

type Described = Pick<AnyTool, 'name' | 'effect' | 'toolset'>;

const listed = (names: readonly string[]) => names.join(',');

/** The toolsets of `tools`, in the order they first appear. */
export const toolsetsOf = (tools: readonly Described[]): string[] => [
  ...new Set(tools.map((tool) => tool.toolset)),
];

/** A sentence naming each setting that names a toolset or tool that does not exist, with the valid ones. */
export function unknownNames(guards: Guards, tools: readonly Described[]): string | undefined {
  const toolsets = toolsetsOf(tools);
  const names = tools.map((tool) => tool.name);
  const problems: string[] = [];
  const check = (env: string, given: readonly string[] | undefined, valid: string[]) => {
    const unknown = given?.filter((name) => !valid.includes(name)) ?? [];
    if (unknown.length > 0) {
      problems.push(
        `${env} names ${unknown.map((name) => `"${name}"`).join(', ')}, which ${unknown.length > 1 ? 'do' : 'does'} not exist; the valid names are ${valid.join(', ')}`,
      );
    }
  };
  check('CONTAINARIUM_TOOLSETS', guards.toolsets, toolsets);
  check('CONTAINARIUM_TOOLS', guards.tools, names);
  check('CONTAINARIUM_EXCLUDE_TOOLS', guards.excludeTools, names);
  return problems.length > 0 ? problems.join('\n') : undefined;
}

/** Which setting hides `tool`, e.g. "CONTAINARIUM_READ_ONLY=true (read-only mode)"; undefined when it exists. */
export function hiddenBy(guards: Guards, tool: Described): string | undefined {
  const hints = ANNOTATIONS[tool.effect];
  if (guards.readOnly && !hints.readOnlyHint) {
    return 'CONTAINARIUM_READ_ONLY=true (read-only mode: only tools that change nothing exist)';
  }
  if (guards.disableDestructive && hints.destructiveHint) {
    return 'CONTAINARIUM_DISABLE_DESTRUCTIVE=true (tools that destroy data do not exist)';
  }
  if (guards.excludeTools?.includes(tool.name)) {
    return `CONTAINARIUM_EXCLUDE_TOOLS=${listed(guards.excludeTools)}`;
  }
  if (!guards.toolsets && !guards.tools) return undefined;
  if (guards.toolsets?.includes(tool.toolset) || guards.tools?.includes(tool.name))
    return undefined;
  const chosen = [
    guards.toolsets && `CONTAINARIUM_TOOLSETS=${listed(guards.toolsets)}`,
    guards.tools && `CONTAINARIUM_TOOLS=${listed(guards.tools)}`,
  ].filter(Boolean);
  return `${chosen.join(' and ')} (it is in the "${tool.toolset}" toolset)`;
}

/** What a call to a hidden tool answers: the setting, that nothing happened, and how to lift it. */
export const hiddenToolText = (name: string, reason: string): string =>
  `Tool "${name}" is hidden by ${reason}, so nothing was done. Use another tool, or ask the user to change that setting (or its mcp-server flag) in this server's entry in the MCP client's config and restart the client.`;

/** The guard rails in force, in a few words: "none", or e.g. "read-only; toolsets containers". */
export function describeGuards(guards: Guards): string {
  const parts = [
    guards.readOnly && 'read-only',
    guards.disableDestructive && 'destructive tools disabled',
    guards.toolsets && `toolsets ${listed(guards.toolsets)}`,
    guards.tools && `tools ${listed(guards.tools)}`,
    guards.excludeTools && `excluding ${listed(guards.excludeTools)}`,
  ].filter(Boolean);
  return parts.length > 0 ? parts.join('; ') : 'none';
}
