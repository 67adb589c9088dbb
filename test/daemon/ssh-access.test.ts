import { describe, expect, test } from 'bun:test';
import { sshAccess } from '../../src/daemon/ssh-access.ts';

const base = { username: 'alice', address: '10.98.0.7', keys: 1, account: true };

describe('the SSH command a create answers with', () => {
  test('with a jump host: ssh -J HOST user@ADDRESS, and no note', () => {
    expect(sshAccess({ ...base, jump: 'admin@gw.example.com:2222' })).toEqual({
      sshCommand: 'ssh -J admin@gw.example.com:2222 alice@10.98.0.7',
      note: '',
    });
  });

  test("without one: the plain command, and the note says it works on the daemon's host", () => {
    expect(sshAccess(base)).toEqual({
      sshCommand: 'ssh alice@10.98.0.7',
      note: "; 10.98.0.7 is on the daemon host's private network, so run the SSH command on that host",
    });
  });

  test('no command without a key, and the note says how to get one', () => {
    expect(sshAccess({ ...base, keys: 0, jump: 'gw' })).toEqual({
      sshCommand: '',
      note: '; no SSH key was given, so there is no SSH command yet: add a key for alice to log in',
    });
  });

  test('no command without a user account or without an address', () => {
    expect(sshAccess({ ...base, account: false }).sshCommand).toBe('');
    expect(sshAccess({ ...base, address: '' }).sshCommand).toBe('');
  });
});
