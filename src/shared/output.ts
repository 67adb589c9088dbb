// Text that comes out of a container (command output, logs), made safe to show: terminal escapes
// and control characters removed, and a cap on its size that keeps the end. Both binaries use it:
// the daemon before it answers, mcp-server again before a model reads it.

/** Most bytes (UTF-8) of one stream of output that an answer holds: the tail is kept. */
export const OUTPUT_CAP_BYTES = 16 * 1024;

/** CSI ("ESC [" ... final byte), OSC ("ESC ]" ... BEL or ST), and the other ESC sequences (charset, reset). */
const ESCAPES =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: escapes are what it matches
  /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)?|\u001b[ -/]*[0-~]?/g;
/**
 * C0 controls but tab and newline, DEL, C1 controls, the Unicode bidirectional controls (the
 * Arabic letter mark, the marks and overrides, the isolates), the zero-width characters and byte
 * order mark, and the line and paragraph separators: what is invisible or moves text around.
 */
const CONTROLS =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: controls are what it matches
  /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g;

/** Without ANSI escapes and control characters; "\r\n" becomes "\n"; tabs and newlines stay. */
export function cleanOutput(text: string): string {
  return text.replace(/\r\n/g, '\n').replace(ESCAPES, '').replace(CONTROLS, '');
}

/** At most `maxBytes` of UTF-8 from the end of `text`, cut at a character boundary. */
export function keepTail(
  text: string,
  maxBytes = OUTPUT_CAP_BYTES,
): { text: string; truncated: boolean } {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return { text, truncated: false };
  let start = bytes.length - maxBytes;
  // Continuation bytes (10xxxxxx) belong to the character before: start after them.
  while (start < bytes.length && ((bytes[start] as number) & 0xc0) === 0x80) start++;
  return { text: bytes.subarray(start).toString('utf8'), truncated: true };
}

/** Cleaned, then capped keeping the tail; `truncated` also when the text was already cut. */
export function tidyOutput(
  text: string,
  alreadyCut = false,
  maxBytes = OUTPUT_CAP_BYTES,
): { text: string; truncated: boolean } {
  const kept = keepTail(cleanOutput(text), maxBytes);
  return { text: kept.text, truncated: kept.truncated || alreadyCut };
}

/**
 * The last lines that fit in `maxBytes` together (joined by newlines); `truncated` when earlier
 * lines were left out. A last line longer than the room keeps its own tail.
 */
export function lastLines(
  lines: readonly string[],
  maxBytes = OUTPUT_CAP_BYTES,
): { lines: string[]; truncated: boolean } {
  const kept: string[] = [];
  let room = maxBytes;
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i] as string;
    const size = Buffer.byteLength(line) + (kept.length > 0 ? 1 : 0);
    if (size > room) {
      if (kept.length === 0) kept.push(keepTail(line, maxBytes).text);
      return { lines: kept.reverse(), truncated: true };
    }
    kept.push(line);
    room -= size;
  }
  return { lines: kept.reverse(), truncated: false };
}
