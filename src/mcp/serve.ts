// mcp-server's start-up: config from the environment, then MCP on stdin/stdout in both eras.
import { createClient } from './client.ts';
import { ConfigError, configWarnings, loadConfig, secretsOf } from './config.ts';
import { loadServer } from './load-server.ts';
import { createLogger, redact, writeStderr } from './log.ts';
import { LineTransport } from './stdio.ts';

/** Serves until stdin ends and the last answer is flushed, then exits. */
export async function serve(): Promise<void> {
  // Loading the SDK is most of the start-up: it begins first, the environment is read meanwhile.
  const server = loadServer();
  let config: ReturnType<typeof loadConfig> | undefined;
  let configError: string | undefined;
  try {
    config = loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    // Still served: each tool call answers with this, where the client shows it.
    configError = error.message;
    writeStderr(`${redact(configError)}\n`);
  }
  // The token may be rotated in its file: the secrets are read for each line.
  const logger = createLogger({ secrets: () => secretsOf(config), debug: config?.debug === true });
  for (const warning of config ? configWarnings(config) : []) logger.warn(warning);
  const debug = logger.debugging ? logger.debug : undefined;
  const { requestHooks, serveBothEras } = await server;
  const transport = new LineTransport(Bun.stdin.stream(), Bun.stdout.writer(), debug, {
    ...requestHooks,
    redact: (text) => redact(text, secretsOf(config)),
  });
  serveBothEras(
    config ? { client: createClient(config), config } : { configError: configError ?? '' },
    transport,
    debug && ((error) => debug(`error: ${error.message}`)),
  );
  logger.info(
    config
      ? `serving MCP on stdio for ${config.serverUrl}${config.debug ? ' (debug on)' : ''}`
      : 'serving MCP on stdio; every tool call reports the configuration error above',
  );
  await transport.finished;
  process.exit(0);
}
