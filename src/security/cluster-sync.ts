// Cluster mode: users, tokens and row policies are rows of the replicated system tables, but each node serves them from
// memory. This follows the change feed of `_users`, `_tokens` and `_policies` and applies every row change to the
// in-memory stores, so a user created, a token issued or a policy put on one node holds on every node once that node
// has applied the commit (a table dropped on another node loses its policies here at once).

import type { Database, Doc } from '../engine/index.js';
import type { PolicyStore } from './policies.js';
import { systemTables } from './system-tables.js';
import type { TokenRecord, TokenStore } from './tokens.js';
import type { UserStore } from './users.js';

/** Commits read per page of the feed. */
const pageCommits = 1000;

export class SecurityClusterSync {
  private since: number;
  private running: Promise<void> = Promise.resolve();
  private readonly unsubscribe: () => void;
  private readonly tables = new Set<string>([systemTables.users.name, systemTables.tokens.name, systemTables.policies.name]);

  constructor(
    private readonly db: Database,
    private readonly users: UserStore,
    private readonly tokens: TokenStore,
    private readonly policies: PolicyStore,
    private readonly onError: (error: unknown) => void,
  ) {
    // The stores were loaded at this seq; everything after it arrives through the feed.
    this.since = db.durableSeq;
    // The feed calls once per turn in which commits became durable: one pass reads all of them.
    this.unsubscribe = db.subscribeChanges(() => {
      this.running = this.running.then(() => this.apply()).catch(this.onError);
    });
  }

  private async apply(): Promise<void> {
    this.policies.forgetDroppedTables();
    for (;;) {
      const page = this.db.changes({ since: this.since, limit: pageCommits, tables: this.tables });
      for (const commit of page.commits) {
        for (const change of commit.changes) {
          const doc = change.json === null ? null : (JSON.parse(change.json) as Doc);
          if (change.table === systemTables.users.name) this.users.applyReplicated(change.key, doc);
          else if (change.table === systemTables.policies.name) this.policies.applyReplicated(change.key, doc, commit.seq);
          else this.tokens.applyReplicated(change.key, doc as unknown as TokenRecord | null);
        }
      }
      if (page.nextSince === this.since) return;
      this.since = page.nextSince;
    }
  }

  close(): void {
    this.unsubscribe();
  }
}
