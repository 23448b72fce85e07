// Records every answered request: its duration into the request histogram and, for a data route at or over the
// threshold, an entry in the slow-query log. One onResponse hook per route, added when the route is registered,
// so a request pays for a duration read, a bucket search and a comparison, nothing more.

import type { FastifyInstance, FastifyReply, FastifyRequest, onResponseHookHandler } from 'fastify';
import type { RequestDurations, RouteDurations } from './request-durations.js';
import type { SlowQueryLog } from './slow-query-log.js';
import { describeStatement } from './statement.js';

declare module 'fastify' {
  interface FastifyReply {
    /** Rows the answer returned (reads) or the request wrote (writes); routes set it, the slow-query log reports it. */
    rows: number;
    /** The problem `code` of an error answer; set where problems are sent (routes/problem.ts). */
    problemCode: string | null;
  }
}

/** The data routes of http-api.md §2, the ones the slow-query log watches. */
const dataRoutePattern = /^\/v1\/(tables|query|transactions|batch)(\/|$)/;

export interface RequestObservers {
  /** The request histogram; null when metrics are off. */
  durations: RequestDurations | null;
  /** Null when the slow-query log is off. */
  slowQueries: { log: SlowQueryLog; redact: boolean; onRecorded(): void } | null;
}

/** Declares the per-answer facts routes report; called on every server, whether or not anything observes them. */
export function declareAnswerFacts(app: FastifyInstance): void {
  app.decorateReply('rows', 0);
  app.decorateReply('problemCode', null);
}

/** Adds the recording hook to every route registered after this call (on `app` and its child scopes). */
export function observeRequests(app: FastifyInstance, observers: RequestObservers): void {
  if (observers.durations === null && observers.slowQueries === null) return;
  app.addHook('onRoute', (route) => {
    const method = String(route.method);
    const durations = observers.durations?.forRoute(method, route.url) ?? null;
    const slow = dataRoutePattern.test(route.url) ? observers.slowQueries : null;
    const hook = recordingHook(route.url, durations, slow);
    if (hook === null) return;
    const existing = route.onResponse === undefined ? [] : Array.isArray(route.onResponse) ? route.onResponse : [route.onResponse];
    route.onResponse = [...existing, hook];
  });
}

function recordingHook(route: string, durations: RouteDurations | null, slow: RequestObservers['slowQueries']): onResponseHookHandler | null {
  if (durations === null && slow === null) return null;
  const thresholdMs = slow?.log.thresholdMs ?? Infinity;
  return function recordRequest(request, reply, done) {
    const ms = reply.elapsedTime;
    durations?.observe(reply.statusCode, ms / 1000);
    // The comparison is all a fast request pays for the slow-query log.
    if (ms >= thresholdMs) recordSlowQuery(slow!, request, reply, { route, ms });
    done();
  };
}

function recordSlowQuery(slow: NonNullable<RequestObservers['slowQueries']>, request: FastifyRequest, reply: FastifyReply, at: { route: string; ms: number }): void {
  const params = (request.params ?? {}) as Record<string, string>;
  const query = (request.query ?? {}) as Record<string, unknown>;
  const body = request.body as { table?: unknown } | null | undefined;
  const table = params['table'] ?? (typeof body?.table === 'string' ? body.table : undefined);
  const header = request.headers['transaction-id'];
  const transactionId = typeof header === 'string' ? header : at.route.startsWith('/v1/transactions/:id') ? params['id'] : undefined;
  const statement = describeStatement({ method: request.method, url: request.url, route: at.route, params, query, body, redact: slow.redact });
  slow.log.record({
    requestId: request.id,
    ts: new Date(Date.now() - at.ms).toISOString(),
    durationMs: Math.round(at.ms * 1000) / 1000,
    method: request.method,
    route: at.route,
    ...(table === undefined ? {} : { table }),
    statement,
    user: request.principal?.username ?? null,
    ...(transactionId === undefined ? {} : { transactionId }),
    rows: reply.rows,
    status: reply.statusCode,
    ...(reply.problemCode === null ? {} : { error: reply.problemCode }),
  });
  slow.onRecorded();
}
