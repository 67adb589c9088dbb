// Writes .tar.gz and .zip archives with Bun alone, byte-for-byte the same for the same inputs.
//
// Release archives and the .mcpb bundle must not depend on which tar, gzip or zip a runner
// has, nor on its clock, time zone or user: names are sorted, owners are 0, times fixed.

export type Entry = {
  /** Path inside the archive, with forward slashes. */
  name: string;
  data: Uint8Array<ArrayBuffer>;
  /** Unix permission bits, e.g. 0o755 for an executable. */
  mode: number;
};

/** Compression level of libdeflate: 9 is as small as zip -9 in a third of the time. */
const LEVEL = 9;
const MAX_32 = 0xffff_ffff;

const sorted = (entries: readonly Entry[]) =>
  [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

/** Writes `value` as a NUL-terminated octal field of `width` bytes. */
function octal(header: Uint8Array, offset: number, width: number, value: number): void {
  const text = value.toString(8).padStart(width - 1, '0');
  if (text.length > width - 1)
    throw new Error(`${value} does not fit a tar field of ${width} bytes`);
  header.set(new TextEncoder().encode(text), offset);
}

/** One POSIX ustar header block. */
function tarHeader(entry: Entry, mtime: number): Uint8Array {
  const header = new Uint8Array(512);
  const name = new TextEncoder().encode(entry.name);
  if (name.length > 100) throw new Error(`tar entry name longer than 100 bytes: ${entry.name}`);
  header.set(name, 0);
  octal(header, 100, 8, entry.mode & 0o7777);
  octal(header, 108, 8, 0); // uid
  octal(header, 116, 8, 0); // gid
  octal(header, 124, 12, entry.data.length);
  octal(header, 136, 12, mtime);
  header.fill(0x20, 148, 156); // the checksum counts its own field as spaces
  header[156] = 0x30; // '0': regular file
  header.set(new TextEncoder().encode('ustar\u000000'), 257);
  const sum = header.reduce((total, byte) => total + byte, 0);
  header.set(new TextEncoder().encode(`${sum.toString(8).padStart(6, '0')}\u0000 `), 148);
  return header;
}

/** A gzip-compressed ustar archive. */
export function tarGz(entries: readonly Entry[], mtime: number): Uint8Array<ArrayBuffer> {
  const parts: Uint8Array[] = [];
  for (const entry of sorted(entries)) {
    parts.push(tarHeader(entry, mtime), entry.data);
    const pad = (512 - (entry.data.length % 512)) % 512;
    if (pad) parts.push(new Uint8Array(pad));
  }
  parts.push(new Uint8Array(1024)); // two zero blocks end the archive
  const tar = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    tar.set(part, offset);
    offset += part.length;
  }
  // Bun's gzip header carries no file name and a zero time.
  return Bun.gzipSync(tar, { library: 'libdeflate', level: LEVEL });
}

/** MS-DOS date and time fields for a Unix time, in UTC. */
function dosTime(epochSeconds: number): { time: number; date: number } {
  const d = new Date(Math.max(epochSeconds * 1000, Date.UTC(1980, 0, 1)));
  return {
    time: (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | (d.getUTCSeconds() >> 1),
    date: ((d.getUTCFullYear() - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate(),
  };
}

/** A zip archive (deflate, no extra fields) that keeps Unix modes, like `zip -X`. */
export function zip(entries: readonly Entry[], mtime: number): Uint8Array<ArrayBuffer> {
  const { time, date } = dosTime(mtime);
  const locals: Uint8Array[] = [];
  const centrals: Uint8Array[] = [];
  let offset = 0;
  for (const entry of sorted(entries)) {
    const name = new TextEncoder().encode(entry.name);
    const compressed = Bun.deflateSync(entry.data, { library: 'libdeflate', level: LEVEL });
    const crc = Bun.hash.crc32(entry.data);
    if (entry.data.length > MAX_32 || offset > MAX_32) {
      throw new Error(`${entry.name}: archives over 4 GiB need zip64`);
    }
    const utf8 = /[^\u0020-\u007e]/.test(entry.name) ? 0x0800 : 0;

    const local = new Uint8Array(30 + name.length);
    const l = new DataView(local.buffer);
    l.setUint32(0, 0x04034b50, true);
    l.setUint16(4, 20, true); // version needed: 2.0 (deflate)
    l.setUint16(6, utf8, true);
    l.setUint16(8, 8, true); // deflate
    l.setUint16(10, time, true);
    l.setUint16(12, date, true);
    l.setUint32(14, crc, true);
    l.setUint32(18, compressed.length, true);
    l.setUint32(22, entry.data.length, true);
    l.setUint16(26, name.length, true);
    local.set(name, 30);

    const central = new Uint8Array(46 + name.length);
    const c = new DataView(central.buffer);
    c.setUint32(0, 0x02014b50, true);
    c.setUint16(4, (3 << 8) | 20, true); // made by Unix, so readers apply the mode bits
    c.setUint16(6, 20, true);
    c.setUint16(8, utf8, true);
    c.setUint16(10, 8, true);
    c.setUint16(12, time, true);
    c.setUint16(14, date, true);
    c.setUint32(16, crc, true);
    c.setUint32(20, compressed.length, true);
    c.setUint32(24, entry.data.length, true);
    c.setUint16(28, name.length, true);
    c.setUint32(38, ((0o100000 | (entry.mode & 0o7777)) << 16) >>> 0, true); // regular file + mode
    c.setUint32(42, offset, true);
    central.set(name, 46);

    locals.push(local, compressed);
    centrals.push(central);
    offset += local.length + compressed.length;
  }
  const centralSize = centrals.reduce((n, p) => n + p.length, 0);
  const end = new Uint8Array(22);
  const e = new DataView(end.buffer);
  e.setUint32(0, 0x06054b50, true);
  e.setUint16(8, centrals.length, true);
  e.setUint16(10, centrals.length, true);
  e.setUint32(12, centralSize, true);
  e.setUint32(16, offset, true);

  const out = new Uint8Array(offset + centralSize + end.length);
  let at = 0;
  for (const part of [...locals, ...centrals, end]) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
