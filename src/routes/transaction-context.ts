// Joins a request to the transaction named by its Transaction-Id header, or runs it as autocommit without one.

import type { FastifyRequest } from 'fastify';
import type { TxRef } from '../engine/index.js';
import { DriftError } from '../errors.js';
import type { TransactionService } from '../service/transactions.js';

const transactionIdPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Runs `work` in the request's transaction (checked to be the caller's, open and not expired) or as autocommit,
 * handing it the engine's reference to spread into its input: `{ tx }` (the transaction carries the row policies it
 * began with), or the caller's row policies for autocommit.
 */
export async function inTransaction<T>(
  transactions: TransactionService,
  request: FastifyRequest,
  work: (ref: TxRef) => Promise<T> | T,
): Promise<T> {
  const header = request.headers['transaction-id'];
  if (header === undefined) return work({ policies: request.rowPolicies });
  const id = Array.isArray(header) ? undefined : header.trim();
  if (id === undefined || !transactionIdPattern.test(id)) {
    throw new DriftError('transaction_not_found', 'Transaction-Id must be the id of an open transaction.');
  }
  return transactions.run(request.principal.username, id, (tx) => work({ tx }));
}


/**
 * For routes that always commit on their own (table and index changes, batches): a Transaction-Id is refused with
 * `why`, so a client never believes a later rollback undoes what the request did.
 */
export function refuseTransactionId(request: FastifyRequest, why: string): void {
  if (request.headers['transaction-id'] !== undefined) throw new DriftError('bad_request', why);
}
