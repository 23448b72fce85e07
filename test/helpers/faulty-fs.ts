// A FileSystem wrapper for tests that counts writes and syncs and makes them fail with EIO past a threshold,
// to drive the log's fail-stop paths on a real or an in-memory disk.

import { fileSystemError, type FileHandle, type FileSystem } from '../../src/engine/storage/fs.js';

export interface FaultOptions {
  /** Writes (writev calls) that succeed before every later one fails with EIO; undefined = never fail. */
  failWriteAfter?: number;
  /** File syncs (datasync and sync) that succeed before every later one fails with EIO. */
  failSyncAfter?: number;
  /** Directory syncs that succeed before every later one fails with EIO. */
  failSyncDirAfter?: number;
}

export interface FaultyFileSystem extends FileSystem {
  /** Operations seen so far, failed ones included. */
  readonly counts: { writes: number; datasyncs: number; syncs: number; syncDirs: number };
  /** Replaces the fault plan; counts keep running (thresholds compare against them). */
  setFaults(options: FaultOptions): void;
}

/** Wraps a FileSystem so tests can count writes and syncs and make them fail past a threshold. */
export function faultyFileSystem(inner: FileSystem, options: FaultOptions = {}): FaultyFileSystem {
  let faults = { ...options };
  const counts = { writes: 0, datasyncs: 0, syncs: 0, syncDirs: 0 };
  const fails = (threshold: number | undefined, seen: number): boolean => threshold !== undefined && seen > threshold;
  const syncCount = (): number => counts.datasyncs + counts.syncs;

  const wrapHandle = (file: string, handle: FileHandle): FileHandle => ({
    read: (readOptions) => handle.read(readOptions),
    async writev(buffers, position) {
      counts.writes += 1;
      if (fails(faults.failWriteAfter, counts.writes)) throw fileSystemError('EIO', 'write', file);
      return handle.writev(buffers, position);
    },

    async datasync() {
      counts.datasyncs += 1;
      if (fails(faults.failSyncAfter, syncCount())) throw fileSystemError('EIO', 'fdatasync', file);
      return handle.datasync();
    },
    async sync() {
      counts.syncs += 1;
      if (fails(faults.failSyncAfter, syncCount())) throw fileSystemError('EIO', 'fsync', file);
      return handle.sync();
    },
    truncate: (length) => handle.truncate(length),
    size: () => handle.size(),
    close: () => handle.close(),
  });

  return {
    counts,
    setFaults(next: FaultOptions) {
      faults = { ...next };
    },
    async open(file, flags) {
      return wrapHandle(file, await inner.open(file, flags));
    },
    openForSyncReads: (file) => inner.openForSyncReads(file),
    readFile: (file) => inner.readFile(file),
    size: (file) => inner.size(file),
    exists: (file) => inner.exists(file),
    readdir: (dir) => inner.readdir(dir),
    mkdirp: (dir) => inner.mkdirp(dir),
    rename: (from, to) => inner.rename(from, to),
    unlink: (file) => inner.unlink(file),
    async syncDir(dir) {
      counts.syncDirs += 1;
      if (fails(faults.failSyncDirAfter, counts.syncDirs)) throw fileSystemError('EIO', 'fsync', dir);
      return inner.syncDir(dir);
    },
  };
}
