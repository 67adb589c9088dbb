// GET /v1/system/info: the host's Incus, CPUs, memory, disk and container counts (admin only).
import { requireAdmin } from '../auth.ts';
import { route } from '../router.ts';
import { emitSystemInfo } from '../to-wire.ts';

export const systemInfo = route('GET', '/v1/system/info', async (c) => {
  requireAdmin(c.principal);
  return { info: emitSystemInfo(await c.backend.systemInfo()) };
});
