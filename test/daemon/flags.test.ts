// The flag table machinery: parseArgs underneath, this project's messages on top, help from the table.
import { describe, expect, test } from 'bun:test';
import { DAEMON_FLAGS } from '../../src/daemon/cli.ts';
import { CliError, type Flag, flagsHelp, flagValue, parseFlags } from '../../src/daemon/flags.ts';

const TABLE: Flag[] = [
  { name: 'rest', kind: 'boolean', help: 'a switch' },
  { name: 'http-port', aliases: ['port'], kind: 'string', value: 'N', default: '8080', help: 'p' },
  { name: 'origin', kind: 'list', value: 'O', env: 'ORIGINS', help: 'o' },
];

const refusal = (args: string[]) => {
  try {
    parseFlags(args, TABLE, 'cmd');
  } catch (error) {
    expect(error).toBeInstanceOf(CliError);
    return error as CliError;
  }
  throw new Error('expected a refusal');
};

describe('parseFlags', () => {
  test('--flag value, Go-style --flag=value, booleans, repeats and aliases under their own name', () => {
    const flags = parseFlags(
      ['--rest', '--port=80', '--origin', 'a', '--origin=b,c', '--http-port', '-1'],
      TABLE,
      'cmd',
    );
    expect([...flags]).toEqual([
      ['rest', ['true']],
      ['port', ['80']],
      ['origin', ['a', 'b,c']],
      ['http-port', ['-1']],
    ]);
    expect(parseFlags(['--rest=false'], TABLE, 'cmd').get('rest')).toEqual(['false']);
    expect(flagValue(new Map(), TABLE, 'http-port')).toBe('8080');
  });

  test('mistakes are usage errors (exit 2) that name the flag and the fix', () => {
    expect(refusal(['--grpc'])).toMatchObject({
      exitCode: 2,
      message: 'unknown flag --grpc for cmd; see cmd --help',
    });
    expect(refusal(['--port'])).toMatchObject({
      exitCode: 2,
      message: '--port needs a value (write --port VALUE or --port=VALUE)',
    });
    expect(refusal(['--port', '--rest']).message).toBe(
      '--port needs a value (write --port VALUE or --port=VALUE)',
    );
    expect(refusal(['-abc']).message).toBe('unexpected argument "-abc" for cmd; see cmd --help');
    expect(refusal(['--', 'x']).message).toBe('unexpected argument "--" for cmd; see cmd --help');
    expect(refusal(['serve']).message).toBe('unexpected argument "serve" for cmd; see cmd --help');
  });
});

describe('flagsHelp', () => {
  test('every flag of the table, its aliases, default and variable appear', () => {
    const help = flagsHelp(TABLE);
    expect(help).toContain('--http-port N, --port N');
    expect(help).toContain('(default 8080)');
    expect(help).toContain('(or ORIGINS)');
    expect(help).toContain('Environment:\n  ORIGINS');
  });

  test("the daemon's help lists each of its flags", () => {
    const help = flagsHelp(DAEMON_FLAGS);
    for (const flag of DAEMON_FLAGS) expect(help).toContain(`--${flag.name}`);
    expect(help).toContain('CONTAINARIUM_JWT_SECRET');
  });
});
