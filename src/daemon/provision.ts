// In-container provisioning (packages, account, sudo, SSH keys), behind a small exec/file
// interface: it never sees Incus, only a Guest, so a fake guest tests it without a container.
import { PHASES, type Phase } from './create-progress.ts';
import { DaemonError } from './errors.ts';
import { message, type Retry } from './retry.ts';

export type ExecResult = {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** Which streams lost their start to ExecOptions.tail; absent when neither did. */
  cut?: { stdout: boolean; stderr: boolean };
  /** The command was still running when the wait ran out (exit code 124). */
  timedOut?: boolean;
};
export type ExecOptions = {
  environment?: Record<string, string>;
  /** Seconds to wait for the command before giving up on it. */
  timeout?: number;
  /** The account to run as, and where; root in / when absent. */
  as?: { uid: number; gid: number; cwd: string };
  /** Read only the last this many bytes of each stream. */
  tail?: number;
};
export type FileOptions = { uid: number; gid: number; mode: number };
export type FileContent = FileOptions & { content: string };

/** One container as provisioning sees it. */
export type Guest = {
  /** For messages: the container's name. */
  name: string;
  /** Runs argv (never a shell string) and collects its output. */
  exec(argv: string[], options?: ExecOptions): Promise<ExecResult>;
  /** Writes a file whole (overwriting) with this owner and mode. */
  writeFile(path: string, content: string, file: FileOptions): Promise<void>;
  /** Creates a directory, or sets its owner and mode when it exists. */
  makeDirectory(path: string, file: FileOptions): Promise<void>;
  /** Reads a file; not_found when it does not exist. */
  readFile(path: string): Promise<FileContent>;
  /** The console log, at most its last `tail` bytes; `cut` when more came before. */
  consoleLog(tail?: number): Promise<{ text: string; cut: boolean }>;
};

/**
 * What provisioning needs: all of it is also stored on the instance, so a resume can rebuild it.
 * `cached`: the container starts from a provisioned image of the daemon's image cache, whose
 * packages are in place already; only its SSH host keys are made at its first boot.
 */
export type Provisioning = {
  username: string;
  sshKeys: string[];
  enableDocker: boolean;
  /** Extra apt packages (a template's). */
  packages?: readonly string[] | undefined;
  cached?: boolean;
};

/** The packages a create installs: ssh and sudo, docker.io with Docker, then the extra ones. */
export const packageList = (request: {
  enableDocker: boolean;
  packages?: readonly string[] | undefined;
}): string[] => [
  ...new Set([
    'openssh-server',
    'sudo',
    ...(request.enableDocker ? ['docker.io'] : []),
    ...(request.packages ?? []),
  ]),
];

const APT_ENV = { DEBIAN_FRONTEND: 'noninteractive' };

/** Runs a command that must succeed; the error names the command and shows its stderr. */
async function run(guest: Guest, argv: string[], environment: Record<string, string> = {}) {
  const result = await guest.exec(argv, { environment, timeout: 600 });
  if (result.exitCode !== 0) {
    const detail = (result.stderr || result.stdout).trim().split('\n').slice(-3).join(' ');
    throw new DaemonError(
      'internal',
      `"${argv.join(' ')}" failed in ${guest.name} (exit ${result.exitCode}): ${detail}`,
    );
  }
  return result.stdout;
}

export const has = async (guest: Guest, file: string) =>
  (await guest.exec(['test', '-x', file])).exitCode === 0;

/** The user's uid and gid from /etc/passwd, through the file API: one call, running or not. */
export async function accountIds(guest: Guest, username: string) {
  const account = await accountOf(guest, username);
  return account ? { uid: account.uid, gid: account.gid } : undefined;
}

/** The account's uid, gid and home directory from /etc/passwd; undefined when it has none. */
export async function accountOf(guest: Guest, username: string) {
  const passwd = await guest.readFile('/etc/passwd').catch(() => undefined);
  const line = passwd?.content.split('\n').find((l) => l.startsWith(`${username}:`));
  const [, , uid, gid, , home] = line?.split(':') ?? [];
  return uid && gid ? { uid: Number(uid), gid: Number(gid), home: home || '/' } : undefined;
}

/** Rewrites ~/.ssh/authorized_keys; false when the image has no such user account. */
export async function installKeys(guest: Guest, username: string, keys: string[]) {
  const ids = await accountIds(guest, username);
  if (!ids) return false;
  const home = `/home/${username}`;
  await guest.makeDirectory(`${home}/.ssh`, { ...ids, mode: 0o700 });
  const content = keys.map((key) => `${key}\n`).join('');
  await guest.writeFile(`${home}/.ssh/authorized_keys`, content, { ...ids, mode: 0o600 });
  return true;
}

