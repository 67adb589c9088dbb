// Client addresses: parsing IPv4 and IPv6, --trusted-proxy ranges, the network a failed login is
// also counted against, and the client behind a trusted reverse proxy (X-Forwarded-For).
import { isIPv4, isIPv6 } from 'node:net';

/** An address as bytes: 4 for IPv4 (IPv4-mapped IPv6 included), 16 for IPv6. */
type Bytes = readonly number[];

/** An address range such as 10.0.0.0/8 or fd00::/8; a single address is /32 or /128. */
export type Cidr = { bytes: Bytes; bits: number };

export const CIDR_FORM = 'an address or CIDR range, like 10.0.0.5, 10.0.0.0/8 or fd00::/8';

/** Parses an IP address (IPv6 may carry brackets or a zone); undefined when it is not one. */
export function parseAddress(text: string): Bytes | undefined {
  let host = text.trim();
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  const zone = host.indexOf('%');
  if (zone !== -1) host = host.slice(0, zone);
  if (isIPv4(host)) return host.split('.').map(Number);
  if (!isIPv6(host)) return undefined;
  const hextets = (part: string): number[] =>
    part === ''
      ? []
      : part.split(':').flatMap((group) => {
          if (!group.includes('.')) return [Number.parseInt(group, 16)];
          const [a, b, c, d] = group.split('.').map(Number) as [number, number, number, number];
          return [(a << 8) | b, (c << 8) | d];
        });
  const [head = '', tail] = host.split('::');
  const front = hextets(head);
  const back = tail === undefined ? [] : hextets(tail);
  const groups = [...front, ...Array(8 - front.length - back.length).fill(0), ...back];
  const bytes = groups.flatMap((group) => [group >> 8, group & 0xff]);
  const mapped =
    bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  return mapped ? bytes.slice(12) : bytes;
}

/** The canonical text of an address: dotted IPv4, or IPv6 with the longest zero run as "::". */
export function formatAddress(bytes: Bytes): string {
  if (bytes.length === 4) return bytes.join('.');
  const groups = Array.from(
    { length: 8 },
    (_, i) => ((bytes[2 * i] ?? 0) << 8) | (bytes[2 * i + 1] ?? 0),
  );
  let best = { start: -1, length: 1 };
  for (let i = 0; i < 8; i++) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.length) best = { start: i, length: j - i };
    i = j;
  }
  const hex = (part: number[]) => part.map((group) => group.toString(16)).join(':');
  if (best.start === -1) return hex(groups);
  return `${hex(groups.slice(0, best.start))}::${hex(groups.slice(best.start + best.length))}`;
}

/** The canonical form of an address, or the text unchanged when it is not an address. */
export function canonicalAddress(text: string): string {
  const bytes = parseAddress(text);
  return bytes ? formatAddress(bytes) : text;
}

/** Parses "ADDRESS" or "ADDRESS/BITS"; undefined when it is neither. Host bits are cleared. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  const bytes = parseAddress(slash === -1 ? text : text.slice(0, slash));
  if (!bytes) return undefined;
  const size = bytes.length * 8;
  const suffix = slash === -1 ? String(size) : text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(suffix) || Number(suffix) > size) return undefined;
  return { bytes: masked(bytes, Number(suffix)), bits: Number(suffix) };
}

export const formatCidr = (cidr: Cidr): string => `${formatAddress(cidr.bytes)}/${cidr.bits}`;

const masked = (bytes: Bytes, bits: number): number[] =>
  bytes.map((byte, i) => byte & (0xff << (8 - Math.min(8, Math.max(0, bits - 8 * i)))) & 0xff);

export function inCidr(bytes: Bytes, cidr: Cidr): boolean {
  if (bytes.length !== cidr.bytes.length) return false;
  const mine = masked(bytes, cidr.bits);
  return mine.every((byte, i) => byte === cidr.bytes[i]);
}

/**
 * The network an address belongs to for counting failed logins: its /24 for IPv4, its /64 for
 * IPv6 (the smallest block a provider hands out). Text that is not an address is its own network.
 */
export function networkOf(address: string): string {
  const bytes = parseAddress(address);
  if (!bytes) return address;
  const bits = bytes.length === 4 ? 24 : 64;
  return `${formatAddress(masked(bytes, bits))}/${bits}`;
}

/** One X-Forwarded-For entry, which some proxies write with a port ("1.2.3.4:5678", "[::1]:80"). */
function forwardedAddress(entry: string): Bytes | undefined {
  const text = entry.trim();
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(text);
  const withPort = /^(\d+\.\d+\.\d+\.\d+):\d+$/.exec(text);
  return parseAddress(bracketed?.[1] ?? withPort?.[1] ?? text);
}

/**
 * Who is calling. The peer, unless it is one of the trusted proxies: then the right-most
 * X-Forwarded-For entry that is not itself a trusted proxy. Entries left of that are written by
 * the client and cannot be believed; a malformed entry stops the walk at the last trusted hop.
 */
export function clientAddress(
  peer: string,
  forwardedFor: string | null,
  trustedProxies: readonly Cidr[],
): string {
  const peerBytes = parseAddress(peer);
  if (!peerBytes) return peer;
  const trusted = (bytes: Bytes) => trustedProxies.some((cidr) => inCidr(bytes, cidr));
  let client = peerBytes;
  if (trusted(client) && forwardedFor !== null) {
    for (const entry of forwardedFor.split(',').reverse()) {
      const hop = forwardedAddress(entry);
      if (!hop) break;
      client = hop;
      if (!trusted(hop)) break;
    }
  }
  return formatAddress(client);
}
