// PUT /v1/containers/{username}/resize (upstream HEAD): new CPU, memory and disk limits, live.
import { guardQuota, resizeAsks } from '../quotas.ts';
import { parseBody, ResizeBody } from '../requests.ts';
import { pathUser, route } from '../router.ts';
import { emitContainer } from '../to-wire.ts';

export const resizeContainer = route(
  'PUT',
  '/v1/containers/:username/resize',
  async (c) => {
    const username = pathUser(c);
    const change = parseBody(ResizeBody, await c.body());
    // No container, nothing asked: the backend answers its own 404.
    await guardQuota(c, username, ([mine]) => mine && resizeAsks(mine, change));
    const container = await c.backend.resize(username, change);
    return {
      message: `Container for user ${username} resized successfully`,
      container: emitContainer(container),
    };
  },
  { long: true },
);
