// The query routes of http-api.md §5: run a query (filter, order, page, aggregate, history) or explain its plan.
// Thin: the body schema checks the query's shape; its meaning (operators, fields, asOf, cursors) is the engine's.

import type { FastifyInstance } from 'fastify';
import type { Database } from '../engine/index.js';
import type { QuerySpec } from '../engine/index.js';
import type { TransactionService } from '../service/transactions.js';
import { inTransaction } from './transaction-context.js';
import { sendPage } from './answers.js';
import { addSharedSchemas, dataValidatorCompiler, problemResponses, ref, transactionHeaders } from './schemas.js';

export async function queryRoutes(
  app: FastifyInstance,
  opts: { db: () => Database; transactions: TransactionService },
): Promise<void> {
  addSharedSchemas(app);
  app.setValidatorCompiler(dataValidatorCompiler);

  app.post<{ Body: QuerySpec }>('/v1/query', {
    config: { permission: 'read', bodyTables: 'query' },
    schema: {
      operationId: 'query',
      tags: ['query'],
      summary: 'Run a query',
      description:
        'Filters (`where`), projects (`select`), orders (`orderBy`, ties by key; key order without it), pages (`limit`, ' +
        "`cursor`, keeping the first page's snapshot), aggregates (`groupBy`, `aggregates`), or with `history: true` " +
        'answers every version over all time whose document matches (`key`, `seq`, `ts`, `op`, `doc`). Unknown operators ' +
        'or members: 400 validation_failed. A page of rows or versions ends before `limit`, with a `nextCursor`, when its ' +
        'rows would pass 16 MiB of JSON (pageBytesMax; rows with `select` count the documents they come from); it always ' +
        'holds at least one row.',
      headers: transactionHeaders,
      body: ref('Query'),
      response: {
        200: { ...ref('Page'), description: 'A page of rows: documents, aggregate rows, or versions.' },
        ...problemResponses({ extra: [404], withBody: true, inTransaction: true }),
      },
    },
    handler: async (req, reply) => sendPage(reply, await inTransaction(opts.transactions, req, (ref) => opts.db().query(req.body, ref))),
  });

  app.post<{ Body: QuerySpec }>('/v1/query/explain', {
    config: { permission: 'read', bodyTables: 'query' },
    schema: {
      operationId: 'explainQuery',
      tags: ['query'],
      summary: 'Explain a query',
      description: 'The plan the same body would run with: `access` is primaryKey, index (an equality or range on an indexed field) or scan.',
      body: ref('Query'),
      response: { 200: { ...ref('Explain'), description: 'The plan.' }, ...problemResponses({ extra: [404], withBody: true }) },
    },
    handler: async (req) => opts.db().explain(req.body, { policies: req.rowPolicies }),
  });
}