type Step = <T>(what: string, work: () => Promise<T>) => Promise<T>;

/**
 * How long apt-get waits while another apt holds its lock: the image's own apt at first boot
 * (Ubuntu's apt-daily), or the first run of a step tried again after a transient Incus failure,
 * still going inside the container. apt's own DPkg::Lock::Timeout does not cover the lists lock
 * that apt-get update takes.
 */
export const APT_LOCK = { pauseMs: 1000, tries: 120 };

/** apt-get with these arguments; while another apt holds its lock, it waits and tries again. */
async function aptGet(guest: Guest, args: string[]) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run(guest, ['apt-get', ...args], APT_ENV);
    } catch (error) {
      if (attempt >= APT_LOCK.tries || !/Could not get lock/.test(message(error))) throw error;
      await Bun.sleep(APT_LOCK.pauseMs);
    }
  }
}

/** apt-get update and install of these packages, then ssh enabled and started. */
export async function installPackages(guest: Guest, packages: string[], step: Step) {
  await step('apt-get update', () => aptGet(guest, ['update']));
  await step('apt-get install', () =>
    aptGet(guest, ['install', '-y', '--no-install-recommends', ...packages]),
  );
  await step('enabling ssh', () => enableSsh(guest));
}

async function enableSsh(guest: Guest) {
  if (await has(guest, '/usr/bin/systemctl')) {
    await run(guest, ['systemctl', 'enable', '--now', 'ssh']);
  }
}

/**
 * A container from a cached image: ssh makes its host keys as it starts (the image's drop-in),
 * so this waits for that start; an image without systemd gets them from ssh-keygen -A.
 */
async function hostKeys(guest: Guest) {
  if (await has(guest, '/usr/bin/systemctl')) {
    if (await has(guest, '/usr/sbin/sshd')) await run(guest, ['systemctl', 'start', 'ssh']);
  } else if (await has(guest, '/usr/bin/ssh-keygen')) {
    await run(guest, ['ssh-keygen', '-A']);
  }
}

/** Files that make one container itself, removed before a container becomes a cached image. */
export const HOST_KEYS = ['rsa', 'ecdsa', 'ed25519', 'dsa'].flatMap((type) => [
  `/etc/ssh/ssh_host_${type}_key`,
  `/etc/ssh/ssh_host_${type}_key.pub`,
]);

/** The host keys a container from a cached image makes: quick ones (RSA takes seconds). */
const BOOT_KEY_TYPES = ['ed25519', 'ecdsa'];

/**
 * A drop-in for ssh.service: it makes the missing host keys before sshd checks its config, so
 * each container from a cached image makes its own at first boot, while it waits for its address.
 */
export const SSH_KEYGEN_DROP_IN = {
  path: '/etc/systemd/system/ssh.service.d/containarium-host-keys.conf',
  content: [
    '# Containarium image cache: every container makes its own SSH host keys at first boot.',
    '[Service]',
    'ExecStartPre=',
    ...BOOT_KEY_TYPES.map((type) => {
      const file = `/etc/ssh/ssh_host_${type}_key`;
      return `ExecStartPre=/bin/sh -c 'test -s ${file} || ssh-keygen -q -t ${type} -N "" -f ${file}'`;
    }),
    'ExecStartPre=/usr/sbin/sshd -t',
    '',
  ].join('\n'),
};

/**
 * Readies a provisioned container to be published as a cached image: the SSH host keys removed
 * (ssh.service makes new ones at boot, through a drop-in), the machine id emptied (systemd makes
 * a new one at first boot), apt's package lists dropped.
 */
