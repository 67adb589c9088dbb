// DELETE /v1/containers/{username}?force=: delete a container (a running one only with force).
import { parseBoolParam } from '../requests.ts';
import { pathUser, route } from '../router.ts';

export const deleteContainer = route(
  'DELETE',
  '/v1/containers/:username',
  async (c) => {
    const username = pathUser(c);
    const force = parseBoolParam(c.url.searchParams, 'force');
    const { containerName } = await c.backend.delete(username, { force });
    return { message: `Container for user ${username} deleted successfully`, containerName };
  },
  { long: true },
);
