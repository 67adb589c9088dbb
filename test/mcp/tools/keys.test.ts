// add_ssh_key and remove_ssh_key through a real MCP client: against the fake v0.3 and HEAD
// daemons and against this project's daemon app over the memory backend.
import { describe, expect, test } from 'bun:test';
import { sshKeyFingerprint } from '../../../src/shared/ssh-key.ts';
import { startFakeDaemon } from '../../support/fake-daemon.ts';
import { randomSshKey } from '../../support/keys.ts';
import { connectMcp, makeToken } from '../../support/mcp.ts';
import { startOwnDaemon } from '../../support/own-daemon.ts';

const makeKey = randomSshKey;
const print = (key: string) => sshKeyFingerprint(key)!;

type Target = 'v0.3' | 'head' | 'own';

/** mcp-server against `target` with alice's container holding `keys`; `held()` reads them back. */
async function setup(target: Target, keys: string[]) {
  if (target === 'own') {
    const d = await startOwnDaemon();
    const alice = d.backend.seed('alice', { sshKeys: [...keys] });
    const mcp = await d.connect(await d.token('mcp-client', { roles: ['admin'] }));
    return {
      mcp,
      held: () => alice.sshKeys,
      sent: () => d.requests.length,
      [Symbol.asyncDispose]: () => d[Symbol.asyncDispose](),
    };
  }
  const token = await makeToken();
  const fake = startFakeDaemon({
    generation: target,
    token,
    containers: [{ username: 'alice', sshKeys: [...keys] }],
    v03SshKeysImplemented: true,
  });
  const mcp = await connectMcp({
    CONTAINARIUM_SERVER_URL: fake.url,
    CONTAINARIUM_JWT_TOKEN: token,
  });
  return {
    mcp,
    held: () => fake.state.container('alice')!.sshKeys,
    sent: () => fake.requests.length,
    async [Symbol.asyncDispose]() {
      await mcp[Symbol.asyncDispose]();
      await fake[Symbol.asyncDispose]();
    },
  };
}

const ONE = makeKey('one@laptop');
const TWO = makeKey('two@desk');

for (const target of ['head', 'own'] as const) {
  describe(`SSH keys against ${target === 'own' ? "this project's daemon" : 'a HEAD daemon'}`, () => {
    test('add: the key is authorized; the text lists keys by fingerprint and comment only', async () => {
      await using d = await setup(target, [ONE]);
      const result = await d.mcp.call('add_ssh_key', { username: 'alice', ssh_key: `  ${TWO}\n` });
      expect(result.isError).toBeFalsy();
      expect(d.held()).toEqual([ONE, TWO]);
      expect(result.text).toBe(
        `Added ${print(TWO)} (two@desk) for alice.\nKeys now (2): ${print(ONE)} (one@laptop); ${print(TWO)} (two@desk).`,
      );
      expect(result.text).not.toContain(TWO.split(' ')[1]!);
      expect(result.structuredContent).toEqual(
        expect.objectContaining({
          username: 'alice',
          totalKeys: 2,
          keys: [
            { fingerprint: print(ONE), comment: 'one@laptop', key: ONE },
            { fingerprint: print(TWO), comment: 'two@desk', key: TWO },
          ],
        }),
      );
    });

    test('add: a key already there changes nothing', async () => {
      await using d = await setup(target, [ONE]);
      const result = await d.mcp.call('add_ssh_key', { username: 'alice', ssh_key: ONE });
      expect(result.isError).toBeFalsy();
      expect(result.text).toStartWith(
        `${print(ONE)} (one@laptop) was already authorized for alice`,
      );
      expect(d.held()).toEqual([ONE]);
    });

    test('remove by fingerprint', async () => {
      await using d = await setup(target, [ONE, TWO]);
      const result = await d.mcp.call('remove_ssh_key', { username: 'alice', ssh_key: print(ONE) });
      expect(result.isError).toBeFalsy();
      expect(d.held()).toEqual([TWO]);
      expect(result.text).toBe(
        `Removed ${print(ONE)} (one@laptop) for alice.\nKeys now (1): ${print(TWO)} (two@desk).`,
      );
    });

    test('remove by comment, and by the whole key with another comment', async () => {
      await using d = await setup(target, [ONE, TWO]);
      const byComment = await d.mcp.call('remove_ssh_key', {
        username: 'alice',
        ssh_key: 'two@desk',
      });
      expect(byComment.isError).toBeFalsy();
      expect(d.held()).toEqual([ONE]);
      const renamed = `${ONE.split(' ').slice(0, 2).join(' ')} renamed`;
      const byKey = await d.mcp.call('remove_ssh_key', { username: 'alice', ssh_key: renamed });
      expect(byKey.isError).toBeFalsy();
      expect(d.held()).toEqual([]);
      expect(byKey.text).toEndWith('The container now has no SSH keys.');
    });

    test('a comment on two keys is ambiguous: the error names both fingerprints', async () => {
      const twin = makeKey('one@laptop');
      await using d = await setup(target, [ONE, twin]);
      const result = await d.mcp.call('remove_ssh_key', {
        username: 'alice',
        ssh_key: 'one@laptop',
      });
      expect(result.isError).toBe(true);
      expect(result.text).toBe(
        `Could not remove an SSH key from the container for alice: the comment "one@laptop" is on 2 keys of alice's container: ${print(ONE)}, ${print(twin)}. Pass one of these fingerprints as ssh_key.`,
      );
      expect(d.held()).toEqual([ONE, twin]);
    });

    test('no match: the error lists the keys by fingerprint and comment', async () => {
      await using d = await setup(target, [ONE, TWO]);
      const result = await d.mcp.call('remove_ssh_key', { username: 'alice', ssh_key: 'nobody' });
      expect(result.isError).toBe(true);
      expect(result.text).toBe(
        `Could not remove an SSH key from the container for alice: no SSH key of alice's container matches "nobody"; its keys are ${print(ONE)} (one@laptop); ${print(TWO)} (two@desk). Pass one of these fingerprints as ssh_key.`,
      );
      expect(d.held()).toEqual([ONE, TWO]);
    });
  });
}