async function sealImage(guest: Guest, step: Step) {
  const systemd = await has(guest, '/usr/bin/systemctl');
  if (systemd && (await has(guest, '/usr/bin/docker'))) {
    // Docker starting at boot would compete with the create for the container's CPUs: a create
    // from the image enables and starts it once the user is in (startDocker).
    await step('deferring docker', () => run(guest, ['systemctl', 'disable', 'docker.service']));
  }
  if (systemd && (await has(guest, '/usr/sbin/sshd'))) {
    await step('adding the host-key drop-in', async () => {
      const root = { uid: 0, gid: 0 };
      await guest.makeDirectory('/etc/systemd/system/ssh.service.d', { ...root, mode: 0o755 });
      const { path, content } = SSH_KEYGEN_DROP_IN;
      await guest.writeFile(path, content, { ...root, mode: 0o644 });
    });
  }
  await step('removing SSH host keys', () => run(guest, ['rm', '-f', ...HOST_KEYS]));
  if (await guest.readFile('/etc/machine-id').catch(() => undefined)) {
    await step('emptying the machine id', () =>
      guest.writeFile('/etc/machine-id', '', { uid: 0, gid: 0, mode: 0o444 }),
    );
  }
  if (await has(guest, '/usr/bin/apt-get')) {
    await step('apt-get clean', () => run(guest, ['apt-get', 'clean']));
    await step('dropping package lists', () =>
      run(guest, ['find', '/var/lib/apt/lists', '-type', 'f', '-delete']),
    );
  }
}

/** A builder container of the image cache: its packages installed (apt images), then sealed. */
export async function prepareImage(guest: Guest, packages: string[], retry: Retry) {
  const step: Step = (what, work) => retry(`${what} in ${guest.name}`, work);
  if (await step('looking for apt-get', () => has(guest, '/usr/bin/apt-get'))) {
    await installPackages(guest, packages, step);
  }
  await sealImage(guest, step);
}

/**
 * Packages, account, sudo and keys. Returns a note for the message when steps were skipped.
 * Every step is idempotent (apt, an account made only when missing, files written whole), so a
 * step is retried after a transient failure and a resumed create simply runs them all again.
 */
export async function provision(
  guest: Guest,
  request: Provisioning,
  retry: Retry,
  /** Told as each group of steps begins, for GET's phase. */
  enter: (phase: Phase) => void = () => {},
): Promise<string> {
  const { username } = request;
  const step: Step = (what, work) => retry(`${what} in ${guest.name}`, work);
  const extra = request.packages ?? [];
  if (request.cached) {
    // A cached image has its packages but no SSH host keys: every container gets its own.
    await step('making SSH host keys', () => hostKeys(guest));
  } else {
    const apt = await step('looking for apt-get', () => has(guest, '/usr/bin/apt-get'));
    if (!apt && extra.length > 0) {
      throw new DaemonError(
        'invalid',
        `the image of ${guest.name} has no apt-get, so the template's packages (${extra.join(', ')}) cannot be installed; use a Debian or Ubuntu image, or a template without packages`,
      );
    }
    if (apt) {
      enter(PHASES.packages);
      await installPackages(guest, packageList(request), step);
    }
  }
  if (!(await step('looking for useradd', () => has(guest, '/usr/sbin/useradd')))) {
    return ' (the image has no useradd, so no user account was made and no SSH keys were installed)';
  }
  enter(PHASES.user);
  await step('creating the account', async () => {
    if (!(await accountIds(guest, username))) {
      await run(guest, ['useradd', '-m', '-s', '/bin/bash', username]);
    }
  });
  await step('writing sudoers', async () => {
    if (!(await has(guest, '/usr/bin/sudo'))) return;
    const sudoers = `${username} ALL=(ALL) NOPASSWD:ALL\n`;
    await guest.writeFile(`/etc/sudoers.d/${username}`, sudoers, { uid: 0, gid: 0, mode: 0o440 });
  });
  if (request.enableDocker) {
    await step('joining the docker group', async () => {
      if (await has(guest, '/usr/bin/docker')) {
        await run(guest, ['usermod', '-aG', 'docker', username]);
      }
    });
  }
  enter(PHASES.keys);
  await step('installing SSH keys', () => installKeys(guest, username, request.sshKeys));
  if (request.cached && request.enableDocker)
    await step('starting docker', () => startDocker(guest));
  return '';
}

/** The docker unit a cached image has disabled (sealImage), as `systemctl enable` would link it. */
export const DOCKER_WANTS = {
  link: '/etc/systemd/system/multi-user.target.wants/docker.service',
  unit: '/lib/systemd/system/docker.service',
};

/**
 * Enables docker for later boots (the link `systemctl enable` makes, without its slow SysV
 * helper) and starts it without waiting: the create does not wait for the daemon to come up.
 */
async function startDocker(guest: Guest) {
  if (!(await has(guest, '/usr/bin/systemctl')) || !(await has(guest, '/usr/bin/docker'))) return;
  await run(guest, ['ln', '-sf', DOCKER_WANTS.unit, DOCKER_WANTS.link]);
  await run(guest, ['systemctl', 'start', '--no-block', 'docker.service']);
}
