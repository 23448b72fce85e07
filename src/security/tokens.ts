// Bearer tokens: 256 random bits handed out once, stored only as their SHA-256 in the system table `_tokens` (so they
// survive restarts), mirrored in memory so checking one costs a hash and a map lookup. Expired tokens are dropped.

import { hash, randomBytes } from 'node:crypto';
import type { Database } from '../engine/index.js';
import { isDriftError } from '../errors.js';
import { allRows, ensureSystemTable, systemTables } from './system-tables.js';

export interface TokenRecord {
  /** SHA-256 of the token, hex: the row's key. */
  readonly id: string;
  readonly username: string;
  readonly createdAt: number;
  readonly expiresAt: number;
}

/** Live tokens per user; issuing one more revokes that user's oldest (as GitHub does), so the table stays bounded. */
export const tokensPerUserMax = 100;
/** How often expired tokens are deleted from the table (they already fail the moment they expire). */
export const tokenSweepIntervalMs = 60_000;
/** Expired tokens deleted per commit by a sweep. */
const sweepBatchMax = 1000;

const tokenPrefix = 'ddb_';
/** "ddb_" + 32 random bytes in base64url: the prefix lets secret scanners recognise a leaked token. */
export const tokenPattern = /^ddb_[A-Za-z0-9_-]{43}$/;

export type TokenLookup = { kind: 'valid'; record: TokenRecord } | { kind: 'expired'; record: TokenRecord } | { kind: 'unknown' };

export class TokenStore {
  private readonly byId = new Map<string, TokenRecord>();
  private readonly idsByUser = new Map<string, Set<string>>();
  /** Expired tokens already forgotten whose rows the next sweep deletes. */
  private readonly unswept = new Set<string>();
  private sweepTimer: NodeJS.Timeout | null = null;
  private sweeping: Promise<void> | null = null;

  private constructor(
    private readonly db: Database,
    private readonly ttlMs: number,
    private readonly now: () => number,
    private readonly onSweepError: (error: unknown) => void,
  ) {}

  static async open(options: { db: Database; ttlMs: number; now?: () => number; onSweepError: (error: unknown) => void }): Promise<TokenStore> {
    await ensureSystemTable(options.db, systemTables.tokens);
    const store = new TokenStore(options.db, options.ttlMs, options.now ?? Date.now, options.onSweepError);
    for (const doc of allRows(options.db, systemTables.tokens.name)) store.remember(doc as unknown as TokenRecord);
    await store.sweep();
    store.sweepTimer = setInterval(() => void store.sweep().catch(store.onSweepError), tokenSweepIntervalMs).unref();
    return store;
  }

  get size(): number {
    return this.byId.size;
  }

  /** Issues a token for `username`; resolves once its hash is durable. The token itself is shown once, never stored. */
  async issue(username: string): Promise<{ token: string; record: TokenRecord }> {
    const token = tokenPrefix + randomBytes(32).toString('base64url');
    const createdAt = this.now();
    const record: TokenRecord = Object.freeze({ id: tokenId(token), username, createdAt, expiresAt: createdAt + this.ttlMs });
    await this.db.put({ table: systemTables.tokens.name, key: record.id, doc: { ...record }, ifNoneMatch: true });
    this.remember(record);
    const ids = this.idsByUser.get(username)!;
    if (ids.size > tokensPerUserMax) {
      const oldest = [...ids].map((id) => this.byId.get(id)!).reduce((a, b) => (b.createdAt < a.createdAt ? b : a));
      await this.revokeIds([oldest.id]);
    }
    return { token, record };
  }

  /** What a presented token is: live, expired (dropped now) or unknown. Synchronous: it is on every bearer request. */
  lookup(token: string): TokenLookup {
    if (!tokenPattern.test(token)) return { kind: 'unknown' };
    const record = this.byId.get(tokenId(token));
    if (record === undefined) return { kind: 'unknown' };
    if (record.expiresAt > this.now()) return { kind: 'valid', record };
    // Forgotten at once, so it is reported expired once; the sweep deletes its row.
    this.forget(record);
    this.unswept.add(record.id);
    return { kind: 'expired', record };
  }

  /** Revokes one token (logout); resolves once the revocation is durable. */
  async revoke(record: TokenRecord): Promise<void> {
    await this.revokeIds([record.id]);
  }

  /** Revokes every token of a user (password change, deletion); resolves once durable. Answers how many. */
  async revokeUser(username: string): Promise<number> {
    const ids = [...(this.idsByUser.get(username) ?? [])];
    for (let i = 0; i < ids.length; i += sweepBatchMax) await this.revokeIds(ids.slice(i, i + sweepBatchMax));
    return ids.length;
  }

  /** Deletes the rows of expired tokens, a bounded batch per commit; concurrent calls share one run. */
  sweep(): Promise<void> {
    this.sweeping ??= this.sweepNow().finally(() => {
      this.sweeping = null;
    });
    return this.sweeping;
  }

  close(): void {
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
  }

  private async sweepNow(): Promise<void> {
    const now = this.now();
    for (const record of [...this.byId.values()]) {
      if (record.expiresAt > now) continue;
      this.forget(record);
      this.unswept.add(record.id);
    }
    while (this.unswept.size > 0) {
      const batch = [...this.unswept].slice(0, sweepBatchMax);
      await this.deleteRows(batch);
      for (const id of batch) this.unswept.delete(id);
    }
  }

  private async revokeIds(ids: string[]): Promise<void> {
    const records = ids.map((id) => this.byId.get(id)).filter((record) => record !== undefined);
    // Forgotten before the commit: a revoked token must stop working at once, even while its delete is in flight.
    for (const record of records) this.forget(record);
    await this.deleteRows(records.map((record) => record.id));
  }

  /** Deletes rows in one commit; a row already gone (a concurrent sweep) is skipped. */
  private async deleteRows(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const tx = this.db.begin({ isolation: 'read_committed' });
    try {
      for (const id of ids) {
        try {
          await this.db.delete({ table: systemTables.tokens.name, key: id, tx });
        } catch (error) {
          if (!isDriftError(error) || error.code !== 'row_not_found') throw error;
        }
      }
      await tx.commit();
    } finally {
      if (tx.state === 'active' || tx.state === 'aborted') tx.rollback();
    }
  }

  /** Cluster mode: a token row as another node wrote it (null: revoked or swept), so a token works on every node. */
  applyReplicated(id: string, doc: TokenRecord | null): void {
    const known = this.byId.get(id);
    if (known !== undefined) this.forget(known);
    if (doc !== null) this.remember(Object.freeze({ ...doc }));
  }

  private remember(record: TokenRecord): void {
    this.byId.set(record.id, record);
    let ids = this.idsByUser.get(record.username);
    if (ids === undefined) this.idsByUser.set(record.username, (ids = new Set()));
    ids.add(record.id);
  }

  private forget(record: TokenRecord): void {
    this.byId.delete(record.id);
    const ids = this.idsByUser.get(record.username);
    ids?.delete(record.id);
    if (ids?.size === 0) this.idsByUser.delete(record.username);
  }
}

export function tokenId(token: string): string {
  return hash('sha256', token, 'hex');
}
