import { describe, expect, test } from 'bun:test';
import { fitDefaults, isDiskTooSmall, limitProblems, sizeAtMost } from '../../src/daemon/limits.ts';
import { createRequest } from '../support/create-request.ts';

const request = createRequest;
const host = { cpus: 2, memoryBytes: 24 * 2 ** 30, pool: { name: 'default', bytes: 10 * 2 ** 30 } };

describe('limits the host cannot give', () => {
  test('what fits is fine, up to exactly the host figures', () => {
    expect(limitProblems(request(), host)).toEqual([]);
    expect(limitProblems(request({ cpu: 2, memory: '24GiB', disk: '10GiB' }), host)).toEqual([]);
  });

  test('each problem names the field, the host figure and a value that fits', () => {
    expect(limitProblems(request({ cpu: 4, memory: '64GB', disk: '50GB' }), host)).toEqual([
      'resources.cpu 4 is more than this host has (2 CPUs); ask for at most 2',
      'resources.memory "64GB" is more than this host\'s memory (24 GiB); ask for at most "24GiB"',
      'resources.disk "50GB" is larger than storage pool "default" (10 GiB); ask for at most "10GiB"',
    ]);
  });

  test('memory below what any container needs to start is refused, with the floor', () => {
    expect(limitProblems(request({ memory: '1MiB' }), host)).toEqual([
      'resources.memory "1MiB" is too small to start a container (at least 8 MiB); give at least "8MiB", or "128MB" for an image set up with apt',
    ]);
    expect(limitProblems(request({ memory: '8MiB' }), host)).toEqual([]);
  });

  test('a figure Incus did not give is not checked', () => {
    expect(limitProblems(request({ cpu: 64, memory: '1TB', disk: '1PB' }), {})).toEqual([]);
  });

  test('sizes to ask for are whole and rounded down', () => {
    expect(sizeAtMost(25_769_803_776)).toBe('24GiB');
    expect(sizeAtMost(1.5 * 2 ** 30)).toBe('1536MiB');
    expect(sizeAtMost(900 * 2 ** 20 + 5)).toBe('900MiB');
  });

  test("Incus's words for a root disk too small for the image", () => {
    expect(
      isDiskTooSmall(
        'Failed creating instance from image: Failed to run: btrfs qgroup limit -e none 0/257 /x: exit status 1 (ERROR: unable to limit requested quota group: Disk quota exceeded)',
      ),
    ).toBe('Disk quota exceeded');
    expect(isDiskTooSmall('Instance not found')).toBeUndefined();
  });

  test("defaults the caller left empty are lowered to the host's figures; asked values never", () => {
    const small = {
      cpus: 2,
      memoryBytes: 3.5 * 2 ** 30,
      pool: { name: 'default', bytes: 10 * 2 ** 30 },
    };
    const defaults = request({ cpu: 4, memory: '4GB', disk: '50GB' });
    expect(fitDefaults({ ...defaults, defaulted: ['cpu', 'memory', 'disk'] }, small)).toEqual({
      request: {
        ...defaults,
        cpu: 2,
        memory: '3584MiB',
        disk: '10GiB',
        defaulted: ['cpu', 'memory', 'disk'],
      },
      lowered: ['cpu 2', 'memory "3584MiB"', 'disk "10GiB"'],
    });
    // Asked for: left alone, so limitProblems refuses them with the host's figures.
    expect(fitDefaults(defaults, small)).toEqual({ request: defaults, lowered: [] });
    expect(fitDefaults({ ...defaults, defaulted: ['disk'] }, small).lowered).toEqual([
      'disk "10GiB"',
    ]);
    // A host with room changes nothing.
    expect(fitDefaults({ ...defaults, defaulted: ['cpu', 'disk'] }, { cpus: 8 }).lowered).toEqual(
      [],
    );
  });
});
