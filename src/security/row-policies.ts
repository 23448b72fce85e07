// Row policies as the engine applies them (http-api.md §8): a caller's RowPolicies answer, per table, the OR of the
// read clauses and the OR of the write clauses of the policies that apply to them, with {"$user":"name"} bound to
// their username. Compiled once per (caller, table) and kept until the table's policies or the caller's user record
// (roles, deletion) change; the lookup a request pays is a few map reads.

import { compileWhere, type Predicate, type RowPolicies, type RowPolicy } from '../engine/index.js';
import { DriftError } from '../errors.js';
import type { Principal } from './auth.js';
import type { PolicyStore, TablePolicies, PolicyRecord } from './policies.js';
import type { UserRecord, UserStore } from './users.js';

const denyAll: Predicate = () => false;
/** What a caller gets on a table with policies when none applies to them, or their user is gone: no rows at all. */
const noAccess: RowPolicy = Object.freeze({ read: denyAll, write: denyAll });

/** `{"$user":"name"}`: the caller's username, inside a policy's where-clause only. */
function isUserOperand(value: unknown): boolean {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  return keys.length === 1 && keys[0] === '$user' && (value as { $user: unknown }).$user === 'name';
}

/** A copy of `where` with every `{"$user":"name"}` replaced by `username`. */
export function bindUser(where: unknown, username: string): unknown {
  if (isUserOperand(where)) return username;
  if (Array.isArray(where)) return where.map((item) => bindUser(item, username));
  if (where === null || typeof where !== 'object') return where;
  // fromEntries defines own members, so a "__proto__" member stays a member and never becomes a prototype.
  return Object.fromEntries(Object.entries(where).map(([key, value]) => [key, bindUser(value, username)]));
}

/** The JSON Pointer of the first `$user` that is not `{"$user":"name"}`, or null. */
function misusedUserOperand(where: unknown, at: string): string | null {
  if (where === null || typeof where !== 'object') return null;
  if (!Array.isArray(where) && Object.hasOwn(where, '$user') && !isUserOperand(where)) return `${at}/$user`;
  for (const [key, value] of Object.entries(where)) {
    const found = misusedUserOperand(value, `${at}/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`);
    if (found !== null) return found;
  }
  return null;
}

/** Throws validation_failed (400) unless `where` is a where-clause of §5, with `{"$user":"name"}` as an operand. */
export function checkPolicyWhere(where: unknown, at: '/read' | '/write'): void {
  const misused = misusedUserOperand(where, at);
  if (misused !== null) {
    throw new DriftError('validation_failed', `${misused} must be exactly {"$user":"name"}, the caller's username`, {
      errors: [{ instancePath: misused, message: 'must be exactly {"$user":"name"}' }],
    });
  }
  if (where === null || typeof where !== 'object' || Array.isArray(where)) {
    throw new DriftError('validation_failed', `${at} must be a where-object`, { errors: [{ instancePath: at, message: 'must be a where-object' }] });
  }
  // Bound to a placeholder: the name only ever becomes a string, so any username compiles the same way.
  compileWhere(bindUser(where, 'user'), at);
}

function applies(record: PolicyRecord, user: UserRecord): boolean {
  return record.appliesTo.users?.includes(user.username) === true || user.roles.some((role) => record.appliesTo.roles?.includes(role) === true);
}

function anyOf(predicates: Predicate[]): Predicate {
  if (predicates.length === 0) return denyAll;
  if (predicates.length === 1) return predicates[0]!;
  return (doc) => predicates.some((predicate) => predicate(doc));
}

/** The row policy of one user on a table with `policies`; null for an admin (never restricted). */
export function rowPolicyFor(user: UserRecord, policies: TablePolicies): RowPolicy | null {
  if (user.roles.includes('admin')) return null;
  const reads: Predicate[] = [];
  const writes: Predicate[] = [];
  for (const { record } of policies.values()) {
    if (!applies(record, user)) continue;
    if (record.read !== undefined) reads.push(compiled(record.read, user.username));
    if (record.write !== undefined) writes.push(compiled(record.write, user.username));
  }
  return reads.length + writes.length === 0 ? noAccess : { read: anyOf(reads), write: anyOf(writes) };
}

/** Stored clauses were checked when written; one that no longer compiles (a newer version's) admits nothing. */
function compiled(where: unknown, username: string): Predicate {
  try {
    return compileWhere(bindUser(where, username));
  } catch {
    return denyAll;
  }
}

interface Compiled {
  user: UserRecord;
  policies: TablePolicies;
  policy: RowPolicy | null;
}

/**
 * One caller's RowPolicies. It reads the user's record on every call, so a transaction begun before a role change,
 * a deletion or a policy change sees the change on its next read, as autocommit requests do.
 */
class CallerPolicies implements RowPolicies {
  private readonly compiled = new Map<string, Compiled>();

  constructor(
    private readonly username: string,
    private readonly store: PolicyStore,
    private readonly users: UserStore,
  ) {}

  forTable(table: string): RowPolicy | null {
    const policies = this.store.forTable(table);
    if (policies === undefined) return null;
    const user = this.users.get(this.username);
    if (user === undefined) return noAccess;
    let entry = this.compiled.get(table);
    if (entry === undefined || entry.user !== user || entry.policies !== policies) {
      entry = { user, policies, policy: rowPolicyFor(user, policies) };
      this.compiled.set(table, entry);
    }
    return entry.policy;
  }

  forgetTable(table: string): void {
    this.compiled.delete(table);
  }
}

/** Every caller's RowPolicies, one object per username (at most one per user). */
export class RowPolicyResolver {
  private readonly callers = new Map<string, CallerPolicies>();

  constructor(
    private readonly store: PolicyStore,
    private readonly users: UserStore,
  ) {}

  /** The RowPolicies every engine call of this caller carries. */
  forPrincipal(principal: Principal): RowPolicies {
    let caller = this.callers.get(principal.username);
    if (caller === undefined) {
      caller = new CallerPolicies(principal.username, this.store, this.users);
      this.callers.set(principal.username, caller);
    }
    return caller;
  }

  /** The user was deleted: nothing compiled for them is kept. */
  forgetUser(username: string): void {
    this.callers.delete(username);
  }

  /** The table was dropped: nothing compiled for it is kept. */
  forgetTable(table: string): void {
    for (const caller of this.callers.values()) caller.forgetTable(table);
  }
}
