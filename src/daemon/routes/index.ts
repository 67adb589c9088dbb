// The route table: every /v1 route the daemon serves, in match order. A new route is one file
// in this folder and one line here.
import type { Route } from '../router.ts';
import { createContainer } from './containers-create.ts';
import { deleteContainer } from './containers-delete.ts';
import { getContainer } from './containers-get.ts';
import { listContainers } from './containers-list.ts';
import { resizeContainer } from './containers-resize.ts';
import { startContainer, stopContainer } from './containers-start-stop.ts';
import { execCommand } from './exec.ts';
import { listImages } from './images.ts';
import { getLogs } from './logs.ts';
import { allMetrics, userMetrics } from './metrics.ts';
import { getQuota } from './quotas.ts';
import { createSnapshot, deleteSnapshot, listSnapshots, rollbackSnapshot } from './snapshots.ts';
import { addSshKey, removeSshKey } from './ssh-keys.ts';
import { systemInfo } from './system-info.ts';
import { listTemplates } from './templates.ts';

export const ROUTES: readonly Route[] = [
  createContainer,
  listContainers,
  getContainer,
  deleteContainer,
  startContainer,
  stopContainer,
  addSshKey,
  removeSshKey,
  allMetrics,
  userMetrics,
  systemInfo,
  listImages,
  resizeContainer,
  getQuota,
  listTemplates,
  execCommand,
  getLogs,
  listSnapshots,
  createSnapshot,
  deleteSnapshot,
  rollbackSnapshot,
];
