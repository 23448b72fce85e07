// What the server records about itself, built once from the configuration: the metrics registry and the slow-query
// log, either of them absent when --observability off.

import type { Config } from '../config/index.js';
import type { Database, EngineObserver } from '../engine/index.js';
import type { Logger } from './logger.js';
import { Metrics } from './metrics.js';
import { SlowQueryLog } from './slow-query-log.js';

export interface Observability {
  metrics: Metrics | null;
  slowQueries: SlowQueryLog | null;
  /** Slow-query statements with their literal values as `?`. */
  redact: boolean;
  /** The port to hand to openDatabase; undefined when nothing is observed. */
  engineObserver: EngineObserver | undefined;
}

type ObservabilityConfig = Pick<
  Config,
  'observability' | 'slowQueryThresholdMs' | 'slowQueryMaxStored' | 'slowQueryLogPath' | 'slowQueryStdout' | 'slowQueryRedact'
>;

export function createObservability(config: ObservabilityConfig, deps: { logger: Logger; db: () => Database }): Observability {
  if (config.observability === 'off') return { metrics: null, slowQueries: null, redact: config.slowQueryRedact, engineObserver: undefined };
  const metrics = new Metrics(deps.db);
  const slowQueries = new SlowQueryLog({
    thresholdMs: config.slowQueryThresholdMs,
    maxStored: config.slowQueryMaxStored,
    filePath: config.slowQueryLogPath,
    stdout: config.slowQueryStdout,
    logger: deps.logger,
  });
  return { metrics, slowQueries, redact: config.slowQueryRedact, engineObserver: metrics.engineObserver };
}
