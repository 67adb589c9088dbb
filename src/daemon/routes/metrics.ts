// GET /v1/metrics(?username=) and GET /v1/metrics/{username}.
import { isValidUsername } from '../../shared/username.ts';
import { isDaemonError } from '../errors.ts';
import { parseUsernameParam } from '../requests.ts';
import { pathUser, route } from '../router.ts';
import { emitMetrics } from '../to-wire.ts';

export const allMetrics = route('GET', '/v1/metrics', async (c) => {
  const username = parseUsernameParam(c.url.searchParams);
  if (!c.principal.admin) {
    const own = c.principal.username;
    if ((username !== undefined && username !== own) || !isValidUsername(own)) {
      return { metrics: [] };
    }
    try {
      return { metrics: (await c.backend.metrics(own)).map(emitMetrics) };
    } catch (error) {
      // "All metrics" for someone without a container is an empty list, not an error.
      if (username === undefined && isDaemonError(error) && error.kind === 'not_found') {
        return { metrics: [] };
      }
      throw error;
    }
  }
  return { metrics: (await c.backend.metrics(username)).map(emitMetrics) };
});

export const userMetrics = route('GET', '/v1/metrics/:username', async (c) => {
  return { metrics: (await c.backend.metrics(pathUser(c))).map(emitMetrics) };
});
