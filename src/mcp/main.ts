// Entry point of mcp-server: --version and --help answer without loading the MCP SDK.
import { VERSION } from '../shared/version.ts';
import { ConfigError, servingFlagsEnv, servingFlagsHelp, settingsHelp } from './settings.ts';

const HELP = `mcp-server ${VERSION}: an MCP server (stdio) for managing Containarium containers.

Usage: mcp-server [flags]           serve MCP on stdin/stdout (what the client starts)
       mcp-server http [flags]      serve MCP over Streamable HTTP for remote callers
       mcp-server install [flags]   add this server to Claude Desktop, Claude Code or Cursor
       mcp-server doctor [flags]    check the settings, the token, the daemon and client configs
       mcp-server --version | --help
"http --help", "install --help" and "doctor --help" list their flags.

Flags when serving (each overrides its variable):
${servingFlagsHelp()}
Environment:
${settingsHelp()}`;

const [command] = process.argv.slice(2);
if (command === '--version' || command === '-v' || command === 'version') {
  process.stdout.write(`mcp-server ${VERSION}\n`);
} else if (command === '--help' || command === '-h' || command === 'help') {
  process.stdout.write(HELP);
} else if (command === 'http') {
  process.exitCode = await (await import('./http.ts')).runHttp(process.argv.slice(3));
} else if (command === 'install' || command === 'doctor') {
  const args = process.argv.slice(3);
  process.exitCode =
    command === 'install'
      ? await (await import('./install.ts')).runInstall(args)
      : await (await import('./doctor.ts')).runDoctor(args);
} else if (command !== undefined && !command.startsWith('-')) {
  process.stderr.write(`mcp-server: unknown argument "${command}"\n\n${HELP}`);
  process.exitCode = 2;
} else {
  let flags: Record<string, string> | undefined;
  try {
    flags = servingFlagsEnv(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`mcp-server: ${error.message}\n\n${HELP}`);
    process.exitCode = 2;
  }
  if (flags) {
    // A flag wins over its variable: laid over the environment before anything reads it.
    Object.assign(process.env, flags);
    const { serve } = await import('./serve.ts');
    await serve();
  }
}
