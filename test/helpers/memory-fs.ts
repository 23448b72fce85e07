// An in-memory FileSystem that models what survives a crash: file bytes survive only up to their last
// datasync/sync, and names only once their directory was fsynced. Tests use crash() to play kill -9.

import * as path from 'node:path';
import { assert } from '../../src/assert.js';
import { fileSystemError, type FileHandle, type FileSystem, type OpenFlags } from '../../src/engine/storage/fs.js';

/** A byte array that grows by doubling, so appends cost amortized O(bytes written). */
class GrowableBytes {
  private buffer = Buffer.alloc(0);
  length = 0;

  bytes(): Buffer {
    return this.buffer.subarray(0, this.length);
  }

  write(source: Buffer, position: number): void {
    const end = position + source.length;
    if (end > this.buffer.length) {
      const grown = Buffer.alloc(Math.max(end, this.buffer.length * 2));
      this.buffer.copy(grown, 0, 0, this.length);
      this.buffer = grown;
    }
    if (position > this.length) this.buffer.fill(0, this.length, position);
    source.copy(this.buffer, position);
    this.length = Math.max(this.length, end);
  }

  truncate(length: number): void {
    if (length > this.length) this.write(Buffer.alloc(length - this.length), this.length);
    this.length = length;
  }
}

/** One file's bytes; several names (or none, after unlink) may point at it, like an inode. */
class Inode {
  private readonly current = new GrowableBytes();
  /** The bytes a crash keeps: the content as of the last datasync/sync. */
  private readonly durable = new GrowableBytes();
  /** Bytes below this offset are unchanged since the last sync, so a sync need copy only the rest. */
  private changedFrom = 0;

  get length(): number {
    return this.current.length;
  }

  bytes(): Buffer {
    return this.current.bytes();
  }

  durableBytes(): Buffer {
    return this.durable.bytes();
  }

  /** True when the file only grew since its last sync (the unsynced bytes are an append). */
  onlyAppended(): boolean {
    return this.changedFrom >= this.durable.length && this.current.length > this.durable.length;
  }

  write(source: Buffer, position: number): void {
    this.changedFrom = Math.min(this.changedFrom, position);
    this.current.write(source, position);
  }

  truncate(length: number): void {
    this.changedFrom = Math.min(this.changedFrom, length);
    this.current.truncate(length);
  }

  persist(): void {
    const from = Math.min(this.changedFrom, this.current.length);
    this.durable.truncate(from);
    this.durable.write(this.current.bytes().subarray(from), from);
    this.changedFrom = this.current.length;
  }
}

export interface CrashOptions {
  /**
   * How many of a file's bytes past its durable copy survive (a torn write), given the count that was
   * written but not synced. Default: none. Only used when the unsynced bytes extend the durable copy.
   */
  keepUnsyncedBytes?(file: string, unsyncedBytes: number): number;
}

export interface MemoryFileSystem extends FileSystem {
  /** A new file system holding only what a crash at this instant would leave on disk. */
  crash(options?: CrashOptions): MemoryFileSystem;
  /** Test helper: the current bytes of a file. */
  peek(file: string): Buffer;
  /** Test helper: replaces a file's bytes (current and durable), e.g. to flip a bit. */
  poke(file: string, bytes: Buffer): void;
}

interface State {
  /** Every directory path; directories are durable as soon as they are made (a simplification). */
  dirs: Set<string>;
  /** Current names: full path → inode. */
  files: Map<string, Inode>;
  /** Names as of each directory's last fsync: dir → (name → inode). */
  durableNames: Map<string, Map<string, Inode>>;
}

export function memoryFileSystem(): MemoryFileSystem {
  return fromState({ dirs: new Set(['/']), files: new Map(), durableNames: new Map() });
}

