// Authentication and authorization for the /v1 scope: who is calling (Basic credentials, checked against the
// user store and cached), and whether the route's declared permission is among what their roles allow.

import { hash } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { DriftError } from '../errors.js';
import type { Role, UserStore } from './users.js';

export type Permission = 'read' | 'write' | 'admin';

/** The authenticated caller, as routes and services see it. */
export interface Principal {
  username: string;
  roles: string[];
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the authentication hook on every route of the authenticated scope; null elsewhere. */
    principal: Principal;
  }
  interface FastifyContextConfig {
    /** What a route of the authenticated scope needs; every such route must declare it. */
    permission?: Permission;
  }
}

const permissionsByRole: Record<Role, readonly Permission[]> = {
  admin: ['read', 'write', 'admin'],
  writer: ['read', 'write'],
  reader: ['read'],
};

export function rolesAllow(roles: readonly string[], permission: Permission): boolean {
  return roles.some((role) => (permissionsByRole[role as Role] ?? []).includes(permission));
}

/** Verified credentials are remembered this long, so a Basic request does not pay for scrypt each time. */
export const credentialCacheTtlMs = 30_000;
export const credentialCacheEntriesMax = 10_000;

interface CacheEntry {
  principal: Principal;
  expiresAtMs: number;
  /** The user store's generation when verified: any user change invalidates the entry. */
  generation: number;
}

export interface AuthenticatorOptions {
  users: UserStore;
  now?: () => number;
  /** Defaults to credentialCacheEntriesMax. */
  cacheEntriesMax?: number;
}

/** Turns an Authorization header into a Principal or a 401; Bearer tokens plug in here with the security issue. */
export class Authenticator {
  private readonly users: UserStore;
  private readonly now: () => number;
  private readonly cacheEntriesMax: number;
  /** Keyed by a SHA-256 of the header, so no password is held in memory; Map order = insertion order = eviction order. */
  private readonly cache = new Map<string, CacheEntry>();
  /** Concurrent first requests with the same credentials share one scrypt check. */
  private readonly pending = new Map<string, Promise<Principal>>();

  constructor(options: AuthenticatorOptions) {
    this.users = options.users;
    this.now = options.now ?? Date.now;
    this.cacheEntriesMax = options.cacheEntriesMax ?? credentialCacheEntriesMax;
  }

  /** The caller, from the cache when the credentials were verified recently, else after one scrypt check. */
  authenticate(header: string | undefined): Principal | Promise<Principal> {
    if (header === undefined || header === '') throw unauthorized('credentials are required');
    const cacheKey = hash('sha256', header, 'base64');
    const cached = this.cache.get(cacheKey);
    if (cached !== undefined) {
      if (cached.expiresAtMs > this.now() && cached.generation === this.users.generation) return cached.principal;
      this.cache.delete(cacheKey);
    }
    let pending = this.pending.get(cacheKey);
    if (pending === undefined) {
      pending = this.verify(header, cacheKey).finally(() => this.pending.delete(cacheKey));
      this.pending.set(cacheKey, pending);
    }
    return pending;
  }

  private async verify(header: string, cacheKey: string): Promise<Principal> {
    const { username, password } = parseBasic(header);
    const generation = this.users.generation;
    const user = await this.users.verify(username, password);
    if (user === null) throw unauthorized('wrong username or password');
    const principal: Principal = Object.freeze({ username: user.username, roles: Object.freeze([...user.roles]) as string[] });
    if (this.cache.size >= this.cacheEntriesMax) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(cacheKey, { principal, expiresAtMs: this.now() + credentialCacheTtlMs, generation });
    return principal;
  }
}

const base64Pattern = /^[A-Za-z0-9+/]+={0,2}$/;

/** `Basic base64(user:password)`, strictly: anything else is a malformed header and a 401. */
export function parseBasic(header: string): { username: string; password: string } {
  const space = header.indexOf(' ');
  const scheme = space === -1 ? header : header.slice(0, space);
  if (scheme.toLowerCase() === 'bearer') throw unauthorized('bearer tokens are not accepted yet; use Basic credentials');
  if (scheme.toLowerCase() !== 'basic') throw unauthorized(`unsupported authorization scheme "${scheme.slice(0, 20)}"`);
  const encoded = header.slice(space + 1).trim();
  if (!base64Pattern.test(encoded) || encoded.length % 4 !== 0) throw unauthorized('malformed Basic credentials');
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) throw unauthorized('malformed Basic credentials');
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function unauthorized(detail: string): DriftError {
  return new DriftError('unauthorized', detail);
}

/**
 * Installs authentication and authorization on one scope. It runs at onRequest, before the body is read, so an
 * unauthenticated client cannot make the server parse a large body; routes must declare `config.permission`.
 */
export function installAuth(app: FastifyInstance, authenticator: Authenticator): void {
  app.decorateRequest('principal', null as unknown as Principal);
  app.addHook('onRoute', (route) => {
    const permission = (route.config as { permission?: Permission } | undefined)?.permission;
    if (permission === undefined) {
      throw new Error(`route ${String(route.method)} ${route.url} must declare config.permission (read, write or admin)`);
    }
  });
  // A callback hook, so the common case (cached credentials) finishes synchronously, without a promise.
  app.addHook('onRequest', (request: FastifyRequest, _reply, done) => {
    const admit = (principal: Principal): void => {
      request.principal = principal;
      const permission = request.routeOptions.config.permission;
      if (permission === undefined || !rolesAllow(principal.roles, permission)) {
        throw new DriftError('forbidden', `user "${principal.username}" may not ${permission ?? 'use'} here`);
      }
    };
    try {
      const principal = authenticator.authenticate(request.headers.authorization);
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
