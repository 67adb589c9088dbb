import { describe, expect, test } from 'bun:test';
import {
  canonicalAddress,
  clientAddress,
  formatCidr,
  networkOf,
  parseCidr,
} from '../../src/shared/address.ts';

const cidrs = (...texts: string[]) =>
  texts.map((text) => {
    const cidr = parseCidr(text);
    if (!cidr) throw new Error(`not a CIDR: ${text}`);
    return cidr;
  });

describe('addresses', () => {
  test.each([
    ['127.0.0.1', '127.0.0.1'],
    ['::ffff:10.1.2.3', '10.1.2.3'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['[2001:db8::1]', '2001:db8::1'],
    ['fe80::1%eth0', 'fe80::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['::', '::'],
    ['unknown', 'unknown'],
  ])('%s is %s', (text, canonical) => {
    expect(canonicalAddress(text)).toBe(canonical);
  });

  test('the network of an address is its /24 or /64', () => {
    expect(networkOf('198.51.100.77')).toBe('198.51.100.0/24');
    expect(networkOf('::ffff:198.51.100.77')).toBe('198.51.100.0/24');
    expect(networkOf('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(networkOf('unknown')).toBe('unknown');
  });

  test('CIDRs: a bare address is a single host, host bits are cleared, nonsense is refused', () => {
    expect(cidrs('10.0.0.5', '10.1.2.3/8', 'fd00::1/8', '::1').map(formatCidr)).toEqual([
      '10.0.0.5/32',
      '10.0.0.0/8',
      'fd00::/8',
      '::1/128',
    ]);
    for (const bad of [
      '10.0.0.0/33',
      '10.0.0.0/',
      '10.0.0/8',
      'fd00::/129',
      'proxy',
      '10.0.0.0/-1',
    ]) {
      expect(parseCidr(bad)).toBeUndefined();
    }
  });
});

describe('clientAddress', () => {
  const trusted = cidrs('127.0.0.1', '10.0.0.0/8', 'fd00::/8');

  test('without a trusted peer the header is ignored', () => {
    expect(clientAddress('192.0.2.9', '203.0.113.7', trusted)).toBe('192.0.2.9');
    expect(clientAddress('127.0.0.1', '203.0.113.7', [])).toBe('127.0.0.1');
  });

  test('behind trusted proxies: the right-most entry that is not a trusted proxy', () => {
    expect(clientAddress('127.0.0.1', '203.0.113.7', trusted)).toBe('203.0.113.7');
    expect(clientAddress('::ffff:127.0.0.1', '1.1.1.1, 203.0.113.7, 10.0.0.3', trusted)).toBe(
      '203.0.113.7',
    );
    expect(clientAddress('fd00::2', '2001:db8::9, fd00::1', trusted)).toBe('2001:db8::9');
    expect(clientAddress('127.0.0.1', 'spoof, [2001:db8::9]:4711', trusted)).toBe('2001:db8::9');
    expect(clientAddress('127.0.0.1', '203.0.113.7:51000', trusted)).toBe('203.0.113.7');
  });

  test('a malformed entry stops the walk at the last trusted hop; no header means the peer', () => {
    expect(clientAddress('127.0.0.1', '203.0.113.7, not-an-ip', trusted)).toBe('127.0.0.1');
    expect(clientAddress('127.0.0.1', '203.0.113.7, garbage, 10.0.0.3', trusted)).toBe('10.0.0.3');
    expect(clientAddress('127.0.0.1', null, trusted)).toBe('127.0.0.1');
    expect(clientAddress('127.0.0.1', '10.0.0.1, 10.0.0.2', trusted)).toBe('10.0.0.1');
  });
});
