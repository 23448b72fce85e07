// The HTTP side of Idempotency-Key (http-api.md §9) for every write route: run the write under the caller's key (or
// without one), and send its answer, or the answer stored for the key with `Idempotent-Replayed: true`.

import type { FastifyReply, FastifyRequest } from 'fastify';
import { DriftError } from '../errors.js';
import type { IdempotencyEntryMaker, IdempotencyService, StoredAnswer } from '../service/idempotency.js';
import { sendJsonText } from './answers.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The request body's text as received ('' without a body): an Idempotency-Key names one exact request. */
    rawBody: string;
  }
}

/** The request schema's entry for the header, shared by every write route. */
export const idempotencyKeyHeader = {
  type: 'string',
  description:
    'Run this write once: a repeat with the same key, method, path and body gets the first 2xx answer again (Idempotent-Replayed: true); ' +
    'the key with another request is 422 idempotency_key_reused; a repeat while the first runs is 409 idempotency_in_progress. ' +
    '1 to 255 visible ASCII characters; kept --idempotency-ttl-ms.',
} as const;

/**
 * Runs `work` under the request's Idempotency-Key and sends the answer. `work` gets the maker of the entry its
 * commit records (undefined without a key): see IdempotencyService.run.
 */
export async function sendIdempotent(
  request: FastifyRequest,
  reply: FastifyReply,
  service: IdempotencyService,
  work: (entry: IdempotencyEntryMaker | undefined) => Promise<StoredAnswer>,
): Promise<FastifyReply> {
  const header = request.headers['idempotency-key'];
  if (Array.isArray(header)) throw new DriftError('bad_request', 'Send one Idempotency-Key header.');
  const call = { user: request.principal.username, key: header, method: request.method, path: request.url, body: request.rawBody };
  const result = await service.run(call, work);
  reply.code(result.status);
  for (const [name, value] of Object.entries(result.headers ?? {})) reply.header(name, value);
  if (result.replayed) reply.header('idempotent-replayed', 'true');
  return sendJsonText(reply, result.json);
}
