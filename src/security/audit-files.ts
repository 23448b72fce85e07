// The audit log's files on disk: the current file (--audit-log-path) and the rotated ones beside it (FILE.1, FILE.2, …,
// oldest first), read as JSON lines with a bound on each line, and the current file's tail found without reading it all.

import { promises as fs } from 'node:fs';
import path from 'node:path';

/** An audit line is a few hundred bytes; anything this long was not written by DriftDB. */
export const auditLineBytesMax = 64 * 1024;
/** Bytes read from a file's end to find its last entry. */
const tailReadBytes = 2 * auditLineBytesMax;

export interface AuditFile {
  path: string;
  /** 1, 2, … for rotated files; null for the current file. */
  index: number | null;
}

export function rotatedPath(base: string, index: number): string {
  return `${base}.${index}`;
}

/** Rotated files oldest first, then the current file if it exists. */
export async function listAuditFiles(base: string): Promise<AuditFile[]> {
  const dir = path.dirname(base);
  const prefix = `${path.basename(base)}.`;
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const rotated = names
    .filter((name) => name.startsWith(prefix) && /^[1-9][0-9]{0,8}$/.test(name.slice(prefix.length)))
    .map((name) => ({ path: path.join(dir, name), index: Number(name.slice(prefix.length)) }))
    .sort((a, b) => a.index - b.index);
  const files: AuditFile[] = rotated;
  if (names.includes(path.basename(base))) files.push({ path: base, index: null });
  return files;
}

export interface FileTail {
  size: number;
  /** The last complete line that parses as JSON, or null. */
  last: Record<string, unknown> | null;
  /** Bytes after the last newline: a line a crash cut short. */
  tornBytes: number;
}

/** The file's last entry and whether it ends in a torn line; null when the file does not exist. */
export async function readTail(file: string): Promise<FileTail | null> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  try {
    const { size } = await handle.stat();
    const start = Math.max(0, size - tailReadBytes);
    const buffer = Buffer.alloc(size - start);
    await handle.read(buffer, 0, buffer.length, start);
    const text = buffer.toString('utf8');
    const lastNewline = text.lastIndexOf('\n');
    const tornBytes = lastNewline === -1 ? (start === 0 ? buffer.length : 0) : Buffer.byteLength(text.slice(lastNewline + 1));
    const lines = text.slice(0, lastNewline === -1 ? 0 : lastNewline).split('\n');
    let last: Record<string, unknown> | null = null;
    for (let i = lines.length - 1; i >= 0 && last === null; i--) last = parseObject(lines[i]!);
    return { size, last, tornBytes };
  } finally {
    await handle.close();
  }
}

function parseObject(line: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(line);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/**
 * Calls `onLine` for each line of the file's first `endOffset` bytes (the whole file by default); a line longer than
 * auditLineBytesMax is passed as null (it cannot be an entry). A last line without a newline is passed with
 * `complete` false.
 */
export async function forEachLine(
  file: string,
  onLine: (line: string | null, complete: boolean) => void,
  endOffset?: number,
): Promise<void> {
  const handle = await fs.open(file, 'r');
  try {
    const end = endOffset ?? (await handle.stat()).size;
    const chunk = Buffer.alloc(256 * 1024);
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let overlong = false;
    for (let position = 0; position < end; ) {
      const { bytesRead } = await handle.read(chunk, 0, Math.min(chunk.length, end - position), position);
      if (bytesRead === 0) break;
      position += bytesRead;
      let from = 0;
      for (let newline = chunk.indexOf(10, from); newline !== -1 && newline < bytesRead; newline = chunk.indexOf(10, from)) {
        const piece = chunk.subarray(from, newline);
        onLine(overlong || pendingBytes + piece.length > auditLineBytesMax ? null : Buffer.concat([...pending, piece]).toString('utf8'), true);
        pending = [];
        pendingBytes = 0;
        overlong = false;
        from = newline + 1;
      }
      const rest = chunk.subarray(from, bytesRead);
      if (pendingBytes + rest.length > auditLineBytesMax) {
        overlong = true;
        pending = [];
        pendingBytes = 0;
      } else if (rest.length > 0) {
        pending.push(Buffer.from(rest));
        pendingBytes += rest.length;
      }
    }
    if (overlong) onLine(null, false);
    else if (pendingBytes > 0) onLine(Buffer.concat(pending).toString('utf8'), false);
  } finally {
    await handle.close();
  }
}
