// The one place authorization happens: Fastify hooks driven by each route's declaration (`config.permission`,
// `config.bodyTables` where a body names tables, `config.adminWhenRowPolicies` for routes that would bypass row
// policies). Authentication runs at onRequest, before any body is read, and hands the request the caller's row
// policies; a route without a declaration fails at registration; a denial is 403 forbidden and audited access_denied.

import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import type { RowPolicies } from '../engine/index.js';
import { DriftError } from '../errors.js';
import { permissions, roleDenial, tableDenial, tablesInBody, type BodyTables, type Permission, type TableAccess } from './access.js';
import type { Principal, RequestContext } from './auth.js';
import type { RateLimits } from './rate-limit.js';
import type { Security } from './security.js';

/** What a route may declare beside its permission. */
export type AuditedTableEvent = 'table_created' | 'table_dropped' | 'table_forked' | 'table_restored';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the authentication hook on every route of the authenticated scope; null elsewhere. */
    principal: Principal;
    /** The caller's row policies (http-api.md §8), set with the principal: pass them into every engine call. */
    rowPolicies: RowPolicies;
  }
  interface FastifyContextConfig {
    /** What the route needs; every route must declare it. */
    permission?: Permission;
    /** Where the body names the tables the request touches (checked against roles and grants once it is parsed). */
    bodyTables?: BodyTables;
    /** A table event to audit when the route succeeds. */
    audit?: AuditedTableEvent;
    /**
     * The route reads or writes the table in its path past its row policies (diff, fork, restore): on a table with
     * policies only an admin may call it (http-api.md §8).
     */
    adminWhenRowPolicies?: boolean;
  }
}

export interface AuthHookDeps {
  security: () => Security;
  rateLimits: RateLimits;
}

/** The routes http-api.md §2 calls data routes: rate-limited per user when --rate-limit-max is given. */
const dataRoutePattern = /^\/v1\/(tables|query|transactions|batch)(\/|$)/;

/** On the root: every route, public ones included, must say what it needs, or registration fails. */
export function requirePermissionDeclarations(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    const permission = (route.config as { permission?: unknown } | undefined)?.permission;
    if (!permissions.includes(permission as Permission)) {
      throw new Error(`route ${String(route.method)} ${route.url} must declare config.permission (${permissions.join(', ')})`);
    }
  });
}

/** A request's context for security: who, from where, which request, and its address's auth rate limit. */
export function requestContext(request: FastifyRequest, rateLimits: RateLimits): RequestContext {
  return {
    user: request.principal?.username ?? null,
    clientIp: request.ip,
    requestId: request.id,
    hitAuthLimit: () => rateLimits.hitAuth(request),
  };
}

/** Installs authentication and authorization on the authenticated scope. */
export function installAuth(scope: FastifyInstance, deps: AuthHookDeps): void {
  scope.decorateRequest('principal', null as unknown as Principal);
  scope.decorateRequest('rowPolicies', null as unknown as RowPolicies);
  const contextOf = (request: FastifyRequest): RequestContext => requestContext(request, deps.rateLimits);
  scope.addHook('onRoute', (route) => addRouteHooks(route, deps, contextOf));
  // A callback hook, so the common case (cached credentials, a token) finishes synchronously, without a promise.
  scope.addHook('onRequest', (request: FastifyRequest, _reply, done) => {
    try {
      refuseDuplicateAuthorization(request);
      const security = deps.security();
      const admit = (principal: Principal): void => {
        request.principal = principal;
        request.rowPolicies = security.rowPolicies.forPrincipal(principal);
        admitRoute(security, request, principal);
      };
      const principal = security.authenticator.authenticate(request.headers.authorization, request, contextOf);
      if (!(principal instanceof Promise)) {
        admit(principal);
        done();
        return;
      }
      principal.then(admit).then(() => done(), done);
    } catch (error) {
      done(error as Error);
    }
  });
}

