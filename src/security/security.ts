// The security services of one server, opened once the database is: users, tokens, lockout, row policies, the audit
// log and the authenticator, plus the use cases the auth and admin routes call. Each change of users, tokens or
// policies is committed before it is answered and audited with who did it.

import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ConfigError, type Config } from '../config/index.js';
import type { Database } from '../engine/index.js';
import { DriftError } from '../errors.js';
import { MiB } from '../limits.js';
import type { JsonValue } from './audit-chain.js';
import { AuditLog, type AuditContext, type AuditLogger } from './audit-log.js';
import { Authenticator, type Principal, type RequestContext } from './auth.js';
import { LoginGuard } from './lockout.js';
import { PolicyStore, type PolicyInput, type PolicyView } from './policies.js';
import { RowPolicyResolver } from './row-policies.js';
import { rowOrNull, systemTables } from './system-tables.js';
import { TokenStore } from './tokens.js';
import { UserStore, viewOf, type Role, type UserView } from './users.js';
import { SecurityClusterSync } from './cluster-sync.js';

export type SecurityLogger = AuditLogger;

export interface OpenSecurityOptions {
  config: Config;
  db: Database;
  logger: SecurityLogger;
  /** Where a generated admin password is shown, once. */
  announce: (line: string) => void;
  /** The audit HMAC key read before listening (loadAuditHmacKey); read from the config when absent. */
  hmacKey?: Buffer | null;
  now?: () => number;
}

/** Settings whose change between two starts is audited as config_changed. */
const auditedSettings = [
  'tls',
  'tlsMinVersion',
  'auditLog',
  'tokenTtlMs',
  'loginFailureThreshold',
  'loginFailureWindowMs',
  'lockoutMs',
  'rateLimitMax',
  'rateLimitWindowMs',
  'authRateLimitMax',
  'authRateLimitWindowMs',
] as const satisfies ReadonlyArray<keyof Config>;

const configRow = 'config';
const hmacKeyBytesMin = 32;
const noRequest: AuditContext = { user: null, clientIp: null, requestId: null };

export class Security {
  private constructor(
    readonly users: UserStore,
    readonly tokens: TokenStore,
    readonly guard: LoginGuard,
    readonly audit: AuditLog,
    readonly authenticator: Authenticator,
    readonly policies: PolicyStore,
    /** Each caller's row policies, for every engine call their requests make. */
    readonly rowPolicies: RowPolicyResolver,
  ) {}

  /** Cluster mode: applies user and token changes other nodes commit. */
  private clusterSync: SecurityClusterSync | null = null;

  static async open(options: OpenSecurityOptions): Promise<Security> {
    const { config, db, logger } = options;
    const key = options.hmacKey !== undefined ? options.hmacKey : await loadAuditHmacKey(config);
    const audit = await AuditLog.open({
      db,
      file: config.auditLogPath!,
      rotateBytes: config.auditLogRotateMb * MiB,
      ringEntriesMax: config.auditMaxEntries,
      key,
      enabled: config.auditLog === 'on',
      logger,
      nodeId: config.cluster === 'etcd' ? config.nodeId : null,
      ...(options.now ? { now: options.now } : {}),
    });
    const opened = await UserStore.open({ db, dataDir: config.dataDir, adminPassword: config.adminPassword, announce: options.announce, logger });
    for (const user of opened.created) audit.record('user_created', noRequest, { username: user.username, roles: [...user.roles], bootstrap: true });
    const tokens = await TokenStore.open({
      db,
      ttlMs: config.tokenTtlMs,
      ...(options.now ? { now: options.now } : {}),
      onSweepError: (error) => logger.error({ module: 'tokens', err: String(error) }, 'expired-token sweep failed'),
    });
    const guard = new LoginGuard({
      threshold: config.loginFailureThreshold,
      windowMs: config.loginFailureWindowMs,
      lockoutMs: config.lockoutMs,
      ...(options.now ? { now: options.now } : {}),
    });
    const authenticator = new Authenticator({ users: opened.store, tokens, guard, audit, ...(options.now ? { now: options.now } : {}) });
    const policies = await PolicyStore.open(db);
    const rowPolicies = new RowPolicyResolver(policies, opened.store);
    const security = new Security(opened.store, tokens, guard, audit, authenticator, policies, rowPolicies);
    if (config.cluster === 'etcd') {
      security.clusterSync = new SecurityClusterSync(db, opened.store, tokens, policies, (error) =>
        logger.error({ module: 'security', err: String(error) }, 'cannot apply user, token or policy changes from the cluster'),
      );
    }
    await security.auditConfigChanges(db, config);
    return security;
  }

