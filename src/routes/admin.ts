// Admin routes of http-api.md §7: checkpoint on demand, engine figures, and the slow-query log.

import type { FastifyInstance } from 'fastify';
import type { Database } from '../engine/index.js';
import type { SlowQueryLog } from '../observability/slow-query-log.js';
import { problemResponses } from './schemas.js';

const seqSchema = { type: 'object', required: ['seq'], properties: { seq: { type: 'integer' } } } as const;

const integer = { type: 'integer' } as const;
const statsSchema = {
  type: 'object',
  required: ['seq', 'tables', 'rows', 'versions', 'logBytes', 'openTransactions', 'commits', 'conflicts', 'deadlocks', 'checkpointSeq'],
  properties: {
    seq: integer,
    tables: integer,
    rows: integer,
    versions: { type: 'integer', description: 'Row versions held: every event of every key, deletes included.' },
    logBytes: integer,
    openTransactions: integer,
    commits: integer,
    conflicts: { type: 'integer', description: 'serialization_failure and lock_timeout failures.' },
    deadlocks: integer,
    checkpointSeq: { type: ['integer', 'null'] },
  },
} as const;

const tags = ['admin'];

/** Default `limit` of GET /v1/admin/slow-queries. */
const slowQueryListDefault = 100;

const nullableNumber = { type: ['number', 'null'] } as const;
const slowQueriesSchema = {
  type: 'object',
  required: ['thresholdMs', 'entries', 'stats'],
  properties: {
    thresholdMs: integer,
    entries: {
      type: 'array',
      description: 'Newest first.',
      items: {
        type: 'object',
        required: ['id', 'requestId', 'ts', 'durationMs', 'method', 'route', 'statement', 'user', 'rows', 'status'],
        properties: {
          id: { type: 'string' },
          requestId: { type: 'string' },
          ts: { type: 'string', format: 'date-time', description: 'When the request arrived.' },
          durationMs: { type: 'number' },
          method: { type: 'string' },
          route: { type: 'string', description: 'The route template, e.g. /v1/tables/:table/rows/:key.' },
          table: { type: 'string' },
          statement: { type: 'string', description: 'Method, URL and (queries, batches) body; literal values are ? with --slow-query-redact.' },
          user: { type: ['string', 'null'] },
          transactionId: { type: 'string' },
          rows: { type: 'integer', description: 'Rows returned (reads) or written (writes).' },
          status: integer,
          error: { type: 'string', description: 'The problem code of a failed request.' },
        },
      },
    },
    stats: {
      type: 'object',
      description: 'Durations (ms) over the stored entries; null when there are none.',
      required: ['count', 'p50', 'p95', 'p99', 'max'],
      properties: { count: integer, p50: nullableNumber, p95: nullableNumber, p99: nullableNumber, max: nullableNumber },
    },
  },
} as const;

export async function adminRoutes(
  app: FastifyInstance,
  opts: { db: () => Database; slowQueries: SlowQueryLog | null; slowQueryThresholdMs: number; slowQueryMaxStored: number },
): Promise<void> {
  app.post('/v1/admin/checkpoint', {
    config: { permission: 'admin' },
    schema: {
      operationId: 'checkpoint',
      tags,
      summary: 'Write a checkpoint',
      description: 'Writes a snapshot of the state so a restart does not replay the whole log. Needs the admin role.',
      response: { 200: { ...seqSchema, description: 'The seq the checkpoint covers.' }, ...problemResponses() },
    },
    handler: async () => opts.db().checkpoint(),
  });

  app.get('/v1/admin/stats', {
    config: { permission: 'admin' },
    schema: {
      operationId: 'stats',
      tags,
      summary: 'Engine figures',
      description: 'Needs the admin role. The same figures /metrics carries, as JSON.',
      response: { 200: { ...statsSchema, description: 'The figures.' }, ...problemResponses() },
    },
    handler: async () => opts.db().stats(),
  });

  app.get<{ Querystring: { limit?: number } }>('/v1/admin/slow-queries', {
    config: { permission: 'admin' },
    schema: {
      operationId: 'listSlowQueries',
      tags,
      summary: 'Slow queries',
      description:
        'Data-route requests that took at least --slow-query-threshold-ms, failed ones included, newest first, with ' +
        'duration percentiles over the stored entries (at most --slow-query-max-stored). Needs the admin role.',
      querystring: {
        type: 'object',
        properties: {
          limit: {
            type: 'integer',
            minimum: 1,
            maximum: opts.slowQueryMaxStored,
            description: `Entries to answer, newest first; default ${slowQueryListDefault}, at most --slow-query-max-stored.`,
          },
        },
        additionalProperties: false,
      },
      response: { 200: { ...slowQueriesSchema, description: 'The newest entries and their stats.' }, ...problemResponses() },
    },
    handler: async (req) => {
      const log = opts.slowQueries;
      const limit = req.query.limit ?? Math.min(slowQueryListDefault, opts.slowQueryMaxStored);
      if (log === null) {
        return { thresholdMs: opts.slowQueryThresholdMs, entries: [], stats: { count: 0, p50: null, p95: null, p99: null, max: null } };
      }
      return { thresholdMs: log.thresholdMs, entries: log.list(limit), stats: log.stats() };
    },
  });

  app.delete('/v1/admin/slow-queries', {
    config: { permission: 'admin' },
    schema: {
      operationId: 'clearSlowQueries',
      tags,
      summary: 'Clear the slow queries',
      description: 'Empties the in-memory list; a --slow-query-log-path file keeps its lines. Needs the admin role.',
      response: { 204: { type: 'null', description: 'Cleared.' }, ...problemResponses() },
    },
    handler: async (_req, reply) => {
      opts.slowQueries?.clear();
      return reply.code(204).send();
    },
  });
}
