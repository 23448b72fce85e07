// The audit log: every security event as a hash-chained JSON line. record() chains the entry at once (in memory, a
// hash per event) and a background writer appends batches with one fdatasync; after a batch is durable, the newest
// entry's id and hash are recorded in the system table `_audit` (at most once a second), so a file whose tail was cut
// off is caught by verification. The chain continues across rotations and restarts.

import { stat } from 'node:fs/promises';
import type { Database } from '../engine/index.js';
import {
  auditEventTypes,
  entryHash,
  genesisHash,
  keyFingerprint,
  rangeFor,
  type AuditEntry,
  type AuditType,
  type HashRange,
  type JsonValue,
} from './audit-chain.js';
import { listAuditFiles, type AuditFile } from './audit-files.js';
import { AuditRing, type AuditCounts, type AuditFilter } from './audit-ring.js';
import { verifyAuditChain, type AuditHead, type VerifyResult } from './audit-verify.js';
import { AuditFileWriter } from './audit-writer.js';
import { ensureSystemTable, rowOrNull, systemTables } from './system-tables.js';

/** Who caused an event and through which request; null members are unknown (or there was no request). */
export interface AuditContext {
  user: string | null;
  clientIp: string | null;
  requestId: string | null;
}

export interface AuditLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface AuditLogOptions {
  db: Database;
  /** --audit-log-path. */
  file: string;
  rotateBytes: number;
  /** --audit-max-entries: entries kept in memory. */
  ringEntriesMax: number;
  /** The HMAC key, or null for plain SHA-256. */
  key: Buffer | null;
  /** False for --audit-log off: nothing is recorded, but the routes still read and verify what exists. */
  enabled: boolean;
  logger: AuditLogger;
  now?: () => number;
  /**
   * Cluster mode: this node's id. Each node keeps its own audit file and chain, so its head and hashing ranges are
   * rows of their own in the replicated `_audit` table ("head:<node>"); a single node uses "head" and "hashing".
   */
  nodeId?: string | null;
}

export interface AuditStats extends AuditCounts {
  enabled: boolean;
  /** Entries in the chain: the id of the newest one. */
  entries: number;
  /** Entries held in memory, which the counts cover. */
  stored: number;
  hashing: 'sha256' | 'hmac-sha256';
  fileBytes: number;
  rotatedFiles: number;
  /** The newest entry recorded in the database log. */
  recordedHead: AuditHead | null;
  /** Entries chained but not yet durable in the file. */
  pendingWrites: number;
  writeFailures: number;
  droppedEntries: number;
  /** The verification of the files found at start; null while it runs. */
  verificationAtStart: VerifyResult | null;
}

/** The database learns the newest durable entry at most this often: each record is a version kept in memory. */
export const auditHeadRecordIntervalMs = 1_000;
/** Entries waiting for the file (it cannot be written: disk full…) kept at most; older ones are dropped, which verification then reports as missing. */
export const auditPendingEntriesMax = 100_000;
/** Longest string kept in an entry's user or details: they may come from a client. */
const auditStringLengthMax = 256;

/** The `_audit` rows of one chain: a single node's, or one cluster node's. */
function auditRows(nodeId: string | null | undefined): { head: string; hashing: string } {
  return nodeId === null || nodeId === undefined ? { head: 'head', hashing: 'hashing' } : { head: `head:${nodeId}`, hashing: `hashing:${nodeId}` };
}

export class AuditLog {
  private readonly ring: AuditRing;
  private readonly now: () => number;
  private nextId = 1;
  private prevHash = genesisHash;
  private pending: string[] = [];
  private pendingLast: AuditHead | null = null;
  private durable: AuditHead | null = null;
  private recorded: AuditHead | null = null;
  private writeChain: Promise<void> = Promise.resolve();
  private flushScheduled = false;
  private headTimer: NodeJS.Timeout | null = null;
  private headWrite: Promise<void> = Promise.resolve();
  private writeFailures = 0;
  private dropped = 0;
  private atStart: VerifyResult | null = null;
  private closed = false;

  private constructor(
    private readonly options: AuditLogOptions,
    private readonly writer: AuditFileWriter,
    private ranges: HashRange[],
    /** The verification of the files found at start, run in the background. */
    readonly startupVerification: Promise<VerifyResult>,
  ) {
    this.ring = new AuditRing(options.ringEntriesMax);
    this.now = options.now ?? Date.now;
  }

