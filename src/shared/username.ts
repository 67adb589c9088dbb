// The username rule, shared by mcp-server's validation and the daemon.
// A subset of Linux user names that also makes a valid Incus instance name "<username>-container"
// (instance names are host names, so no underscores or capitals).

export const USERNAME = /^[a-z][a-z0-9-]{0,31}$/;

export const USERNAME_FORM =
  '1 to 32 characters of lowercase letters, digits and dashes, starting with a letter (like "alice" or "dev-team-2")';

/** Accounts that already exist in every image, so a container user cannot take their name. */
const SYSTEM_ACCOUNTS = new Set([
  'root',
  'daemon',
  'bin',
  'sys',
  'sync',
  'games',
  'man',
  'lp',
  'mail',
  'news',
  'uucp',
  'proxy',
  'backup',
  'list',
  'irc',
  'gnats',
  'nobody',
  'messagebus',
  'sshd',
  'systemd-network',
  'systemd-resolve',
  'systemd-timesync',
  'ubuntu',
  'debian',
  'admin',
  'operator',
  'sudo',
  'docker',
]);

export function isValidUsername(name: string): boolean {
  return USERNAME.test(name);
}

export function isSystemAccount(name: string): boolean {
  return SYSTEM_ACCOUNTS.has(name);
}

/** The Incus instance that holds a user's container. */
export function containerName(username: string): string {
  return `${username}-container`;
}

/** The username behind an instance name; names without the suffix are their own username. */
export function usernameOf(name: string): string {
  return name.endsWith('-container') ? name.slice(0, -'-container'.length) : name;
}
