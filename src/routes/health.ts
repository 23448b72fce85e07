// Liveness and readiness, public: /healthz answers as soon as the process serves, /readyz once recovery is done.

import type { FastifyInstance } from 'fastify';
import type { Database } from '../engine/index.js';
import { DriftError } from '../errors.js';
import { ref } from './schemas.js';

const statusSchema = {
  type: 'object',
  required: ['status'],
  properties: { status: { type: 'string' }, seq: { type: 'integer' } },
} as const;

export async function healthRoutes(app: FastifyInstance, opts: { db: () => Database }): Promise<void> {
  app.get('/healthz', {
    config: { permission: 'public' },
    schema: {
      operationId: 'health',
      tags: ['health'],
      summary: 'Liveness',
      description: 'Answers as soon as the process serves. No authentication.',
      response: { 200: { ...statusSchema, description: 'The process serves.' } },
    },
    handler: async () => ({ status: 'ok' }),
  });

  // db() throws 503 unavailable (with Retry-After) while the log is being recovered or the server is stopping; a
  // database that refuses writes (its log failed, or memory is at its limit) is not ready either, and says why.
  app.get('/readyz', {
    config: { permission: 'public' },
    schema: {
      operationId: 'ready',
      tags: ['health'],
      summary: 'Readiness',
      description: 'Answers 200 once recovery is done and writes are accepted; 503 unavailable before, while shutting down, and while writes are refused (the log failed, or memory is at --memory-limit-mb), with the reason. No authentication.',
      response: { 200: { ...statusSchema, description: 'Ready; `seq` is the newest durable seq.' }, 503: ref('Problem') },
    },
    handler: async () => {
      const db = opts.db();
      const health = db.health();
      if (!health.writable) throw new DriftError('unavailable', `Writes are refused: ${health.reason}`, { retryAfterSeconds: 5 });
      return { status: 'ready', seq: db.durableSeq };
    },
  });
}
