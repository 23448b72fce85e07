// The transaction routes of http-api.md §6: begin, inspect, commit, roll back, and savepoints.

import type { FastifyInstance } from 'fastify';
import { isolationLevels, type CommitOutcome, type Isolation } from '../engine/index.js';
import type { IdempotencyService, StoredAnswer } from '../service/idempotency.js';
import type { TransactionService } from '../service/transactions.js';
import { idempotencyKeyHeader, sendIdempotent } from './idempotent.js';
import { dataValidatorCompiler, problemResponses } from './schemas.js';

interface TxParams {
  id: string;
}

const txId = { type: 'string', maxLength: 64, description: 'A transaction id.' };
const txParams = {
  type: 'object',
  required: ['id'],
  properties: { id: txId },
};

const savepointParams = {
  type: 'object',
  required: ['id', 'name'],
  properties: { id: txId, name: { type: 'string', minLength: 1, maxLength: 64, description: 'A savepoint name.' } },
};
const tags = ['transactions'];

const beginBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    isolation: { type: 'string', enum: [...isolationLevels], default: 'serializable' },
    readOnly: { type: 'boolean', default: false },
    timeoutMs: { type: 'integer', minimum: 1, description: 'Roll back after this long whatever happens (capped).' },
  },
};

const txInfo = {
  type: 'object',
  required: ['id', 'isolation', 'snapshotSeq', 'expiresAt'],
  properties: {
    id: { type: 'string' },
    isolation: { type: 'string', enum: [...isolationLevels] },
    readOnly: { type: 'boolean' },
    snapshotSeq: { type: 'integer' },
    state: { type: 'string', enum: ['active', 'committed', 'rolled_back', 'aborted'] },
    writes: { type: 'integer' },
    expiresAt: { type: 'string', format: 'date-time' },
  },
};

const emptyObject = { type: 'object', properties: {} };

