// Child processes and temp dirs of one benchmark run: all tracked, so a normal end, a failure or Ctrl-C removes them.

import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const liveChildren = new Set<ChildProcess>();
const tempDirs = new Set<string>();

/** How long a child gets to exit after SIGTERM before it is killed. */
export const stopGraceMsMax = 15_000;

export function track(child: ChildProcess): ChildProcess {
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  return child;
}

export function makeTempDir(label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `driftdb-bench-${label}-`));
  tempDirs.add(dir);
  return dir;
}

/** Stops tracking a temp dir, so the exit cleanup leaves it in place. */
export function keepTempDir(dir: string): void {
  tempDirs.delete(dir);
}

export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

/** Last resort, safe inside an 'exit' handler: kill every child we started (by its own handle) and remove temp dirs. */
export function cleanUpSync(): void {
  for (const child of liveChildren) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  liveChildren.clear();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

export function installCleanupHandlers(): void {
  process.on('exit', cleanUpSync);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\nbench: ${signal}, stopping children and removing temp dirs\n`);
      cleanUpSync();
      process.exit(130);
    });
  }
}

export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Resolves true when the child has exited, false when `timeoutMs` passed first. */
export function waitExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (hasExited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, timeoutMs);
    const onExit = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

/** SIGTERM, then SIGKILL if the child has not exited within `graceMs`. Answers whether the exit was graceful. */
export async function stopChild(child: ChildProcess, graceMs = stopGraceMsMax): Promise<boolean> {
  if (hasExited(child)) return true;
  child.kill('SIGTERM');
  if (await waitExit(child, graceMs)) return true;
  child.kill('SIGKILL');
  await waitExit(child, 5_000);
  return false;
}

type WorkerReply<T> = { ok: true; result: T } | { ok: false; error: string };

/**
 * Runs one job in a fresh Node child process (so load generators never share a process with a server):
 * sends `job` over IPC and resolves with the child's one reply; a timeout or an early exit rejects.
 */
export function runWorker<TJob, TResult>(script: string, job: TJob, timeoutMs: number): Promise<TResult> {
  const child = track(fork(script, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  return new Promise<TResult>((resolve, reject) => {
    let settled = false;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const timer = setTimeout(() => {
      settle(() => reject(new Error(`${script} did not finish within ${timeoutMs} ms`)));
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('message', (message) => {
      const reply = message as WorkerReply<TResult>;
      settle(() => (reply.ok ? resolve(reply.result) : reject(new Error(reply.error))));
    });
    child.once('exit', (code, signal) => {
      settle(() => reject(new Error(`${script} exited (code ${code}, signal ${signal}) without an answer`)));
    });
    child.send(job as object);
  });
}

/** A port that was free on loopback a moment ago (the usual race is acceptable for a benchmark). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

/** Resident set size of a live process from /proc (Linux), or null when it cannot be read. */
export function vmRssBytes(pid: number): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat; null when it cannot be read. */
export function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces, so split after its closing parenthesis).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the whole line, in clock ticks (100 per second on Linux).
    return (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond;
  } catch {
    return null;
  }
}

const clockTicksPerSecond = 100;

/** Forks a long-lived helper (the ceiling or floor server) and resolves with its first IPC message, e.g. `{ port }`. */
export function startService<TReady>(script: string, timeoutMs: number, args: string[] = []): Promise<{ child: ChildProcess; ready: TReady }> {
  const child = track(fork(script, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} was not ready within ${timeoutMs} ms`));
    }, timeoutMs);
    child.once('message', (message) => {
      clearTimeout(timer);
      resolve({ child, ready: message as TReady });
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited (code ${code}, signal ${signal}) before it was ready`));
    });
  });
}
