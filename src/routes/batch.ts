// POST /v1/batch (http-api.md §6): several operations in one transaction, all or nothing. A failing operation
// answers its own error with `opIndex`, and nothing is written.

import type { FastifyInstance } from 'fastify';
import { isolationLevels, type Database, type Isolation, type QuerySpec, type RowPolicies, type Transaction } from '../engine/index.js';
import { DriftError, isDriftError } from '../errors.js';
import { limits, MiB } from '../limits.js';
import { pageMembers } from './answers.js';
import { refuseTransactionId } from './transaction-context.js';
import { idempotencyKeyHeader, sendIdempotent } from './idempotent.js';
import type { IdempotencyEntryMaker, IdempotencyService } from '../service/idempotency.js';
import { closedObject, dataValidatorCompiler, problemResponses, queryProperties } from './schemas.js';
import { minSeqParam } from './min-seq.js';

type BatchOp =
  | { op: 'put' | 'patch'; table: string; key: string; doc: object; ifSeq?: number }
  | { op: 'delete'; table: string; key: string; ifSeq?: number }
  | { op: 'get'; table: string; key: string }
  | ({ op: 'query' } & QuerySpec);

interface BatchBody {
  isolation?: Isolation;
  ops: BatchOp[];
}

// A table name as the table routes take it: names starting with "_" belong to the system and are refused here too.
const table = { $ref: 'TableName#' };
const key = { type: 'string', minLength: 1, maxLength: limits.keyLengthMax };
const ifSeq = { type: 'integer', minimum: 0, description: "Apply only if the row's current version is this seq." };

// One closed schema per kind of op, chosen by `op`: a member the op does not take is refused, never ignored (a
// `doc` on a delete, a misspelt `ifseq`), and the error names that one member rather than every kind of op.
const batchOp = {
  type: 'object',
  required: ['op'],
  discriminator: { propertyName: 'op' },
  oneOf: [
    closedObject(
      {
        op: { type: 'string', enum: ['put', 'patch'] },
        table,
        key,
        doc: {
          type: 'object',
          additionalProperties: true,
          description: 'put: the whole document; patch: a JSON Merge Patch (RFC 7396).',
        },
        ifSeq,
      },
      ['op', 'table', 'key', 'doc'],
    ),
    closedObject({ op: { type: 'string', const: 'delete' }, table, key, ifSeq }, ['op', 'table', 'key']),
    closedObject({ op: { type: 'string', const: 'get' }, table, key }, ['op', 'table', 'key']),
    closedObject({ op: { type: 'string', const: 'query' }, ...queryProperties }, ['op', 'table']),
  ],
};

const batchBody = {
  type: 'object',
  required: ['ops'],
  additionalProperties: false,
  properties: {
    isolation: { type: 'string', enum: [...isolationLevels], default: 'serializable' },
    ops: { type: 'array', minItems: 1, maxItems: limits.batchOpsMax, items: batchOp },
    minSeq: minSeqParam,
  },
};

const batchResponse = {
  type: 'object',
  required: ['seq', 'results'],
  properties: {
    seq: { type: ['integer', 'null'], description: 'Seq of the commit; null when the batch wrote nothing.' },
    results: { type: 'array', items: { type: 'object', additionalProperties: true } },
  },
};

