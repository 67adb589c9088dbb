// OpenSSH public keys: one shape check for both binaries, so nothing odd reaches authorized_keys.
import { createHash } from 'node:crypto';

const KEY_TYPES = new Set([
  'ssh-ed25519',
  'ssh-rsa',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
]);

export const SSH_KEY_FORM =
  'one OpenSSH public key on one line, like "ssh-ed25519 AAAAC3Nza... alice@laptop"';

/** Most keys one container takes. */
export const MAX_SSH_KEYS = 32;

/** Longest key accepted: a 16384-bit RSA key is about 2.8 KB of base64. */
const MAX_KEY_LENGTH = 8192;

/**
 * Returns the key with surrounding blanks trimmed, or undefined when it is not a single OpenSSH
 * public key: known type, base64 blob whose embedded type matches, optional printable comment.
 */
export function normalizeSshKey(input: string): string | undefined {
  const key = input.trim();
  if (key.length === 0 || key.length > MAX_KEY_LENGTH) return undefined;
  // Control characters (newlines above all) would split or smuggle lines into authorized_keys.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: that is the point of the check
  if (/[\u0000-\u001f\u007f]/.test(key)) return undefined;
  const [type, blob, ...comment] = key.split(' ');
  if (!type || !blob || !KEY_TYPES.has(type)) return undefined;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(blob) || blob.length % 4 !== 0) return undefined;
  const bytes = Buffer.from(blob, 'base64');
  if (bytes.length < 4 + type.length) return undefined;
  const length = bytes.readUInt32BE(0);
  if (length !== type.length || bytes.subarray(4, 4 + length).toString('latin1') !== type) {
    return undefined;
  }
  return comment.length > 0 ? `${type} ${blob} ${comment.join(' ')}` : `${type} ${blob}`;
}

/** A public key's fingerprint as `ssh-keygen -l` prints it: `SHA256:` and unpadded base64. */
export function sshKeyFingerprint(key: string): string | undefined {
  const blob = normalizeSshKey(key)?.split(' ')[1];
  if (blob === undefined) return undefined;
  const digest = createHash('sha256').update(Buffer.from(blob, 'base64')).digest('base64');
  return `SHA256:${digest.replace(/=+$/, '')}`;
}
