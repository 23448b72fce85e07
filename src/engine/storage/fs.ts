// The FileSystem port: the few file operations the log and checkpoints need, so the disk can be swapped for
// an in-memory one (test/helpers/memory-fs.ts) or wrapped to inject faults (test/helpers/faulty-fs.ts) in tests.

import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';

/** How a file is opened: read only, read/write an existing file, create a new one (fails if it exists), or create/truncate. */
export type OpenFlags = 'r' | 'r+' | 'wx' | 'w';

export interface FileHandle {
  /** Reads up to `length` bytes at `position` into `buffer[offset..]`; answers the count read (0 at end of file). */
  read(options: { buffer: Buffer; offset: number; length: number; position: number }): Promise<number>;
  /** Writes the buffers in order at `position`; answers the count written, which may be short. */
  writev(buffers: readonly Buffer[], position: number): Promise<number>;
  /** fdatasync: the data (and the size needed to read it) is on stable storage when this resolves. */
  datasync(): Promise<void>;
  /** fsync: data and all metadata. */
  sync(): Promise<void>;
  truncate(length: number): Promise<void>;
  size(): Promise<number>;
  close(): Promise<void>;
}

/**
 * A file opened for synchronous positional reads. The version store reads old documents this way: a read from the
 * page cache costs a few µs, far less than a round trip through the thread pool, and it keeps every read path of the
 * engine synchronous (see docs/engine.md, "Version store").
 */
export interface SyncReadFile {
  /** Reads up to `length` bytes at `position` into `buffer[offset..]`; answers the count read (0 at end of file). */
  readSync(buffer: Buffer, offset: number, length: number, position: number): number;
  close(): void;
}

export interface FileSystem {
  open(file: string, flags: OpenFlags): Promise<FileHandle>;
  /** Opens an existing file for synchronous reads. */
  openForSyncReads(file: string): SyncReadFile;
  readFile(file: string): Promise<Buffer>;
  /** Size in bytes of a regular file. */
  size(file: string): Promise<number>;
  exists(file: string): Promise<boolean>;
  /** Entry names of a directory (not paths), in no particular order. */
  readdir(dir: string): Promise<string[]>;
  /** mkdir -p. */
  mkdirp(dir: string): Promise<void>;
  /** Atomically replaces `to` (if present) by `from`. */
  rename(from: string, to: string): Promise<void>;
  unlink(file: string): Promise<void>;
  /** fsync of a directory, so that names created, renamed or removed in it survive a crash. */
  syncDir(dir: string): Promise<void>;
}

/** An error shaped like node's system errors (`code`, `syscall`, `path`), for FileSystem implementations other than node's. */
export function fileSystemError(code: string, syscall: string, file: string): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(`${code}: ${syscall} '${file}'`);
  error.code = code;
  error.syscall = syscall;
  error.path = file;
  return error;
}

function isErrorCode(error: unknown, code: string): boolean {
  return typeof error === 'object' && error !== null && (error as NodeJS.ErrnoException).code === code;
}

class NodeFileHandle implements FileHandle {
  constructor(private readonly handle: fsp.FileHandle) {}

  async read(options: { buffer: Buffer; offset: number; length: number; position: number }): Promise<number> {
    const result = await this.handle.read(options.buffer, options.offset, options.length, options.position);
    return result.bytesRead;
  }

  async writev(buffers: readonly Buffer[], position: number): Promise<number> {
    const result = await this.handle.writev(buffers, position);
    return result.bytesWritten;
  }

  datasync(): Promise<void> {
    return this.handle.datasync();
  }

  sync(): Promise<void> {
    return this.handle.sync();
  }

  truncate(length: number): Promise<void> {
    return this.handle.truncate(length);
  }

  async size(): Promise<number> {
    return (await this.handle.stat()).size;
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

/** The real disk, through node:fs/promises. */
export const nodeFileSystem: FileSystem = Object.freeze({
  async open(file: string, flags: OpenFlags): Promise<FileHandle> {
    return new NodeFileHandle(await fsp.open(file, flags));
  },
  openForSyncReads(file: string): SyncReadFile {
    const fd = fs.openSync(file, 'r');
    return {
      readSync: (buffer, offset, length, position) => fs.readSync(fd, buffer, offset, length, position),
      close: () => fs.closeSync(fd),
    };
  },
  readFile(file: string): Promise<Buffer> {
    return fsp.readFile(file);
  },
  async size(file: string): Promise<number> {
    return (await fsp.stat(file)).size;
  },
  async exists(file: string): Promise<boolean> {
    try {
      await fsp.stat(file);
      return true;
    } catch (error) {
      if (isErrorCode(error, 'ENOENT')) return false;
      throw error;
    }
  },
  readdir(dir: string): Promise<string[]> {
    return fsp.readdir(dir);
  },
  async mkdirp(dir: string): Promise<void> {
    await fsp.mkdir(dir, { recursive: true });
  },
  rename(from: string, to: string): Promise<void> {
    return fsp.rename(from, to);
  },
  unlink(file: string): Promise<void> {
    return fsp.unlink(file);
  },
  async syncDir(dir: string): Promise<void> {
    const handle = await fsp.open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
});

/** Writes every byte of `buffers` at `position`, looping over short writes. */
export async function writeAll(handle: FileHandle, buffers: readonly Buffer[], position: number): Promise<number> {
  let remaining = buffers.filter((buffer) => buffer.length > 0);
  let total = 0;
  while (remaining.length > 0) {
    const written = await handle.writev(remaining, position + total);
    if (written <= 0) throw fileSystemError('EIO', 'write', '(short write of 0 bytes)');
    total += written;
    remaining = dropPrefix(remaining, written);
  }
  return total;
}

function dropPrefix(buffers: readonly Buffer[], count: number): Buffer[] {
  const rest: Buffer[] = [];
  let skip = count;
  for (const buffer of buffers) {
    if (skip >= buffer.length) {
      skip -= buffer.length;
      continue;
    }
    rest.push(skip > 0 ? buffer.subarray(skip) : buffer);
    skip = 0;
  }
  return rest;
}

/** Creates `dir` (and parents) and fsyncs its parent, so the new directory's name survives a crash. */
export async function ensureDurableDir(fileSystem: FileSystem, dir: string): Promise<void> {
  if (await fileSystem.exists(dir)) return;
  await fileSystem.mkdirp(dir);
  await fileSystem.syncDir(path.dirname(dir));
}
