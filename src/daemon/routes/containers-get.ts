// GET /v1/containers/{username}: one container and, while it runs, its metrics.
import { pathUser, route } from '../router.ts';
import { emitMetrics, emitReachable } from '../to-wire.ts';

export const getContainer = route('GET', '/v1/containers/:username', async (c) => {
  const { metrics, ...reachable } = await c.backend.get(pathUser(c));
  return {
    container: emitReachable(reachable),
    metrics: metrics ? emitMetrics(metrics) : null,
  };
});
