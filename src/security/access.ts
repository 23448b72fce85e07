// Authorization rules, pure: what each role may do, which tables a caller's grants open, and where in a request the
// tables it touches are named. The one Fastify hook that applies them lives in hooks.ts.

import { DriftError } from '../errors.js';
import type { Principal } from './auth.js';
import type { Role } from './users.js';

/**
 * What a route needs: `public` (no credentials), `authenticated` (any user), or a permission a role grants.
 * Every route declares one in `config.permission`; a route without it fails at registration.
 */
export type Permission = 'public' | 'authenticated' | 'read' | 'write' | 'admin';
export const permissions: readonly Permission[] = ['public', 'authenticated', 'read', 'write', 'admin'];

/** Where a route's body names the tables it touches (a `:table` path parameter is always checked). */
export type BodyTables = 'createTable' | 'query' | 'batch';

/** One table a request touches and what it does there. */
export interface TableAccess {
  table: string;
  permission: 'read' | 'write' | 'admin';
}

const permissionsByRole: Record<Role, readonly Permission[]> = {
  admin: ['authenticated', 'read', 'write', 'admin'],
  writer: ['authenticated', 'read', 'write'],
  reader: ['authenticated', 'read'],
};

export function rolesAllow(roles: readonly string[], permission: Permission): boolean {
  return permission === 'public' || roles.some((role) => (permissionsByRole[role as Role] ?? []).includes(permission));
}

/** Every permission the roles allow together, as a set to check in one lookup. */
export function permissionsOf(roles: readonly string[]): ReadonlySet<Permission> {
  return new Set(permissions.filter((permission) => rolesAllow(roles, permission)));
}

/** Why the caller's roles do not allow this permission, or null when they do. */
export function roleDenial(principal: Principal, permission: Permission): string | null {
  if (principal.permissions.has(permission)) return null;
  return `user "${principal.username}" may not ${verb(permission)} here (roles: ${principal.roles.join(', ')})`;
}

/** Why the caller may not touch this table this way, or null when they may. A reserved table name is a 400. */
export function tableDenial(principal: Principal, access: TableAccess): string | null {
  const { table, permission } = access;
  if (table.startsWith('_')) {
    throw new DriftError('validation_failed', `Table names starting with _ are reserved for the system ('${table.slice(0, 64)}').`);
  }
  if (!principal.permissions.has(permission)) return `user "${principal.username}" may not ${verb(permission)} table '${table}'`;
  if (principal.grants !== null && !principal.grants.has(table)) return `user "${principal.username}" has no grant for table '${table}'`;
  return null;
}

function verb(permission: Permission): string {
  return permission === 'admin' ? 'administer' : permission;
}

/** The tables a caller's grants let them see, for listings. */
export function visibleTables<T extends { name: string }>(principal: Principal, tables: readonly T[]): T[] {
  const grants = principal.grants;
  return grants === null ? [...tables] : tables.filter((table) => grants.has(table.name));
}

/** The tables a validated body touches: a new table's name, a query's table, every op of a batch. */
export function tablesInBody(kind: BodyTables, body: unknown): TableAccess[] {
  const value = body as Record<string, unknown> | null | undefined;
  switch (kind) {
    case 'createTable':
      return typeof value?.name === 'string' ? [{ table: value.name, permission: 'write' }] : [];
    case 'query':
      return typeof value?.table === 'string' ? [{ table: value.table, permission: 'read' }] : [];
    case 'batch': {
      const ops = Array.isArray(value?.ops) ? (value.ops as Array<{ op?: unknown; table?: unknown }>) : [];
      return ops
        .filter((op) => typeof op?.table === 'string')
        .map((op) => ({ table: op.table as string, permission: op.op === 'get' || op.op === 'query' ? 'read' : 'write' }));
    }
  }
}
