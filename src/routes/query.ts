// The query routes of http-api.md §5: run a query (filter, order, page, aggregate, history) or explain its plan.
// Thin: the body schema checks the query's shape; its meaning (operators, fields, asOf, cursors) is the engine's.

import type { FastifyInstance } from 'fastify';
import type { Database } from '../engine/index.js';
import type { QuerySpec } from '../engine/index.js';
import type { TransactionService } from '../service/transactions.js';
import { inTransaction } from './transaction-context.js';
import { sendPage } from './answers.js';
import { addSharedSchemas, dataValidatorCompiler, problemResponses, ref } from './schemas.js';

export async function queryRoutes(
  app: FastifyInstance,
  opts: { db: () => Database; transactions: TransactionService },
): Promise<void> {
  addSharedSchemas(app);
  app.setValidatorCompiler(dataValidatorCompiler);

  app.post<{ Body: QuerySpec }>('/v1/query', {
    config: { permission: 'read', bodyTables: 'query' },
    schema: { body: ref('Query'), response: { 200: ref('Page'), ...problemResponses({ extra: [404], withBody: true }) } },
    handler: async (req, reply) => sendPage(reply, await inTransaction(opts.transactions, req, (ref) => opts.db().query(req.body, ref))),
  });

  app.post<{ Body: QuerySpec }>('/v1/query/explain', {
    config: { permission: 'read', bodyTables: 'query' },
    schema: { body: ref('Query'), response: { 200: ref('Explain'), ...problemResponses({ extra: [404], withBody: true }) } },
    handler: async (req) => opts.db().explain(req.body),
  });
}
