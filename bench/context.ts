// What every scenario needs from the orchestrator: options, the ceiling server, worker scripts, temp space.

import { fileURLToPath } from 'node:url';
import type { BenchOptions } from './options.js';

export interface BenchContext {
  options: BenchOptions;
  /** https://127.0.0.1:<port> of the Fastify hello-world, or null when it could not start. */
  ceilingUrl: string | null;
  /** The ceiling server's process id (for its CPU time), or null when it could not start. */
  ceilingPid: number | null;
  /** Iterations per µs of the ceiling server's work loop (GET /work/:micros), or null when it could not start. */
  ceilingWorkIterationsPerMicro: number | null;
  /** Temp dir of this run (server logs, data dirs); removed at the end. */
  tmpRoot: string;
  /** The admin password every DriftDB server of this run is started with. */
  password: string;
}

function script(name: string): string {
  return fileURLToPath(new URL(`./${name}`, import.meta.url));
}

export const workerScripts = {
  ceiling: script('ceiling-server.js'),
  floor: script('floor-server.js'),
  sqlite: script('sqlite-server.js'),
  load: script('load-worker.js'),
  tx: script('tx-worker.js'),
  gen: script('gen-log.js'),
  historyLoader: script('history-loader.js'),
  latency: script('latency-worker.js'),
  feed: script('feed-worker.js'),
};

/** Slack on top of a load run's own duration before its worker is declared hung and killed. */
export const workerSlackMs = 60_000;
