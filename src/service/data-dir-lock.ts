// One process at a time per data dir: `driftdb serve`, `doctor`, `export` and `import` each hold
// <data-dir>/driftdb.lock while they run, as PostgreSQL's postmaster.pid does; a second one is refused by name.

import { closeSync, existsSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';

export const lockFileName = 'driftdb.lock';

/** The data dir is held by another live process. */
export class DataDirLockedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataDirLockedError';
  }
}

interface LockContent {
  pid: number;
  host: string;
  command: string;
  since: string;
}

export interface DataDirLock {
  readonly file: string;
  /** Removes the lock file (also done when the process exits). */
  release(): void;
}

/**
 * Takes the data dir's lock or throws DataDirLockedError naming the holder. A lock left by a process that is gone
 * (a crash, a SIGKILL) is taken over: its pid is not alive on this host, or it is this very process's pid (a
 * container restarted under the same hostname runs as the same pid).
 */
export function lockDataDir(dataDir: string, command: string, options: { createDir: true }): DataDirLock;
export function lockDataDir(dataDir: string, command: string, options: { createDir: boolean }): DataDirLock | null;
/**
 * With `createDir` false (a command that only reads) a data dir that does not exist is not created: the answer is
 * null, there being nothing to lock.
 */
export function lockDataDir(dataDir: string, command: string, options: { createDir: boolean }): DataDirLock | null {
  if (!options.createDir && !existsSync(dataDir)) return null;
  mkdirSync(dataDir, { recursive: true });
  const file = path.join(dataDir, lockFileName);
  const mine: LockContent = { pid: process.pid, host: hostname(), command, since: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = openSync(file, 'wx', 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      refuseIfHeld(file, dataDir);
      unlinkSync(file);
      continue;
    }
    try {
      writeSync(fd, `${JSON.stringify(mine)}\n`);
    } finally {
      closeSync(fd);
    }
    const release = (): void => {
      process.off('exit', release);
      try {
        if (readHolder(file)?.pid === process.pid) unlinkSync(file);
      } catch {
        // Already gone: nothing to release.
      }
    };
    process.on('exit', release);
    return { file, release };
  }
  throw new DataDirLockedError(`cannot take ${file}: another process keeps taking it`);
}

/** Throws when the lock's holder may still run; returns when it is certainly gone (or unreadable: a torn write). */
function refuseIfHeld(file: string, dataDir: string): void {
  const holder = readHolder(file);
  if (holder === null) return;
  if (holder.host === hostname() && (holder.pid === process.pid || !isAlive(holder.pid))) return;
  const where = holder.host === hostname() ? `process ${holder.pid}` : `process ${holder.pid} on host ${holder.host}`;
  throw new DataDirLockedError(
    `the data dir ${dataDir} is in use by ${where} (driftdb ${holder.command}, since ${holder.since}): stop it first. ` +
      `If no DriftDB runs there, remove ${file}.`,
  );
}

function readHolder(file: string): LockContent | null {
  try {
    const content = JSON.parse(readFileSync(file, 'utf8')) as Partial<LockContent>;
    if (typeof content.pid !== 'number' || typeof content.host !== 'string') return null;
    return { pid: content.pid, host: content.host, command: String(content.command), since: String(content.since) };
  } catch {
    return null;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  return !isZombie(pid);
}

/**
 * A process that has exited but was not reaped yet (a server that killed itself when the `serve` that restarted it
 * with a larger heap was killed, while nobody has waited for it) still answers signal 0: on Linux its state says so.
 */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}
