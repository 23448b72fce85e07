// The row routes of http-api.md §4: put, merge-patch, soft-delete and read rows, a key's history, pages of a table.
// Thin: headers become WriteConditions here, every decision (existence, preconditions, asOf) is the Database's.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Database, TxRef, WriteConditions, WriteResult } from '../engine/index.js';
import type { TransactionService } from '../service/transactions.js';
import { inTransaction } from './transaction-context.js';
import type { Doc, HistoryEntry } from '../engine/index.js';
import { DriftError } from '../errors.js';
import { limits } from '../limits.js';
import { sendDocuments, sendPage } from './answers.js';
import { addSharedSchemas, dataValidatorCompiler, problemResponses, ref, rowParams, tableParams } from './schemas.js';

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
    'if-match': { type: 'string', description: 'Write only if the row\'s current version is this ETag ("<seq>"), or exists (*).' },
    'if-none-match': { type: 'string', description: 'Write only if the row does not exist: only "*" is accepted.' },
    'transaction-id': { type: 'string', description: 'Run inside this open transaction (http-api.md §6).' },
  },
};

// The raw string goes to the engine, which tells a seq from an RFC 3339 instant and refuses anything else.
// Query strings are closed like bodies: a misspelt `asof=12` must fail, not silently read the newest state.
const asOfParam = { type: 'string', description: 'A commit seq (e.g. 1234) or an RFC 3339 instant.' };

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

function sendWrite(reply: FastifyReply, result: WriteResult): FastifyReply {
  reply.rows = 1;
  if (result.seq !== null) reply.header('etag', etag(result.seq));
  return reply.code(result.created ? 201 : 200).send({ key: result.key, seq: result.seq });
}

function historyView(entry: HistoryEntry): { seq: number; ts: string; op: string; doc: Doc | null } {
  return { seq: entry.seq, ts: new Date(entry.ts).toISOString(), op: entry.op, doc: entry.doc };
}

export async function rowsRoutes(
  app: FastifyInstance,
  opts: { db: () => Database; transactions: TransactionService },
): Promise<void> {
  const inTx = <T>(req: FastifyRequest, work: (ref: TxRef) => Promise<T> | T): Promise<T> =>
    inTransaction(opts.transactions, req, work);
  addSharedSchemas(app);
  app.setValidatorCompiler(dataValidatorCompiler);
  const writeResponses = (extra: number[]) => ({
    200: ref('WriteResult'),
    201: ref('WriteResult'),
    ...problemResponses({ extra, withBody: true }),
  });

  app.put<{ Params: RowParams; Body: Doc; Headers: ConditionalHeaders }>('/v1/tables/:table/rows/:key', {
    config: { permission: 'write' },
    schema: { params: rowParams, headers: conditionalHeaders, body: ref('Document'), response: writeResponses([404, 412]) },
    handler: async (req, reply) => {
      const { table, key } = req.params;
      const conditions = writeConditions(req.headers);
      return sendWrite(reply, await inTx(req, (tx) => opts.db().put({ table, key, doc: req.body, ...conditions, ...tx })));
    },
  });

  app.patch<{ Params: RowParams; Body: Doc; Headers: ConditionalHeaders }>('/v1/tables/:table/rows/:key', {
    config: { permission: 'write' },
    schema: { params: rowParams, headers: conditionalHeaders, body: ref('Document'), response: writeResponses([404, 412]) },
    handler: async (req, reply) => {
      const { table, key } = req.params;
      const conditions = writeConditions(req.headers);
      return sendWrite(reply, await inTx(req, (tx) => opts.db().patch({ table, key, patch: req.body, ...conditions, ...tx })));
    },
  });

  app.delete<{ Params: RowParams; Headers: ConditionalHeaders }>('/v1/tables/:table/rows/:key', {
    config: { permission: 'write' },
    schema: {
      params: rowParams,
      headers: conditionalHeaders,
      response: { 200: ref('WriteResult'), ...problemResponses({ extra: [404, 412] }) },
    },
    handler: async (req, reply) => {
      const { table, key } = req.params;
      const conditions = writeConditions(req.headers);
      return sendWrite(reply, await inTx(req, (tx) => opts.db().delete({ table, key, ...conditions, ...tx })));
    },
  });

  app.get<{ Params: RowParams; Querystring: { asOf?: string } }>('/v1/tables/:table/rows/:key', {
    config: { permission: 'read' },
    schema: {
      params: rowParams,
      querystring: { type: 'object', properties: { asOf: asOfParam }, additionalProperties: false },
      response: {
        200: ref('Document'),
        304: { type: 'null', description: "If-None-Match names the version's ETag." },
        ...problemResponses({ extra: [404] }),
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
    schema: { params: rowParams, response: { 200: ref('History'), ...problemResponses({ extra: [404] }) } },
    handler: async (req, reply) => {
      const history = await inTx(req, (tx) => opts.db().history({ table: req.params.table, key: req.params.key, ...tx }));
      reply.rows = history.versions.length;
      return sendDocuments(reply, { key: history.key, versions: history.versions.map(historyView) });
    },
  });

  app.get<{ Params: { table: string }; Querystring: { limit?: number; cursor?: string; asOf?: string } }>(
    '/v1/tables/:table/rows',
    {
      config: { permission: 'read' },
      schema: {
        params: tableParams,
        querystring: {
          type: 'object',
          properties: {
            limit: {
              type: 'integer',
              minimum: 1,
              maximum: limits.pageLimitMax,
              description: `Rows per page; default ${limits.pageLimitDefault}. Outside the range: 400, not clamped.`,
            },
            cursor: { type: 'string', description: 'The nextCursor of the previous page.' },
            asOf: asOfParam,
          },
          additionalProperties: false,
        },
        response: { 200: ref('Page'), ...problemResponses({ extra: [404] }) },
      },
    },
    async (req, reply) => {
      const { limit, cursor, asOf } = req.query;
      return sendPage(reply, await inTx(req, (tx) => opts.db().scan({ table: req.params.table, limit, cursor, asOf, ...tx })));
    },
  );
}
