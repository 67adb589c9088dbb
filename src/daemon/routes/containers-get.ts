// GET /v1/containers/{username}: one container and, while it runs, its metrics.
import { pathUser, route } from '../router.ts';
import { emitContainer, emitMetrics } from '../to-wire.ts';

export const getContainer = route('GET', '/v1/containers/:username', async (c) => {
  const { container, metrics } = await c.backend.get(pathUser(c));
  return {
    container: emitContainer(container),
    metrics: metrics ? emitMetrics(metrics) : null,
  };
});
