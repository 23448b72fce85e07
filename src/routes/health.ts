// Liveness and readiness, public: /healthz answers as soon as the process serves, /readyz once recovery is done.

import type { FastifyInstance } from 'fastify';
import type { Database } from '../engine/index.js';

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

  // db() throws 503 unavailable (with Retry-After) while the log is being recovered or the server is stopping.
  app.get('/readyz', {
    config: { permission: 'public' },
    schema: { response: { 200: statusSchema } },
    handler: async () => ({ status: 'ready', seq: opts.db().durableSeq }),
  });
}
