// Rate limits with @fastify/rate-limit: token requests and failed authentications per client address (always on),
// and data routes per user (else per address) only when --rate-limit-max is given. Each client that runs into a limit
// is audited rate_limited once per window, so a flood cannot flood the audit log.

import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config/index.js';
import { DriftError } from '../errors.js';
import type { AuditContext } from './audit-log.js';
import type { RateVerdict } from './auth.js';

/** Clients (addresses or users) whose counters are kept per limit; past it the least recently seen is forgotten. */
export const rateLimitClientsMax = 10_000;

export type RateLimitKind = 'auth' | 'data';

/** Records a client that ran into a limit (the audit log's rate_limited). */
export type RateLimitedListener = (kind: RateLimitKind, context: AuditContext, details: { max: number; windowMs: number }) => void;

export interface RateLimits {
  /** Counts one token request or failed authentication from the request's client address. */
  hitAuth(request: FastifyRequest): Promise<RateVerdict>;
  /** The onRequest hook of every data route, or null when --rate-limit-max is not given. */
  dataHook: ((request: FastifyRequest, reply: FastifyReply) => Promise<void>) | null;
}

/** Registers the plugin (on no route by itself) and builds both limits. */
export async function registerRateLimits(
  app: FastifyInstance,
  options: { config: Config; onLimited: RateLimitedListener },
): Promise<RateLimits> {
  const { config, onLimited } = options;
  await app.register(rateLimit, { global: false, cache: rateLimitClientsMax });
  const once = new OncePerWindow();
  const contextOf = (request: FastifyRequest): AuditContext => ({
    user: request.principal?.username ?? null,
    clientIp: request.ip,
    requestId: request.id,
  });

  const authCheck = app.createRateLimit({ max: config.authRateLimitMax, timeWindow: config.authRateLimitWindowMs });
  const hitAuth = async (request: FastifyRequest): Promise<RateVerdict> => {
    const limit = await authCheck(request);
    if (limit.isAllowed || !limit.isExceeded) return { exceeded: false, retryAfterSeconds: 0 };
    if (once.first(`auth ${limit.key}`, limit.ttl)) {
      onLimited('auth', contextOf(request), { max: config.authRateLimitMax, windowMs: config.authRateLimitWindowMs });
    }
    return { exceeded: true, retryAfterSeconds: Math.max(1, limit.ttlInSeconds) };
  };

  const dataMax = config.rateLimitMax;
  const dataHook =
    dataMax === null
      ? null
      : app.rateLimit({
          max: dataMax,
          timeWindow: config.rateLimitWindowMs,
          // After authentication (this hook follows it), so a user is limited across all their addresses.
          keyGenerator: (request) => (request.principal === null ? `address ${request.ip}` : `user ${request.principal.username}`),
          onExceeded: (request, key) => {
            if (once.first(`data ${key}`, config.rateLimitWindowMs)) {
              onLimited('data', contextOf(request), { max: dataMax, windowMs: config.rateLimitWindowMs });
            }
          },
          errorResponseBuilder: (_request, context) =>
            new DriftError('rate_limited', `more than ${context.max} data requests in ${config.rateLimitWindowMs} ms; retry in ${context.after}`, {
              retryAfterSeconds: Math.max(1, Math.ceil(context.ttl / 1000)),
            }),
        });
  return { hitAuth, dataHook: dataHook as RateLimits['dataHook'] };
}

/** True the first time a key is seen within its window; bounded like the limiter's own store. */
class OncePerWindow {
  private readonly until = new Map<string, number>();

  first(key: string, windowMs: number): boolean {
    const now = Date.now();
    const until = this.until.get(key);
    if (until !== undefined && until > now) return false;
    this.until.delete(key);
    this.until.set(key, now + windowMs);
    if (this.until.size > rateLimitClientsMax) this.until.delete(this.until.keys().next().value!);
    return true;
  }
}
