import { describe, expect, test } from 'bun:test';
import { errorText } from '../../src/shared/error-text.ts';

describe('errorText', () => {
  test('an Error is its message (or stack when asked); anything else its string', () => {
    const error = new Error('boom');
    expect(errorText(error)).toBe('boom');
    expect(errorText(error, { stack: true })).toStartWith('Error: boom\n');
    expect(errorText('plain')).toBe('plain');
    expect(errorText(42)).toBe('42');
  });

  test('never throws: no prototype, a throwing toString, a throwing message getter', () => {
    expect(errorText(Object.create(null))).toBe('[object Object]');
    const hostile = {
      toString() {
        throw new Error('no');
      },
    };
    expect(errorText(hostile)).toBe('[object Object]');
    const getter = new Error('x');
    Object.defineProperty(getter, 'message', {
      get() {
        throw new Error('no');
      },
    });
    expect(errorText(getter)).toBe('[object Error]');
  });
});
