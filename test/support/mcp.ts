// Test harness: a real MCP Client wired to mcp-server in memory, and a compiled-token helper.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { SignJWT } from 'jose';
import { createClient } from '../../src/mcp/client.ts';
import { loadConfig } from '../../src/mcp/config.ts';
import { createServer } from '../../src/mcp/server.ts';
import type { Polling } from '../../src/mcp/tools/define.ts';

/** Create's polls in tests: quick, as the fakes move on per poll or within milliseconds. */
export const TEST_POLLING: Polling = { firstMs: 5, maxMs: 20, limitMs: 60_000 };

export const TEST_SECRET = 'test-secret-that-is-32-bytes-long!!';

export async function makeToken(
  claims: { username?: string; roles?: string[]; expiresIn?: string | number } = {},
): Promise<string> {
  return new SignJWT({
    username: claims.username ?? 'mcp-client',
    roles: claims.roles ?? ['admin'],
  })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer('containarium')
    .setAudience(['containarium-api'])
    .setIssuedAt()
    .setExpirationTime(claims.expiresIn ?? '1h')
    .sign(new TextEncoder().encode(TEST_SECRET));
}

/** A connected MCP client talking to an in-memory mcp-server configured from `env`. */
export async function connectMcp(
  env: Record<string, string>,
  options: { polling?: Polling; progressEveryMs?: number } = {},
) {
  const config = loadConfig(env);
  const server = createServer({
    client: createClient(config),
    config,
    polling: options.polling ?? TEST_POLLING,
    ...(options.progressEveryMs && { progressEveryMs: options.progressEveryMs }),
  });
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  const client = new Client({ name: 'test-client', version: '1.0.0' });
  await Promise.all([server.connect(serverSide), client.connect(clientSide)]);
  // Listing once makes the SDK client check every structuredContent against its outputSchema.
  await client.listTools();
  return {
    client,
    server,
    /** Calls a tool; returns the result with its text joined. */
    async call(
      name: string,
      args: Record<string, unknown> = {},
      options: { signal?: AbortSignal } = {},
    ) {
      const result = (await client.callTool(
        { name, arguments: args },
        undefined,
        options,
      )) as CallToolResult;
      const text = result.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');
      return { ...result, text };
    },
    async [Symbol.asyncDispose]() {
      await client.close();
      await server.close();
    },
  };
}
