// The spec floor: DriftDB's PUT, GET and query requests answered by a Fastify server over HTTPS that does only what
// http-api.md asks of every request (Basic auth, the security headers, a request id, an ETag, the same answer shapes)
// and keeps its rows in a Map, with each write appended to a log file and fdatasynced in groups. No engine, no
// validation beyond JSON parsing, no history. It frames records with DriftDB's own code; peer-http.ts is its HTTP.
// What it reaches is what any database behind this HTTP contract could reach on the machine, which gives every
// ratio target a yardstick measured in the same run.

import { mkdtempSync, openSync, rmSync, write, fdatasync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { encodeTextFrame } from '../src/engine/log/frame.js';
import { benchDoc, groupsFor, groupValue, rowKey } from './docs.js';
import { runPeer, sendProblem, sendText, servePeer } from './peer-http.js';

/** The floor server's first IPC message. */
export interface FloorReady {
  port: number;
}

interface StoredRow {
  text: string;
  seq: number;
}

interface PendingWrite {
  frame: Buffer;
  acknowledge: () => void;
}

/** The preloaded rows (`rowKey(i)` → benchDoc with its key, as DriftDB stores it) and their `group` index. */
function preload(rows: number): { byKey: Map<string, StoredRow>; byGroup: Map<string, StoredRow[]> } {
  const groups = groupsFor(rows);
  const byKey = new Map<string, StoredRow>();
  const byGroup = new Map<string, StoredRow[]>();
  for (let i = 0; i < rows; i++) {
    const key = rowKey(i);
    const row = { text: JSON.stringify({ id: key, ...benchDoc(i, groups) }), seq: i + 1 };
    byKey.set(key, row);
    const group = groupValue(i, groups);
    const members = byGroup.get(group) ?? [];
    members.push(row);
    byGroup.set(group, members);
  }
  return { byKey, byGroup };
}

/** A write-ahead file with group commit: writes arriving during a sync share the next write and fdatasync. */
function groupLog(path: string): (frame: Buffer, acknowledge: () => void) => void {
  const fd = openSync(path, 'a');
  let pending: PendingWrite[] = [];
  let syncing = false;
  const flush = (): void => {
    if (syncing || pending.length === 0) return;
    const group = pending;
    pending = [];
    syncing = true;
    write(fd, Buffer.concat(group.map((entry) => entry.frame)), (writeError) => {
      if (writeError) throw writeError;
      fdatasync(fd, (syncError) => {
        if (syncError) throw syncError;
        syncing = false;
        for (const entry of group) entry.acknowledge();
        flush();
      });
    });
  };
  return (frame, acknowledge) => {
    pending.push({ frame, acknowledge });
    flush();
  };
}

async function main(): Promise<void> {
  const rows = Number(process.argv[2]);
  const authorization = process.argv[3];
  if (!Number.isSafeInteger(rows) || rows < 1 || authorization === undefined) throw new Error('usage: floor-server <rows> <authorization>');
  const { byKey, byGroup } = preload(rows);
  const logDir = mkdtempSync(join(tmpdir(), 'driftdb-floor-'));
  const append = groupLog(join(logDir, 'log'));
  let seqLast = rows;

  const routes = (app: FastifyInstance): void => {
    app.get<{ Params: { table: string; key: string } }>('/v1/tables/:table/rows/:key', (request, reply) => {
      const row = byKey.get(request.params.key);
      if (row === undefined) return sendProblem(reply, 'row_not_found', 'no such row');
      return sendText(reply.header('etag', `"${row.seq}"`), row.text);
    });
    app.put<{ Params: { table: string; key: string }; Body: Record<string, unknown> }>('/v1/tables/:table/rows/:key', (request, reply) => {
      const { table, key } = request.params;
      const text = JSON.stringify({ id: key, ...request.body });
      const seq = ++seqLast;
      append(encodeTextFrame(JSON.stringify({ seq, ts: Date.now(), table, key, doc: text })), () => {
        const created = !byKey.has(key);
        byKey.set(key, { text, seq });
        void reply.code(created ? 201 : 200).header('etag', `"${seq}"`).send({ key, seq });
      });
      return reply;
    });
    app.post<{ Body: { where?: { group?: unknown } } }>('/v1/query', (request, reply) => {
      const members = byGroup.get(String(request.body?.where?.group)) ?? [];
      return sendText(reply, `{"rows":[${members.map((row) => row.text).join(',')}],"nextCursor":null,"seq":${seqLast}}`);
    });
  };
  const port = await servePeer({ authorization, routes, onStop: () => rmSync(logDir, { recursive: true, force: true }) });
  const ready: FloorReady = { port };
  process.send!(ready);
}

runPeer('floor server', main);
