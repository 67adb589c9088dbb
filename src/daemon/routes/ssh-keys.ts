// POST /v1/containers/{username}/ssh-keys and DELETE .../ssh-keys/{sshPublicKey}.
import { parseBody, parseSshKeySegment, SshKeyBody } from '../requests.ts';
import { pathUser, route } from '../router.ts';

export const addSshKey = route(
  'POST',
  '/v1/containers/:username/ssh-keys',
  async (c) => {
    const username = pathUser(c);
    const key = parseBody(SshKeyBody, await c.body());
    const { totalKeys } = await c.backend.addSshKey(username, key);
    return { message: `SSH key added to the container of user ${username}`, totalKeys };
  },
  { long: true },
);

export const removeSshKey = route(
  'DELETE',
  '/v1/containers/:username/ssh-keys/*key',
  async (c) => {
    const username = pathUser(c);
    const key = parseSshKeySegment(c.params.key ?? '');
    const { totalKeys } = await c.backend.removeSshKey(username, key);
    return { message: `SSH key removed from the container of user ${username}`, totalKeys };
  },
  { long: true },
);
