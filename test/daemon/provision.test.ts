// Provisioning against a fake guest: the commands and files a container gets, without Incus.
import { describe, expect, test } from 'bun:test';
import { DaemonError } from '../../src/daemon/errors.ts';
import {
  APT_LOCK,
  DOCKER_WANTS,
  type ExecResult,
  type FileContent,
  type Guest,
  HOST_KEYS,
  installKeys,
  packageList,
  prepareImage,
  provision,
  SSH_KEYGEN_DROP_IN,
} from '../../src/daemon/provision.ts';
import { retrying } from '../../src/daemon/retry.ts';
import { fakeClock } from '../support/fake-clock.ts';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBwpNkNQXWp3hJGeq7jF0t/s+QYTIC06R1RhbnuIlaKv a@b';

/** A container with these executables; useradd adds alice to /etc/passwd. */
function fakeGuest(
  executables: string[],
  fail: (argv: string[]) => ExecResult | undefined = () => undefined,
) {
  const files = new Map<string, FileContent>([
    ['/etc/passwd', { content: 'root:x:0:0::/root:/bin/sh\n', uid: 0, gid: 0, mode: 0o644 }],
  ]);
  const commands: string[][] = [];
  const directories = new Map<string, { uid: number; gid: number; mode: number }>();
  const guest: Guest = {
    name: 'alice-container',
    async exec(argv) {
      commands.push(argv);
      const failed = fail(argv);
      if (failed) return failed;
      if (argv[0] === 'test') {
        return { exitCode: executables.includes(argv[2] ?? '') ? 0 : 1, stdout: '', stderr: '' };
      }
      if (argv[0] === 'useradd') {
        const passwd = files.get('/etc/passwd') as FileContent;
        passwd.content += `${argv.at(-1)}:x:1000:1000::/home/${argv.at(-1)}:/bin/bash\n`;
      }
      return { exitCode: 0, stdout: '', stderr: '' };
    },
    async writeFile(path, content, file) {
      files.set(path, { content, ...file });
    },
    async consoleLog() {
      return { text: '', cut: false };
    },
    async makeDirectory(path, file) {
      directories.set(path, file);
    },
    async readFile(path) {
      const file = files.get(path);
      if (!file) throw new DaemonError('not_found', 'not found');
      return file;
    },
  };
  return { guest, files, commands, directories };
}

const retry = retrying({ attempts: 3, delayMs: 1000, clock: fakeClock(), log: () => {} });
const request = { username: 'alice', sshKeys: [KEY], enableDocker: false };

describe('provisioning through a guest', () => {
  test('an apt image gets ssh and sudo, the account, sudoers and the keys', async () => {
    const all = ['/usr/bin/apt-get', '/usr/bin/systemctl', '/usr/sbin/useradd', '/usr/bin/sudo'];
    const { guest, files, commands, directories } = fakeGuest(all);
    expect(await provision(guest, request, retry)).toBe('');
    expect(commands.filter((c) => c[0] !== 'test')).toEqual([
      ['apt-get', 'update'],
      ['apt-get', 'install', '-y', '--no-install-recommends', 'openssh-server', 'sudo'],
      ['systemctl', 'enable', '--now', 'ssh'],
      ['useradd', '-m', '-s', '/bin/bash', 'alice'],
    ]);
    expect(files.get('/etc/sudoers.d/alice')).toEqual({
      content: 'alice ALL=(ALL) NOPASSWD:ALL\n',
      uid: 0,
      gid: 0,
      mode: 0o440,
    });
    expect(directories.get('/home/alice/.ssh')).toEqual({ uid: 1000, gid: 1000, mode: 0o700 });
    expect(files.get('/home/alice/.ssh/authorized_keys')).toEqual({
      content: `${KEY}\n`,
      uid: 1000,
      gid: 1000,
      mode: 0o600,
    });
  });

  test('an image without useradd gets no account and says so', async () => {
    const { guest, files } = fakeGuest([]);
    expect(await provision(guest, request, retry)).toContain('the image has no useradd');
    expect(files.has('/home/alice/.ssh/authorized_keys')).toBe(false);
  });

  test('a failing command names itself, the container and its stderr', async () => {
    const { guest } = fakeGuest(['/usr/bin/apt-get'], (argv) =>
      argv[0] === 'apt-get' ? { exitCode: 100, stdout: '', stderr: 'E: no network\n' } : undefined,
    );
    await expect(provision(guest, request, retry)).rejects.toThrow(
      '"apt-get update" failed in alice-container (exit 100): E: no network',
    );
  });

  test('apt-get waits while another apt holds its lock, then goes on', async () => {
    let held = 2;
    const { guest, commands } = fakeGuest(['/usr/bin/apt-get', '/usr/sbin/useradd'], (argv) =>
      argv[0] === 'apt-get' && held-- > 0
        ? {
            exitCode: 100,
            stdout: '',
            stderr:
              'E: Could not get lock /var/lib/apt/lists/lock. It is held by process 74 (apt-get)\nE: Unable to lock directory /var/lib/apt/lists/\n',
          }
        : undefined,
    );
    const pause = APT_LOCK.pauseMs;
    APT_LOCK.pauseMs = 1;
    try {
      expect(await provision(guest, request, retry)).toBe('');
    } finally {
      APT_LOCK.pauseMs = pause;
    }
    expect(commands.filter((c) => c[0] === 'apt-get').map((c) => c[1])).toEqual([
      'update',
      'update',
      'update',
      'install',
    ]);
  });

  test('keys for a user the image lacks are not installed', async () => {
    const { guest, files } = fakeGuest([]);
    expect(await installKeys(guest, 'bob', [KEY])).toBe(false);
    expect(files.size).toBe(1);
  });
});

