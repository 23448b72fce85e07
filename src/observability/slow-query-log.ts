// The slow-query log of http-api.md §7: every data-route request at or over the threshold, failed ones included,
// kept in an in-memory ring (newest first, with duration percentiles), and optionally appended as JSON lines to a
// size-rotated file and logged on stdout.

import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import type { Logger } from './logger.js';

export interface SlowQueryEntry {
  id: string;
  requestId: string;
  /** When the request arrived (RFC 3339). */
  ts: string;
  durationMs: number;
  method: string;
  /** The route template, e.g. /v1/tables/:table/rows/:key. */
  route: string;
  table?: string;
  /** The request as text: method, URL and, for queries and batches, the body (literals `?` when redacted). */
  statement: string;
  /** The authenticated user, or null when the request failed before authentication. */
  user: string | null;
  transactionId?: string;
  /** Rows returned (reads) or written (writes). */
  rows: number;
  status: number;
  /** The problem `code` of a failed request. */
  error?: string;
}

export interface SlowQueryStats {
  count: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
}

export interface SlowQueryLogOptions {
  thresholdMs: number;
  maxStored: number;
  /** Also append each entry as a JSON line to this file (rotated by size). */
  filePath: string | null;
  /** Also log each entry on stdout (through `logger`, whatever its level). */
  stdout: boolean;
  /** The server's logger: entries when `stdout`, and a warning if the file cannot be written. */
  logger: Logger;
  /** Bytes per file before it rotates; default slowQueryFileBytesMax. */
  fileBytesMax?: number;
}

/** A slow-query file rotates past this size: FILE → FILE.1 → … → FILE.<slowQueryFilesKept>, the oldest dropped. */
export const slowQueryFileBytesMax = 64 * 1024 * 1024;
export const slowQueryFilesKept = 4;

export class SlowQueryLog {
  readonly thresholdMs: number;
  private readonly ring: Array<SlowQueryEntry | undefined>;
  /** Where the next entry goes; entries are ring[next-1], ring[next-2], … newest first. */
  private next = 0;
  private stored = 0;
  private readonly file: RotatingFile | null;
  private readonly stdout: Logger | null;

  constructor(options: SlowQueryLogOptions) {
    this.thresholdMs = options.thresholdMs;
    this.ring = new Array(options.maxStored);
    const logger = options.logger.child({ module: 'slow-query' });
    const onFileError = (error: Error): void => logger.warn({ file: options.filePath, err: error.message }, 'slow-query file cannot be written; entries stay in memory only');
    this.file = options.filePath === null ? null : new RotatingFile({ path: options.filePath, bytesMax: options.fileBytesMax ?? slowQueryFileBytesMax, onError: onFileError });
    // Asked for explicitly, so written whatever --log-level says.
    this.stdout = options.stdout ? options.logger.child({ module: 'slow-query' }, { level: 'info' }) : null;
  }

  /** Adds an entry (its id is assigned here). Nothing waits for the file: it is written in order, in the background. */
  record(entry: Omit<SlowQueryEntry, 'id'>): SlowQueryEntry {
    const stored: SlowQueryEntry = { id: randomUUID(), ...entry };
    this.ring[this.next] = stored;
    this.next = (this.next + 1) % this.ring.length;
    this.stored = Math.min(this.stored + 1, this.ring.length);
    this.file?.append(`${JSON.stringify(stored)}\n`);
    this.stdout?.info({ slowQuery: stored }, 'slow query');
    return stored;
  }

  /** The newest `limit` entries, newest first. */
  list(limit: number): SlowQueryEntry[] {
    const entries: SlowQueryEntry[] = [];
    for (let i = 1; i <= Math.min(limit, this.stored); i++) {
      entries.push(this.ring[(this.next - i + this.ring.length) % this.ring.length]!);
    }
    return entries;
  }

  /** Duration percentiles (nearest rank) over every stored entry. */
  stats(): SlowQueryStats {
    const durations = this.list(this.stored).map((entry) => entry.durationMs).sort((a, b) => a - b);
    const rank = (p: number): number | null => (durations.length === 0 ? null : durations[Math.ceil((p / 100) * durations.length) - 1]!);
    return { count: durations.length, p50: rank(50), p95: rank(95), p99: rank(99), max: durations.at(-1) ?? null };
  }

  /** Empties the ring; the file keeps what it holds. */
  clear(): void {
    this.ring.fill(undefined);
    this.next = 0;
    this.stored = 0;
  }

  /** Resolves once every entry recorded so far is in the file. */
  flush(): Promise<void> {
    return this.file?.flush() ?? Promise.resolve();
  }
}

/** Appends lines to a file in order; past `bytesMax` the file is renamed FILE.1 (older ones shift) and begun anew. */
class RotatingFile {
  private readonly path: string;
  private readonly bytesMax: number;
  private readonly onError: (error: Error) => void;
  private size: number | null = null;
  private writing: Promise<void> = Promise.resolve();
  private failed = false;

  constructor(options: { path: string; bytesMax: number; onError: (error: Error) => void }) {
    this.path = options.path;
    this.bytesMax = options.bytesMax;
    this.onError = options.onError;
  }

  append(line: string): void {
    this.writing = this.writing.then(() => this.write(line));
  }

  flush(): Promise<void> {
    return this.writing;
  }

  private async write(line: string): Promise<void> {
    if (this.failed) return;
    try {
      this.size ??= await fileSize(this.path);
      const bytes = Buffer.byteLength(line);
      if (this.size > 0 && this.size + bytes > this.bytesMax) await this.rotate();
      await fs.appendFile(this.path, line, { mode: 0o600 });
      this.size += bytes;
    } catch (error) {
      // A slow-query file that cannot be written must not take requests down: say so once, keep the ring.
      this.failed = true;
      this.onError(error as Error);
    }
  }

  private async rotate(): Promise<void> {
    for (let n = slowQueryFilesKept - 1; n >= 1; n--) {
      await fs.rename(`${this.path}.${n}`, `${this.path}.${n + 1}`).catch(ignoreMissing);
    }
    await fs.rename(this.path, `${this.path}.1`).catch(ignoreMissing);
    this.size = 0;
  }
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await fs.stat(path)).size;
  } catch (error) {
    ignoreMissing(error);
    return 0;
  }
}

function ignoreMissing(error: unknown): void {
  if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
}
