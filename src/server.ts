// buildServer(config, deps): the composition root of the HTTP side. Plugins, body parsing, error rendering and route
// scopes are wired here; it never listens, so tests build one, inject requests, and close it.

import { promises as fs } from 'node:fs';
import type https from 'node:https';
import fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyHttpsOptions,
  type FastifyInstance,
  type FastifyServerOptions,
} from 'fastify';
import type { Config } from './config/index.js';
import type { Database } from './engine/index.js';
import { DriftError } from './errors.js';
import { limits } from './limits.js';
import { declareAnswerFacts, observeRequests } from './observability/http-observer.js';
import { lazyChildLogger, requestIdFrom, type Logger } from './observability/logger.js';
import { createObservability, type Observability } from './observability/observability.js';
import { securityHeaders } from './security/headers.js';
import type { ClusterRouteSource } from './routes/cluster.js';
import { registerRoutes } from './routes/index.js';
import { lazySerializerFactory } from './routes/lazy-serializer.js';
import { loadOpenApiJson } from './routes/openapi.js';
import {
  clientErrorProblem,
  installProblemHandlers,
  problemFromError,
  problemOf,
  rawProblemResponse,
  sendProblem,
} from './routes/problem.js';
import { parseJsonBody } from './security/json-body.js';
import { registerRateLimits } from './security/rate-limit.js';
import type { Security } from './security/security.js';
import { loadTlsMaterial } from './security/tls.js';
import { ChangeService } from './service/changes.js';
import { IdempotencyService } from './service/idempotency.js';
import { TransactionService } from './service/transactions.js';

export interface ServerDeps {
  /** The open database; throws DriftError('unavailable') while it is being recovered or after it closed. */
  db: () => Database;
  /** Users, tokens, lockout and the audit log, opened with the database; throws DriftError('unavailable') until then. */
  security: () => Security;
  logger: Logger;
  /** Metrics and the slow-query log; built from the config when absent (the CLI passes its own: the engine reports to it). */
  observability?: Observability;
  /** Cluster mode: the cluster's state and the peer log stream (the CLI passes it with --cluster etcd). */
  cluster?: ClusterRouteSource | null;
}

/** Socket-idle bounds, so a silent client cannot hold a connection forever (--request-timeout-ms bounds a slow one). */
const connectionIdleTimeoutMs = 120_000;
const keepAliveTimeoutMs = 72_000;
/** A percent-encoded key may take up to 9 characters per UTF-16 unit (3 UTF-8 bytes × "%XX"). */
const routeParamLengthMax = limits.keyLengthMax * 9;

/** The answer to a request that arrives after shutdown began; the in-flight ones still finish. */
const shuttingDownProblem = problemOf('unavailable', 'the server is shutting down; retry on a new connection');

export async function buildServer(config: Config, deps: ServerDeps): Promise<FastifyInstance> {
  await fs.mkdir(config.dataDir, { recursive: true });
  const tls = await loadTlsMaterial(config, deps.logger);

  const headers = securityHeaders({ https: tls !== null });
  const options: FastifyServerOptions = { ...serverOptions(headers, config), loggerInstance: deps.logger as FastifyBaseLogger };
  const timeouts = nodeTimeouts(config.requestTimeoutMs);
  const app = (
    tls === null
      ? fastify({ ...options, http: timeouts })
      : fastify({ ...options, https: { key: tls.key, cert: tls.cert, minVersion: config.tlsMinVersion, ...timeouts } } as FastifyHttpsOptions<https.Server>)
  ) as unknown as FastifyInstance;
  // Set once close() begins, before the listener stops: a request that still arrives (pipelined, or on a kept-alive
  // connection between sweeps) is refused as a problem, where Fastify's own return503OnClosing answer is bare JSON.
  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  app.addHook('onRequest', (request, reply, done) => {
    reply.headers(headers).header('x-request-id', request.id);
    if (closing) {
      // Connection: close (Fastify sets it for matched routes, not for the not-found handler): retry elsewhere.
      sendProblem(reply.header('connection', 'close'), shuttingDownProblem);
      return;
    }
    done();
  });
  // One access line per request at debug (Fastify's own request logging writes two at info, which cost a
  // quarter of the throughput); errors and warnings carry the request id at every level. The level is fixed for
  // the process, so without debug there is no hook at all.
  if (deps.logger.isLevelEnabled('debug')) {
    app.addHook('onResponse', (request, reply, done) => {
      const ms = Math.round(reply.elapsedTime * 10) / 10;
      request.log.debug({ method: request.method, url: request.url, statusCode: reply.statusCode, ms }, 'request');
      done();
    });
  }
  installJsonBodyParser(app);
  installProblemHandlers(app);
  refuseUnknownQueryParameters(app);
  const observability = deps.observability ?? createObservability(config, { logger: deps.logger, db: deps.db });
  declareAnswerFacts(app);
  observeRequests(app, {
    durations: observability.metrics?.requestDurations ?? null,
    slowQueries:
      observability.slowQueries === null
        ? null
        : { log: observability.slowQueries, redact: observability.redact, onRecorded: () => observability.metrics?.countSlowQuery() },
  });

  const transactions = new TransactionService(deps.db, {
    idleTimeoutMs: config.txIdleTimeoutMs,
    openPerUserMax: config.txPerUserMax,
    openTotalMax: config.txTotalMax,
    lifetimeMsMax: config.txLifetimeMsMax,
  });
  // Closing the server rolls back every open transaction, before the CLI closes the database.
  app.addHook('onClose', async () => transactions.closeAll());
  const changes = new ChangeService(deps.db, { bufferCommits: config.changesBufferCommits, flushMs: config.changesFlushMs });
  const idempotency = new IdempotencyService(deps.db, { ttlMs: config.idempotencyTtlMs });
  // Change streams end with the server (their clients resume with Last-Event-ID); a stream left open would hold the
  // shutdown until its grace runs out.
  app.addHook('preClose', (done) => {
    changes.closeAll();
    done();
  });
  const rateLimits = await registerRateLimits(app, {
    config,
    // A limit can only be hit once security is open (every limited request authenticates or asks for a token).
    onLimited: (kind, context, details) => deps.security().audit.record('rate_limited', context, { limit: kind, ...details }),
  });
  // And writes out the slow-query lines still queued for their file.
  app.addHook('onClose', async () => observability.slowQueries?.flush());
  await registerRoutes(app, {
    db: deps.db,
    security: deps.security,
    rateLimits,
    transactions,
    changes,
    idempotency,
    loadOpenApi: loadOpenApiJson,
    observability,
    config,
    cluster: deps.cluster ?? null,
  });
  return app;
}