describe("a template's packages", () => {
  const withPackages = { ...request, packages: ['git', 'jq'] };

  test('are installed with ssh and sudo', async () => {
    const { guest, commands } = fakeGuest(['/usr/bin/apt-get', '/usr/sbin/useradd']);
    await provision(guest, withPackages, retry);
    expect(commands).toContainEqual([
      'apt-get',
      'install',
      '-y',
      '--no-install-recommends',
      'openssh-server',
      'sudo',
      'git',
      'jq',
    ]);
  });

  test('on an image without apt-get fail, naming them and what to do', async () => {
    const { guest, commands } = fakeGuest(['/usr/sbin/useradd']);
    const failed = provision(guest, withPackages, retry);
    await expect(failed).rejects.toThrow(
      "the image of alice-container has no apt-get, so the template's packages (git, jq) cannot be installed; use a Debian or Ubuntu image, or a template without packages",
    );
    await expect(failed).rejects.toMatchObject({ kind: 'invalid' });
    expect(commands.some((c) => c[0] === 'useradd')).toBe(false);
  });
});

describe('provisioning with the image cache', () => {
  const debian = [
    '/usr/bin/apt-get',
    '/usr/bin/systemctl',
    '/usr/sbin/useradd',
    '/usr/bin/sudo',
    '/usr/bin/ssh-keygen',
    '/usr/sbin/sshd',
  ];

  test('the package list: ssh and sudo, docker.io with Docker, then the extra ones, once each', () => {
    expect(packageList({ enableDocker: false })).toEqual(['openssh-server', 'sudo']);
    expect(packageList({ enableDocker: true, packages: ['jq', 'sudo'] })).toEqual([
      'openssh-server',
      'sudo',
      'docker.io',
      'jq',
    ]);
  });

  test('a create from a cached image runs no apt: it starts ssh (which makes host keys), adds the user', async () => {
    const { guest, files, commands } = fakeGuest(debian);
    expect(await provision(guest, { ...request, cached: true }, retry)).toBe('');
    expect(commands.filter((c) => c[0] !== 'test')).toEqual([
      ['systemctl', 'start', 'ssh'],
      ['useradd', '-m', '-s', '/bin/bash', 'alice'],
    ]);
    expect(files.get('/home/alice/.ssh/authorized_keys')?.content).toBe(`${KEY}\n`);
  });

  test('with Docker, the builder defers docker and the create enables and starts it at the end', async () => {
    const docker = [...debian, '/usr/bin/docker'];
    const builder = fakeGuest(docker);
    await prepareImage(builder.guest, packageList({ enableDocker: true }), retry);
    expect(builder.commands).toContainEqual(['systemctl', 'disable', 'docker.service']);

    const { guest, commands } = fakeGuest(docker);
    await provision(guest, { ...request, enableDocker: true, cached: true }, retry);
    expect(commands.filter((c) => c[0] !== 'test').slice(-3)).toEqual([
      ['usermod', '-aG', 'docker', 'alice'],
      ['ln', '-sf', DOCKER_WANTS.unit, DOCKER_WANTS.link],
      ['systemctl', 'start', '--no-block', 'docker.service'],
    ]);
    // A create that installs docker by apt leaves it as apt set it up.
    const cold = fakeGuest(docker);
    await provision(cold.guest, { ...request, enableDocker: true }, retry);
    expect(cold.commands.some((c) => c[0] === 'ln')).toBe(false);
  });

  test('an image without systemd gets its host keys from ssh-keygen -A', async () => {
    const { guest, commands } = fakeGuest(['/usr/bin/ssh-keygen', '/usr/sbin/useradd']);
    await provision(guest, { ...request, cached: true }, retry);
    expect(commands.filter((c) => c[0] !== 'test')[0]).toEqual(['ssh-keygen', '-A']);
  });

  test('a builder gets the packages, then loses host keys, machine id and apt lists', async () => {
    const { guest, files, commands, directories } = fakeGuest(debian);
    files.set('/etc/machine-id', { content: 'f'.repeat(32), uid: 0, gid: 0, mode: 0o444 });
    await prepareImage(guest, ['docker.io', 'openssh-server', 'sudo'], retry);
    expect(commands.filter((c) => c[0] !== 'test')).toEqual([
      ['apt-get', 'update'],
      [
        'apt-get',
        'install',
        '-y',
        '--no-install-recommends',
        'docker.io',
        'openssh-server',
        'sudo',
      ],
      ['systemctl', 'enable', '--now', 'ssh'],
      ['rm', '-f', ...HOST_KEYS],
      ['apt-get', 'clean'],
      ['find', '/var/lib/apt/lists', '-type', 'f', '-delete'],
    ]);
    expect(HOST_KEYS).toContain('/etc/ssh/ssh_host_ed25519_key');
    expect(files.get('/etc/machine-id')?.content).toBe('');
    // ssh.service makes the new container's own host keys at boot, before sshd checks its config.
    expect(directories.get('/etc/systemd/system/ssh.service.d')).toEqual({
      uid: 0,
      gid: 0,
      mode: 0o755,
    });
    expect(files.get(SSH_KEYGEN_DROP_IN.path)?.content).toEndWith(
      [
        '[Service]',
        'ExecStartPre=',
        `ExecStartPre=/bin/sh -c 'test -s /etc/ssh/ssh_host_ed25519_key || ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key'`,
        `ExecStartPre=/bin/sh -c 'test -s /etc/ssh/ssh_host_ecdsa_key || ssh-keygen -q -t ecdsa -N "" -f /etc/ssh/ssh_host_ecdsa_key'`,
        'ExecStartPre=/usr/sbin/sshd -t',
        '',
      ].join('\n'),
    );
    // No account is ever made in an image.
    expect(files.get('/etc/passwd')?.content).not.toContain('alice');
  });
});
