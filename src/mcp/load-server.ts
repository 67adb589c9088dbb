// Loads server.ts, and with it the MCP SDK, with the SDK's validator (zod) set up for stdio.
import { config } from 'zod';

/**
 * server.ts, loaded once zod is told not to compile each schema into a function the first time it
 * validates (`jitless`): over the few requests of a session, compiling costs more than it saves,
 * and the first answer waited for it. zod reads the setting as each schema is built, and the SDK
 * builds most of its schemas as it loads, so the setting comes before the import.
 */
export function loadServer(): Promise<typeof import('./server.ts')> {
  config({ jitless: true });
  return import('./server.ts');
}
