// Authentication: who is calling. Basic credentials are checked against the user store once and then cached (keyed
// by a hash of the header); bearer tokens cost a hash and a map lookup. A failure counts towards the username's
// lockout and the client address's auth rate limit, and is audited; it answers the same whether the user exists.

import { hash } from 'node:crypto';
import { DriftError } from '../errors.js';
import type { AuditContext, AuditLog } from './audit-log.js';
import { permissionsOf, type Permission } from './access.js';
import type { LoginGuard } from './lockout.js';
import type { TokenRecord, TokenStore } from './tokens.js';
import type { Role, UserRecord, UserStore } from './users.js';

/** The authenticated caller, as routes and services see it. */
export interface Principal {
  readonly username: string;
  readonly roles: readonly Role[];
  /** Tables the caller may touch; null = every table. */
  readonly grants: ReadonlySet<string> | null;
  /** What the roles allow, worked out once per user record (checked on every request). */
  readonly permissions: ReadonlySet<Permission>;
  /** The bearer token the request carried, if that is how it authenticated. */
  readonly token?: TokenRecord;
}

/** What the auth rate limit says about one more failure (or token request) from a client address. */
export interface RateVerdict {
  exceeded: boolean;
  retryAfterSeconds: number;
}

/** A request as security sees it: who (so far), from where, which request, and its address's auth rate limit. */
export interface RequestContext extends AuditContext {
  /** Counts one failed authentication or token request against the client address. */
  hitAuthLimit(): Promise<RateVerdict>;
}

/**
 * Verified credentials are remembered while they are used, and dropped once unused this long, so a Basic request does
 * not pay for scrypt each time. The expiry slides with each use: a fixed one made a client under steady load pay an
 * scrypt check (tens of ms, on the thread pool) every 30 s, for nothing, since an entry already ends with any change
 * to its user's record and a hit checks the lockout.
 */
export const credentialCacheTtlMs = 30_000;
export const credentialCacheEntriesMax = 10_000;

interface CacheEntry {
  /** The user record verified: any change to the user replaces the record, which invalidates the entry. */
  user: UserRecord;
  principal: Principal;
  expiresAtMs: number;
}

export interface AuthenticatorOptions {
  users: UserStore;
  tokens: TokenStore;
  guard: LoginGuard;
  audit: AuditLog;
  now?: () => number;
  /** Defaults to credentialCacheEntriesMax. */
  cacheEntriesMax?: number;
}

interface Failure {
  detail: string;
  /** The username tried, when there is one (audited as the entry's user). */
  username: string | null;
  method: 'basic' | 'bearer' | 'token';
  /** A wrong password: counts towards the username's lockout. */
  wrongPassword?: boolean;
  /** The name is locked: answer 423 rather than 401. */
  locked?: boolean;
  /** An expired token: audited token_expired rather than login_failure. */
  expired?: TokenRecord;
  /** Already counted against the address's limit (token requests count before the check). */
  counted?: boolean;
}

export class Authenticator {
  private readonly now: () => number;
  private readonly cacheEntriesMax: number;
  /** Keyed by a SHA-256 of the header, so no password is held in memory; Map order = insertion order = eviction order. */
  private readonly cache = new Map<string, CacheEntry>();
  /** Concurrent first requests with the same credentials share one scrypt check. */
  private readonly pending = new Map<string, Promise<Principal>>();
  private readonly principals = new WeakMap<UserRecord, Principal>();
  /** A token's principal, kept while its user's record is the same: a bearer request allocates nothing either. */
  private readonly tokenPrincipals = new WeakMap<TokenRecord, { user: UserRecord; principal: Principal }>();

  constructor(private readonly options: AuthenticatorOptions) {
    this.now = options.now ?? Date.now;
    this.cacheEntriesMax = options.cacheEntriesMax ?? credentialCacheEntriesMax;
  }

  /**
   * The caller of a request with this Authorization header: synchronously for a cached Basic header or a bearer
   * token (the hot path), else after one scrypt check. `contextOf` is called only when something must be counted or
   * audited, so the hot path allocates nothing for it.
   */
  authenticate<S>(header: string | undefined, source: S, contextOf: (source: S) => RequestContext): Principal | Promise<Principal> {
    if (header === undefined || header === '') throw unauthorized('credentials are required');
    const space = header.indexOf(' ');
    const scheme = (space === -1 ? header : header.slice(0, space)).toLowerCase();
    if (scheme === 'bearer') return this.bearer(header.slice(space + 1).trim(), () => contextOf(source));
    const cacheKey = hash('sha256', header, 'base64');
    const cached = this.cache.get(cacheKey);
    if (cached !== undefined) {
      const { username } = cached.principal;
      const now = this.now();
      if (cached.expiresAtMs > now && this.options.users.get(username) === cached.user) {
        if (this.options.guard.lockedUntil(username) === null) {
          cached.expiresAtMs = now + credentialCacheTtlMs;
          return cached.principal;
        }
        return this.fail(contextOf(source), { detail: lockedDetail(username), username, method: 'basic', locked: true });
      }
      this.cache.delete(cacheKey);
    }
    let pending = this.pending.get(cacheKey);
    if (pending === undefined) {
      pending = this.basic(header, cacheKey, contextOf(source)).finally(() => this.pending.delete(cacheKey));
      this.pending.set(cacheKey, pending);
    }
    return pending;
  }

  /** Checks a username and password (POST /v1/auth/token); counted against the address first, then audited. */
  async login(username: string, password: string, context: RequestContext): Promise<UserRecord> {
    const verdict = await context.hitAuthLimit();
    if (verdict.exceeded) throw rateLimited(verdict);
    if (this.options.guard.lockedUntil(username) !== null) {
      return this.fail(context, { detail: lockedDetail(username), username, method: 'token', locked: true, counted: true });
    }
    const user = await this.options.users.verify(username, password);
    if (user === null) {
      return this.fail(context, { detail: 'wrong username or password', username, method: 'token', wrongPassword: true, counted: true });
    }
    this.options.guard.recordSuccess(username);
    return user;
  }

