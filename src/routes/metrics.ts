// GET /metrics (http-api.md §7): the Prometheus text format. Role admin, unless --metrics-public registers it in the
// public scope (routes/index.ts decides which).

import type { FastifyInstance } from 'fastify';
import { DriftError } from '../errors.js';
import type { Metrics } from '../observability/metrics.js';
import type { Permission } from '../security/access.js';
import { problemResponses, ref } from './schemas.js';

export async function metricsRoutes(app: FastifyInstance, opts: { metrics: Metrics | null; permission: Extract<Permission, 'public' | 'admin'> }): Promise<void> {
  app.get('/metrics', {
    config: { permission: opts.permission },
    schema: {
      operationId: 'metrics',
      tags: ['admin'],
      summary: 'Prometheus metrics',
      description:
        'The Prometheus text format: request durations by method, route template and status, the engine\'s events and ' +
        'figures, and Node\'s process metrics, every name prefixed driftdb_. Needs the admin role, unless the server runs ' +
        'with --metrics-public (then no credentials). 404 not_found when it runs with --observability off.',
      produces: 'text/plain',
      response: {
        200: { type: 'string', description: 'Prometheus text exposition format 0.0.4.' },
        ...(opts.permission === 'public' ? { 404: ref('Problem') } : problemResponses({ extra: [404] })),
      },
    },
    handler: async (_request, reply) => {
      if (opts.metrics === null) throw new DriftError('not_found', 'metrics are off (--observability off)');
      return reply.type(opts.metrics.contentType).send(await opts.metrics.text());
    },
  });
}
