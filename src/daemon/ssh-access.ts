// The SSH command create, get and start answer with. Container addresses are usually on the daemon
// host's private bridge, so without a jump host the command works only from that host, and says so.
import type { Container } from './backend.ts';
import { accountIds, type Guest } from './provision.ts';

/** `ssh -J` takes [user@]host[:port]; an IPv6 host goes in brackets. */
export const SSH_JUMP =
  /^(?:[A-Za-z0-9._-]{1,64}@)?(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/;

export const SSH_JUMP_FORM =
  'a host to reach containers through, as ssh -J takes it: HOST, USER@HOST or USER@HOST:PORT (like admin@gateway.example.com)';

export const isValidSshJump = (host: string): boolean => {
  const port = /:(\d+)$/.exec(host.replace(/^\[.*\]/, ''))?.[1];
  return SSH_JUMP.test(host) && (port === undefined || Number(port) <= 65535);
};

export type SshAccess = { sshCommand: string; note: string };

/**
 * The command, and a note for the create message. No command without an account that has a key:
 * `ssh user@address` would only ask for a password that does not exist.
 */
export function sshAccess(options: {
  username: string;
  address: string;
  keys: number;
  account: boolean;
  jump?: string | undefined;
}): SshAccess {
  const { username, address, keys, account, jump } = options;
  if (!address || !account) return { sshCommand: '', note: '' };
  if (keys === 0) {
    return {
      sshCommand: '',
      note: `; no SSH key was given, so there is no SSH command yet: add a key for ${username} to log in`,
    };
  }
  if (jump) return { sshCommand: `ssh -J ${jump} ${username}@${address}`, note: '' };
  return {
    sshCommand: `ssh ${username}@${address}`,
    note: `; ${address} is on the daemon host's private network, so run the SSH command on that host`,
  };
}

/**
 * A container's SSH access as it is now: its address while it runs, its keys, and whether its
 * user's account exists (one look inside the container, only when there is an address).
 */
export async function containerAccess(
  guest: Guest,
  container: Container,
  jump: string | undefined,
): Promise<SshAccess> {
  const address = container.state === 'running' ? (container.network?.ipAddress ?? '') : '';
  if (!address) return { sshCommand: '', note: '' };
  const account =
    (await accountIds(guest, container.username).catch(() => undefined)) !== undefined;
  return sshAccess({
    username: container.username,
    address,
    keys: container.sshKeys.length,
    account,
    jump,
  });
}