export async function batchRoutes(app: FastifyInstance, opts: { db: () => Database; idempotency: IdempotencyService }): Promise<void> {
  app.setValidatorCompiler(dataValidatorCompiler);
  app.post<{ Body: BatchBody }>('/v1/batch', {
    // Every op's table is checked against roles and grants, a write op needing write permission (hooks.ts).
    config: { permission: 'read', bodyTables: 'batch' },
    schema: {
      operationId: 'batch',
      tags: ['transactions'],
      summary: 'Run operations in one transaction',
      description:
        'All or nothing: a failing op answers its own error with `opIndex`, and nothing is written. Write ops need write ' +
        'permission. Each op takes exactly the members of its kind (put/patch: op, table, key, doc, ifSeq?; delete: op, ' +
        'table, key, ifSeq?; get: op, table, key; query: op and the members of a query body); any other member is 400 ' +
        'validation_failed. The results may hold at most 32 MiB of JSON together (batchAnswerBytesMax; a get counts its ' +
        'document, a query its page): the op that passes it fails with 400 bad_request and its `opIndex`. A batch is its ' +
        'own transaction: a request with a `Transaction-Id` header is 400 bad_request (send the ops inside that ' +
        'transaction instead).',
      headers: { type: 'object', properties: { 'idempotency-key': idempotencyKeyHeader } },
      responseHeaders: { 200: ['Idempotent-Replayed'] },
      body: batchBody,
      response: {
        200: { ...batchResponse, description: 'Committed; `results` has one entry per op.' },
        ...problemResponses({ extra: [404, 409, 412], withBody: true, idempotent: true }),
      },
    },
    handler: async (req, reply) => {
      // Joining it to another transaction would be a second commit inside that one; silently running it on its
      // own would commit what the client meant to keep inside the transaction.
      refuseTransactionId(
        req,
        'A batch is its own transaction: send its ops inside the transaction instead, or drop the Transaction-Id header.',
      );
      reply.rows = req.body.ops.length;
      return sendIdempotent(req, reply, opts.idempotency, async (entry) => ({ status: 200, json: await runBatch(opts.db(), req.body, req.rowPolicies, entry) }));
    },
  });
}

/**
 * Runs the ops in one transaction, bound to the caller's row policies; answers `{"seq","results"}` as JSON text,
 * each result written as its op runs. With an Idempotency-Key's entry maker, that answer is recorded with the commit.
 */
async function runBatch(db: Database, body: BatchBody, policies: RowPolicies, entry: IdempotencyEntryMaker | undefined): Promise<string> {
  const tx = db.begin({ ...(body.isolation === undefined ? {} : { isolation: body.isolation }), policies });
  const results: string[] = [];
  let resultsBytes = 0;
  try {
    for (const [opIndex, op] of body.ops.entries()) {
      try {
        const result = await runOp(db, tx, op);
        // Counted as the ops run, so a thousand reads of one large row stop at the bound, not at the heap's end.
        resultsBytes += result.length;
        if (resultsBytes > limits.batchAnswerBytesMax) throw answerTooLarge();
        results.push(result);
      } catch (error) {
        throw withOpIndex(error, opIndex);
      }
    }
    const answer = (seq: number | null): string => `{"seq":${JSON.stringify(seq)},"results":[${results.join(',')}]}`;
    const idempotency = entry?.((outcome) => ({ status: 200, json: answer(outcome.rowsWritten > 0 ? outcome.seq : null) }));
    const { seq } = await tx.commit(idempotency === undefined ? {} : { idempotency });
    return answer(seq);
  } finally {
    if (tx.state === 'active' || tx.state === 'aborted') tx.rollback();
  }
}

/** One op's result as JSON text; a get and a page of whole documents embed their stored text as it is. */
async function runOp(db: Database, tx: Transaction, op: BatchOp): Promise<string> {
  switch (op.op) {
    case 'put':
    case 'patch':
    case 'delete': {
      const input = { table: op.table, key: op.key, tx, ...(op.ifSeq === undefined ? {} : { ifMatch: op.ifSeq }) };
      const result =
        op.op === 'put'
          ? await db.put({ ...input, doc: op.doc })
          : op.op === 'patch'
            ? await db.patch({ ...input, patch: op.doc })
            : await db.delete(input);
      return JSON.stringify({ op: op.op, key: result.key, created: result.created });
    }
    case 'get': {
      const row = db.get({ table: op.table, key: op.key, tx });
      return `{"op":"get","key":${JSON.stringify(row.key)},"seq":${JSON.stringify(row.seq)},"doc":${row.json}}`;
    }
    case 'query': {
      const { op: _op, ...spec } = op;
      return `{"op":"query",${pageMembers(db.query(spec, { tx }))}}`;
    }
  }
}

function answerTooLarge(): DriftError {
  return new DriftError(
    'bad_request',
    `The batch's results would exceed batchAnswerBytesMax (${limits.batchAnswerBytesMax / MiB} MiB of JSON); ` +
      'split it into smaller batches, or read large rows and pages on their own.',
  );
}

function withOpIndex(error: unknown, opIndex: number): unknown {
  if (!isDriftError(error)) return error;
  return new DriftError(error.code, `Operation ${opIndex}: ${error.message}`, { ...error.fields, opIndex });
}
