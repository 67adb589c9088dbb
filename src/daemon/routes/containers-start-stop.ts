// POST /v1/containers/{username}/start and /stop.
import { parseBody, StartBody, StopBody } from '../requests.ts';
import { pathUser, route } from '../router.ts';
import { emitContainer, emitReachable } from '../to-wire.ts';

export const startContainer = route(
  'POST',
  '/v1/containers/:username/start',
  async (c) => {
    const username = pathUser(c);
    // waitForReady/readyTimeoutSeconds (HEAD) are checked but not needed: start returns when running.
    parseBody(StartBody, await c.body());
    const started = await c.backend.start(username);
    return {
      message: `Container for user ${username} started successfully`,
      container: emitReachable(started),
    };
  },
  { long: true },
);

export const stopContainer = route(
  'POST',
  '/v1/containers/:username/stop',
  async (c) => {
    const username = pathUser(c);
    const options = parseBody(StopBody, await c.body());
    const container = await c.backend.stop(username, options);
    return {
      message: `Container for user ${username} stopped successfully`,
      container: emitContainer(container),
    };
  },
  { long: true },
);
