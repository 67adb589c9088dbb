// Daemon errors that carry an honest HTTP status; the HTTP layer turns them into {"code","error"} bodies.

export type ErrorKind =
  | 'invalid' // 400
  | 'forbidden' // 403
  | 'not_found' // 404
  | 'conflict' // 409
  | 'busy' // 409: another operation holds the instance; try again
  | 'internal' // 500
  | 'unavailable'; // 503

export const STATUS: Record<ErrorKind, number> = {
  invalid: 400,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  busy: 409,
  internal: 500,
  unavailable: 503,
};

/** gRPC code names, so error strings read like upstream's "rpc error: code = X desc = ...". */
export const GRPC_CODE: Record<ErrorKind, string> = {
  invalid: 'InvalidArgument',
  forbidden: 'PermissionDenied',
  not_found: 'NotFound',
  conflict: 'AlreadyExists',
  busy: 'Aborted',
  internal: 'Internal',
  unavailable: 'Unavailable',
};

export class DaemonError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'DaemonError';
  }

  get status(): number {
    return STATUS[this.kind];
  }
}

export const isDaemonError = (error: unknown): error is DaemonError => error instanceof DaemonError;
