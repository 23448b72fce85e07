// The stable, machine-readable error codes of the whole product, and the one error type that carries them.
// The engine and services throw DriftError with a code; only routes/problem.ts maps a code to an HTTP status.

export const errorCodes = [
  'bad_request',
  'validation_failed',
  'unauthorized',
  'forbidden',
  'user_locked',
  'not_found',
  'table_not_found',
  'table_exists',
  'row_not_found',
  'index_exists',
  'precondition_failed',
  'payload_too_large',
  'unsupported_media_type',
  'rate_limited',
  'transaction_not_found',
  'transaction_expired',
  'transaction_aborted',
  'serialization_failure',
  'deadlock_detected',
  'lock_timeout',
  'read_only',
  'idempotency_key_reused',
  'idempotency_in_progress',
  'unavailable',
  'internal',
] as const;

export type ErrorCode = (typeof errorCodes)[number];

/** Extra members of the problem body (e.g. `currentSeq`, `errors`, `retryable`, `opIndex`). */
export type ErrorFields = Record<string, unknown>;

/** An operating error: something a user or the environment caused, reported with a stable code. */
export class DriftError extends Error {
  readonly code: ErrorCode;
  readonly fields: ErrorFields;

  constructor(code: ErrorCode, message: string, fields: ErrorFields = {}) {
    super(message);
    this.name = 'DriftError';
    this.code = code;
    this.fields = fields;
  }
}

export function isDriftError(error: unknown): error is DriftError {
  return error instanceof DriftError;
}

/** Codes after which a transaction is aborted and a client may retry the whole transaction. */
export const retryableCodes: ReadonlySet<ErrorCode> = new Set([
  'serialization_failure',
  'deadlock_detected',
  'lock_timeout',
]);
