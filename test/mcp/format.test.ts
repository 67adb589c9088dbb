import { describe, expect, test } from 'bun:test';
import * as v from 'valibot';
import {
  containerText,
  containerView,
  listText,
  metricsLine,
  metricsView,
  stateName,
  systemInfoText,
  systemInfoView,
  timestamp,
} from '../../src/mcp/format.ts';
import { ContainerSchema, MetricsSchema, SystemInfoSchema } from '../../src/shared/wire.ts';

const container = v.parse(ContainerSchema, {
  name: 'alice-container',
  username: 'alice',
  state: 'CONTAINER_STATE_RUNNING',
  resources: { cpu: '4', memory: '8GB', disk: '50GB' },
  sshKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq5sFq2wA0hB3xG8cW1 alice@laptop'],
  network: { ipAddress: '10.0.3.15', macAddress: '', interface: '', bridge: '' },
  createdAt: '1771122760',
  updatedAt: '0',
  labels: { team: 'demo' },
  image: 'images:ubuntu/24.04',
  dockerEnabled: true,
});

describe('format', () => {
  test('states read as words', () => {
    expect(stateName('CONTAINER_STATE_RUNNING')).toBe('running');
    expect(stateName('CONTAINER_STATE_UNSPECIFIED')).toBe('unknown');
    expect(stateName('CONTAINER_STATE_PROVISIONING')).toBe('provisioning');
  });

  test('zero and Go zero timestamps read as unknown, not 1 AD', () => {
    expect(timestamp(0)).toBeNull();
    expect(timestamp(-62135596800)).toBeNull();
    expect(timestamp(1771122760)).toBe('2026-02-15T02:32:40Z');
  });

  test('a container reads in human units', () => {
    const text = containerText(containerView(container));
    expect(text).toContain('alice-container (user alice): running');
    expect(text).toContain('4 cores, 8 GB memory, 50 GB disk');
    expect(text).toContain('Created: 2026-02-15');
    expect(text).toContain('Labels: team=demo');
    expect(text).not.toContain('updated');
    expect(text).not.toContain('{');
  });

  test('usage is a share of the limit where the limit is known', () => {
    const metrics = v.parse(MetricsSchema, {
      name: 'alice-container',
      cpuUsageSeconds: '1234',
      memoryUsageBytes: '2000000000',
      memoryPeakBytes: '1073741824',
      diskUsageBytes: '5000000000',
      networkRxBytes: '104857600',
      networkTxBytes: '52428800',
      processCount: 42,
    });
    const line = metricsLine(metricsView(metrics, containerView(container)));
    expect(line).toContain('CPU time 20m 34s');
    expect(line).toContain('memory 1.9 GiB of 7.5 GiB (25%)');
    expect(line).toContain('disk 4.7 GiB of 46.6 GiB (10%)');
    expect(line).toContain('↓100 MiB ↑50 MiB');
    expect(metricsLine(metricsView(metrics))).not.toMatch(/\d%/);
    expect(line).toContain('CPU % not reported by this daemon');
  });

  test('a list is a table with a state summary', () => {
    const stopped = {
      ...container,
      name: 'bob-container',
      username: 'bob',
      state: 'CONTAINER_STATE_STOPPED',
      network: null,
    };
    const text = listText([containerView(container), containerView(stopped)]);
    expect(text.split('\n')[0]).toBe('2 containers (1 running, 1 stopped):');
    expect(text).toMatch(/alice-container +alice +running +4 +8GB +50GB +10\.0\.3\.15 +2026-02-15/);
    expect(text).toMatch(/bob-container +bob +stopped .* - +2026-02-15/);
    expect(listText([])).toBe('No containers found.');
  });

  test('v0.3 system info leaves host figures unknown', () => {
    const info = systemInfoView(
      v.parse(SystemInfoSchema, {
        incusVersion: '6.20',
        os: 'Ubuntu',
        kernelVersion: '6.8.0',
        totalCpus: 0,
        totalMemoryBytes: '0',
        containersRunning: 1,
        containersStopped: 0,
        containersTotal: 1,
        hostname: 'myhost',
        uptimeSeconds: '0',
      }),
    );
    expect(info.totalMemoryBytes).toBeNull();
    const text = systemInfoText(info);
    expect(text).toContain('Host myhost: Ubuntu, kernel 6.8.0, Incus 6.20');
    expect(text).toContain('1 running, 0 stopped, 1 total');
    expect(text).toContain('not reported');
  });
});
