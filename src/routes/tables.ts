// The table routes of http-api.md §3: create, list, describe and drop tables, and add or drop their indexes.
// Thin: each handler validates by schema, calls the Database, and shapes the reply; errors are DriftErrors.

import type { FastifyInstance, FastifyRequest } from 'fastify';
import { refuseTransactionId } from './transaction-context.js';
import type { CreateTableInput, Database, TableInfo } from '../engine/index.js';
import { visibleTables } from '../security/access.js';
import { addSharedSchemas, dataValidatorCompiler, problemResponses, ref, tableParams } from './schemas.js';

interface TableParams {
  table: string;
}

interface IndexParams extends TableParams {
  field: string;
}

/** Tables whose name starts with "_" belong to the system; the API neither lists nor serves them. */
function isUserTable(table: TableInfo): boolean {
  return !table.name.startsWith('_');
}

/**
 * Table and index changes commit at once, outside any transaction: a Transaction-Id on their routes is refused, or
 * a client would believe a rollback undoes them. Runs after authentication and the permission check (route-level
 * hooks follow the scope's), and before the body is read.
 */
async function refuseTransaction(request: FastifyRequest): Promise<void> {
  refuseTransactionId(request, 'table and index changes are not transactional: they commit at once, so they take no Transaction-Id header');
}

export async function tablesRoutes(app: FastifyInstance, opts: { db: () => Database }): Promise<void> {
  addSharedSchemas(app);
  app.setValidatorCompiler(dataValidatorCompiler);
  const indexParams = {
    type: 'object',
    required: ['table', 'field'],
    properties: { table: ref('TableName'), field: ref('FieldPath') },
  };

  app.post<{ Body: CreateTableInput }>('/v1/tables', {
    config: { permission: 'write', bodyTables: 'createTable', audit: 'table_created' },
    onRequest: refuseTransaction,
    schema: {
      body: ref('CreateTable'),
      response: { 201: ref('Table'), ...problemResponses({ extra: [409], withBody: true }) },
    },
    handler: async (req, reply) => {
      const table = await opts.db().createTable(req.body);
      reply.code(201).header('location', `/v1/tables/${encodeURIComponent(table.name)}`);
      return table;
    },
  });

  // The catalog reads accept a Transaction-Id and ignore it: the catalog is not versioned, so there is nothing for
  // a transaction's snapshot to change (rowCount is the newest committed state, as documented).
  app.get('/v1/tables', {
    config: { permission: 'read' },
    schema: { response: { 200: ref('TableList'), ...problemResponses() } },
    // Grants narrow the listing too: a user sees the names of the tables they may touch.
    handler: async (req) => ({ tables: visibleTables(req.principal, opts.db().listTables().filter(isUserTable)) }),
  });

  app.get<{ Params: TableParams }>('/v1/tables/:table', {
    config: { permission: 'read' },
    schema: { params: tableParams, response: { 200: ref('Table'), ...problemResponses({ extra: [404] }) } },
    handler: async (req) => opts.db().getTable(req.params.table),
  });

  app.delete<{ Params: TableParams }>('/v1/tables/:table', {
    config: { permission: 'admin', audit: 'table_dropped' },
    onRequest: refuseTransaction,
    schema: {
      params: tableParams,
      response: { 204: { type: 'null', description: 'Dropped.' }, ...problemResponses({ extra: [404] }) },
    },
    handler: async (req, reply) => {
      await opts.db().dropTable(req.params.table);
      return reply.code(204).send();
    },
  });

  app.post<{ Params: TableParams; Body: { field: string } }>('/v1/tables/:table/indexes', {
    config: { permission: 'write' },
    onRequest: refuseTransaction,
    schema: {
      params: tableParams,
      body: ref('CreateIndex'),
      response: { 201: ref('Table'), ...problemResponses({ extra: [404, 409], withBody: true }) },
    },
    handler: async (req, reply) => {
      const table = await opts.db().createIndex(req.params.table, req.body.field);
      return reply.code(201).send(table);
    },
  });

  app.delete<{ Params: IndexParams }>('/v1/tables/:table/indexes/:field', {
    config: { permission: 'write' },
    onRequest: refuseTransaction,
    schema: {
      params: indexParams,
      response: { 204: { type: 'null', description: 'Dropped.' }, ...problemResponses({ extra: [404] }) },
    },
    handler: async (req, reply) => {
      await opts.db().dropIndex(req.params.table, req.params.field);
      return reply.code(204).send();
    },
  });
}