  // ---- tokens and one's own password ---------------------------------------------------------------------------

  /** POST /v1/auth/token: a new bearer token for a username and password. */
  async issueToken(input: { username: string; password: string }, context: RequestContext): Promise<{ token: string; expiresAt: string }> {
    const user = await this.authenticator.login(input.username, input.password, context);
    const { token, record } = await this.tokens.issue(user.username);
    this.audit.record('login_success', { ...context, user: user.username }, { method: 'token', expiresAt: iso(record.expiresAt) });
    return { token, expiresAt: iso(record.expiresAt) };
  }

  /** DELETE /v1/auth/token: revokes the bearer token the request carried. */
  async revokeToken(principal: Principal, context: RequestContext): Promise<void> {
    if (principal.token === undefined) {
      throw new DriftError('bad_request', 'This request authenticated with Basic credentials: send the bearer token to revoke as Authorization: Bearer <token>.');
    }
    await this.tokens.revoke(principal.token);
    this.audit.record('logout', context);
  }

  /** PUT /v1/auth/password: the current password must be right (a wrong one counts as a failed login). */
  async changeOwnPassword(principal: Principal, input: { currentPassword: string; newPassword: string }, context: RequestContext): Promise<void> {
    const user = await this.users.verify(principal.username, input.currentPassword);
    if (user === null) {
      await this.authenticator.recordPasswordGuess(principal.username, context);
      throw new DriftError('forbidden', 'currentPassword is not the password of this user.');
    }
    await this.users.setPassword(principal.username, input.newPassword);
    const tokensRevoked = await this.tokens.revokeUser(principal.username);
    this.audit.record('password_changed', context, { username: principal.username, by: 'self', tokensRevoked });
  }

  // ---- user administration -------------------------------------------------------------------------------------

  listUsers(): UserView[] {
    return this.users.list().map(viewOf);
  }

  async createUser(input: { username: string; password: string; roles: Role[]; grants?: string[] }, context: AuditContext): Promise<UserView> {
    const user = await this.users.create(input);
    this.audit.record('user_created', context, { username: user.username, roles: [...user.roles], grants: grantsDetail(user.grants) });
    return viewOf(user);
  }

  async deleteUser(username: string, context: AuditContext): Promise<void> {
    await this.users.remove(username);
    const tokensRevoked = await this.tokens.revokeUser(username);
    this.guard.unlock(username);
    this.rowPolicies.forgetUser(username);
    this.audit.record('user_deleted', context, { username, tokensRevoked });
  }

  /** An admin sets someone's password: their cached credentials stop working at once and their tokens are revoked. */
  async resetPassword(username: string, password: string, context: AuditContext): Promise<void> {
    await this.users.setPassword(username, password);
    const tokensRevoked = await this.tokens.revokeUser(username);
    this.audit.record('password_changed', context, { username, by: 'admin', tokensRevoked });
  }

  async setRoles(username: string, access: { roles: Role[]; grants?: string[] }, context: AuditContext): Promise<UserView> {
    const { before, after } = await this.users.setAccess(username, access);
    this.audit.record('roles_changed', context, {
      username,
      from: { roles: [...before.roles], grants: grantsDetail(before.grants) },
      to: { roles: [...after.roles], grants: grantsDetail(after.grants) },
    });
    return viewOf(after);
  }

  unlock(username: string, context: AuditContext): { username: string; wasLocked: boolean } {
    if (this.users.get(username) === undefined) throw new DriftError('not_found', `no user "${username}"`);
    const wasLocked = this.guard.unlock(username);
    this.audit.record('user_unlocked', context, { username, wasLocked });
    return { username, wasLocked };
  }

  // ---- row policies (http-api.md §8) ---------------------------------------------------------------------------

  listPolicies(table: string): PolicyView[] {
    return this.policies.list(table);
  }

  async putPolicy(table: string, name: string, input: PolicyInput, context: AuditContext): Promise<{ policy: PolicyView; created: boolean }> {
    const result = await this.policies.put(table, name, input);
    const { appliesTo, read, write, seq } = result.policy;
    this.audit.record('policy_changed', context, {
      table,
      name,
      action: result.created ? 'created' : 'replaced',
      seq,
      appliesTo: appliesTo as JsonValue,
      read: (read ?? null) as JsonValue,
      write: (write ?? null) as JsonValue,
    });
    return result;
  }

