// The row-policy store (http-api.md §8): one row per policy in the system table `_policies` (so policies are in the
// log, survive crashes and show up in checkpoints), mirrored in memory by table. Every change is committed before
// memory shows it; a table's policies are replaced as a whole on each change, so the object's identity tells a
// cache whether what it compiled from them is still current.

import type { Database, Doc, Json } from '../engine/index.js';
import { DriftError, isDriftError } from '../errors.js';
import { checkPolicyWhere } from './row-policies.js';
import { allRows, ensureSystemTable, systemTables } from './system-tables.js';
import { usernamePattern, type Role } from './users.js';

/** A policy's name: the pattern of table names. */
export const policyNamePattern = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
/** Each applicable policy is one more predicate per row read: a bound keeps a read's cost bounded too. */
export const policiesPerTableMax = 100;
export const policyUsersMax = 1_000;
/** Admins are never restricted by a row policy, so a policy names only these roles. */
export const policyRoles = ['writer', 'reader'] as const satisfies readonly Role[];

export interface AppliesTo {
  roles?: readonly Role[];
  users?: readonly string[];
}

/** A policy as a client sends it (PUT /v1/tables/{t}/policies/{name}). */
export interface PolicyInput {
  appliesTo: { roles?: string[]; users?: string[] };
  read?: unknown;
  write?: unknown;
}

/** A policy as `_policies` holds it. */
export interface PolicyRecord {
  /** `<table>/<name>`: the row's key. */
  readonly id: string;
  readonly table: string;
  readonly name: string;
  readonly appliesTo: AppliesTo;
  /** The where-clause a version's document must match to be read; absent = this policy grants no reads. */
  readonly read?: Json;
  /** The where-clause a written row must match, before and after; absent = this policy grants no writes. */
  readonly write?: Json;
  /** The createdSeq of the table it was made for: a policy outlives no drop of its table. */
  readonly tableCreatedSeq: number;
}

export interface StoredPolicy {
  readonly record: PolicyRecord;
  /** Seq of the commit that wrote this version of the policy. */
  readonly seq: number;
}

/** One table's policies by name, never changed in place: a change installs a new map. */
export type TablePolicies = ReadonlyMap<string, StoredPolicy>;

/** A policy as the routes answer it: the policy plus the seq of the commit that wrote it. */
export interface PolicyView {
  table: string;
  name: string;
  appliesTo: { roles?: Role[]; users?: string[] };
  read?: Json;
  write?: Json;
  seq: number;
}

export class PolicyStore {
  private readonly byTable = new Map<string, TablePolicies>();
  /**
   * Cluster mode: the seq of the newest change applied to each policy row (a put or a delete), so that changes this
   * node made and changes other nodes made, which arrive in other orders, leave the newest one in force.
   */
  private readonly changedSeq = new Map<string, number>();
  /** Changes run one at a time, so a check and the write it guards see the same state. */
  private changes: Promise<unknown> = Promise.resolve();

  private constructor(private readonly db: Database) {}

  /** Loads every policy; those a table drop left behind (a crash between the drop and their removal) are removed. */
  static async open(db: Database): Promise<PolicyStore> {
    await ensureSystemTable(db, systemTables.policies);
    const store = new PolicyStore(db);
    const stale: string[] = [];
    for (const doc of allRows(db, systemTables.policies.name)) {
      const record = doc as unknown as PolicyRecord;
      if (store.tableCreatedSeq(record.table) !== record.tableCreatedSeq) {
        stale.push(record.id);
        continue;
      }
      const seq = db.get({ table: systemTables.policies.name, key: record.id }).seq!;
      store.install(record.table, (policies) => policies.set(record.name, { record, seq }));
    }
    if (stale.length > 0) await store.deleteRows(stale);
    return store;
  }

  /** The table's policies, or undefined when it has none (the hot path: one map lookup). */
  forTable(table: string): TablePolicies | undefined {
    return this.byTable.get(table);
  }