  static async open(options: AuditLogOptions): Promise<AuditLog> {
    const { db } = options;
    await ensureSystemTable(db, systemTables.audit);
    const head = readAuditHead(db, options.nodeId);
    const ranges = readHashRanges(db, options.nodeId);
    const { writer, last } = await AuditFileWriter.open({ base: options.file, rotateBytes: options.rotateBytes, logger: options.logger });
    const files = await listAuditFiles(options.file);
    const endOffsets = await fileSizes(files);
    const collected: AuditEntry[] = [];
    const startup = verifyAuditChain({
      files,
      endOffsets,
      head,
      ranges,
      key: options.key,
      onEntry: (entry) => {
        collected.push(entry);
        if (collected.length > 2 * options.ringEntriesMax) collected.splice(0, collected.length - options.ringEntriesMax);
      },
    });
    const log = new AuditLog(options, writer, ranges, startup);
    log.continueChain(last, head);
    log.recorded = head;
    log.durable = head;
    void startup.then(
      (result) => log.finishStartupVerification(result, collected),
      (error: unknown) => options.logger.error({ module: 'audit', err: String(error) }, 'audit log verification at start failed to run'),
    );
    if (options.enabled) await log.recordHashingRange();
    return log;
  }

  get enabled(): boolean {
    return this.options.enabled;
  }

  /** Chains, remembers and queues one event; answers the entry (null when the log is off). Never throws for I/O. */
  record(type: AuditType, context: AuditContext, details: Record<string, JsonValue> = {}): AuditEntry | null {
    if (!this.options.enabled || this.closed) return null;
    const { severity, outcome } = auditEventTypes[type];
    const content: Omit<AuditEntry, 'hash'> = {
      id: this.nextId,
      ts: new Date(this.now()).toISOString(),
      type,
      severity,
      outcome,
      user: clip(context.user),
      clientIp: context.clientIp,
      requestId: context.requestId,
      details: clipDetails(details),
      prevHash: this.prevHash,
    };
    const range = rangeFor(this.ranges, content.id);
    const entry: AuditEntry = { ...content, hash: entryHash(content, range.alg === 'hmac-sha256' ? this.options.key : null) };
    this.nextId++;
    this.prevHash = entry.hash;
    this.ring.push(entry);
    this.queue(entry);
    return entry;
  }

  query(filter: AuditFilter): AuditEntry[] {
    return this.ring.query(filter);
  }

  stats(): AuditStats {
    return {
      enabled: this.options.enabled,
      entries: this.nextId - 1,
      stored: this.ring.size,
      ...this.ring.countsCopy(),
      hashing: rangeFor(this.ranges, this.nextId).alg,
      fileBytes: this.writer.bytes,
      rotatedFiles: this.writer.rotatedFiles,
      recordedHead: this.recorded,
      pendingWrites: this.pending.length,
      writeFailures: this.writeFailures,
      droppedEntries: this.dropped,
      verificationAtStart: this.atStart,
    };
  }

  /**
   * Verifies every file against the chain and the head the database recorded. Pending entries are written first,
   * and the files are measured between two writes, so verification reads whole batches only.
   */
  async verify(): Promise<VerifyResult> {
    const snapshot = this.enqueueWrite(async () => {
      await this.writePending();
      const files = await listAuditFiles(this.options.file);
      return { files, endOffsets: await fileSizes(files) };
    });
    const { files, endOffsets } = await snapshot;
    return verifyAuditChain({ files, endOffsets, head: readAuditHead(this.options.db, this.options.nodeId), ranges: this.ranges, key: this.options.key });
  }

  /** Writes every queued entry and records the head in the database. */
  async flush(): Promise<void> {
    await this.enqueueWrite(() => this.writePending());
    await this.recordHead();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.flush();
    if (this.headTimer !== null) clearTimeout(this.headTimer);
    await this.writer.close();
  }

  // ---- chaining and writing ----------------------------------------------------------------------------------

  /**
   * The next id follows the newest entry on disk or the newest the database recorded, whichever is later: after a
   * cut-off tail the chain resumes after the recorded head, so the gap stays visible to every later verification.
   */
  private continueChain(last: Record<string, unknown> | null, head: AuditHead | null): void {
    const lastId = typeof last?.id === 'number' ? last.id : 0;
    const lastHash = typeof last?.hash === 'string' ? last.hash : genesisHash;
    if (head !== null && head.count > lastId) {
      this.options.logger.warn({ module: 'audit', fileEntries: lastId, recordedEntries: head.count }, 'the audit log ends before the entry the database recorded');
      this.nextId = head.count + 1;
      this.prevHash = head.hash;
    } else {
      this.nextId = lastId + 1;
      this.prevHash = lastHash;
    }
  }

