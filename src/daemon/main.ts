// Entry point of `containarium`: daemon (REST API over Incus), token generate, --version, --help.

import { formatCidr } from '../shared/address.ts';
import { errorText } from '../shared/error-text.ts';
import type { AuditSink } from './audit.ts';
import { createAuthenticator } from './auth.ts';
import { CliError, type DaemonCommand, type ImageCacheCommand, parseCommandLine } from './cli.ts';
import { stderrLogger } from './log.ts';

/** The daemon's one logger: every part below gets it, none writes to stderr itself. */
const log = stderrLogger();
const reason = (error: unknown) => errorText(error);

async function runDaemon(command: DaemonCommand): Promise<void> {
  // Loaded here so `token generate` and --help never touch the Incus layer.
  const { createIncusClient } = await import('./incus.ts');
  const { createIncusBackend } = await import('./incus-backend.ts');
  const { serve } = await import('./app.ts');

  for (const warning of command.warnings) log(`warning: ${warning}`);
  const client = createIncusClient(command.incus);
  const backend = createIncusBackend(client, {
    pool: command.storagePool,
    defaultImage: command.defaultImage,
    log,
    sshJump: command.sshJump,
    daemonId: command.daemonId,
    imageCacheMaxAgeMs: command.imageCacheMaxAgeMs,
  });
  const auth = createAuthenticator({ secret: command.secret, log });
  const audit = await openAudit(command.auditLog);

  let server: ReturnType<typeof serve>;
  try {
    server = serve({
      backend,
      auth,
      corsOrigins: command.corsOrigins,
      trustedProxies: command.trustedProxies,
      hostname: command.hostname,
      port: command.port,
      templates: command.templates,
      log,
      quotas: command.quotas,
      ...(audit ? { audit } : {}),
    });
  } catch (error) {
    throw new CliError(`cannot listen on ${command.hostname}:${command.port}: ${reason(error)}`);
  }
  const host = command.hostname.includes(':') ? `[${command.hostname}]` : command.hostname;
  log(`listening on http://${host}:${server.port}`);
  log(
    `incus: ${client.target}; storage pool ${command.storagePool}; daemon id ${command.daemonId}; quotas from ${command.quotaSource}; JWT secret from ${command.secretSource}`,
  );
  log(`create templates: ${[...command.templates.keys()].join(', ')}`);
  if (command.trustedProxies.length > 0) {
    log(
      `behind ${command.trustedProxies.map(formatCidr).join(', ')}: the client address is read from X-Forwarded-For`,
    );
  }
  void backend.ping().then(
    (up) => {
      if (!up)
        log(
          `warning: Incus does not answer at ${client.target}; container calls will fail with 503 until it does`,
        );
    },
    () => {},
  );

  // Creates an earlier process left unfinished (killed, or stopped past its grace) go on now,
  // or as soon as Incus answers.
  void backend.resume().catch((error) => log(`resuming unfinished creates: ${reason(error)}`));

  // First signal: take no new work, let requests and creates in flight (sync, async, resumed)
  // finish within the grace, then exit; what is still unfinished resumes at the next start.
  // Second signal: leave now.
  let stopping = false;
  // The audit lines of the last requests are written before the process ends, unless the disk
  // hangs: then it ends after 5 s anyway.
  const auditFlushed = () => Promise.race([audit?.flushed(), Bun.sleep(5000)]);
  const stop = (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    backend.close();
    const pending = backend.inFlight();
    log(
      `${signal}: shutting down${pending.length ? `; waiting up to ${command.shutdownGraceMs / 1000}s for ${pending.length} create(s) in flight` : ''}`,
    );
    const force = setTimeout(() => {
      const left = backend.inFlight();
      log(
        `still busy after ${command.shutdownGraceMs / 1000}s; exiting${left.length ? ` (unfinished creates resume at the next start: ${left.join(', ')})` : ''}`,
      );
      void server
        .stop(true)
        .then(auditFlushed)
        .finally(() => process.exit(0));
    }, command.shutdownGraceMs);
    void Promise.all([server.stop(false), backend.settled()]).then(async () => {
      await auditFlushed();
      clearTimeout(force);
      process.exit(0);
    });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

/** The audit log of --audit-log: stderr for "-", else the file, refused when others can read it. */
async function openAudit(target: string | undefined) {
  if (target === undefined) return undefined;
  const { createAuditLog, openAuditFile } = await import('./audit.ts');
  const { ROUTES } = await import('./routes/index.ts');
  let sink: AuditSink;
  if (target === '-') {
    sink = async (line) => {
      process.stderr.write(line);
    };
  } else {
    try {
      sink = openAuditFile(target);
    } catch (error) {
      const code = (error as { code?: string }).code;
      throw new CliError(
        code === undefined
          ? `--audit-log ${target} ${reason(error)}`
          : `cannot open --audit-log ${target} (${code}); check that its folder exists and is writable`,
      );
    }
  }
  return createAuditLog(sink, { log, routes: ROUTES });
}

/** `image-cache list|clear`: straight to Incus, touching only the cache entries of --daemon-id. */
async function runImageCache(command: ImageCacheCommand): Promise<void> {
  const { createIncusClient } = await import('./incus.ts');
  const { clearCache, listCache } = await import('./image-cache.ts');
  const { formatBytes } = await import('../shared/sizes.ts');
  const client = createIncusClient(command.incus);
  try {
    if (command.action === 'clear') {
      const removed = await clearCache(client, command.daemonId);
      process.stdout.write(
        `removed ${removed.images} cached image(s) and ${removed.builders} unfinished build instance(s) of daemon id ${command.daemonId}\n`,
      );
      return;
    }
    const entries = await listCache(client, command.daemonId);
    if (entries.length === 0) {
      process.stdout.write(`no cached images of daemon id ${command.daemonId}\n`);
      return;
    }
    for (const e of entries.sort((a, b) => a.alias.localeCompare(b.alias))) {
      const built = e.builtAt ? new Date(e.builtAt).toISOString() : 'unknown';
      process.stdout.write(
        `${e.alias}  from ${e.sourceImage} (${e.sourceFingerprint.slice(0, 12)})  packages ${e.packages.join(',') || 'none'}  built ${built}  ${formatBytes(e.sizeBytes)}\n`,
      );
    }
  } catch (error) {
    throw new CliError(`image-cache ${command.action}: ${reason(error)}`);
  }
}

async function main(): Promise<void> {
  const command = parseCommandLine(process.argv.slice(2), process.env);
  switch (command.kind) {
    case 'help':
    case 'version':
      process.stdout.write(command.text);
      return;
    case 'token': {
      const { generateToken } = await import('./token.ts');
      await generateToken(command, { stdout: process.stdout, stderr: process.stderr });
      return;
    }
    case 'daemon':
      await runDaemon(command);
      return;
    case 'image-cache':
      await runImageCache(command);
      return;
  }
}

try {
  await main();
} catch (error) {
  if (error instanceof CliError) {
    log(error.message);
    process.exitCode = error.exitCode;
  } else {
    log(errorText(error, { stack: true }));
    process.exitCode = 1;
  }
}
