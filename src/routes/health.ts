// Liveness and readiness, public: /healthz answers as soon as the process serves, /readyz once recovery is done.

import type { FastifyInstance } from 'fastify';
import type { Database } from '../engine/index.js';
import { ref } from './schemas.js';

const statusSchema = {
  type: 'object',
  required: ['status'],
  properties: { status: { type: 'string' }, seq: { type: 'integer' } },
} as const;

export async function healthRoutes(app: FastifyInstance, opts: { db: () => Database }): Promise<void> {
  app.get('/healthz', {
    schema: {
      operationId: 'health',
      tags: ['health'],
      summary: 'Liveness',
      description: 'Answers as soon as the process serves. No authentication.',
      response: { 200: { ...statusSchema, description: 'The process serves.' } },
    },
    handler: async () => ({ status: 'ok' }),
  });

  // db() throws 503 unavailable (with Retry-After) while the log is being recovered or the server is stopping.
  app.get('/readyz', {
    schema: {
      operationId: 'ready',
      tags: ['health'],
      summary: 'Readiness',
      description: 'Answers 200 once recovery is done, 503 unavailable before (and while shutting down). No authentication.',
      response: { 200: { ...statusSchema, description: 'Ready; `seq` is the newest durable seq.' }, 503: ref('Problem') },
    },
    handler: async () => ({ status: 'ready', seq: opts.db().durableSeq }),
  });
}
