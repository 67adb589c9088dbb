// Go's strconv.ParseBool, as upstream reads flags, query parameters and CONTAINARIUM_DEBUG.

const TRUE = new Set(['1', 't', 'T', 'true', 'TRUE', 'True']);
const FALSE = new Set(['0', 'f', 'F', 'false', 'FALSE', 'False']);

/** true or false for Go's spellings; undefined for anything else. */
export function parseBool(value: string | undefined): boolean | undefined {
  const text = value?.trim() ?? '';
  return TRUE.has(text) ? true : FALSE.has(text) ? false : undefined;
}

/** Only Go's true spellings are true; anything else, missing included, is false. */
export const isTrue = (value: string | undefined): boolean => parseBool(value) === true;
