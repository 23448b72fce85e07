// The real DriftDB server as the benchmark sees it: spawned from dist/src/cli.js over HTTPS, timed to /readyz, stopped.

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import type { Agent } from 'node:https';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { basicAuth, describeAnswer, httpCall, makeAgent, type HttpAnswer } from './http.js';
import { freePort, hasExited, stopChild, track } from './procs.js';

export const cliPath = fileURLToPath(new URL('../src/cli.js', import.meta.url));

/** Between two /readyz polls: the resolution of the restart-time figure. */
const readyPollMs = 10;
/** A log tail this long goes into error messages. */
const logTailChars = 2_000;

export interface DriftServer {
  child: ChildProcess;
  baseUrl: string;
  authorization: string;
  agent: Agent;
  logPath: string;
}

export interface StartInput {
  dataDir: string;
  /** Where the server's stdout/stderr go (a file: an unread pipe would block the server). */
  logPath: string;
  password: string;
  readyTimeoutMs: number;
  /** Write a V8 CPU profile of the server into this directory when it exits. */
  cpuProfDir?: string | null;
  /** More `serve` flags, after the defaults. */
  extraArgs?: string[];
}

/** Spawns the server and resolves once /readyz answers 200, with the seconds from spawn to that answer. */
export async function startDriftServer(input: StartInput): Promise<{ server: DriftServer; readySeconds: number }> {
  if (!existsSync(cliPath)) throw new Error(`${cliPath} does not exist (the CLI is not built yet)`);
  const port = await freePort();
  const baseUrl = `https://127.0.0.1:${port}`;
  const env = serverEnv(input.password);
  const profile = input.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', input.cpuProfDir] : [];
  const args = [...profile, cliPath, 'serve', '--data-dir', input.dataDir, '--host', '127.0.0.1', '--port', String(port), '--tls', 'self-signed', ...(input.extraArgs ?? [])];
  const logFd = openSync(input.logPath, 'a');
  const started = performance.now();
  const child = track(spawn(process.execPath, args, { env, stdio: ['ignore', logFd, logFd] }));
  closeSync(logFd);
  const server: DriftServer = { child, baseUrl, authorization: basicAuth('admin', input.password), agent: makeAgent(8), logPath: input.logPath };
  try {
    await waitReady(server, started + input.readyTimeoutMs);
  } catch (error) {
    await stopDriftServer(server);
    throw error;
  }
  return { server, readySeconds: (performance.now() - started) / 1000 };
}

/** The inherited environment without any DRIFTDB_* setting of the caller's shell, so runs are comparable. */
function serverEnv(password: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('DRIFTDB_')) env[name] = value;
  env['DRIFTDB_ADMIN_PASSWORD'] = password;
  return env;
}

async function waitReady(server: DriftServer, deadline: number): Promise<void> {
  let last = 'no answer yet';
  while (performance.now() < deadline) {
    if (hasExited(server.child)) {
      throw new Error(`server exited (code ${server.child.exitCode}, signal ${server.child.signalCode}) before /readyz; log tail: ${logTail(server.logPath)}`);
    }
    try {
      const answer = await httpCall({ agent: server.agent, baseUrl: server.baseUrl, method: 'GET', path: '/readyz', timeoutMs: 2_000 });
      if (answer.status === 200) return;
      last = describeAnswer(answer);
    } catch (error) {
      last = String(error);
    }
    await sleep(readyPollMs);
  }
  throw new Error(`server not ready before the deadline (last /readyz: ${last}); log tail: ${logTail(server.logPath)}`);
}

/** SIGTERM (graceful shutdown), SIGKILL after the grace period; answers whether it exited by itself. */
export async function stopDriftServer(server: DriftServer): Promise<boolean> {
  server.agent.destroy();
  return stopChild(server.child);
}

export function logTail(logPath: string): string {
  try {
    const text = readFileSync(logPath, 'utf8');
    return text.slice(-logTailChars).trim() || '(empty)';
  } catch {
    return '(no log)';
  }
}

/** An authenticated JSON call to the server. */
export function driftCall(server: DriftServer, method: string, path: string, body?: unknown, timeoutMs?: number): Promise<HttpAnswer> {
  return httpCall({
    agent: server.agent,
    baseUrl: server.baseUrl,
    method,
    path,
    headers: { authorization: server.authorization },
    body,
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
  });
}

/** A data-dir-local path for the server log of one start. */
export function serverLogPath(logDir: string, label: string): string {
  return join(logDir, `server-${label}.log`);
}
