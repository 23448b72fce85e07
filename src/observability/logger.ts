// The process's one JSON logger (pino on stdout) and the request id every log line and response carries.

import { randomBytes } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { pino, stdTimeFunctions, type Bindings, type ChildLoggerOptions, type Logger } from 'pino';
import type { Config } from '../config/index.js';

export type { Logger };

export function createLogger(config: Pick<Config, 'logLevel'>): Logger {
  return pino({
    level: config.logLevel,
    timestamp: stdTimeFunctions.isoTime,
    // Credentials never reach the log, whatever a serializer or a careless `log.info(request.headers)` passes in.
    redact: { paths: ['req.headers.authorization', 'headers.authorization', 'password', '*.password'], censor: '[redacted]' },
  });
}

/** An incoming X-Request-Id is kept when it is short and plain, so it can be logged and echoed without harm. */
const requestIdPattern = /^[A-Za-z0-9._:@/+=-]{1,128}$/;

export function requestIdFrom(header: string | string[] | undefined): string {
  return typeof header === 'string' && requestIdPattern.test(header) ? header : nextRequestId();
}

// Generated ids are UUID-shaped: a random prefix drawn once per process, then a counter. Unique within a process
// and, through the prefix, across restarts; a random UUID per request cost a measurable share of a GET.
const requestIdPrefix = randomBytes(10).toString('hex').replace(/^(.{8})(.{4})(.{4})(.{4})$/, '$1-$2-$3-$4-');
let requestCounter = 0;

function nextRequestId(): string {
  requestCounter = (requestCounter + 1) % 2 ** 48;
  return requestIdPrefix + requestCounter.toString(16).padStart(12, '0');
}

type LogMethod = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

/**
 * A request's logger that makes pino's child (with the request id bound) only when a line is actually written.
 * Most requests log nothing, and building a child per request costs a GET measurable server time (see README.md,
 * Performance).
 */
class LazyRequestLogger {
  private made: Logger | null = null;

  constructor(
    private readonly parent: Logger,
    private readonly bindings: Bindings,
    private readonly options: ChildLoggerOptions,
  ) {}

  get level(): string {
    return this.options.level ?? this.parent.level;
  }

  private real(): Logger {
    this.made ??= this.parent.child(this.bindings, this.options);
    return this.made;
  }

  private write(method: LogMethod, args: unknown[]): void {
    if (this.made === null && this.options.level === undefined && !this.parent.isLevelEnabled(method)) return;
    (this.real()[method] as (...a: unknown[]) => void)(...args);
  }

  fatal(...args: unknown[]): void { this.write('fatal', args); }
  error(...args: unknown[]): void { this.write('error', args); }
  warn(...args: unknown[]): void { this.write('warn', args); }
  info(...args: unknown[]): void { this.write('info', args); }
  debug(...args: unknown[]): void { this.write('debug', args); }
  trace(...args: unknown[]): void { this.write('trace', args); }
  silent(): void {}

  isLevelEnabled(level: string): boolean {
    const inherits = this.made === null && this.options.level === undefined;
    return inherits ? this.parent.isLevelEnabled(level) : this.real().isLevelEnabled(level);
  }

  child(bindings: Bindings, options?: ChildLoggerOptions): Logger {
    return this.real().child(bindings, options);
  }
}

/** Fastify's childLoggerFactory: request loggers that cost nothing until they write. */
export function lazyChildLogger(parent: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger {
  // The server's logger is always the pino instance made by createLogger (passed as Fastify's loggerInstance).
  return new LazyRequestLogger(parent as Logger, bindings, options) as unknown as FastifyBaseLogger;
}
