// The DaemonError a promise rejects with, for tests that look at its status and message.
import { expect } from 'bun:test';
import { DaemonError } from '../../src/daemon/errors.ts';

export async function rejection(promise: Promise<unknown>): Promise<DaemonError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(DaemonError);
    return error as DaemonError;
  }
  throw new Error('expected a rejection');
}
