// SSH key tools: authorize a public key for a container's user, or take one away. Removing is a
// `change`, not a `destroy`: nothing is lost, since adding the same public key back restores it.
import { HTTPError } from 'ky';
import * as v from 'valibot';
import { normalizeSshKey, SSH_KEY_FORM, sshKeyFingerprint } from '../../shared/ssh-key.ts';
import { CONTAINER, daemonMessage } from '../errors.ts';
import { defineTool, type ToolContext, username } from './define.ts';

const KeyOut = v.object({ fingerprint: v.string(), comment: v.string(), key: v.string() });
type KeyView = v.InferOutput<typeof KeyOut>;

const KeysOut = v.object({
  username: v.string(),
  keys: v.pipe(
    v.array(KeyOut),
    v.description("The container's keys afterwards, as far as the daemon lists them"),
  ),
  totalKeys: v.number(),
  message: v.string(),
});

const keyView = (key: string): KeyView => ({
  fingerprint: sshKeyFingerprint(key) ?? '',
  comment: key.split(' ').slice(2).join(' '),
  key,
});

/** `SHA256:… (alice@laptop)`: how a key is shown in text, never the whole key. */
const shown = (k: KeyView) => (k.comment ? `${k.fingerprint} (${k.comment})` : k.fingerprint);

/** The keys the daemon lists for the user's container (upstream v0.3 always lists none). */
async function listedKeys(name: string, { client, signal }: ToolContext): Promise<KeyView[]> {
  const { container } = await client.getContainer(name, { signal });
  if (!container) throw new Error(`the daemon returned no container for ${name}`);
  return (container.sshKeys ?? []).flatMap((k) => (normalizeSshKey(k) ? [keyView(k)] : []));
}

/** The text listing the keys left, by fingerprint and comment. */
function keysLine(keys: KeyView[], total: number): string {
  if (keys.length > 0) return `Keys now (${keys.length}): ${keys.map(shown).join('; ')}.`;
  if (total > 0) return `The container now has ${total} keys (this daemon does not list them).`;
  return 'The container now has no SSH keys.';
}

const said = (error: unknown) => (error instanceof HTTPError ? daemonMessage(error.data) : '');

const addSshKey = defineTool({
  name: 'add_ssh_key',
  title: 'Add SSH key',
  description:
    "Authorize an OpenSSH public key for the user of a container, so it can log in. Adding a key already there changes nothing. Returns the container's keys by fingerprint and comment.",
  effect: 'change',
  toolset: 'keys',
  resource: CONTAINER,
  input: v.strictObject({
    username: username('User whose container gets the key, e.g. "alice".'),
    ssh_key: v.pipe(
      v.string(`must be ${SSH_KEY_FORM}`),
      v.description('The OpenSSH public key, e.g. "ssh-ed25519 AAAAC3Nza... alice@laptop".'),
      v.check((k) => normalizeSshKey(k) !== undefined, `must be ${SSH_KEY_FORM}`),
      v.transform((k) => normalizeSshKey(k)!),
    ),
  }),
  output: KeysOut,
  action: (input) => `add an SSH key to the container for ${input.username}`,
  async handle(input, ctx) {
    const before = await listedKeys(input.username, ctx);
    const added = keyView(input.ssh_key);
    const there = before.some((k) => k.fingerprint === added.fingerprint);
    const response = there
      ? undefined
      : await ctx.client
          .addSshKey(input.username, input.ssh_key, { signal: ctx.signal })
          .catch((error: unknown) => {
            if (/already exists/i.test(said(error))) return undefined;
            throw error;
          });
    // Upstream v0.3 lists no keys: then only the daemon's count is known.
    const keys = there || before.length === 0 ? before : [...before, added];
    const total = response?.totalKeys ?? keys.length;
    const head = response
      ? `Added ${shown(added)} for ${input.username}.`
      : `${shown(added)} was already authorized for ${input.username}; nothing changed.`;
    const tail =
      response || keys.length > 0 ? keysLine(keys, total) : 'This daemon does not list the keys.';
    const message = response?.message ?? 'SSH key already exists';
    return {
      text: `${head}\n${tail}`,
      structured: { username: input.username, keys, totalKeys: total, message },
    };
  },
});

/** The one listed key `wanted` names: the whole key, its fingerprint, or its unique comment. */
function resolve(wanted: string, keys: KeyView[], name: string, whole: string | undefined) {
  if (whole !== undefined) {
    const fingerprint = sshKeyFingerprint(whole);
    return keys.find((k) => k.fingerprint === fingerprint);
  }
  if (keys.length === 0) {
    throw new Error(
      `"${wanted}" cannot be resolved on this daemon: it lists no SSH keys for ${name}'s container (upstream v0.3 daemons never list them). Pass the whole public key as ssh_key instead`,
    );
  }
  const byPrint = keys.filter((k) => k.fingerprint === wanted);
  const matches = byPrint.length > 0 ? byPrint : keys.filter((k) => k.comment === wanted);
  if (matches.length > 1) {
    throw new Error(
      `the comment "${wanted}" is on ${matches.length} keys of ${name}'s container: ${matches.map((k) => k.fingerprint).join(', ')}. Pass one of these fingerprints as ssh_key`,
    );
  }
  return matches[0];
}

const removeSshKey = defineTool({
  name: 'remove_ssh_key',
  title: 'Remove SSH key',
  description:
    'Take an SSH key away from the user of a container, so it no longer logs in; add_ssh_key with the same public key restores it. Name the key by the whole public key, its SHA256: fingerprint, or its comment when no other key has it. Returns the keys left by fingerprint and comment.',
  effect: 'change',
  toolset: 'keys',
  resource: CONTAINER,
  input: v.strictObject({
    username: username('User whose container loses the key, e.g. "alice".'),
    ssh_key: v.pipe(
      v.string('must be a public key, a SHA256: fingerprint or a key comment'),
      v.description(
        'The key: whole public key, "SHA256:..." fingerprint, or comment like "alice@laptop".',
      ),
      v.trim(),
      v.minLength(1, 'must be a public key, a SHA256: fingerprint or a key comment'),
    ),
  }),
  output: KeysOut,
  action: (input) => `remove an SSH key from the container for ${input.username}`,
  async handle(input, ctx) {
    const name = input.username;
    const keys = await listedKeys(name, ctx);
    const whole = normalizeSshKey(input.ssh_key);
    const match = resolve(input.ssh_key, keys, name, whole);
    if (!match && keys.length > 0) {
      throw new Error(
        `no SSH key of ${name}'s container matches "${input.ssh_key}"; its keys are ${keys.map(shown).join('; ')}. Pass one of these fingerprints as ssh_key`,
      );
    }
    // The key exactly as the daemon holds it (its comment may differ from the one given).
    const key = match?.key ?? whole!;
    const response = await ctx.client
      .removeSshKey(name, key, { signal: ctx.signal })
      .catch((error: unknown) => {
        const words = said(error);
        if (/key/i.test(words) && /not (found|authorized)/i.test(words)) {
          throw new Error(
            `${name}'s container has no such key (the daemon says "${words}"); nothing changed. Call get_container to see its keys`,
          );
        }
        throw error;
      });
    const left = keys.filter((k) => k.fingerprint !== (match ?? keyView(key)).fingerprint);
    return {
      text: `Removed ${shown(match ?? keyView(key))} for ${name}.\n${keysLine(left, response.totalKeys)}`,
      structured: {
        username: name,
        keys: left,
        totalKeys: response.totalKeys,
        message: response.message,
      },
    };
  },
});

export default [addSshKey, removeSshKey];
