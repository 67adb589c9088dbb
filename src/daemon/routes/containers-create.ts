// POST /v1/containers: create a container (sync, or async with polling).
import { authorizeUser } from '../auth.ts';
import { createAsks, guardQuota } from '../quotas.ts';
import { createBody, parseBody } from '../requests.ts';
import { route } from '../router.ts';
import { emitCreated } from '../to-wire.ts';

export const createContainer = route(
  'POST',
  '/v1/containers',
  async (c) => {
    const { request, async } = parseBody(createBody(c.templates), await c.body());
    authorizeUser(c.principal, request.username);
    await guardQuota(c, request.username, () => createAsks(request));
    return emitCreated(await c.backend.create(request, { async }));
  },
  { long: true },
);
