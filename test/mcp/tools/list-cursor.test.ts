// list_containers refuses a cursor it did not make: one too long to be a container's, or one that
// decodes to something other than a container name. The error names `cursor` and nothing is asked.
import { expect, test } from 'bun:test';
import { startFakeDaemon } from '../../support/fake-daemon.ts';
import { connectMcp, makeToken } from '../../support/mcp.ts';

const token = await makeToken();
const cursorOf = (text: string) => Buffer.from(text).toString('base64url');

test('a cursor too long, or naming no container, is refused naming "cursor"; nothing is asked', async () => {
  const fake = startFakeDaemon({ generation: 'head', token, containers: [{ username: 'alice' }] });
  await using mcp = await connectMcp({
    CONTAINARIUM_SERVER_URL: fake.url,
    CONTAINARIUM_JWT_TOKEN: token,
  });
  try {
    // A well-formed cursor of a container name pages as before.
    const ok = await mcp.call('list_containers', { cursor: cursorOf('after:aaa-container') });
    expect(ok.isError).toBeFalsy();
    const asked = fake.requests.length;
    for (const cursor of [
      cursorOf(`after:${'a'.repeat(600)}`),
      cursorOf('after:../../etc'),
      cursorOf('after:Alice Smith'),
      cursorOf('after:a\nb'),
    ]) {
      const result = await mcp.call('list_containers', { cursor });
      expect(result.isError).toBe(true);
      expect(result.text).toContain('"cursor"');
      expect(result.text).toContain('must be the nextCursor of an earlier list_containers answer');
    }
    expect(fake.requests).toHaveLength(asked);
  } finally {
    await fake.stop();
  }
});
