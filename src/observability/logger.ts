// The process's one JSON logger (pino on stdout) and the request id every log line and response carries.

import { randomUUID } from 'node:crypto';
import { pino, stdTimeFunctions, type Logger } from 'pino';
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
  return typeof header === 'string' && requestIdPattern.test(header) ? header : randomUUID();
}
