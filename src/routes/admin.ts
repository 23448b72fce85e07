// Admin routes of http-api.md §7 that the engine answers: checkpoint on demand, and engine figures.

import type { FastifyInstance } from 'fastify';
import type { Database } from '../engine/index.js';

const seqSchema = { type: 'object', required: ['seq'], properties: { seq: { type: 'integer' } } } as const;

const integer = { type: 'integer' } as const;
const statsSchema = {
  type: 'object',
  required: ['seq', 'tables', 'rows', 'logBytes', 'openTransactions', 'commits', 'conflicts', 'deadlocks', 'checkpointSeq'],
  properties: {
    seq: integer,
    tables: integer,
    rows: integer,
    logBytes: integer,
    openTransactions: integer,
    commits: integer,
    conflicts: integer,
    deadlocks: integer,
    checkpointSeq: { type: ['integer', 'null'] },
  },
} as const;

export async function adminRoutes(app: FastifyInstance, opts: { db: () => Database }): Promise<void> {
  app.post('/v1/admin/checkpoint', {
    config: { permission: 'admin' },
    schema: { response: { 200: seqSchema } },
    handler: async () => opts.db().checkpoint(),
  });

  app.get('/v1/admin/stats', {
    config: { permission: 'admin' },
    schema: { response: { 200: statsSchema } },
    handler: async () => opts.db().stats(),
  });
}
