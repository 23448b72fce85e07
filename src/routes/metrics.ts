// GET /metrics (http-api.md §7): the Prometheus text format. Role admin, unless --metrics-public registers it in the
// public scope (routes/index.ts decides which).

import type { FastifyInstance } from 'fastify';
import { DriftError } from '../errors.js';
import type { Metrics } from '../observability/metrics.js';
import type { Permission } from '../security/auth.js';

export async function metricsRoutes(app: FastifyInstance, opts: { metrics: Metrics | null; permission: Permission | null }): Promise<void> {
  app.get('/metrics', {
    ...(opts.permission === null ? {} : { config: { permission: opts.permission } }),
    schema: {
      response: {
        200: { type: 'string', description: 'Prometheus text exposition format 0.0.4.' },
      },
    },
    handler: async (_request, reply) => {
      if (opts.metrics === null) throw new DriftError('not_found', 'metrics are off (--observability off)');
      return reply.type(opts.metrics.contentType).send(await opts.metrics.text());
    },
  });
}
