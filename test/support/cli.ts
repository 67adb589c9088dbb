// The CliError a command line is refused with; throws when it is accepted.
import { CliError, parseCommandLine } from '../../src/daemon/cli.ts';

export function refused(argv: string[], env: Record<string, string> = {}): CliError {
  try {
    parseCommandLine(argv, env);
  } catch (error) {
    if (error instanceof CliError) return error;
    throw error;
  }
  throw new Error(`${argv.join(' ')} was accepted`);
}
