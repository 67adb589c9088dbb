// Diagnostics for mcp-server: stderr only (stdout belongs to the protocol), with tokens redacted.

const JWT = /eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*/g;

/** Replaces anything shaped like a JWT, and any known secret, with [redacted]. */
export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text.replace(JWT, '[redacted]');
  for (const secret of secrets) if (secret.length >= 8) out = out.split(secret).join('[redacted]');
  return out;
}

export function log(message: string): void {
  process.stderr.write(`containarium-mcp: ${redact(message)}\n`);
}
