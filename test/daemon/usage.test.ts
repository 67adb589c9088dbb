// The usage figures' rules without Incus: CPU share from two readings, CPU limits counted, what
// limits commit of the host, and the load averages.
import { describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as v from 'valibot';
import { InstanceSchema } from '../../src/daemon/incus-wire.ts';
import { committed, cpuPercent, loadAverages, memoryBytes } from '../../src/daemon/usage.ts';
import { cpuCount } from '../../src/shared/sizes.ts';

describe('cpuPercent', () => {
  test('nanoseconds of CPU over milliseconds of wall time, as % of one core to one decimal', () => {
    expect(cpuPercent(0, 1e9, 1000)).toBe(100);
    expect(cpuPercent(5e9, 5e9 + 2.5e9, 1000)).toBe(250);
    expect(cpuPercent(0, 123_456_789, 1000)).toBe(12.3);
  });

  test('a counter that went back (a restart) or no time passed tells nothing: 0', () => {
    expect(cpuPercent(5e9, 1e9, 1000)).toBe(0);
    expect(cpuPercent(0, 1e9, 0)).toBe(0);
  });
});

test('cpuCount reads every form of limits.cpu', () => {
  expect(cpuCount('4')).toBe(4);
  expect(cpuCount('0-3')).toBe(4);
  expect(cpuCount('0,2')).toBe(2);
  expect(cpuCount('0-1,4')).toBe(3);
  for (const odd of [undefined, '', '0', 'two', '3-1', '1-']) expect(cpuCount(odd)).toBeUndefined();
});

test('memoryBytes: a size, or a percentage of the host', () => {
  expect(memoryBytes('4GB', 8e9)).toBe(4e9);
  expect(memoryBytes('50%', 8e9)).toBe(4e9);
  expect(memoryBytes(undefined, 8e9)).toBeUndefined();
});

describe('committed', () => {
  const instance = (status: string, config: Record<string, string>, size?: string) =>
    v.parse(InstanceSchema, {
      name: 'x',
      status,
      expanded_config: config,
      expanded_devices: { root: { type: 'disk', path: '/', ...(size ? { size } : {}) } },
    });
  const host = { cpus: 2, memoryBytes: 8e9, diskBytes: 100e9 };

  test('CPUs and memory of running containers, disks of all', () => {
    const instances = [
      instance('Running', { 'limits.cpu': '4', 'limits.memory': '4GB' }, '50GB'),
      instance('Running', { 'limits.cpu': '0-1', 'limits.memory': '25%' }, '10GB'),
      instance('Stopped', { 'limits.cpu': '8', 'limits.memory': '16GB' }, '20GB'),
    ];
    expect(committed(instances, host)).toEqual({ cpus: 6, memoryBytes: 6e9, diskBytes: 80e9 });
  });

  test('a container without a limit counts as the whole host', () => {
    expect(committed([instance('Running', {})], host)).toEqual(host);
  });
});

test('loadAverages: the three numbers of /proc/loadavg, zeros when unreadable', () => {
  const dir = mkdtempSync(join(tmpdir(), 'loadavg-'));
  try {
    writeFileSync(join(dir, 'loadavg'), '0.52 1.40 2.31 3/456 7890\n');
    expect(loadAverages(join(dir, 'loadavg'))).toEqual([0.52, 1.4, 2.31]);
    expect(loadAverages(join(dir, 'missing'))).toEqual([0, 0, 0]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
