// The daemon's one logger: made once in main.ts and passed to every part that logs.
export type Logger = (line: string) => void;

/** Lines to stderr, each prefixed once with the binary's name. */
export const stderrLogger =
  (prefix = 'containarium'): Logger =>
  (line) => {
    process.stderr.write(`${prefix}: ${line}\n`);
  };

/** For parts given no logger (tests, tools): says nothing. */
export const silent: Logger = () => {};
