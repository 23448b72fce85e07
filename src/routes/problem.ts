// Error code → HTTP status and RFC 9457 problem+json body: the only place that knows both. Every error a request
// meets (DriftError, Fastify validation and body errors, unknown routes, bugs) is rendered here, once.

import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isDriftError, retryableCodes, type ErrorCode, type ErrorFields } from '../errors.js';

export const statusByCode: Readonly<Record<ErrorCode, number>> = {
  bad_request: 400,
  validation_failed: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  table_not_found: 404,
  row_not_found: 404,
  transaction_not_found: 404,
  table_exists: 409,
  index_exists: 409,
  transaction_aborted: 409,
  serialization_failure: 409,
  deadlock_detected: 409,
  lock_timeout: 409,
  read_only: 409,
  idempotency_in_progress: 409,
  transaction_expired: 410,
  precondition_failed: 412,
  payload_too_large: 413,
  unsupported_media_type: 415,
  idempotency_key_reused: 422,
  user_locked: 423,
  rate_limited: 429,
  internal: 500,
  unavailable: 503,
};

/** A short, constant summary per code (RFC 9457 `title`); `detail` says what happened this time. */
function titleOf(code: ErrorCode): string {
  const words = code.replace(/_/g, ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

export const problemContentType = 'application/problem+json; charset=utf-8';
/** Both schemes a client may answer with (RFC 9110 §11.6.1 allows several challenges in one header). */
export const authenticateChallenge = 'Basic realm="driftdb", Bearer realm="driftdb"';

export interface Problem {
  status: number;
  body: { type: string; title: string; status: number; detail: string; code: ErrorCode } & ErrorFields;
  headers: Record<string, string>;
}

const coreMembers = new Set(['type', 'title', 'status', 'detail', 'code']);

/** Builds the problem for a code; `fields` add members but never replace the five core ones. */
export function problemOf(code: ErrorCode, detail: string, fields: ErrorFields = {}): Problem {
  const status = statusByCode[code];
  const extra: ErrorFields = {};
  for (const [name, value] of Object.entries(fields)) {
    if (!coreMembers.has(name)) extra[name] = value;
  }
  if (retryableCodes.has(code) && extra.retryable === undefined) extra.retryable = true;
  const headers: Record<string, string> = {};
  if (code === 'unauthorized') headers['www-authenticate'] = authenticateChallenge;
  if (status === 503 || status === 429) headers['retry-after'] = String(retryAfterOf(fields));
  return {
    status,
    body: { type: `urn:driftdb:problem:${code}`, title: titleOf(code), status, detail, code, ...extra },
    headers,
  };
}

function retryAfterOf(fields: ErrorFields): number {
  const seconds = fields.retryAfterSeconds;
  return typeof seconds === 'number' && Number.isFinite(seconds) && seconds >= 0 ? Math.ceil(seconds) : 1;
}

/** Fastify's own error codes that are a client's fault, and what we call them. */
const fastifyCodes: Readonly<Record<string, ErrorCode>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'bad_request',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'bad_request',
  FST_ERR_CTP_INVALID_JSON_BODY: 'bad_request',
  FST_ERR_BAD_URL: 'bad_request',
  FST_ERR_MAX_PARAM_LENGTH: 'bad_request',
};

/** Our own words where Fastify's message would echo a whole (possibly huge) URL back. */
const fastifyDetails: Readonly<Record<string, string>> = {
  FST_ERR_BAD_URL: 'the URL is not valid (malformed percent-encoding)',
  FST_ERR_MAX_PARAM_LENGTH: 'a path segment of the URL is too long',
};

const codeByClientStatus: Readonly<Record<number, ErrorCode>> = {
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'rate_limited',
};

/** Maps any thrown value to a problem. Unknown errors become a generic 500 whose text reveals nothing. */
export function problemFromError(error: unknown, requestId: string): Problem {
  if (isDriftError(error)) {
    if (error.code === 'internal') return internalProblem(requestId);
    return problemOf(error.code, error.code === 'unavailable' ? scrubPaths(error.message) : error.message, error.fields);
  }
  const fastifyError = error as Partial<FastifyError> | null;
  if (fastifyError?.validation !== undefined) {
    return problemOf('validation_failed', fastifyError.message ?? 'request is invalid', {
      errors: fastifyError.validation.map((issue) => ({
        in: fastifyError.validationContext,
        instancePath: issue.instancePath,
        keyword: issue.keyword,
        params: issue.params,
        message: issue.message,
      })),
    });
  }
  const mapped = fastifyError?.code === undefined ? undefined : fastifyCodes[fastifyError.code];
  if (mapped !== undefined) return problemOf(mapped, fastifyDetails[fastifyError!.code!] ?? fastifyError!.message ?? mapped);
  const status = fastifyError?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    // Only Fastify's own errors carry text we know to be safe to show.
    const detail = fastifyError?.code?.startsWith('FST_') ? fastifyError.message! : 'the request cannot be processed';
    return problemOf(codeByClientStatus[status] ?? 'bad_request', detail);
  }
  return internalProblem(requestId);
}

function internalProblem(requestId: string): Problem {
  return problemOf('internal', `internal error; the server log has the details under request id ${requestId}`);
}

/** Defense in depth for 5xx texts built from system errors: no server path reaches a client. */
function scrubPaths(message: string): string {
  return message.replace(/(?:[A-Za-z]:)?(?:[\\/][\w.@-]+){2,}/g, '<path>');
}

export function sendProblem(reply: FastifyReply, problem: Problem): FastifyReply {
  reply.problemCode = problem.body.code;
  reply.code(problem.status).headers(problem.headers).type(problemContentType);
  // Serialized here so no route's response schema can drop members such as `errors` or `currentSeq`.
  return reply.send(JSON.stringify(problem.body));
}

/**
 * A whole HTTP/1.1 response for a problem, for the one place with no reply object: a connection Node refused to
 * parse (headers too large, request timeout, garbage). It closes the connection, as Node would.
 */
export function rawProblemResponse(problem: Problem, headers: Record<string, string>): string {
  const body = JSON.stringify(problem.body);
  const lines = [
    `HTTP/1.1 ${problem.status} ${titleOf(problem.body.code)}`,
    `content-type: ${problemContentType}`,
    `content-length: ${Buffer.byteLength(body)}`,
    'connection: close',
    ...Object.entries({ ...headers, ...problem.headers }).map(([name, value]) => `${name}: ${value}`),
  ];
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

/** What a connection-level parse error means to its sender. */
export function clientErrorProblem(error: { code?: string }): Problem {
  switch (error.code) {
    case 'HPE_HEADER_OVERFLOW':
      return problemOf('bad_request', 'the request line and headers are too large');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return problemOf('bad_request', 'the request did not arrive completely in time');
    default:
      return problemOf('bad_request', 'the request is not valid HTTP');
  }
}

/** The root error and not-found handlers; child scopes inherit them. */
export function installProblemHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const problem = problemFromError(error, request.id);
    if (problem.body.code === 'internal') {
      request.log.error({ err: error }, 'request failed');
    } else if (problem.status >= 500) {
      request.log.warn({ code: problem.body.code, detail: problem.body.detail }, 'request refused');
    } else {
      request.log.debug({ code: problem.body.code, detail: problem.body.detail }, 'request rejected');
    }
    return sendProblem(reply, problem);
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, problemOf('not_found', `no route ${request.method} ${request.url.split('?')[0]!.slice(0, 200)}`)),
  );
}
