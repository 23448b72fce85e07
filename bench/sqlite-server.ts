// The SQLite peer: DriftDB's bench PUT, GET and query requests answered by the spec floor's HTTP (peer-http.ts) with
// SQLite (better-sqlite3) for storage, so its rows say what a user would get from the same contract on SQLite here.
// One SQLite table per bench table, `(key TEXT PRIMARY KEY, doc TEXT, seq INTEGER) WITHOUT ROWID` (seq is the ETag
// and the write answer's seq, as DriftDB's), the query table with an index on json_extract(doc, '$.group').
// Durability as DriftDB's: WAL with synchronous=FULL, so a write is on disk (the WAL fsynced) before it is answered.
// Writes that arrive in one event-loop turn share one transaction and so one fsync, as the floor's writes share one
// fdatasync: a transaction per request measured about 3 ms each here, a row about fsync speed and nothing else.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { benchDoc, groupsFor, rowKey } from './docs.js';
import { runPeer, sendProblem, sendText, servePeer } from './peer-http.js';
import { putTable, rowsTable } from './scenarios-http.js';
import { loadSqlite, type SqliteDatabase, type SqliteStatement } from './sqlite-module.js';

/** The SQLite peer's first IPC message: where it listens and how its SQLite is set up, for the report. */
export interface SqliteReady {
  port: number;
  sqliteVersion: string;
  journalMode: string;
  /** PRAGMA synchronous as SQLite reports it: 2 is FULL. */
  synchronous: number;
  /** EXPLAIN QUERY PLAN of the query statement: it must search the group index, not scan. */
  queryPlan: string[];
}

/**
 * SQLite's page cache, allocated as pages are used (its default is 2 MiB): large enough that the preloaded rows of
 * a default run are read from memory, as DriftDB's are, rather than through the OS page cache.
 */
const pageCacheKiB = 256 * 1024;
/** Rows one query answers, as DriftDB's default page; the bench's groups hold 10. */
const queryRowsMax = 100;

interface TableStatements {
  get: SqliteStatement;
  insert: SqliteStatement;
  update: SqliteStatement;
  query: SqliteStatement;
}

interface PendingPut {
  table: TableStatements;
  key: string;
  text: string;
  reply: FastifyReply;
  seq?: number;
  created?: boolean;
}

function openDatabase(dir: string): SqliteDatabase {
  const loaded = loadSqlite();
  if ('missing' in loaded) throw new Error(loaded.missing);
  mkdirSync(dir, { recursive: true });
  const db = new loaded.driver(join(dir, 'peer.sqlite'));
  // WAL: a commit is one append and one fsync of the WAL, and readers never wait for the writer; the rollback
  // journal (DELETE) syncs the journal and the database file on every commit.
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma(`cache_size = -${pageCacheKiB}`);
  return db;
}

function createTable(db: SqliteDatabase, name: string, groupIndex: boolean): TableStatements {
  // WITHOUT ROWID: the rows live in the primary key's B-tree, so a GET by key is one search instead of two.
  db.exec(`CREATE TABLE ${name} (key TEXT PRIMARY KEY, doc TEXT NOT NULL, seq INTEGER NOT NULL) WITHOUT ROWID`);
  if (groupIndex) db.exec(`CREATE INDEX ${name}_group ON ${name} (json_extract(doc, '$.group'))`);
  return {
    get: db.prepare(`SELECT doc, seq FROM ${name} WHERE key = ?`),
    insert: db.prepare(`INSERT INTO ${name} (key, doc, seq) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING`),
    update: db.prepare(`UPDATE ${name} SET doc = ?, seq = ? WHERE key = ?`),
    query: db.prepare(`SELECT doc FROM ${name} WHERE json_extract(doc, '$.group') = ? ORDER BY key LIMIT ${queryRowsMax}`).pluck(),
  };
}

/** The preloaded rows, as the floor holds them: `rowKey(i)` → benchDoc with its key, at seq i + 1. */
function preload(db: SqliteDatabase, table: TableStatements, rows: number): void {
  const groups = groupsFor(rows);
  db.transaction(() => {
    for (let i = 0; i < rows; i++) table.insert.run(rowKey(i), JSON.stringify({ id: rowKey(i), ...benchDoc(i, groups) }), i + 1);
  })();
}

