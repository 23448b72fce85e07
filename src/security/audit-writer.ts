// Appends batches of audit lines to the current file with one write and one fdatasync each, and rotates it by size:
// the full file is renamed to the next FILE.N and a new one started, so no file is ever rewritten.

import { promises as fs } from 'node:fs';
import path from 'node:path';
import { listAuditFiles, readTail, rotatedPath, type FileTail } from './audit-files.js';

export interface WriterLogger {
  warn(obj: object, msg: string): void;
}

export class AuditFileWriter {
  private handle: fs.FileHandle | null = null;

  private constructor(
    private readonly base: string,
    private readonly rotateBytes: number,
    private size: number,
    private nextRotatedIndex: number,
  ) {}

  /**
   * Opens the current file for appending (creating its directory), after cutting a line a crash left half-written
   * at its end; answers the newest entry on disk (the current file's last, else the newest rotated file's).
   */
  static async open(options: { base: string; rotateBytes: number; logger: WriterLogger }): Promise<{ writer: AuditFileWriter; last: Record<string, unknown> | null }> {
    await fs.mkdir(path.dirname(options.base), { recursive: true, mode: 0o700 });
    const files = await listAuditFiles(options.base);
    const rotated = files.filter((file) => file.index !== null);
    let tail = await readTail(options.base);
    if (tail !== null && tail.tornBytes > 0) tail = await cutTornLine(options.base, tail, options.logger);
    let last = tail?.last ?? null;
    if (last === null && rotated.length > 0) last = (await readTail(rotated.at(-1)!.path))?.last ?? null;
    const nextIndex = (rotated.at(-1)?.index ?? 0) + 1;
    return { writer: new AuditFileWriter(options.base, options.rotateBytes, tail?.size ?? 0, nextIndex), last };
  }

  get bytes(): number {
    return this.size;
  }

  /** Files rotated so far (FILE.1 … FILE.N). */
  get rotatedFiles(): number {
    return this.nextRotatedIndex - 1;
  }

  /** Appends whole lines (each ending in a newline) and makes them durable; rotates first if they would not fit. */
  async append(text: string): Promise<void> {
    const bytes = Buffer.byteLength(text);
    if (this.size > 0 && this.size + bytes > this.rotateBytes) await this.rotate();
    if (this.handle === null) {
      this.handle = await fs.open(this.base, 'a', 0o600);
      // A new file's name must survive a crash like its content.
      if (this.size === 0) await syncDir(path.dirname(this.base));
    }
    await this.handle.write(text);
    await this.handle.datasync();
    this.size += bytes;
  }

  async close(): Promise<void> {
    await this.handle?.close();
    this.handle = null;
  }

  private async rotate(): Promise<void> {
    await this.close();
    await fs.rename(this.base, rotatedPath(this.base, this.nextRotatedIndex));
    this.nextRotatedIndex++;
    this.size = 0;
    // Fsync the directory, or a crash could forget the rename and the new file's name.
    await syncDir(path.dirname(this.base));
  }
}

async function cutTornLine(file: string, tail: FileTail, logger: WriterLogger): Promise<FileTail> {
  const keep = tail.size - tail.tornBytes;
  const handle = await fs.open(file, 'r+');
  try {
    await handle.truncate(keep);
    await handle.sync();
  } finally {
    await handle.close();
  }
  logger.warn({ module: 'audit', file: path.basename(file), offset: keep, bytes: tail.tornBytes }, 'cut a half-written audit line off the end of the file');
  return { ...tail, size: keep, tornBytes: 0 };
}

async function syncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