  async deletePolicy(table: string, name: string, context: AuditContext): Promise<void> {
    await this.policies.remove(table, name);
    this.audit.record('policy_changed', context, { table, name, action: 'deleted' });
  }

  /**
   * Why the caller may not use a route that bypasses row policies (diff, fork, restore) on this table, or null when
   * they may: on a table with policies, only admins (http-api.md §8). Routes declare `config.adminWhenRowPolicies`
   * and the authorization hook calls this; call it directly where a route names its tables elsewhere.
   */
  rowPolicyDenial(principal: Principal, table: string): string | null {
    if (this.policies.forTable(table) === undefined || principal.permissions.has('admin')) return null;
    return `table '${table}' has row policies: only an admin may read or change it past them`;
  }

  /** Throws 403 forbidden, audited access_denied, unless the caller may bypass the table's row policies. */
  requireAdminIfPolicies(principal: Principal, table: string, context: AuditContext): void {
    const reason = this.rowPolicyDenial(principal, table);
    if (reason === null) return;
    this.audit.record('access_denied', context, { permission: 'admin', table, reason });
    throw new DriftError('forbidden', reason);
  }

  /** A table was dropped: its policies go with it (audited, when it had any). */
  async tableDropped(table: string, context: AuditContext): Promise<void> {
    this.rowPolicies.forgetTable(table);
    const names = await this.policies.tableDropped(table);
    if (names.length > 0) this.audit.record('policy_changed', context, { table, names, action: 'dropped with the table' });
  }

  /** Stops the token sweep, writes every queued audit entry and records the chain's head (before the database closes). */
  async close(): Promise<void> {
    this.clusterSync?.close();
    this.tokens.close();
    await this.audit.close();
  }

  /** Settings that changed since the last start are audited (and the first start records them all). */
  private async auditConfigChanges(db: Database, config: Config): Promise<void> {
    const now: Record<string, JsonValue> = { auditHmac: config.auditHmacKeyFile !== null };
    for (const name of auditedSettings) now[name] = config[name];
    const previous = (rowOrNull(db, systemTables.audit.name, configRow)?.settings ?? null) as Record<string, JsonValue> | null;
    const changed: Record<string, JsonValue> = {};
    for (const [name, value] of Object.entries(now)) {
      if (previous === null || previous[name] !== value) changed[name] = { from: previous?.[name] ?? null, to: value };
    }
    if (Object.keys(changed).length === 0) return;
    await db.put({ table: systemTables.audit.name, key: configRow, doc: { name: configRow, settings: now } });
    this.audit.record('config_changed', noRequest, previous === null ? { initial: true, settings: now } : { changed });
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function grantsDetail(grants: readonly string[] | undefined): JsonValue {
  return grants === undefined ? null : [...grants];
}

/**
 * The audit HMAC key of --audit-hmac-key-file (null without it): the file's bytes without surrounding whitespace, at
 * least 32 of them. A key inside the data dir would sit next to the log it protects (whoever can edit one can read
 * the other), so it is refused. Throws ConfigError, so the CLI reads it before listening and exits 2 on it.
 */
export async function loadAuditHmacKey(config: Pick<Config, 'auditHmacKeyFile' | 'dataDir'>): Promise<Buffer | null> {
  return config.auditHmacKeyFile === null ? null : readHmacKey(config.auditHmacKeyFile, config.dataDir);
}

async function readHmacKey(file: string, dataDir: string): Promise<Buffer> {
  let real: string;
  let dataReal: string;
  let bytes: Buffer;
  try {
    real = await fs.realpath(file);
    bytes = await fs.readFile(real);
  } catch (error) {
    throw new ConfigError(`--audit-hmac-key-file: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  try {
    dataReal = await fs.realpath(dataDir);
  } catch {
    dataReal = path.resolve(dataDir);
  }
  if (real === dataReal || real.startsWith(dataReal + path.sep)) {
    throw new ConfigError('--audit-hmac-key-file: the key must be kept outside the data dir');
  }
  const key = Buffer.from(bytes.toString('latin1').trim(), 'latin1');
  if (key.length < hmacKeyBytesMin) {
    throw new ConfigError(`--audit-hmac-key-file: the key must hold at least ${hmacKeyBytesMin} bytes (e.g. openssl rand -hex 32 > FILE)`);
  }
  return key;
}
