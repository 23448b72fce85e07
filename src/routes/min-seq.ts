// minSeq (http-api.md §10): a read names the seq a write answered, and waits until this node has applied it, so a
// client reads its own writes on any node of a cluster. A route opts in by declaring `minSeq` in its query string or
// body schema; the wait runs before its handler, and the member never reaches the engine.

import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Database } from '../engine/index.js';

/** The schema of `minSeq`, in a query string or a body. */
export const minSeqParam = {
  type: 'integer',
  minimum: 0,
  maximum: Number.MAX_SAFE_INTEGER,
  description:
    'Read only once this node has applied this seq (a seq a write answered): waits up to --min-seq-wait-ms, then 503 ' +
    'unavailable with Retry-After. On a single node every answered seq is applied already.',
};

/** Adds the wait to every route of `app` registered from now on whose query string or body declares `minSeq`. */
export function installMinSeqWait(app: FastifyInstance, opts: { db: () => Database; waitMs: number }): void {
  app.addHook('onRoute', (route) => {
    const schema = route.schema as { querystring?: { properties?: object }; body?: { properties?: object; $ref?: string } } | undefined;
    const inQuery = schema?.querystring?.properties !== undefined && 'minSeq' in schema.querystring.properties;
    const inBody = (schema?.body?.properties !== undefined && 'minSeq' in schema.body.properties) || schema?.body?.$ref === 'Query#';
    if (!inQuery && !inBody) return;
    const wait = (request: FastifyRequest, _reply: unknown, done: (error?: Error) => void): void => {
      const minSeq = inQuery ? (request.query as { minSeq?: number }).minSeq : takeBodyMinSeq(request.body);
      if (minSeq === undefined) return done();
      opts.db().waitForSeq(minSeq, opts.waitMs).then(() => done(), done);
    };
    const existing = route.preHandler;
    route.preHandler = existing === undefined ? wait : [wait, ...(Array.isArray(existing) ? existing : [existing])];
  });
}

/** Takes `minSeq` out of a body: the engine sees the query or batch without it. */
function takeBodyMinSeq(body: unknown): number | undefined {
  if (typeof body !== 'object' || body === null || !('minSeq' in body)) return undefined;
  const { minSeq } = body as { minSeq: number };
  delete (body as { minSeq?: number }).minSeq;
  return minSeq;
}
