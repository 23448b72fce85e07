// The whole-table time-travel routes of http-api.md §9: the diff of a table between two seqs, a fork of a table as
// of a seq into a new one, and a restore of a table to its rows as of a seq. Thin: the engine decides.

import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Database, DiffChange, TableInfo } from '../engine/index.js';
import { limits } from '../limits.js';
import { sendJsonText } from './answers.js';
import { addSharedSchemas, dataValidatorCompiler, problemResponses, ref, tableParams } from './schemas.js';
import { refuseTransactionId } from './transaction-context.js';
import { idempotencyKeyHeader, sendIdempotent } from './idempotent.js';
import type { IdempotencyService, StoredAnswer } from '../service/idempotency.js';
import { minSeqParam } from './min-seq.js';

interface TableParams {
  table: string;
}

const asOfMember = { type: ['integer', 'string'], description: 'A seq, or an RFC 3339 instant (the state after the last commit at or before it).' };

const diffQuery = {
  type: 'object',
  required: ['from', 'to'],
  properties: {
    from: { type: 'integer', minimum: 0, description: 'The earlier seq.' },
    to: { type: 'integer', minimum: 0, description: 'The later seq (from ≤ to ≤ the newest committed seq).' },
    limit: { type: 'integer', minimum: 1, maximum: limits.pageLimitMax, description: `Changes per page; default ${limits.pageLimitDefault}.` },
    cursor: { type: 'string', description: 'The nextCursor of the previous page.' },
    minSeq: minSeqParam,
  },
  additionalProperties: false,
} as const;

const diffAnswer = {
  type: 'object',
  required: ['from', 'to', 'changes', 'nextCursor'],
  properties: {
    from: { type: 'integer' },
    to: { type: 'integer' },
    changes: {
      type: 'array',
      items: {
        type: 'object',
        required: ['key', 'change', 'before', 'after'],
        properties: {
          key: { type: 'string' },
          change: { type: 'string', enum: ['added', 'removed', 'changed'] },
          before: { type: ['object', 'null'], additionalProperties: true, description: 'The row at `from` (null when absent).' },
          after: { type: ['object', 'null'], additionalProperties: true, description: 'The row at `to` (null when absent).' },
        },
      },
    },
    nextCursor: { type: ['string', 'null'] },
  },
} as const;

function changeJson(change: DiffChange): string {
  return `{"key":${JSON.stringify(change.key)},"change":"${change.change}","before":${change.before ?? 'null'},"after":${change.after ?? 'null'}}`;
}

/** Forks and restores commit at once, on their own: a Transaction-Id would suggest a rollback could undo them. */
async function refuseTransaction(request: FastifyRequest): Promise<void> {
  refuseTransactionId(request, 'a fork or restore is its own commit: it takes no Transaction-Id header');
}

