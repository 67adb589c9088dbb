// Command-line flags from one table: util.parseArgs reads them (`--flag value`, Go-style
// `--flag=value`, booleans, repeats), the same table writes the flags part of --help.
import { parseArgs } from 'node:util';

export type FlagKind = 'string' | 'boolean' | 'list';

export type Flag = {
  /** Without the dashes: "http-port". */
  name: string;
  kind: FlagKind;
  /** Other spellings of the same setting, parsed under their own name ("port"). */
  aliases?: readonly string[];
  /** The value's placeholder in --help: "N", "ADDR". */
  value?: string;
  /** The environment variable that sets it too, if any. */
  env?: string;
  /** The value when neither the flag nor its variable is given. */
  default?: string;
  /** What it does, one line (--help wraps it). */
  help: string;
};

/** The flags given, by the name they were typed with, in order; the last of a repeat wins. */
export type Flags = Map<string, string[]>;

/** A command line that cannot run; exit code 2 for usage mistakes, 1 for bad configuration. */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** Parses args against the table; every mistake is a CliError with exit code 2. */
export function parseFlags(
  args: readonly string[],
  table: readonly Flag[],
  command: string,
): Flags {
  const kinds = new Map<string, FlagKind>();
  for (const flag of table) {
    for (const name of [flag.name, ...(flag.aliases ?? [])]) kinds.set(name, flag.kind);
  }
  const options = Object.fromEntries(
    [...kinds].map(([name, kind]) => [
      name,
      kind === 'boolean' ? { type: 'boolean' as const } : { type: 'string' as const },
    ]),
  );
  // Not strict: the table, not parseArgs, decides what is unknown or missing, so every message
  // names the flag and the fix in this project's words.
  const { tokens } = parseArgs({
    args: [...args],
    options,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const flags: Flags = new Map();
  for (const token of tokens) {
    if (token.kind !== 'option' || !token.rawName.startsWith('--')) {
      const arg = args[token.index] as string;
      throw new CliError(`unexpected argument "${arg}" for ${command}; see ${command} --help`, 2);
    }
    const kind = kinds.get(token.name);
    if (kind === undefined) {
      throw new CliError(`unknown flag --${token.name} for ${command}; see ${command} --help`, 2);
    }
    let value = token.value;
    if (kind === 'boolean') value ??= 'true';
    else if (value === undefined || (!token.inlineValue && value.startsWith('--'))) {
      const name = token.name;
      throw new CliError(`--${name} needs a value (write --${name} VALUE or --${name}=VALUE)`, 2);
    }
    flags.set(token.name, kind === 'list' ? [...(flags.get(token.name) ?? []), value] : [value]);
  }
  return flags;
}

/** The flag's last value, else its default from the table. */
export const flagValue = (flags: Flags, table: readonly Flag[], name: string): string | undefined =>
  flags.get(name)?.at(-1) ?? table.find((f) => f.name === name)?.default;

/** The "Flags:" (and "Environment:") part of --help, from the table. */
export function flagsHelp(table: readonly Flag[]): string {
  const LEFT = 28;
  const WIDTH = 100;
  const lines = ['Flags:'];
  for (const flag of table) {
    const spell = (name: string) => `--${name}${flag.value ? ` ${flag.value}` : ''}`;
    const left = `  ${[flag.name, ...(flag.aliases ?? [])].map(spell).join(', ')}`;
    const notes = [
      flag.default !== undefined
        ? `default ${/^[a-z]+$/i.test(flag.default) ? `"${flag.default}"` : flag.default}`
        : '',
      flag.env ? `or ${flag.env}` : '',
    ].filter(Boolean);
    const text = `${flag.help}${notes.length ? ` (${notes.join('; ')})` : ''}`;
    const wrapped = wrap(text, WIDTH - LEFT);
    const first = left.length < LEFT ? left.padEnd(LEFT) : `${left}\n${' '.repeat(LEFT)}`;
    lines.push(`${first}${wrapped.join(`\n${' '.repeat(LEFT)}`)}`);
  }
  lines.push(`${'  --help'.padEnd(LEFT)}this help`);
  const env = table.filter((flag) => flag.env);
  if (env.length > 0) {
    lines.push('', 'Environment:');
    for (const flag of env) {
      lines.push(`${`  ${flag.env}`.padEnd(LEFT)}the same as --${flag.name}, and it wins over it`);
    }
  }
  return `${lines.join('\n')}\n`;
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}
