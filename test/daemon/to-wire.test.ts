// Domain values to upstream's JSON: enum names, int64 strings, proto field order.
import { describe, expect, test } from 'bun:test';
import * as v from 'valibot';
import { STATES } from '../../src/daemon/backend.ts';
import { emitContainer, emitMetrics, STATE_NAMES, stateOf } from '../../src/daemon/to-wire.ts';
import { CONTAINER_STATES, WireContainerSchema, WireMetricsSchema } from '../../src/shared/wire.ts';

describe('to-wire', () => {
  test('every domain state has its own enum name, and reads back from it', () => {
    expect(STATES.map((s) => STATE_NAMES[s]).sort()).toEqual([...CONTAINER_STATES].sort());
    for (const state of STATES) expect(stateOf(STATE_NAMES[state])).toBe(state);
  });

  test('a container: int64 times as strings, the enum name, fields in proto order', () => {
    const wire = emitContainer({
      name: 'alice-container',
      username: 'alice',
      state: 'stopped',
      resources: null,
      sshKeys: [],
      network: null,
      createdAt: 1736930000,
      updatedAt: 0,
      labels: {},
      image: '',
      dockerEnabled: false,
    });
    expect(v.is(WireContainerSchema, wire)).toBe(true);
    expect(JSON.stringify(wire)).toBe(
      '{"name":"alice-container","username":"alice","state":"CONTAINER_STATE_STOPPED","resources":null,"sshKeys":[],"network":null,"createdAt":"1736930000","updatedAt":"0","labels":{},"image":"","dockerEnabled":false}',
    );
  });

  test('metrics: byte counts past 2^32 stay exact strings; the process count stays a number', () => {
    const wire = emitMetrics({
      name: 'x',
      cpuUsageSeconds: 12,
      cpuUsagePercent: 37.5,
      memoryUsageBytes: 2 ** 40,
      memoryPeakBytes: 2 ** 40 + 1,
      diskUsageBytes: 0,
      networkRxBytes: 9_007_199_254_740_991,
      networkTxBytes: 1,
      processCount: 42,
    });
    expect(v.is(WireMetricsSchema, wire)).toBe(true);
    expect(wire.memoryPeakBytes).toBe('1099511627777');
    expect(wire.networkRxBytes).toBe('9007199254740991');
    expect(wire.processCount).toBe(42);
    // A double: a plain JSON number, not an int64 string.
    expect(wire.cpuUsagePercent).toBe(37.5);
  });
});
