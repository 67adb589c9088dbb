// Sample public keys shared by tests: a fixture module, so no test file imports another one.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

export const ED25519 =
  'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq5sFq2wA0hB3xG8cW1Wq2lXzQ2l0cO0z9d3vP6e7Gk alice@laptop';

/** A fresh ed25519 key pair at `file` (and `file.pub`) made by ssh-keygen; its public key, or
 * undefined when ssh-keygen is missing or fails. */
export function sshKeygen(file: string, comment: string): string | undefined {
  if (!Bun.which('ssh-keygen')) return undefined;
  const made = Bun.spawnSync([
    'ssh-keygen',
    '-q',
    '-t',
    'ed25519',
    '-N',
    '',
    '-C',
    comment,
    '-f',
    file,
  ]);
  return made.exitCode === 0 ? readFileSync(`${file}.pub`, 'utf8').trim() : undefined;
}

/** A well-formed ed25519 public key of random bytes, with `comment` (no private key exists). */
export function randomSshKey(comment: string): string {
  const type = Buffer.from('ssh-ed25519');
  const blob = Buffer.alloc(4 + type.length + 4 + 32);
  blob.writeUInt32BE(type.length, 0);
  type.copy(blob, 4);
  blob.writeUInt32BE(32, 4 + type.length);
  randomBytes(32).copy(blob, 8 + type.length);
  return `ssh-ed25519 ${blob.toString('base64')} ${comment}`;
}
