// DriftDB's own tables: users, token hashes, row policies and the audit chain's head live in the database log like any data
// (durable, replayed after a crash, in checkpoints), under names starting with "_" that no route can reach.

import type { CreateTableInput, Database, Doc } from '../engine/index.js';
import { isDriftError } from '../errors.js';

export const systemTables = {
  /** One row per user: roles, grants and the scrypt hash, keyed by username. */
  users: { name: '_users', primaryKey: 'username' },
  /** One row per live bearer token, keyed by the token's SHA-256 (the token itself is never stored). */
  tokens: { name: '_tokens', primaryKey: 'id' },
  /** The audit chain's newest recorded entry, its hashing ranges and the last audited configuration. */
  audit: { name: '_audit', primaryKey: 'name' },
  /** One row per row policy (http-api.md §8), keyed by "<table>/<policy name>". */
  policies: { name: '_policies', primaryKey: 'id' },
} as const satisfies Record<string, CreateTableInput>;

/** Rows read per page when a system table is loaded into memory at start. */
const loadPageRows = 1000;

/**
 * Creates the system table unless it exists (a table create commits at once, so this is idempotent across crashes;
 * in a cluster, the node that loses the race to create it finds it made by another).
 */
export async function ensureSystemTable(db: Database, def: CreateTableInput): Promise<void> {
  try {
    db.getTable(def.name);
  } catch (error) {
    if (!isDriftError(error) || error.code !== 'table_not_found') throw error;
    try {
      await db.createTable(def, { system: true });
    } catch (createError) {
      if (!isDriftError(createError) || createError.code !== 'table_exists') throw createError;
    }
  }
}

/** Every live row of a table at one snapshot, page by page. */
export function* allRows(db: Database, table: string): Generator<Doc> {
  let cursor: string | null = null;
  do {
    const page = db.scan({ table, limit: loadPageRows, cursor });
    yield* page.rows;
    cursor = page.nextCursor;
  } while (cursor !== null);
}

/** A row's document, or null when the key has no live row (or the table does not exist yet). */
export function rowOrNull(db: Database, table: string, key: string): Doc | null {
  try {
    return db.get({ table, key }).doc;
  } catch (error) {
    if (isDriftError(error) && (error.code === 'row_not_found' || error.code === 'table_not_found')) return null;
    throw error;
  }
}