/** The route's permission and the table in its path, if any: checked as soon as the caller is known. */
function admitRoute(security: Security, request: FastifyRequest, principal: Principal): void {
  const permission = request.routeOptions.config.permission!;
  const reason = roleDenial(principal, permission);
  if (reason !== null) throw forbid(security, request, reason, { permission });
  const table = (request.params as { table?: unknown } | undefined)?.table;
  if (typeof table !== 'string') return;
  const access: TableAccess = { table, permission: permission === 'authenticated' || permission === 'public' ? 'read' : permission };
  const tableReason = tableDenial(principal, access);
  if (tableReason !== null) throw forbid(security, request, tableReason, { permission: access.permission, table });
  if (request.routeOptions.config.adminWhenRowPolicies === true) {
    const policyReason = security.rowPolicyDenial(principal, table);
    if (policyReason !== null) throw forbid(security, request, policyReason, { permission: 'admin', table });
  }
}

function addRouteHooks(route: RouteOptions, deps: AuthHookDeps, contextOf: (request: FastifyRequest) => RequestContext): void {
  const config = (route.config ?? {}) as { permission?: Permission; bodyTables?: BodyTables; audit?: AuditedTableEvent };
  if (config.permission === 'public') throw new Error(`route ${String(route.method)} ${route.url} is in the authenticated scope: it cannot be public`);
  const { bodyTables, audit } = config;
  if (dataRoutePattern.test(route.url) && deps.rateLimits.dataHook !== null) appendHook(route, 'onRequest', deps.rateLimits.dataHook);
  if (bodyTables !== undefined) {
    // After validation, so the body's shape is known; before the handler, so nothing runs for a denied request. A
    // callback hook: it decides synchronously, and an async one cost every query and batch a promise and a tick.
    appendHook(route, 'preHandler', (request: FastifyRequest, _reply: FastifyReply, done: (error?: Error) => void) => {
      for (const access of tablesInBody(bodyTables, request.body)) {
        const reason = tableDenial(request.principal, access);
        if (reason !== null) return done(forbid(deps.security(), request, reason, { permission: access.permission, table: access.table }));
      }
      done();
    });
  }
  if (audit !== undefined) {
    appendHook(route, 'onResponse', async (request: FastifyRequest, reply: FastifyReply) => {
      if (reply.statusCode >= 300) return;
      const params = request.params as { table?: string };
      const body = request.body as { name?: unknown; asOf?: number | string } | undefined;
      const table = params.table ?? (typeof body?.name === 'string' ? body.name : null);
      // A fork names its new table in the body, and a fork or restore the point in time it copies.
      const details = {
        table,
        ...(params.table !== undefined && typeof body?.name === 'string' ? { name: body.name } : {}),
        ...(body?.asOf !== undefined ? { asOf: body.asOf } : {}),
      };
      deps.security().audit.record(audit, contextOf(request), details);
    });
  }
}

function forbid(security: Security, request: FastifyRequest, reason: string, details: { permission: string; table?: string }): DriftError {
  security.audit.record(
    'access_denied',
    { user: request.principal?.username ?? null, clientIp: request.ip, requestId: request.id },
    { method: request.method, route: request.routeOptions.url ?? null, ...details },
  );
  return new DriftError('forbidden', reason);
}

/**
 * Node keeps the first of repeated Authorization headers and drops the rest; a proxy in front may pick another.
 * Two credentials in one request are refused rather than guessed between (header smuggling).
 */
function refuseDuplicateAuthorization(request: FastifyRequest): void {
  const raw = request.raw.rawHeaders;
  let seen = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 13 && name.toLowerCase() === 'authorization' && ++seen > 1) {
      throw new DriftError('bad_request', 'the request carries more than one Authorization header');
    }
  }
}

type HookName = 'onRequest' | 'preHandler' | 'onResponse';

function appendHook(route: RouteOptions, name: HookName, hook: unknown): void {
  const existing = (route as unknown as Record<HookName, unknown>)[name];
  const hooks = existing === undefined ? [] : Array.isArray(existing) ? existing : [existing];
  (route as unknown as Record<HookName, unknown[]>)[name] = [...hooks, hook];
}
