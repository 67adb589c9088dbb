// Shortening text for messages: at a word boundary, so an error never ends mid-word.

/** Text of at most `max` characters; a cut falls between words and is marked with "…". */
export function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  const room = text.slice(0, Math.max(0, max - 1));
  // The room ends a word when the next character is a space; else back up to its last space.
  // A single word longer than the room is cut where it must be.
  const space = /\s/.test(text.charAt(room.length)) ? room.length : room.search(/\s\S*$/);
  const kept = space > 0 ? room.slice(0, space) : room;
  return `${kept.trimEnd()}…`;
}
