// A template's packages on the Incus side: stored on the instance with the other create facts, so
// a create resumed after a restart installs them too, and read back from there.
import { expect, test } from 'bun:test';
import { createIncusClient } from '../../src/daemon/incus.ts';
import { createIncusBackend } from '../../src/daemon/incus-backend.ts';
import { KEY, packagesOf } from '../../src/daemon/incus-wire.ts';
import { createRequest } from '../support/create-request.ts';
import { rejection } from '../support/rejection.ts';
import { failure, fakeIncus, sync } from './incus-fake.ts';

test('the packages go into the instance config, and only when there are some', async () => {
  await using incus = fakeIncus({
    'GET /1.0/images/aliases': () => sync([{ name: 'busybox' }]),
    'POST /1.0/instances': () => failure(500, 'stop here'),
  });
  const backend = createIncusBackend(createIncusClient({ socket: incus.socket }), {
    log: () => undefined,
  });
  const withPackages = createRequest({ image: 'busybox', packages: ['git', 'jq'] });
  await rejection(backend.create(withPackages, { async: false }));
  await rejection(backend.create(createRequest({ image: 'busybox' }), { async: false }));
  const configs = incus
    .calls('POST', '/1.0/instances')
    .map((call) => JSON.parse(call.body ?? '{}').config as Record<string, string>);
  expect(configs[0]?.[KEY.packages]).toBe('["git","jq"]');
  expect(packagesOf(configs[0] ?? {})).toEqual(['git', 'jq']);
  expect(configs[1]).not.toHaveProperty(KEY.packages);
  expect(packagesOf(configs[1] ?? {})).toEqual([]);
});
