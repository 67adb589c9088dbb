// Sizes like "4GB" or "512MiB": one parser for mcp-server's validation and the daemon's Incus config.

const UNITS: Record<string, number> = {
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  PB: 1e15,
  KIB: 2 ** 10,
  MIB: 2 ** 20,
  GIB: 2 ** 30,
  TIB: 2 ** 40,
  PIB: 2 ** 50,
};

/** Canonical spelling of each unit, as Incus writes it. */
const CANONICAL: Record<string, string> = {
  B: 'B',
  KB: 'kB',
  MB: 'MB',
  GB: 'GB',
  TB: 'TB',
  PB: 'PB',
  KIB: 'KiB',
  MIB: 'MiB',
  GIB: 'GiB',
  TIB: 'TiB',
  PIB: 'PiB',
};

/** The smallest size accepted, 1 MiB. */
export const MIN_BYTES = 2 ** 20;

const SIZE = /^(\d+(?:\.\d+)?)\s*([KMGTP]?I?B)$/i;

export const SIZE_FORM =
  'a size of at least 1MiB with a unit, like "4GB", "2048MB", "4GiB" or "512MiB"';

export type Size = {
  /** The size in bytes. */
  bytes: number;
  /** The same size as Incus expects it, in the unit the user chose ("4GB" stays "4GB"). */
  incus: string;
};

/** Parses a size with a unit; returns undefined for anything that is not a positive size. */
export function parseSize(input: string): Size | undefined {
  const match = SIZE.exec(input.trim());
  if (!match) return undefined;
  const [, number, rawUnit] = match as unknown as [string, string, string];
  const unit = rawUnit.toUpperCase();
  const factor = UNITS[unit];
  if (factor === undefined) return undefined;
  const bytes = Number(number) * factor;
  // Below 1 MiB no container can run or hold an image; above 2^62 bytes Incus overflows.
  if (!Number.isFinite(bytes) || bytes < MIN_BYTES || bytes > 2 ** 62) return undefined;
  // Incus only takes whole numbers, so "1.5GB" becomes bytes; the limit is still exactly what was asked.
  const whole = /^\d+$/.test(number);
  if (!whole && !Number.isInteger(bytes)) return undefined;
  const incus = whole ? `${BigInt(number)}${CANONICAL[unit]}` : `${bytes}B`;
  return { bytes, incus };
}

/** Bytes in binary units for people: "512 MiB", "4 GiB", "1.5 TiB". */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return 'unknown';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let index = 0;
  while (value >= 1024 && index < units.length - 1) {
    value /= 1024;
    index += 1;
  }
  const shown = index === 0 || value >= 100 ? Math.round(value) : Math.round(value * 10) / 10;
  return `${shown} ${units[index]}`;
}

/** Parses a whole number of CPU cores ("4" or 4); undefined unless 1 to 1024. */
export function parseCpu(input: string | number): number | undefined {
  const text = String(input).trim();
  if (!/^\d+$/.test(text)) return undefined;
  const cores = Number(text);
  return cores >= 1 && cores <= 1024 ? cores : undefined;
}

export const CPU_FORM = 'a whole number of CPU cores from 1 to 1024, like "4"';

/** How many CPUs a CPU limit (Incus `limits.cpu`) gives: "4" → 4, "0-3" → 4, "0,2" → 2; undefined when unset or odd. */
export function cpuCount(limit: string | undefined): number | undefined {
  if (!limit) return undefined;
  if (/^\d+$/.test(limit)) return Number(limit) || undefined;
  let count = 0;
  for (const part of limit.split(',')) {
    const range = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!range) return undefined;
    const [first, last = first] = [Number(range[1]), range[2] ? Number(range[2]) : undefined];
    if (last < first) return undefined;
    count += last - first + 1;
  }
  return count || undefined;
}