  /** A wrong current password on a password change counts as a failed login of that user (a stolen token must not guess it). */
  async recordPasswordGuess(username: string, context: RequestContext): Promise<void> {
    if (this.options.guard.recordFailure(username)) this.auditLock(username, context);
    this.options.audit.record('login_failure', { ...context, user: username }, { method: 'password_change', reason: 'wrong current password' });
    const verdict = await context.hitAuthLimit();
    if (verdict.exceeded) throw rateLimited(verdict);
  }

  principalOf(user: UserRecord): Principal {
    let principal = this.principals.get(user);
    if (principal === undefined) {
      const grants = user.grants === undefined || user.roles.includes('admin') ? null : new Set(user.grants);
      principal = Object.freeze({ username: user.username, roles: user.roles, grants, permissions: permissionsOf(user.roles) });
      this.principals.set(user, principal);
    }
    return principal;
  }

  private bearer(token: string, context: () => RequestContext): Principal | Promise<Principal> {
    const found = this.options.tokens.lookup(token);
    if (found.kind === 'unknown') return this.fail(context(), { detail: 'unknown or revoked token', username: null, method: 'bearer' });
    const { record } = found;
    if (found.kind === 'expired') {
      return this.fail(context(), { detail: 'the token expired; ask for a new one', username: record.username, method: 'bearer', expired: record });
    }
    const user = this.options.users.get(record.username);
    if (user === undefined) return this.fail(context(), { detail: 'unknown or revoked token', username: record.username, method: 'bearer' });
    const known = this.tokenPrincipals.get(record);
    if (known?.user === user) return known.principal;
    const principal: Principal = Object.freeze({ ...this.principalOf(user), token: record });
    this.tokenPrincipals.set(record, { user, principal });
    return principal;
  }

  private async basic(header: string, cacheKey: string, context: RequestContext): Promise<Principal> {
    let credentials: { username: string; password: string };
    try {
      credentials = parseBasic(header);
    } catch (error) {
      return this.fail(context, { detail: (error as Error).message, username: null, method: 'basic' });
    }
    const { username, password } = credentials;
    if (this.options.guard.lockedUntil(username) !== null) {
      return this.fail(context, { detail: lockedDetail(username), username, method: 'basic', locked: true });
    }
    const user = await this.options.users.verify(username, password);
    if (user === null) return this.fail(context, { detail: 'wrong username or password', username, method: 'basic', wrongPassword: true });
    this.options.guard.recordSuccess(username);
    const principal = this.principalOf(user);
    if (this.cache.size >= this.cacheEntriesMax) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(cacheKey, { user, principal, expiresAtMs: this.now() + credentialCacheTtlMs });
    this.options.audit.record('login_success', { ...context, user: username }, { method: 'basic' });
    return principal;
  }

  /**
   * Every failed authentication ends here, the same way whether or not the user exists: lockout accounting, the
   * audit entry, the address's rate limit (429 past it), then 401 (or 423 for a locked name).
   */
  private async fail(context: RequestContext, failure: Failure): Promise<never> {
    const audited = { ...context, user: failure.username };
    if (failure.wrongPassword && failure.username !== null && this.options.guard.recordFailure(failure.username)) {
      this.auditLock(failure.username, context);
    }
    if (failure.expired !== undefined) {
      this.options.audit.record('token_expired', audited, { expiredAt: new Date(failure.expired.expiresAt).toISOString() });
    } else {
      this.options.audit.record('login_failure', audited, { method: failure.method, reason: failure.locked ? 'locked' : failure.detail });
    }
    if (!failure.counted) {
      const verdict = await context.hitAuthLimit();
      if (verdict.exceeded) throw rateLimited(verdict);
    }
    if (failure.locked) throw new DriftError('user_locked', failure.detail);
    throw unauthorized(failure.detail);
  }

  private auditLock(username: string, context: RequestContext): void {
    const until = this.options.guard.lockedUntil(username);
    const audited = { ...context, user: username };
    this.options.audit.record('brute_force_detected', audited, { reason: 'too many failed logins' });
    this.options.audit.record('user_locked', audited, { until: until === null ? null : new Date(until).toISOString() });
  }
}

const base64Pattern = /^[A-Za-z0-9+/]+={0,2}$/;

/** `Basic base64(user:password)`, strictly: anything else is a malformed header and a 401. */
export function parseBasic(header: string): { username: string; password: string } {
  const space = header.indexOf(' ');
  const scheme = space === -1 ? header : header.slice(0, space);
  if (scheme.toLowerCase() !== 'basic') throw unauthorized(`unsupported authorization scheme "${scheme.slice(0, 20)}"`);
  const encoded = header.slice(space + 1).trim();
  if (space === -1 || !base64Pattern.test(encoded) || encoded.length % 4 !== 0) throw unauthorized('malformed Basic credentials');
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) throw unauthorized('malformed Basic credentials');
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function lockedDetail(username: string): string {
  return `user "${username.slice(0, 64)}" is locked after repeated failed logins; wait, or ask an admin to unlock it`;
}

export function unauthorized(detail: string): DriftError {
  return new DriftError('unauthorized', detail);
}

function rateLimited(verdict: RateVerdict): DriftError {
  return new DriftError('rate_limited', `too many failed authentications or token requests from this address; retry in ${verdict.retryAfterSeconds} s`, {
    retryAfterSeconds: verdict.retryAfterSeconds,
  });
}
