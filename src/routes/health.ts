// Liveness and readiness, public: /healthz answers as soon as the process serves, /readyz once recovery is done.

import type { FastifyInstance } from 'fastify';
import type { Database } from '../engine/index.js';
import { DriftError } from '../errors.js';

const statusSchema = {
  type: 'object',
  required: ['status'],
  properties: { status: { type: 'string' }, seq: { type: 'integer' } },
} as const;

export async function healthRoutes(app: FastifyInstance, opts: { db: () => Database }): Promise<void> {
  app.get('/healthz', {
    config: { permission: 'public' },
    schema: { response: { 200: statusSchema } },
    handler: async () => ({ status: 'ok' }),
  });

  // db() throws 503 unavailable (with Retry-After) while the log is being recovered or the server is stopping; a
  // database that refuses writes (its log failed, or memory is at its limit) is not ready either, and says why.
  app.get('/readyz', {
    config: { permission: 'public' },
    schema: { response: { 200: statusSchema } },
    handler: async () => {
      const db = opts.db();
      const health = db.health();
      if (!health.writable) throw new DriftError('unavailable', `Writes are refused: ${health.reason}`, { retryAfterSeconds: 5 });
      return { status: 'ready', seq: db.durableSeq };
    },
  });
}
