import { describe, expect, test } from 'bun:test';
import {
  cleanOutput,
  keepTail,
  lastLines,
  OUTPUT_CAP_BYTES,
  tidyOutput,
} from '../../src/shared/output.ts';

describe('cleanOutput', () => {
  test('removes colour, cursor and title escapes but keeps the text', () => {
    expect(cleanOutput('\u001b[1;31mred\u001b[0m plain')).toBe('red plain');
    expect(cleanOutput('a\u001b[2Kb\u001b[10;5Hc')).toBe('abc');
    expect(cleanOutput('\u001b]0;window title\u0007after')).toBe('after');
    expect(cleanOutput('\u001b]8;;http://x\u001b\\link\u001b]8;;\u001b\\')).toBe('link');
    expect(cleanOutput('\u001bcreset \u001b(Bascii')).toBe('reset ascii');
  });

  test('keeps newlines and tabs, turns CRLF into LF, drops other controls', () => {
    expect(cleanOutput('a\tb\r\nc\n')).toBe('a\tb\nc\n');
    expect(cleanOutput('bell\u0007 nul\u0000 bs\u0008 cr\r del\u007f c1\u009b')).toBe(
      'bell nul bs cr del c1',
    );
  });

  test('drops the Unicode bidirectional overrides that can hide text', () => {
    expect(cleanOutput('safe\u202egnp.exe\u2066x\u2069')).toBe('safegnp.exex');
  });

  test('leaves ordinary Unicode alone', () => {
    expect(cleanOutput('grüße – 日本 ✓')).toBe('grüße – 日本 ✓');
  });
});

describe('keepTail', () => {
  test('short text is unchanged', () => {
    expect(keepTail('hello', 10)).toEqual({ text: 'hello', truncated: false });
  });

  test('keeps the end, at most the cap in UTF-8 bytes', () => {
    expect(keepTail('0123456789', 4)).toEqual({ text: '6789', truncated: true });
    const long = `${'x'.repeat(OUTPUT_CAP_BYTES)}END`;
    const kept = keepTail(long);
    expect(kept.truncated).toBe(true);
    expect(kept.text.endsWith('END')).toBe(true);
    expect(Buffer.byteLength(kept.text)).toBe(OUTPUT_CAP_BYTES);
  });

  test('never splits a character', () => {
    // "é" is two bytes: a cut inside it starts after it instead.
    const kept = keepTail('éééé', 5);
    expect(kept.text).toBe('éé');
    expect(kept.text).not.toContain('\ufffd');
  });
});

describe('tidyOutput', () => {
  test('cleans before it measures, and reports an earlier cut', () => {
    const colour = `\u001b[31m${'a'.repeat(10)}\u001b[0m`;
    expect(tidyOutput(colour, false, 10)).toEqual({ text: 'a'.repeat(10), truncated: false });
    expect(tidyOutput('abc', true)).toEqual({ text: 'abc', truncated: true });
  });
});

describe('lastLines', () => {
  test('keeps the last lines that fit together, whole', () => {
    expect(lastLines(['aaaa', 'bb', 'cc'], 5)).toEqual({ lines: ['bb', 'cc'], truncated: true });
    expect(lastLines(['a', 'b'], 5)).toEqual({ lines: ['a', 'b'], truncated: false });
  });

  test('a last line longer than the room keeps its own tail', () => {
    expect(lastLines(['x', '0123456789'], 4)).toEqual({ lines: ['6789'], truncated: true });
  });
});