  /** The table's policies, by name; 404 table_not_found for an unknown table. */
  list(table: string): PolicyView[] {
    this.db.getTable(table);
    return [...(this.byTable.get(table)?.values() ?? [])].map(viewOf).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Creates or replaces a policy: checks it whole first (a `where` the query language refuses is 400). */
  async put(table: string, name: string, input: PolicyInput): Promise<{ policy: PolicyView; created: boolean }> {
    checkName(name);
    const appliesTo = checkAppliesTo(input.appliesTo);
    if (input.read !== undefined) checkPolicyWhere(input.read, '/read');
    if (input.write !== undefined) checkPolicyWhere(input.write, '/write');
    return this.change(async () => {
      const tableCreatedSeq = this.db.getTable(table).createdSeq;
      const current = this.byTable.get(table);
      const created = current?.has(name) !== true;
      if (created && (current?.size ?? 0) >= policiesPerTableMax) {
        throw new DriftError('validation_failed', `table '${table}' has ${policiesPerTableMax} policies, the most it may have`);
      }
      const record: PolicyRecord = {
        id: policyId(table, name),
        table,
        name,
        appliesTo,
        ...(input.read === undefined ? {} : { read: input.read as Json }),
        ...(input.write === undefined ? {} : { write: input.write as Json }),
        tableCreatedSeq,
      };
      const { seq } = await this.db.put({ table: systemTables.policies.name, key: record.id, doc: record as unknown as Doc });
      if (this.tableCreatedSeq(table) !== tableCreatedSeq) {
        // The table was dropped while the write was in flight: its policies are gone, so this one goes too.
        await this.deleteRows([record.id]);
        throw new DriftError('table_not_found', `Table '${table}' does not exist.`);
      }
      const stored: StoredPolicy = { record, seq: seq! };
      if (this.newest(record.id, seq!)) this.install(table, (policies) => policies.set(name, stored));
      return { policy: viewOf(stored), created };
    });
  }

  /** Removes a policy: 404 not_found when the table has no policy of that name. */
  async remove(table: string, name: string): Promise<StoredPolicy> {
    return this.change(async () => {
      this.db.getTable(table);
      const stored = this.byTable.get(table)?.get(name);
      if (stored === undefined) throw new DriftError('not_found', `table '${table}' has no policy "${name.slice(0, 64)}"`);
      const { seq } = await this.db.delete({ table: systemTables.policies.name, key: stored.record.id });
      if (this.newest(stored.record.id, seq!)) this.install(table, (policies) => policies.delete(name));
      return stored;
    });
  }

  /**
   * The table was dropped: its policies stop applying at once (a table created under the name starts without
   * any), then their rows are removed. Answers the names of the policies it had.
   */
  async tableDropped(table: string): Promise<string[]> {
    const names = [...(this.byTable.get(table)?.keys() ?? [])];
    this.byTable.delete(table);
    if (names.length === 0) return names;
    await this.change(async () => {
      this.byTable.delete(table);
      await this.deleteRows(names.map((name) => policyId(table, name)));
    });
    return names;
  }

  /**
   * Cluster mode: a policy row as a commit at `seq` left it (null: deleted), made on any node, applied in log order.
   * A row naming a table that no longer exists as it was (dropped, or dropped and re-created) is not installed.
   */
  applyReplicated(id: string, doc: Doc | null, seq: number): void {
    if (!this.newest(id, seq)) return;
    const slash = id.indexOf('/');
    const table = id.slice(0, slash);
    const name = id.slice(slash + 1);
    const record = doc as unknown as PolicyRecord | null;
    if (record === null || this.tableCreatedSeq(table) !== record.tableCreatedSeq) {
      if (this.byTable.get(table)?.has(name) === true) this.install(table, (policies) => policies.delete(name));
      return;
    }
    this.install(table, (policies) => policies.set(name, { record, seq }));
  }

  /** Cluster mode: tables another node dropped (or dropped and re-created) lose their policies here at once. */
  forgetDroppedTables(): string[] {
    const dropped: string[] = [];
    for (const [table, policies] of this.byTable) {
      const first = policies.values().next().value;
      if (first !== undefined && this.tableCreatedSeq(table) !== first.record.tableCreatedSeq) dropped.push(table);
    }
    for (const table of dropped) this.byTable.delete(table);
    return dropped;
  }

  /** Records `seq` as the newest change of policy `id`; false when a newer one was applied already. */
  private newest(id: string, seq: number): boolean {
    if ((this.changedSeq.get(id) ?? 0) > seq) return false;
    this.changedSeq.set(id, seq);
    return true;
  }

  /** Installs a new map for the table's policies, made from the current one by `edit`. */
  private install(table: string, edit: (policies: Map<string, StoredPolicy>) => void): void {
    const policies = new Map(this.byTable.get(table));
    edit(policies);
    if (policies.size === 0) this.byTable.delete(table);
    else this.byTable.set(table, policies);
  }

  private tableCreatedSeq(table: string): number | null {
    try {
      return this.db.getTable(table).createdSeq;
    } catch (error) {
      if (isDriftError(error) && error.code === 'table_not_found') return null;
      throw error;
    }
  }

  /** Deletes policy rows in one commit: after a crash, all of them or none are gone. */
  private async deleteRows(ids: string[]): Promise<void> {
    const tx = this.db.begin({ isolation: 'read_committed' });
    try {
      for (const key of ids) await this.db.delete({ table: systemTables.policies.name, key, tx });
      await tx.commit();
    } finally {
      if (tx.state === 'active') tx.rollback();
    }
  }

  private change<T>(work: () => Promise<T>): Promise<T> {
    const run = this.changes.then(work);
    this.changes = run.catch(() => undefined);
    return run;
  }
}

function policyId(table: string, name: string): string {
  return `${table}/${name}`;
}

function viewOf(stored: StoredPolicy): PolicyView {
  const { record } = stored;
  return {
    table: record.table,
    name: record.name,
    appliesTo: {
      ...(record.appliesTo.roles === undefined ? {} : { roles: [...record.appliesTo.roles] }),
      ...(record.appliesTo.users === undefined ? {} : { users: [...record.appliesTo.users] }),
    },
    ...(record.read === undefined ? {} : { read: record.read }),
    ...(record.write === undefined ? {} : { write: record.write }),
    seq: stored.seq,
  };
}

function checkName(name: string): void {
  if (!policyNamePattern.test(name)) throw new DriftError('validation_failed', `a policy name must match ${policyNamePattern.source}`);
}

/** The roles and users a policy names, each list sorted without repeats; at least one of them. */
function checkAppliesTo(appliesTo: PolicyInput['appliesTo']): AppliesTo {
  const roles = appliesTo.roles === undefined ? undefined : [...new Set(appliesTo.roles)].sort();
  const users = appliesTo.users === undefined ? undefined : [...new Set(appliesTo.users)].sort();
  if (roles?.includes('admin')) {
    throw new DriftError('validation_failed', 'admins are never restricted by row policies: appliesTo.roles takes writer and reader');
  }
  const badRole = roles?.find((role) => !(policyRoles as readonly string[]).includes(role));
  if (badRole !== undefined) throw new DriftError('validation_failed', `appliesTo.roles takes ${policyRoles.join(' and ')}, not "${badRole.slice(0, 64)}"`);
  if (users !== undefined && users.length > policyUsersMax) throw new DriftError('validation_failed', `appliesTo.users names at most ${policyUsersMax} users`);
  const badUser = users?.find((user) => !usernamePattern.test(user));
  if (badUser !== undefined) throw new DriftError('validation_failed', `appliesTo.users: "${badUser.slice(0, 64)}" is not a username (${usernamePattern.source})`);
  if ((roles?.length ?? 0) + (users?.length ?? 0) === 0) {
    throw new DriftError('validation_failed', 'appliesTo must name at least one role or user');
  }
  return { ...(roles === undefined ? {} : { roles: roles as Role[] }), ...(users === undefined ? {} : { users }) };
}
