// The row routes of http-api.md §4: put, merge-patch, soft-delete and read rows, a key's history, pages of a table.
// Thin: headers become WriteConditions here, every decision (existence, preconditions, asOf) is the Database's.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { CommitOutcome, Database, IdempotentWrite, TxRef, WriteConditions, WriteResult } from '../engine/index.js';
import type { TransactionService } from '../service/transactions.js';
import type { IdempotencyService, StoredAnswer } from '../service/idempotency.js';
import { idempotencyKeyHeader, sendIdempotent } from './idempotent.js';
import { inTransaction } from './transaction-context.js';
import type { Doc } from '../engine/index.js';
import { DriftError } from '../errors.js';
import { limits } from '../limits.js';
import { sendHistory, sendPage } from './answers.js';
import { minSeqParam } from './min-seq.js';
import {
  addSharedSchemas,
  dataValidatorCompiler,
  problemResponses,
  ref,
  rowParams,
  tableParams,
  transactionHeaders,
  transactionIdHeader,
} from './schemas.js';

interface RowParams {
  table: string;
  key: string;
}

interface ConditionalHeaders {
  'if-match'?: string;
  'if-none-match'?: string;
}

const conditionalHeaders = {
  type: 'object',
  properties: {
    'transaction-id': transactionIdHeader,
    'idempotency-key': idempotencyKeyHeader,
    'if-match': {
      type: 'string',
      description:
        'Write only if the row\'s current version is this ETag ("<seq>"), or with * only if the row exists. Anything but * ' +
        'or one strong ETag as DriftDB sends it: 400 bad_request. Failing: 412 precondition_failed with currentSeq.',
      examples: ['"42"', '*'],
    },
    'if-none-match': {
      type: 'string',
      description: 'Only * is accepted on writes: write only if the row does not exist (a deleted row does not). Other values: 400 bad_request.',
    },
  },
};

const readHeaders = {
  type: 'object',
  properties: {
    'transaction-id': transactionIdHeader,
    'if-none-match': {
      type: 'string',
      description: 'ETags the client holds (weak comparison, or *): when one names the version read, the answer is 304 Not Modified.',
    },
  },
};

// The raw string goes to the engine, which tells a seq from an RFC 3339 instant and refuses anything else.
// Query strings are closed like bodies: a misspelt `asof=12` must fail, not silently read the newest state.
const asOfParam = {
  type: 'string',
  description:
    'Read the state at this point: a commit seq (asOf=1234) or an RFC 3339 instant (asOf=2026-11-25T10:00:00Z, the ' +
    'state after the last commit at or before it; equal to a version\'s ts includes it). Malformed, or a seq beyond ' +
    'the newest: 400 validation_failed.',
};

// A strong ETag as DriftDB sends it: a decimal seq in double quotes, without leading zeros (strong ETags compare
// byte for byte, so "066" is not "66").
const etagPattern = /^"(0|[1-9]\d{0,15})"$/;

function etag(seq: number): string {
  return `"${seq}"`;
}

/** Turns If-Match / If-None-Match into the engine's conditions; a header it cannot honour is a bad request. */
export function writeConditions(headers: ConditionalHeaders): WriteConditions {
  const conditions: WriteConditions = {};
  const ifMatch = headers['if-match']?.trim();
  if (ifMatch !== undefined) {
    const seq = etagPattern.exec(ifMatch)?.[1];
    if (ifMatch === '*') conditions.ifMatch = '*';
    else if (seq !== undefined && Number.isSafeInteger(Number(seq))) conditions.ifMatch = Number(seq);
    else throw new DriftError('bad_request', 'If-Match must be * or one ETag as DriftDB sends it, e.g. "42".');
  }
  const ifNoneMatch = headers['if-none-match']?.trim();
  if (ifNoneMatch !== undefined) {
    if (ifNoneMatch !== '*') throw new DriftError('bad_request', 'If-None-Match on a write accepts only *.');
    conditions.ifNoneMatch = true;
  }
  return conditions;
}

