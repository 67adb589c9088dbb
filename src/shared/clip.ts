// Shortening text for messages: at a word boundary, so an error never ends mid-word.

/**
 * Text of at most `max` characters; a cut falls between words and is marked with "…". A word
 * too long for the room (a URL, a path) is not dropped whole: its start is kept and the mark
 * says how long it was, "…(600 characters)". Only where even the mark does not fit is the text
 * cut where it must be.
 */
export function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  const room = text.slice(0, Math.max(0, max - 1));
  // The room ends a word when the next character is a space; else back up to its last space.
  const space = /\s/.test(text.charAt(room.length)) ? room.length : room.search(/\s\S*$/);
  // Whole words, unless that would throw away most of the room for one long word.
  if (space > 0 && space >= room.length / 2)
    return `${room.slice(0, space).replace(/[\s,;]+$/, '')}…`;
  const start = space > 0 ? space + 1 : 0;
  const end = text.slice(start).search(/\s/);
  const mark = `…(${end < 0 ? text.length - start : end} characters)`;
  const keep = max - mark.length;
  return keep > start ? `${text.slice(0, keep)}${mark}` : `${room.trimEnd()}…`;
}