export async function transactionRoutes(
  app: FastifyInstance,
  opts: { transactions: TransactionService; idempotency: IdempotencyService },
): Promise<void> {
  app.setValidatorCompiler(dataValidatorCompiler);
  const { transactions } = opts;
  const user = (req: { principal: { username: string } }): string => req.principal.username;

  app.post<{ Body: { isolation?: Isolation; readOnly?: boolean; timeoutMs?: number } | null | undefined }>('/v1/transactions', {
    config: { permission: 'read' },
    schema: {
      operationId: 'beginTransaction',
      tags,
      summary: 'Begin a transaction',
      description:
        'Join it from row and query routes with the header `Transaction-Id: <id>`. Default isolation: serializable. The ' +
        'body is optional: no body, an empty body and a literal `null` all mean `{}` (the defaults); any other body must ' +
        'be an object.',
      body: beginBody,
      bodyOptional: true,
      response: { 201: { ...txInfo, description: 'The open transaction.' }, ...problemResponses({ withBody: true }) },
    },
    // The body is optional: none, an empty one and a literal null all mean {}, so the schema's defaults apply.
    preValidation: async (req) => {
      req.body ??= {};
    },
    // The caller's row policies bind to the transaction: every read and write inside it honours them.
    handler: async (req, reply) => reply.code(201).send(transactions.begin(user(req), { ...req.body, policies: req.rowPolicies })),
  });

  app.get<{ Params: TxParams }>('/v1/transactions/:id', {
    config: { permission: 'read' },
    schema: {
      operationId: 'getTransaction',
      tags,
      summary: "A transaction's state",
      description:
        "Another user's transaction answers 404 transaction_not_found; an aborted one 409 transaction_aborted (until " +
        'rolled back); an expired one 410.',
      params: txParams,
      response: { 200: { ...txInfo, description: 'Its state.' }, ...problemResponses({ extra: [404, 409, 410] }) },
    },
    handler: async (req) => transactions.info(user(req), req.params.id),
  });

  app.post<{ Params: TxParams }>('/v1/transactions/:id/commit', {
    config: { permission: 'read' },
    schema: {
      operationId: 'commitTransaction',
      tags,
      summary: 'Commit',
      description: 'Makes all its writes durable and visible under one seq; `seq` is null when it wrote nothing.',
      params: txParams,
      headers: { type: 'object', properties: { 'idempotency-key': idempotencyKeyHeader } },
      responseHeaders: { 200: ['Idempotent-Replayed'] },
      response: {
        200: { type: 'object', required: ['seq'], properties: { seq: { type: ['integer', 'null'] } }, description: 'Committed.' },
        ...problemResponses({ extra: [404, 409, 410], idempotent: true }),
      },
    },
    handler: async (req, reply) =>
      sendIdempotent(req, reply, opts.idempotency, async (entry) => {
        const answer = (outcome: CommitOutcome): StoredAnswer => ({ status: 200, json: JSON.stringify({ seq: outcome.rowsWritten > 0 ? outcome.seq : null }) });
        const { seq, rows } = await transactions.commit(user(req), req.params.id, entry === undefined ? {} : { idempotency: entry(answer) });
        reply.rows = rows;
        return { status: 200, json: JSON.stringify({ seq }) };
      }),
  });

  app.post<{ Params: TxParams }>('/v1/transactions/:id/rollback', {
    config: { permission: 'read' },
    schema: {
      operationId: 'rollbackTransaction',
      tags,
      summary: 'Roll back',
      description:
        "Rolls back at once, cancelling a lock wait of the transaction's request in flight. Sent while the transaction's " +
        "commit is in flight, it waits for the commit's outcome and answers as the transaction ended (404 " +
        'transaction_not_found after a successful commit).',
      params: txParams,
      response: { 200: { ...emptyObject, description: 'Rolled back.' }, ...problemResponses({ extra: [404, 410] }) },
    },
    handler: async (req) => {
      await transactions.rollback(user(req), req.params.id);
      return {};
    },
  });

  app.post<{ Params: TxParams; Body: { name: string } }>('/v1/transactions/:id/savepoints', {
    config: { permission: 'read' },
    schema: {
      operationId: 'createSavepoint',
      tags,
      summary: 'Set a savepoint',
      description: 'A savepoint made under a name already in use replaces the older one.',
      params: txParams,
      body: {
        type: 'object',
        required: ['name'],
        additionalProperties: false,
        properties: { name: { type: 'string', minLength: 1, maxLength: 64 } },
      },
      response: {
        201: { type: 'object', properties: { name: { type: 'string' } }, description: 'Set.' },
        ...problemResponses({ extra: [404, 409, 410], withBody: true }),
      },
    },
    handler: async (req, reply) => {
      await transactions.run(user(req), req.params.id, (tx) => tx.savepoint(req.body.name));
      return reply.code(201).send({ name: req.body.name });
    },
  });

  app.post<{ Params: TxParams & { name: string } }>('/v1/transactions/:id/savepoints/:name/rollback', {
    config: { permission: 'read' },
    schema: {
      operationId: 'rollbackToSavepoint',
      tags,
      summary: 'Roll back to a savepoint',
      description: 'Undoes the writes after it and keeps the savepoint.',
      params: savepointParams,
      response: { 200: { ...emptyObject, description: 'Rolled back to it.' }, ...problemResponses({ extra: [404, 409, 410] }) },
    },
    handler: async (req) => {
      await transactions.run(user(req), req.params.id, (tx) => tx.rollbackToSavepoint(req.params.name));
      return {};
    },
  });

  app.delete<{ Params: TxParams & { name: string } }>('/v1/transactions/:id/savepoints/:name', {
    config: { permission: 'read' },
    schema: {
      operationId: 'releaseSavepoint',
      tags,
      summary: 'Release a savepoint',
      description: 'Releases it and every savepoint after it.',
      params: savepointParams,
      response: { 204: { type: 'null', description: 'Released.' }, ...problemResponses({ extra: [404, 409, 410] }) },
    },
    handler: async (req, reply) => {
      await transactions.run(user(req), req.params.id, (tx) => tx.releaseSavepoint(req.params.name));
      return reply.code(204).send();
    },
  });
}
