// GET /v1/containers/{username}: one container and, while it runs, its metrics; and what this
// daemon knows of its create (phase, error, createMessage: api/containarium.openapi.json).
import { pathUser, route } from '../router.ts';
import { emitMetrics, emitReachable } from '../to-wire.ts';

export const getContainer = route('GET', '/v1/containers/:username', async (c) => {
  const { metrics, create, ...reachable } = await c.backend.get(pathUser(c));
  return {
    container: {
      ...emitReachable(reachable),
      phase: create?.phase ?? '',
      error: create?.error ?? '',
      createMessage: create?.message ?? '',
    },
    metrics: metrics ? emitMetrics(metrics) : null,
  };
});
