// The table routes of http-api.md §3: create, list, describe and drop tables, and add or drop their indexes.
// Thin: each handler validates by schema, calls the Database, and shapes the reply; errors are DriftErrors.

import type { FastifyInstance, FastifyRequest } from 'fastify';
import { refuseTransactionId } from './transaction-context.js';
import type { CreateTableInput, Database, TableInfo } from '../engine/index.js';
import { visibleTables } from '../security/access.js';
import type { Security } from '../security/security.js';
import { addSharedSchemas, dataValidatorCompiler, problemResponses, ref, tableParams } from './schemas.js';
import { minSeqParam } from './min-seq.js';

const notTransactional = 'a `Transaction-Id` header is 400 bad_request.';

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

export async function tablesRoutes(app: FastifyInstance, opts: { db: () => Database; security: () => Security }): Promise<void> {
  addSharedSchemas(app);
  app.setValidatorCompiler(dataValidatorCompiler);
  const indexParams = {
    type: 'object',
    required: ['table', 'field'],
    properties: { table: tableParams.properties.table, field: { ...ref('FieldPath'), description: 'The indexed field path.' } },
  };

  app.post<{ Body: CreateTableInput }>('/v1/tables', {
    config: { permission: 'write', bodyTables: 'createTable', audit: 'table_created' },
    onRequest: refuseTransaction,
    schema: {
      operationId: 'createTable',
      tags: ['tables'],
      summary: 'Create a table',
      description:
        'Creates a table keyed by `primaryKey`, with optional secondary indexes (built at once) and an optional JSON Schema ' +
        '(draft 2020-12) every written document must then satisfy. 400 validation_failed for a bad name, field path or ' +
        `schema; 409 table_exists. Not transactional (the table exists at once); ${notTransactional}`,
      body: ref('CreateTable'),
      responseHeaders: { 201: ['Location'] },
      response: { 201: { ...ref('Table'), description: 'The table.' }, ...problemResponses({ extra: [409], withBody: true }) },
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
    schema: {
      operationId: 'listTables',
      tags: ['tables'],
      summary: 'List tables',
      description:
        "Every table the caller's grants reach, with its live row count at the newest committed state. A `Transaction-Id` header is accepted and " +
        'ignored: the catalog is not versioned.',
      querystring: { type: 'object', properties: { minSeq: minSeqParam }, additionalProperties: false },
      response: { 200: { ...ref('TableList'), description: 'The tables.' }, ...problemResponses() },
    },
    // Grants narrow the listing too: a user sees the names of the tables they may touch.
    handler: async (req) => ({ tables: visibleTables(req.principal, opts.db().listTables().filter(isUserTable)) }),
  });

  app.get<{ Params: TableParams }>('/v1/tables/:table', {
    config: { permission: 'read' },
    schema: {
      operationId: 'getTable',
      tags: ['tables'],
      summary: 'Describe a table',
      description:
        '404 table_not_found for an unknown table. A `Transaction-Id` header is accepted and ignored: the catalog is not ' +
        'versioned, and rowCount is the newest committed state.',
      params: tableParams,
      querystring: { type: 'object', properties: { minSeq: minSeqParam }, additionalProperties: false },
      response: { 200: { ...ref('Table'), description: 'The table.' }, ...problemResponses({ extra: [404] }) },
    },
    handler: async (req) => opts.db().getTable(req.params.table),
  });

  app.delete<{ Params: TableParams }>('/v1/tables/:table', {
    config: { permission: 'admin', audit: 'table_dropped' },
    onRequest: refuseTransaction,
    schema: {
      operationId: 'dropTable',
      tags: ['tables'],
      summary: 'Drop a table',
      description:
        'Needs the admin role. The table, its rows, their history and its row policies are gone; the name may be used ' +
        'again. 404 table_not_found. Open transactions with pending writes to the table are aborted (409 transaction_aborted on ' +
        'their next use), and serializable transactions that read from it fail their commit. Not transactional itself ' +
        `(the drop commits at once); ${notTransactional}`,
      params: tableParams,
      response: { 204: { type: 'null', description: 'Dropped.' }, ...problemResponses({ extra: [404] }) },
    },
    handler: async (req, reply) => {
      await opts.db().dropTable(req.params.table);
      // Its row policies go with it, as PostgreSQL's do: a table created later under the name starts without any.
      await opts.security().tableDropped(req.params.table, { user: req.principal.username, clientIp: req.ip, requestId: req.id });
      return reply.code(204).send();
    },
  });

  app.post<{ Params: TableParams; Body: { field: string } }>('/v1/tables/:table/indexes', {
    config: { permission: 'write' },
    onRequest: refuseTransaction,
    schema: {
      operationId: 'createIndex',
      tags: ['tables'],
      summary: 'Add a secondary index',
      description:
        'Indexes a dot-separated field path; on a table with rows the index is built from them. 409 index_exists, 404 ' +
        `table_not_found. Not transactional (the index exists at once); ${notTransactional}`,
      params: tableParams,
      body: ref('CreateIndex'),
      response: {
        201: { ...ref('Table'), description: 'The table, with the new index.' },
        ...problemResponses({ extra: [404, 409], withBody: true }),
      },
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
      operationId: 'dropIndex',
      tags: ['tables'],
      summary: 'Drop a secondary index',
      description:
        'Needs write permission, like creating one. 404 not_found when the table has no such index, table_not_found when ' +
        `the table is unknown. Not transactional (the drop commits at once); ${notTransactional}`,
      params: indexParams,
      response: { 204: { type: 'null', description: 'Dropped.' }, ...problemResponses({ extra: [404] }) },
    },
    handler: async (req, reply) => {
      await opts.db().dropIndex(req.params.table, req.params.field);
      return reply.code(204).send();
    },
  });
}
