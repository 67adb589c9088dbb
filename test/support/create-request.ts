// A valid create request for tests that do not care about most of its fields.
import type { CreateRequest } from '../../src/daemon/backend.ts';

export const createRequest = (over: Partial<CreateRequest> = {}): CreateRequest => ({
  username: 'alice',
  cpu: 2,
  memory: '1GB',
  disk: '5GB',
  sshKeys: [],
  labels: {},
  image: 'images:ubuntu/24.04',
  enableDocker: false,
  ...over,
});
