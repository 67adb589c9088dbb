import { describe, expect, test } from 'bun:test';
import { formatBytes, parseCpu, parseSize } from '../../src/shared/sizes.ts';
import { normalizeSshKey } from '../../src/shared/ssh-key.ts';
import { containerName, isValidUsername, usernameOf } from '../../src/shared/username.ts';
import { ED25519 } from '../support/keys.ts';

describe('sizes', () => {
  test.each([
    ['4GB', 4e9, '4GB'],
    ['2048MB', 2.048e9, '2048MB'],
    ['4GiB', 4 * 2 ** 30, '4GiB'],
    ['512MiB', 512 * 2 ** 20, '512MiB'],
    ['8gb', 8e9, '8GB'],
    ['1.5GB', 1.5e9, '1500000000B'],
    [' 50 GB ', 50e9, '50GB'],
  ])('%p is %p bytes, %p for Incus', (input, bytes, incus) => {
    expect(parseSize(input)).toEqual({ bytes, incus });
  });

  test.each(['lots', '-1GB', '0', '0GB', '4', 'GB', '4XB', '1e3GB', '4 G B', '', '1B', '1000kB'])(
    '%p is refused',
    (input) => {
      expect(parseSize(input)).toBeUndefined();
    },
  );

  test('formats bytes in binary units', () => {
    expect(formatBytes(512 * 2 ** 20)).toBe('512 MiB');
    expect(formatBytes(5368709120)).toBe('5 GiB');
    expect(formatBytes(1536 * 2 ** 20)).toBe('1.5 GiB');
    expect(formatBytes(0)).toBe('0 B');
  });

  test('cpu is a whole number of cores', () => {
    expect(parseCpu('4')).toBe(4);
    expect(parseCpu(8)).toBe(8);
    for (const bad of ['0', '-1', '1.5', 'four', '', '2000', 0.5])
      expect(parseCpu(bad)).toBeUndefined();
  });
});

describe('usernames', () => {
  test.each(['alice', 'dev-team-2', 'a', 'x'.repeat(32)])('%p is valid', (name) => {
    expect(isValidUsername(name)).toBe(true);
  });
  test.each(['../admin', 'Alice', '1abc', '-abc', 'a_b', 'x'.repeat(33), '', 'a b', 'a/b', 'ä'])(
    '%p is invalid',
    (name) => {
      expect(isValidUsername(name)).toBe(false);
    },
  );
  test('names the container', () => {
    expect(containerName('alice')).toBe('alice-container');
    expect(usernameOf('alice-container')).toBe('alice');
    expect(usernameOf('ws2022')).toBe('ws2022');
  });
});

describe('ssh keys', () => {
  test('accepts a real key and trims it', () => {
    expect(normalizeSshKey(`  ${ED25519}\n`)).toBe(ED25519);
  });
  test('keeps shell characters in the comment verbatim', () => {
    const key = `${ED25519.split(' ').slice(0, 2).join(' ')} $(rm -rf /); echo`;
    expect(normalizeSshKey(key)).toBe(key);
  });
  test.each([
    ['two lines', `${ED25519}\n${ED25519}`],
    ['not a key', 'hello world'],
    ['unknown type', ED25519.replace('ssh-ed25519', 'ssh-foo')],
    ['type does not match blob', ED25519.replace('ssh-ed25519', 'ssh-rsa')],
    ['bad base64', 'ssh-ed25519 AAAA$$$$ x'],
    ['options prefix', `from="10.0.0.1" ${ED25519}`],
    ['carriage return', `${ED25519}\rssh-rsa AAAA`],
  ])('refuses %s', (_why, key) => {
    expect(normalizeSshKey(key)).toBeUndefined();
  });
});
