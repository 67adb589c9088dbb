// The text of anything thrown, for messages and logs. Never throws itself: building an error
// must not fail (a thrown object without a prototype, or with a throwing toString, is text too).
export function errorText(error: unknown, { stack = false }: { stack?: boolean } = {}): string {
  try {
    if (error instanceof Error) return (stack && error.stack) || error.message;
    return String(error);
  } catch {
    try {
      return Object.prototype.toString.call(error);
    } catch {
      return 'unknown error';
    }
  }
}