export async function timeTravelRoutes(app: FastifyInstance, opts: { db: () => Database; idempotency: IdempotencyService }): Promise<void> {
  addSharedSchemas(app);
  app.setValidatorCompiler(dataValidatorCompiler);

  app.get<{ Params: TableParams; Querystring: { from: number; to: number; limit?: number; cursor?: string } }>('/v1/tables/:table/diff', {
    // On a table with row policies a diff would show rows a policy hides: for admins only (http-api.md §8).
    config: { permission: 'read', adminWhenRowPolicies: true },
    schema: {
      operationId: 'diffTable',
      tags: ['time travel'],
      summary: 'What changed in a table between two seqs',
      description:
        'The rows whose state at `from` differs from their state at `to`, in key order: `added` (absent at from), ' +
        '`removed` (absent at to) or `changed`, with both documents; unchanged rows are left out. A page ends after ' +
        '`limit` changes, before its documents pass 16 MiB, or after looking at 100,000 keys (a page of a large table ' +
        'with few changes may then hold fewer, or none, and a nextCursor). Follow nextCursor to the end.',
      params: tableParams,
      querystring: diffQuery,
      response: { 200: { ...diffAnswer, description: 'A page of changes.' }, ...problemResponses({ extra: [404] }) },
    },
    handler: async (req, reply) => {
      const { from, to, limit, cursor } = req.query;
      const page = opts.db().diff({ table: req.params.table, from, to, limit, cursor });
      reply.rows = page.changes.length;
      return sendJsonText(
        reply,
        `{"from":${page.from},"to":${page.to},"changes":[${page.changes.map(changeJson).join(',')}],"nextCursor":${JSON.stringify(page.nextCursor)}}`,
      );
    },
  });

  app.post<{ Params: TableParams; Body: { name: string; asOf: number | string } }>('/v1/tables/:table/fork', {
    config: { permission: 'write', bodyTables: 'createTable', audit: 'table_forked', adminWhenRowPolicies: true },
    onRequest: refuseTransaction,
    schema: {
      operationId: 'forkTable',
      tags: ['time travel'],
      summary: 'Fork a table as of a seq',
      description:
        'Creates table `name` whose rows are this table\'s rows as of `asOf`, with the same primary key, schema and ' +
        'indexes, in one commit (a crash leaves all of it or none); its history starts there, and `forkedFrom` says ' +
        'where it came from. Needs write permission on both tables. The rows must fit one commit record (32 MiB): a ' +
        'larger fork is 400 bad_request. 409 table_exists when `name` is taken. On a table with row policies: admins only (403).',
      params: tableParams,
      headers: { type: 'object', properties: { 'idempotency-key': idempotencyKeyHeader } },
      body: {
        type: 'object',
        required: ['name', 'asOf'],
        properties: { name: ref('TableName'), asOf: asOfMember },
        additionalProperties: false,
      },
      responseHeaders: { 201: ['Location', 'Idempotent-Replayed'] },
      response: { 201: { ...ref('Table'), description: 'The new table.' }, ...problemResponses({ extra: [404, 409], withBody: true, idempotent: true }) },
    },
    handler: async (req, reply) =>
      sendIdempotent(req, reply, opts.idempotency, async (entry) => {
        const answer = (table: TableInfo): StoredAnswer => ({ status: 201, json: JSON.stringify(table), headers: { location: `/v1/tables/${encodeURIComponent(table.name)}` } });
        const idempotency = entry?.((outcome) => answer(outcome.table!));
        const table = await opts.db().fork({ table: req.params.table, name: req.body.name, asOf: req.body.asOf, ...(idempotency === undefined ? {} : { idempotency }) });
        reply.rows = table.rowCount;
        return answer(table);
      }),
  });

  app.post<{ Params: TableParams; Body: { asOf: number | string } }>('/v1/tables/:table/restore', {
    config: { permission: 'write', audit: 'table_restored', adminWhenRowPolicies: true },
    onRequest: refuseTransaction,
    schema: {
      operationId: 'restoreTable',
      tags: ['time travel'],
      summary: 'Restore a table to its rows as of a seq',
      description:
        'Writes, in one commit, the puts and deletes that make the table\'s rows what they were at `asOf`; the history ' +
        'before stays (a restore is new versions, not a rewind). `rowsChanged` counts them; with nothing to change, ' +
        '`seq` is null. The rows it writes are locked as any writer locks them, and must fit one commit record (32 MiB).',
      params: tableParams,
      headers: { type: 'object', properties: { 'idempotency-key': idempotencyKeyHeader } },
      body: { type: 'object', required: ['asOf'], properties: { asOf: asOfMember }, additionalProperties: false },
      responseHeaders: { 200: ['Idempotent-Replayed'] },
      response: {
        200: {
          type: 'object',
          required: ['seq', 'rowsChanged'],
          properties: { seq: { type: ['integer', 'null'] }, rowsChanged: { type: 'integer' } },
          description: 'Committed.',
        },
        ...problemResponses({ extra: [404, 409], withBody: true, idempotent: true }),
      },
    },
    handler: async (req, reply) =>
      sendIdempotent(req, reply, opts.idempotency, async (entry) => {
        const answer = (result: { seq: number | null; rowsChanged: number }): StoredAnswer => ({ status: 200, json: JSON.stringify(result) });
        const idempotency = entry?.((outcome) => answer({ seq: outcome.rowsWritten > 0 ? outcome.seq : null, rowsChanged: outcome.rowsWritten }));
        const result = await opts.db().restore({ table: req.params.table, asOf: req.body.asOf, ...(idempotency === undefined ? {} : { idempotency }) });
        reply.rows = result.rowsChanged;
        return answer(result);
      }),
  });
}
