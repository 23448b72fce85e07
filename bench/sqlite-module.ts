// better-sqlite3, the SQLite peer's driver, loaded only if it is there: it is an optional dependency that builds from
// source, so a machine that cannot build it still installs and benches everything else. Typed here by the little the
// bench uses (the package ships no types, and @types would be a dependency for one file).

import { createRequire } from 'node:module';

export interface SqliteStatement {
  run(...params: unknown[]): { changes: number };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
  pluck(on?: boolean): SqliteStatement;
}

export interface SqliteDatabase {
  pragma(source: string, options?: { simple?: boolean }): unknown;
  exec(source: string): SqliteDatabase;
  prepare(source: string): SqliteStatement;
  transaction<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void;
  close(): void;
}

export type SqliteConstructor = new (filename: string) => SqliteDatabase;

/** The version the bench is written and measured against (package.json pins it exactly). */
export const sqliteDriverVersion = '12.11.1';

/** How to get the driver where it is missing; the bench and the test print it with the skip. */
export const sqliteInstallHint = `better-sqlite3 is an optional dependency that builds from source; where Node's headers are installed (e.g. /usr/include/node): npm_config_nodedir=/usr npm install better-sqlite3@${sqliteDriverVersion}`;

/** The driver, or why it cannot be loaded (not installed, or installed without its compiled addon). */
export function loadSqlite(): { driver: SqliteConstructor } | { missing: string } {
  try {
    const driver = createRequire(import.meta.url)('better-sqlite3') as SqliteConstructor;
    // Opening a database loads the native addon, which is what fails when the build did not happen.
    new driver(':memory:').close();
    return { driver };
  } catch (error) {
    const why = error instanceof Error ? error.message.split('\n')[0]! : String(error);
    return { missing: `better-sqlite3 cannot be loaded (${why}); ${sqliteInstallHint}` };
  }
}