/** True when an If-None-Match list of a GET names the version's ETag (or is *): the client's copy is current. */
function clientHasVersion(header: string | undefined, seq: number | null): boolean {
  if (header === undefined || seq === null) return false;
  return header.split(',').some((tag) => {
    const trimmed = tag.trim();
    return trimmed === '*' || trimmed.replace(/^W\//, '') === etag(seq);
  });
}

/** A write's answer: 201 when it created the row, its seq (null inside a transaction) and, once committed, ETag. */
function writeAnswer(result: WriteResult): StoredAnswer {
  const status = result.created ? 201 : 200;
  const json = JSON.stringify({ key: result.key, seq: result.seq });
  // Two literals, not a conditional spread: with a key this runs twice per write (the answer recorded, the answer sent).
  return result.seq === null ? { status, json } : { status, json, headers: { etag: etag(result.seq) } };
}

/**
 * Runs one row write under the request's Idempotency-Key and sends its answer. Inside a transaction the answer is
 * the write's (seq null), recorded with the transaction's commit; on its own, the commit's.
 */
function sendWrite(
  req: FastifyRequest,
  reply: FastifyReply,
  opts: { transactions: TransactionService; idempotency: IdempotencyService },
  write: (ref: TxRef & IdempotentWrite) => Promise<WriteResult>,
): Promise<FastifyReply> {
  reply.rows = 1;
  const key = (req.params as RowParams).key;
  const joinsTransaction = req.headers['transaction-id'] !== undefined;
  const answer = (outcome: CommitOutcome): StoredAnswer =>
    writeAnswer({ key, seq: joinsTransaction ? null : outcome.seq, created: outcome.created === true });
  return sendIdempotent(req, reply, opts.idempotency, async (entry) => {
    const idempotency = entry?.(answer);
    return writeAnswer(await inTransaction(opts.transactions, req, (tx) => write(idempotency === undefined ? tx : { ...tx, idempotency })));
  });
}

export async function rowsRoutes(
  app: FastifyInstance,
  opts: { db: () => Database; transactions: TransactionService; idempotency: IdempotencyService },
): Promise<void> {
  const inTx = <T>(req: FastifyRequest, work: (ref: TxRef) => Promise<T> | T): Promise<T> =>
    inTransaction(opts.transactions, req, work);
  addSharedSchemas(app);
  app.setValidatorCompiler(dataValidatorCompiler);
  const writeResponses = (replaced: string, created: string) => ({
    200: { ...ref('WriteResult'), description: replaced },
    201: { ...ref('WriteResult'), description: created },
    ...problemResponses({ extra: [404, 412], withBody: true, inTransaction: true, idempotent: true }),
  });
  const etags = { 200: ['ETag'], 201: ['ETag'], 304: ['ETag'] };
  const writeHeaders = { 200: ['ETag', 'Idempotent-Replayed'], 201: ['ETag', 'Idempotent-Replayed'] };

  app.put<{ Params: RowParams; Body: Doc; Headers: ConditionalHeaders }>('/v1/tables/:table/rows/:key', {
    config: { permission: 'write' },
    schema: {
      operationId: 'putRow',
      tags: ['rows'],
      summary: 'Insert or replace a row',
      description:
        'Stores the whole document under the key. A document without the primary-key field gets it from the path key; ' +
        'one whose primary-key field differs from it is refused (400 validation_failed). 404 table_not_found; 412 ' +
        'precondition_failed when a condition does not hold.',
      params: rowParams,
      headers: conditionalHeaders,
      body: ref('Document'),
      responseHeaders: writeHeaders,
      response: writeResponses('Replaced.', 'Inserted.'),
    },
    handler: async (req, reply) => {
      const { table, key } = req.params;
      const conditions = writeConditions(req.headers);
      return sendWrite(req, reply, opts, (ref) => opts.db().put({ table, key, doc: req.body, ...conditions, ...ref }));
    },
  });

  app.patch<{ Params: RowParams; Body: Doc; Headers: ConditionalHeaders }>('/v1/tables/:table/rows/:key', {
    config: { permission: 'write' },
    schema: {
      operationId: 'patchRow',
      tags: ['rows'],
      summary: 'Merge-patch a row (RFC 7396)',
      description:
        'Applies a JSON Merge Patch (a `null` member removes that member) and creates the row when it is absent. A patch ' +
        'may not change the primary key (400 validation_failed). The body may be sent as application/json or ' +
        'application/merge-patch+json.',
      params: rowParams,
      headers: conditionalHeaders,
      body: ref('Document'),
      consumes: ['application/merge-patch+json'],
      responseHeaders: writeHeaders,
      response: writeResponses('Changed.', 'Created.'),
    },
    handler: async (req, reply) => {
      const { table, key } = req.params;
      const conditions = writeConditions(req.headers);
      return sendWrite(req, reply, opts, (ref) => opts.db().patch({ table, key, patch: req.body, ...conditions, ...ref }));
    },
  });

  app.delete<{ Params: RowParams; Headers: ConditionalHeaders }>('/v1/tables/:table/rows/:key', {
    config: { permission: 'write' },
    schema: {
      operationId: 'deleteRow',
      tags: ['rows'],
      summary: 'Soft-delete a row',
      description: 'The row is gone from reads and kept in history. Deleting an absent row: 404 row_not_found.',
      params: rowParams,
      headers: conditionalHeaders,
      responseHeaders: writeHeaders,
      response: { 200: { ...ref('WriteResult'), description: 'Deleted; `seq` is the delete event.' }, ...problemResponses({ extra: [404, 412], inTransaction: true, idempotent: true }) },
    },
    handler: async (req, reply) => {
      const { table, key } = req.params;
      const conditions = writeConditions(req.headers);
      return sendWrite(req, reply, opts, (ref) => opts.db().delete({ table, key, ...conditions, ...ref }));
    },
  });

  app.get<{ Params: RowParams; Querystring: { asOf?: string } }>('/v1/tables/:table/rows/:key', {
    config: { permission: 'read' },
    schema: {
      operationId: 'getRow',
      tags: ['rows'],
      summary: 'Read a row',
      description:
        'The document now, or as of `asOf`. 404 row_not_found when the row is absent at that point; 400 ' +
        'validation_failed for a malformed asOf or a seq beyond the newest.',
      params: rowParams,
      querystring: { type: 'object', properties: { asOf: asOfParam, minSeq: minSeqParam }, additionalProperties: false },
      headers: readHeaders,
      responseHeaders: etags,
      response: {
        200: { ...ref('Document'), description: 'The document.' },
        304: { type: 'null', description: "Not modified: If-None-Match names the version's ETag." },
        ...problemResponses({ extra: [404], inTransaction: true }),
      },
    },
    handler: async (req, reply) => {
      const { table, key } = req.params;
      const row = await inTx(req, (tx) => opts.db().get({ table, key, asOf: req.query.asOf, ...tx }));
      reply.rows = 1;
      if (row.seq !== null) reply.header('etag', etag(row.seq));
      if (clientHasVersion(req.headers['if-none-match'], row.seq)) return reply.code(304).send();
      // The stored JSON text is the answer: no parse and re-serialization on the hottest read path.
      return reply.type('application/json; charset=utf-8').send(row.json);
    },
  });

  app.get<{ Params: RowParams }>('/v1/tables/:table/rows/:key/history', {
    config: { permission: 'read' },
    schema: {
      operationId: 'getRowHistory',
      tags: ['rows'],
      summary: "A key's history",
      description:
        'Every event of the key, oldest first; `doc` is the full document after the event, null for a delete. A deleted ' +
        'key answers 200; a key never written 404 row_not_found. This route has no pages: a history over 32 MiB of ' +
        "JSON (historyBytesMax, counting each version's document and about 80 bytes around it) is 400 bad_request, and " +
        'POST /v1/query with `"history": true` and a where on the primary-key field pages through the same versions. ' +
        'Inside a transaction, the committed events its snapshot sees (its own pending writes are not events yet); ' +
        'serializable validates this read at commit.',
      params: rowParams,
      querystring: { type: 'object', properties: { minSeq: minSeqParam }, additionalProperties: false },
      headers: transactionHeaders,
      response: { 200: { ...ref('History'), description: 'The history.' }, ...problemResponses({ extra: [404], inTransaction: true }) },
    },
    handler: async (req, reply) => {
      const history = await inTx(req, (tx) => opts.db().history({ table: req.params.table, key: req.params.key, ...tx }));
      return sendHistory(reply, history);
    },
  });

  app.get<{ Params: { table: string }; Querystring: { limit?: number; cursor?: string; asOf?: string } }>(
    '/v1/tables/:table/rows',
    {
      config: { permission: 'read' },
      schema: {
        operationId: 'listRows',
        tags: ['rows'],
        summary: 'A page of rows in key order',
        description:
          'Keys are ordered by the code points of their string form ("10" before "9"). Following `nextCursor` to the end ' +
          "returns every row exactly once, all read at the first page's snapshot `seq`. A page ends before `limit` rows, " +
          'with a `nextCursor`, when its documents would pass 16 MiB of JSON (pageBytesMax); it always holds at least one row.',
        params: tableParams,
        querystring: {
          type: 'object',
          properties: {
            limit: {
              type: 'integer',
              minimum: 1,
              maximum: limits.pageLimitMax,
              description: `Rows per page, 1..${limits.pageLimitMax}; default ${limits.pageLimitDefault}. Outside the range: 400 validation_failed, not clamped.`,
            },
            cursor: { type: 'string', description: 'The nextCursor of the previous page, exactly as received.' },
            asOf: asOfParam,
            minSeq: minSeqParam,
          },
          additionalProperties: false,
        },
        headers: transactionHeaders,
        response: { 200: { ...ref('Page'), description: 'A page.' }, ...problemResponses({ extra: [404], inTransaction: true }) },
      },
    },
    async (req, reply) => {
      const { limit, cursor, asOf } = req.query;
      return sendPage(reply, await inTx(req, (tx) => opts.db().scan({ table: req.params.table, limit, cursor, asOf, ...tx })));
    },
  );
}