  /** A changed key (or none after one) starts a new hashing range, recorded before any entry uses it. */
  private async recordHashingRange(): Promise<void> {
    const wanted: HashRange =
      this.options.key === null
        ? { fromId: this.nextId, alg: 'sha256' }
        : { fromId: this.nextId, alg: 'hmac-sha256', keyId: keyFingerprint(this.options.key) };
    const current = rangeFor(this.ranges, this.nextId);
    if (current.alg === wanted.alg && current.keyId === wanted.keyId) return;
    this.ranges = [...this.ranges.filter((range) => range.fromId < wanted.fromId), wanted];
    const { hashing } = auditRows(this.options.nodeId);
    await this.options.db.put({ table: systemTables.audit.name, key: hashing, doc: { name: hashing, ranges: this.ranges.map((r) => ({ ...r })) } });
    this.record('config_changed', { user: null, clientIp: null, requestId: null }, { auditHashing: { from: current.alg, to: wanted.alg } });
  }

  private finishStartupVerification(result: VerifyResult, collected: AuditEntry[]): void {
    this.atStart = result;
    this.ring.prependOlder(collected);
    if (result.valid) {
      this.options.logger.info({ module: 'audit', entries: result.entries, files: result.files }, 'audit log verified');
    } else {
      this.options.logger.warn({ module: 'audit', ...result }, 'the audit log FAILED verification; see GET /v1/admin/audit/verify');
    }
  }

  private queue(entry: AuditEntry): void {
    this.pending.push(JSON.stringify(entry));
    if (this.pending.length > auditPendingEntriesMax) {
      this.pending.shift();
      this.dropped++;
    }
    this.pendingLast = { count: entry.id, hash: entry.hash };
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // One batch per turn of the event loop: every event of the turn shares one write and one fdatasync.
    setImmediate(() => {
      this.flushScheduled = false;
      void this.enqueueWrite(() => this.writePending());
    });
  }

  private enqueueWrite<T>(work: () => Promise<T>): Promise<T> {
    const run = this.writeChain.then(work);
    this.writeChain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private async writePending(): Promise<void> {
    if (this.pending.length === 0) return;
    const lines = this.pending;
    const last = this.pendingLast;
    this.pending = [];
    try {
      await this.writer.append(`${lines.join('\n')}\n`);
    } catch (error) {
      // Kept for the next batch; the server goes on serving (a full disk must not stop authentication).
      this.pending = [...lines, ...this.pending].slice(-auditPendingEntriesMax);
      this.writeFailures++;
      this.options.logger.error({ module: 'audit', err: String(error), pending: this.pending.length }, 'cannot write the audit log');
      return;
    }
    this.durable = last;
    this.scheduleHeadRecord();
  }

  private scheduleHeadRecord(): void {
    if (this.headTimer !== null || this.closed) return;
    this.headTimer = setTimeout(() => {
      this.headTimer = null;
      void this.recordHead();
    }, auditHeadRecordIntervalMs).unref();
  }

  /** Records the newest durable entry in the database log; one write at a time, and only when it moved on. */
  private recordHead(): Promise<void> {
    this.headWrite = this.headWrite.then(async () => {
      const durable = this.durable;
      if (durable === null || (this.recorded !== null && durable.count <= this.recorded.count)) return;
      try {
        const { head } = auditRows(this.options.nodeId);
        await this.options.db.put({ table: systemTables.audit.name, key: head, doc: { name: head, ...durable } });
        this.recorded = durable;
      } catch (error) {
        this.options.logger.error({ module: 'audit', err: String(error) }, 'cannot record the audit head in the database');
      }
    });
    return this.headWrite;
  }
}

/** The newest entry the database recorded, or null before the first. */
export function readAuditHead(db: Database, nodeId?: string | null): AuditHead | null {
  const doc = rowOrNull(db, systemTables.audit.name, auditRows(nodeId).head);
  return doc === null ? null : { count: doc.count as number, hash: doc.hash as string };
}

/** How entries are hashed, range by range (empty: plain SHA-256 throughout). */
export function readHashRanges(db: Database, nodeId?: string | null): HashRange[] {
  const ranges = (rowOrNull(db, systemTables.audit.name, auditRows(nodeId).hashing)?.ranges ?? []) as unknown as HashRange[];
  return ranges.map((range) => ({ ...range }));
}

function clip(text: string | null): string | null {
  return text === null || text.length <= auditStringLengthMax ? text : `${text.slice(0, auditStringLengthMax)}…`;
}

function clipDetails(details: Record<string, JsonValue>): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = {};
  for (const [name, value] of Object.entries(details)) out[name] = typeof value === 'string' ? clip(value)! : value;
  return out;
}

async function fileSizes(files: readonly AuditFile[]): Promise<Map<string, number>> {
  const sizes = new Map<string, number>();
  for (const file of files) sizes.set(file.path, (await stat(file.path)).size);
  return sizes;
}
