// The registry: every tool mcp-server offers, in the order tools/list shows them.
import bulk from './bulk.ts';
import containers from './containers.ts';
import type { AnyTool } from './define.ts';
import exec from './exec.ts';
import images from './images.ts';
import keys from './keys.ts';
import logs from './logs.ts';
import monitoring from './monitoring.ts';
import resources from './resources.ts';
import snapshots from './snapshots.ts';
import templates from './templates.ts';

export const TOOLS: readonly AnyTool[] = [
  ...containers,
  ...monitoring,
  ...images,
  ...keys,
  ...resources,
  ...templates,
  ...bulk,
  ...exec,
  ...logs,
  ...snapshots,
];
