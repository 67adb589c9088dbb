// GET /v1/quotas/{username} (added by this project): a user's quota and what its containers use.

import { parseSize } from '../../shared/sizes.ts';
import { quotaOf, useOf } from '../quotas.ts';
import { pathUser, route } from '../router.ts';
import { int32, int64 } from '../to-wire.ts';

export const getQuota = route('GET', '/v1/quotas/:username', async (c) => {
  const username = pathUser(c);
  const quota = quotaOf(c.quotas, username);
  const used = useOf(await c.backend.list({ username }));
  return {
    username,
    quota: {
      containers: int32(quota.containers),
      cpus: int32(quota.cpus),
      memory: quota.memory,
      memoryBytes: int64(parseSize(quota.memory)?.bytes ?? 0),
      disk: quota.disk,
      diskBytes: int64(parseSize(quota.disk)?.bytes ?? 0),
      snapshots: int32(quota.snapshots),
    },
    used: {
      containers: int32(used.containers),
      cpus: int32(used.cpus),
      memoryBytes: int64(used.memoryBytes),
      diskBytes: int64(used.diskBytes),
    },
  };
});
