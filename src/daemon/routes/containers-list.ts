// GET /v1/containers: the containers the caller may see, filtered.
import { isValidUsername } from '../../shared/username.ts';
import { parseListQuery } from '../requests.ts';
import { route } from '../router.ts';
import { emitContainer } from '../to-wire.ts';

export const listContainers = route('GET', '/v1/containers', async (c) => {
  const filter = parseListQuery(c.url.searchParams);
  if (!c.principal.admin) {
    // Silently narrowed to the caller's own container, as HEAD does.
    // (A token name that is not a valid username owns no container.)
    if (
      (filter.username !== undefined && filter.username !== c.principal.username) ||
      !isValidUsername(c.principal.username)
    ) {
      return { containers: [], totalCount: 0 };
    }
    filter.username = c.principal.username;
  }
  let containers = await c.backend.list(filter);
  if (!c.principal.admin)
    containers = containers.filter((x) => x.username === c.principal.username);
  // totalCount is the length of the list sent, so a summary can never contradict it (#1214).
  return { containers: containers.map(emitContainer), totalCount: containers.length };
});