/**
 * Node's own bounds on a slow client (slow-loris), given to the server when it is made. The request timeout only cuts
 * off a trickling body when the headers timeout is not longer (Node 20: with Fastify's later `requestTimeout` alone,
 * headers stayed at 60 s and a body could trickle in forever). Node looks for expired requests every
 * connectionsCheckingInterval (30 s by default): a quarter of the timeout, between 50 ms and 5 s, cuts them off close
 * to it.
 */
function nodeTimeouts(requestTimeoutMs: number): { requestTimeout: number; headersTimeout: number; connectionsCheckingInterval: number } {
  return {
    requestTimeout: requestTimeoutMs,
    headersTimeout: requestTimeoutMs,
    connectionsCheckingInterval: Math.min(5_000, Math.max(50, Math.floor(requestTimeoutMs / 4))),
  };
}

/** Fastify's options, every bound explicit. */
function serverOptions(headers: Readonly<Record<string, string>>, config: Config): FastifyServerOptions {
  return {
    genReqId: (request) => requestIdFrom(request.headers['x-request-id']),
    childLoggerFactory: lazyChildLogger,
    // Fastify's two access lines per request are replaced by one debug line (see buildServer).
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: limits.requestBodyBytesMax,
    requestTimeout: config.requestTimeoutMs,
    connectionTimeout: connectionIdleTimeoutMs,
    keepAliveTimeout: keepAliveTimeoutMs,
    // Requests during shutdown get a 503 unavailable problem from buildServer's first onRequest hook instead.
    return503OnClosing: false,
    routerOptions: { maxParamLength: routeParamLengthMax },
    // Unknown members are rejected by schemas that say so, never silently dropped; query strings are coerced.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true } },
    schemaController: { compilersFactory: { buildSerializer: lazySerializerFactory } },
    // Errors the router meets before any hook runs (a malformed or oversized URL): rendered like all others,
    // with the security and request-id headers every other answer carries.
    frameworkErrors: (error, request, reply) => {
      reply.headers(headers).header('x-request-id', request.id);
      return sendProblem(reply, problemFromError(error, request.id));
    },
    // And errors Node meets before there is a request at all (headers too large, a request that never ends).
    clientErrorHandler: (error, socket) => {
      if ((error as NodeJS.ErrnoException).code === 'ECONNRESET' || socket.destroyed) return;
      const problem = clientErrorProblem(error as NodeJS.ErrnoException);
      if (socket.writable) socket.write(rawProblemResponse(problem, headers));
      socket.destroy();
    },
  };
}

/** JSON is the only body format; anything else answers 415 unsupported_media_type. */
function installJsonBodyParser(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  // The body's bytes as received: an Idempotency-Key names one exact request (method, path and body bytes).
  app.decorateRequest('rawBody', '');
  // RFC 7396 names its own media type for merge patches; accept it beside plain JSON.
  app.addContentTypeParser(['application/json', 'application/merge-patch+json'], { parseAs: 'string' }, (request, body, done) => {
    try {
      checkContentEncoding(request.headers['content-encoding']);
      request.rawBody = body as string;
      done(null, parseJsonBody(body as string, limits.documentDepthMax));
    } catch (error) {
      done(error as Error, undefined);
    }
  });
}

/** A body in an encoding the server does not decode (gzip…) would be parsed as if it were plain: 415 instead. */
function checkContentEncoding(encoding: string | undefined): void {
  if (encoding === undefined || encoding.trim().toLowerCase() === 'identity') return;
  throw new DriftError('unsupported_media_type', `Content-Encoding '${encoding.slice(0, 40)}' is not supported: send the body uncompressed.`);
}

/** A /v1 route that declares no query parameters refuses any (`?asOf=5` on a PUT must not be silently dropped). */
function refuseUnknownQueryParameters(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    if (!route.url.startsWith('/v1/') || route.schema?.querystring !== undefined) return;
    route.schema = { ...route.schema, querystring: { type: 'object', properties: {}, additionalProperties: false } };
  });
}
