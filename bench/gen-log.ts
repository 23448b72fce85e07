// Data-dir generator child process: writes an N-event log through the engine in-process (far faster than HTTP),
// or writes a checkpoint into an existing data dir; answers the figures over IPC.

import { performance } from 'node:perf_hooks';
import { openDatabase, type EngineLogger } from '../src/engine/index.js';
import { benchDoc, groupsFor, rowKey } from './docs.js';
import { serveOneJob } from './worker-protocol.js';

export type GenJob =
  | { kind: 'generate'; dataDir: string; table: string; indexes: string[]; events: number; inFlight: number }
  | { kind: 'checkpoint'; dataDir: string };

export interface GenSummary {
  seconds: number;
  /** Row puts written (the table's creation is one more event). */
  events: number;
  /** This process's RSS after the load, before close: the engine holding every row in memory. */
  rssBytes: number;
  checkpointSeq?: number;
}

/** The engine's warnings and errors go to stderr; its info lines would only slow the load down. */
const logger: EngineLogger = {
  info() {},
  warn: (obj, msg) => process.stderr.write(`gen-log warn: ${msg ?? ''} ${JSON.stringify(obj)}\n`),
  error: (obj, msg) => process.stderr.write(`gen-log error: ${msg ?? ''} ${JSON.stringify(obj)}\n`),
};

async function open(dataDir: string) {
  // No automatic checkpoint: the restart scenario first measures a replay of the whole log.
  return openDatabase({ dataDir, logger, lockTimeoutMs: 5000, checkpointIntervalBytes: Number.MAX_SAFE_INTEGER });
}

async function generate(job: Extract<GenJob, { kind: 'generate' }>): Promise<GenSummary> {
  const db = await open(job.dataDir);
  const started = performance.now();
  try {
    await db.createTable({ name: job.table, primaryKey: 'id', indexes: job.indexes });
    const groups = groupsFor(job.events);
    let next = 0;
    // `inFlight` writers pull from one counter, so group commit always has about that many puts to share an fsync.
    const writer = async (): Promise<void> => {
      while (next < job.events) {
        const i = next++;
        await db.put({ table: job.table, key: rowKey(i), doc: { id: rowKey(i), ...benchDoc(i, groups) } });
      }
    };
    await Promise.all(Array.from({ length: Math.min(job.inFlight, job.events) }, writer));
    const seconds = (performance.now() - started) / 1000;
    return { seconds, events: job.events, rssBytes: process.memoryUsage().rss };
  } finally {
    await db.close();
  }
}

async function checkpoint(dataDir: string): Promise<GenSummary> {
  const db = await open(dataDir);
  try {
    const started = performance.now();
    const { seq } = await db.checkpoint();
    return { seconds: (performance.now() - started) / 1000, events: 0, rssBytes: process.memoryUsage().rss, checkpointSeq: seq };
  } finally {
    await db.close();
  }
}

serveOneJob<GenJob, GenSummary>((job) => (job.kind === 'generate' ? generate(job) : checkpoint(job.dataDir)));