async function main(): Promise<void> {
  const rows = Number(process.argv[2]);
  const authorization = process.argv[3];
  const dir = process.argv[4];
  if (!Number.isSafeInteger(rows) || rows < 1 || authorization === undefined || dir === undefined) {
    throw new Error('usage: sqlite-server <rows> <authorization> <dir>');
  }
  const db = openDatabase(dir);
  const tables = new Map<string, TableStatements>([
    [rowsTable, createTable(db, rowsTable, true)],
    [putTable, createTable(db, putTable, false)],
  ]);
  preload(db, tables.get(rowsTable)!, rows);
  let seqCommitted = rows;

  let pending: PendingPut[] = [];
  // Seqs are handed out inside the transaction, in arrival order; a failed commit hands none out.
  const commitGroup = db.transaction((group: PendingPut[]) => {
    let seq = seqCommitted;
    for (const put of group) {
      put.seq = ++seq;
      put.created = put.table.insert.run(put.key, put.text, put.seq).changes === 1;
      if (!put.created) put.table.update.run(put.text, put.seq, put.key);
    }
  });
  const flush = (): void => {
    const group = pending;
    pending = [];
    try {
      commitGroup(group);
    } catch (error) {
      for (const put of group) void sendProblem(put.reply, 'unavailable', `the write was not committed: ${String(error)}`);
      return;
    }
    seqCommitted = group[group.length - 1]!.seq!;
    for (const put of group) void put.reply.code(put.created ? 201 : 200).header('etag', `"${put.seq}"`).send({ key: put.key, seq: put.seq });
  };

  const tableOf = (name: string, reply: FastifyReply): TableStatements | null => {
    const table = tables.get(name);
    if (table === undefined) void sendProblem(reply, 'table_not_found', `no table ${name}`);
    return table ?? null;
  };
  const routes = (app: FastifyInstance): void => {
    app.get<{ Params: { table: string; key: string } }>('/v1/tables/:table/rows/:key', (request, reply) => {
      const table = tableOf(request.params.table, reply);
      if (table === null) return reply;
      const row = table.get.get(request.params.key) as { doc: string; seq: number } | undefined;
      if (row === undefined) return sendProblem(reply, 'row_not_found', 'no such row');
      return sendText(reply.header('etag', `"${row.seq}"`), row.doc);
    });
    app.put<{ Params: { table: string; key: string }; Body: Record<string, unknown> }>('/v1/tables/:table/rows/:key', (request, reply) => {
      const { key } = request.params;
      const table = tableOf(request.params.table, reply);
      if (table === null) return reply;
      if (pending.length === 0) setImmediate(flush);
      pending.push({ table, key, text: JSON.stringify({ id: key, ...request.body }), reply });
      return reply;
    });
    app.post<{ Body: { table?: unknown; where?: { group?: unknown } } }>('/v1/query', (request, reply) => {
      const group = request.body?.where?.group;
      if (typeof group !== 'string') return sendProblem(reply, 'validation_failed', 'the SQLite peer answers only where.group equal to a string');
      const table = tableOf(String(request.body?.table), reply);
      if (table === null) return reply;
      const docs = table.query.all(group) as string[];
      return sendText(reply, `{"rows":[${docs.join(',')}],"nextCursor":null,"seq":${seqCommitted}}`);
    });
  };
  const port = await servePeer({ authorization, routes, onStop: () => db.close() });
  const ready: SqliteReady = {
    port,
    sqliteVersion: String(db.prepare('SELECT sqlite_version()').pluck().get()),
    journalMode: String(db.pragma('journal_mode', { simple: true })),
    synchronous: Number(db.pragma('synchronous', { simple: true })),
    queryPlan: (db.prepare(`EXPLAIN QUERY PLAN SELECT doc FROM ${rowsTable} WHERE json_extract(doc, '$.group') = ? ORDER BY key LIMIT ${queryRowsMax}`).all('g0') as { detail: string }[]).map((step) => step.detail),
  };
  process.send!(ready);
}

runPeer('sqlite peer', main);