for (const target of ['v0.3', 'head', 'own'] as const) {
  describe(`SSH keys against ${target}: refusals`, () => {
    test('an invalid key is refused naming the field, and nothing is sent', async () => {
      await using d = await setup(target, []);
      const before = d.sent();
      const result = await d.mcp.call('add_ssh_key', {
        username: 'alice',
        ssh_key: 'ssh-rsa nope',
      });
      expect(result.isError).toBe(true);
      expect(result.text).toContain('ssh_key');
      expect(result.text).toContain('must be one OpenSSH public key');
      expect(d.sent()).toBe(before);
    });

    test('no container: the no-container sentence', async () => {
      await using d = await setup(target, []);
      for (const tool of ['add_ssh_key', 'remove_ssh_key']) {
        const result = await d.mcp.call(tool, { username: 'bob', ssh_key: ONE });
        expect(result.isError).toBe(true);
        expect(result.text).toBe(
          'No container exists for user bob. Call list_containers to see which containers exist.',
        );
      }
    });
  });
}

test('HEAD: a whole key on a container without keys: the daemon says not found, not a missing container', async () => {
  await using d = await setup('head', []);
  const result = await d.mcp.call('remove_ssh_key', { username: 'alice', ssh_key: ONE });
  expect(result.isError).toBe(true);
  expect(result.text).toBe(
    'Could not remove an SSH key from the container for alice: alice\'s container has no such key (the daemon says "SSH key not found"); nothing changed. Call get_container to see its keys.',
  );
});

describe('SSH keys against a v0.3 daemon, whose containers list no keys', () => {
  test('add says the count; a fingerprint or comment cannot be resolved; the whole key works', async () => {
    await using d = await setup('v0.3', [ONE, TWO]);
    const added = await d.mcp.call('add_ssh_key', { username: 'alice', ssh_key: makeKey('x') });
    expect(added.isError).toBeFalsy();
    expect(added.text).toEndWith('The container now has 3 keys (this daemon does not list them).');
    for (const named of [print(ONE), 'one@laptop']) {
      const result = await d.mcp.call('remove_ssh_key', { username: 'alice', ssh_key: named });
      expect(result.isError).toBe(true);
      expect(result.text).toContain(`"${named}" cannot be resolved on this daemon`);
      expect(result.text).toContain('Pass the whole public key as ssh_key instead');
    }
    expect(d.held()).toHaveLength(3);
    const removed = await d.mcp.call('remove_ssh_key', { username: 'alice', ssh_key: ONE });
    expect(removed.isError).toBeFalsy();
    expect(removed.text).toBe(
      `Removed ${print(ONE)} (one@laptop) for alice.\nThe container now has 2 keys (this daemon does not list them).`,
    );
    expect(d.held()).not.toContain(ONE);
  });

  test('a v0.3 daemon that never implemented the routes: upgrade the daemon', async () => {
    const token = await makeToken();
    await using fake = startFakeDaemon({
      generation: 'v0.3',
      token,
      containers: [{ username: 'alice' }],
    });
    await using mcp = await connectMcp({
      CONTAINARIUM_SERVER_URL: fake.url,
      CONTAINARIUM_JWT_TOKEN: token,
    });
    const result = await mcp.call('add_ssh_key', { username: 'alice', ssh_key: ONE });
    expect(result.isError).toBe(true);
    expect(result.text).toStartWith(
      'This daemon cannot add an SSH key to the container for alice: it says "not implemented yet"',
    );
  });
});