function fromState(state: State): MemoryFileSystem {
  const norm = (file: string): string => path.posix.resolve('/', file);
  const inodeOf = (file: string, syscall: string): Inode => {
    const inode = state.files.get(norm(file));
    if (!inode) throw fileSystemError('ENOENT', syscall, file);
    return inode;
  };
  const requireParent = (file: string, syscall: string): void => {
    if (!state.dirs.has(path.posix.dirname(norm(file)))) throw fileSystemError('ENOENT', syscall, file);
  };

  const fileSystem: MemoryFileSystem = {
    async open(file: string, flags: OpenFlags): Promise<FileHandle> {
      const key = norm(file);
      if (state.dirs.has(key)) throw fileSystemError('EISDIR', 'open', file);
      let inode = state.files.get(key);
      if (flags === 'wx' && inode) throw fileSystemError('EEXIST', 'open', file);
      if ((flags === 'r' || flags === 'r+') && !inode) throw fileSystemError('ENOENT', 'open', file);
      if (!inode) {
        requireParent(file, 'open');
        inode = new Inode();
        state.files.set(key, inode);
      } else if (flags === 'w') {
        inode.truncate(0);
      }
      return memoryHandle(inode, flags === 'r', file);
    },
    openForSyncReads(file: string) {
      const inode = inodeOf(file, 'open');
      return {
        readSync(buffer: Buffer, offset: number, length: number, position: number): number {
          const bytes = inode.bytes();
          if (position >= bytes.length) return 0;
          return bytes.copy(buffer, offset, position, Math.min(bytes.length, position + length));
        },
        close() {},
      };
    },
    async readFile(file: string): Promise<Buffer> {
      return Buffer.from(inodeOf(file, 'open').bytes());
    },
    async size(file: string): Promise<number> {
      return inodeOf(file, 'stat').length;
    },
    async exists(file: string): Promise<boolean> {
      const key = norm(file);
      return state.files.has(key) || state.dirs.has(key);
    },
    async readdir(dir: string): Promise<string[]> {
      const key = norm(dir);
      if (!state.dirs.has(key)) throw fileSystemError('ENOENT', 'scandir', dir);
      const names: string[] = [];
      for (const entry of [...state.files.keys(), ...state.dirs]) {
        if (entry !== key && path.posix.dirname(entry) === key) names.push(path.posix.basename(entry));
      }
      return names;
    },
    async mkdirp(dir: string): Promise<void> {
      for (let current = norm(dir); !state.dirs.has(current); current = path.posix.dirname(current)) {
        if (state.files.has(current)) throw fileSystemError('EEXIST', 'mkdir', dir);
        state.dirs.add(current);
      }
    },
    async rename(from: string, to: string): Promise<void> {
      const inode = inodeOf(from, 'rename');
      requireParent(to, 'rename');
      state.files.delete(norm(from));
      state.files.set(norm(to), inode);
    },
    async unlink(file: string): Promise<void> {
      inodeOf(file, 'unlink');
      state.files.delete(norm(file));
    },
    async syncDir(dir: string): Promise<void> {
      const key = norm(dir);
      if (!state.dirs.has(key)) throw fileSystemError('ENOENT', 'open', dir);
      const names = new Map<string, Inode>();
      for (const [file, inode] of state.files) {
        if (path.posix.dirname(file) === key) names.set(path.posix.basename(file), inode);
      }
      state.durableNames.set(key, names);
    },
    crash(options: CrashOptions = {}): MemoryFileSystem {
      return fromState(crashedState(state, options));
    },
    peek(file: string): Buffer {
      return Buffer.from(inodeOf(file, 'open').bytes());
    },
    poke(file: string, bytes: Buffer): void {
      const inode = inodeOf(file, 'open');
      inode.truncate(0);
      inode.write(bytes, 0);
      inode.persist();
    },
  };
  return fileSystem;
}

function crashedState(state: State, options: CrashOptions): State {
  const survivors = new Map<Inode, Inode>();
  const files = new Map<string, Inode>();
  for (const [dir, names] of state.durableNames) {
    for (const [name, inode] of names) {
      const file = path.posix.join(dir, name);
      let copy = survivors.get(inode);
      if (!copy) {
        copy = survivingInode(file, inode, options);
        survivors.set(inode, copy);
      }
      files.set(file, copy);
    }
  }
  const durableNames = new Map([...state.durableNames].map(([dir, names]) => [dir, remap(names, survivors)]));
  return { dirs: new Set(state.dirs), files, durableNames };
}

function survivingInode(file: string, inode: Inode, options: CrashOptions): Inode {
  const copy = new Inode();
  const durable = inode.durableBytes();
  copy.write(durable, 0);
  if (inode.onlyAppended() && options.keepUnsyncedBytes) {
    const unsynced = inode.length - durable.length;
    const kept = options.keepUnsyncedBytes(file, unsynced);
    assert(Number.isInteger(kept) && kept >= 0 && kept <= unsynced, 'keepUnsyncedBytes out of range');
    copy.write(inode.bytes().subarray(durable.length, durable.length + kept), durable.length);
  }
  copy.persist();
  return copy;
}

function remap(names: Map<string, Inode>, survivors: Map<Inode, Inode>): Map<string, Inode> {
  const out = new Map<string, Inode>();
  for (const [name, inode] of names) out.set(name, survivors.get(inode) ?? inode);
  return out;
}

function memoryHandle(inode: Inode, readOnly: boolean, file: string): FileHandle {
  let closed = false;
  const check = (syscall: string, writing = false): void => {
    if (closed) throw fileSystemError('EBADF', syscall, file);
    if (writing && readOnly) throw fileSystemError('EBADF', syscall, file);
  };
  return {
    async read({ buffer, offset, length, position }) {
      check('read');
      const bytes = inode.bytes();
      if (position >= bytes.length) return 0;
      return bytes.copy(buffer, offset, position, Math.min(bytes.length, position + length));
    },
    async writev(buffers, position) {
      check('write', true);
      let at = position;
      for (const buffer of buffers) {
        inode.write(buffer, at);
        at += buffer.length;
      }
      return at - position;
    },
    async datasync() {
      check('fdatasync');
      inode.persist();
    },
    async sync() {
      check('fsync');
      inode.persist();
    },
    async truncate(length) {
      check('ftruncate', true);
      inode.truncate(length);
    },
    async size() {
      check('fstat');
      return inode.length;
    },
    async close() {
      check('close');
      closed = true;
    },
  };
}
