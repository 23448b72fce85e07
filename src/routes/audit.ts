// The audit routes of http-api.md §7 (role admin): the newest entries with filters, a verification of the whole
// chain on disk, and counts. Thin: the audit log answers from memory; /verify reads the files.

import type { FastifyInstance } from 'fastify';
import { auditTypeNames, outcomes, severities, type AuditType, type Outcome, type Severity } from '../security/audit-chain.js';
import type { AuditFilter } from '../security/audit-ring.js';
import type { Security } from '../security/security.js';
import { DriftError } from '../errors.js';
import { dataValidatorCompiler, problemResponses } from './schemas.js';

export const auditPageLimitMax = 1000;
export const auditPageLimitDefault = 100;

interface AuditQuery {
  type?: AuditType;
  user?: string;
  outcome?: Outcome;
  severity?: Severity;
  since?: string;
  limit?: number;
}

const auditEntry = {
  type: 'object',
  required: ['id', 'ts', 'type', 'severity', 'outcome', 'user', 'clientIp', 'requestId', 'details', 'prevHash', 'hash'],
  properties: {
    id: { type: 'integer', description: 'Position in the chain: 1, 2, 3, … across files and restarts.' },
    ts: { type: 'string', format: 'date-time' },
    type: { type: 'string', enum: [...auditTypeNames] },
    severity: { type: 'string', enum: [...severities] },
    outcome: { type: 'string', enum: [...outcomes] },
    user: { type: ['string', 'null'], description: 'The authenticated user; for failed logins the username tried; null when unknown.' },
    clientIp: { type: ['string', 'null'] },
    requestId: { type: ['string', 'null'] },
    details: { type: 'object', additionalProperties: true },
    prevHash: { type: 'string' },
    hash: { type: 'string', description: 'SHA-256 (or HMAC-SHA256) over the canonical JSON of the other members.' },
  },
};

const counts = (names: readonly string[]) => ({
  type: 'object',
  properties: Object.fromEntries(names.map((name) => [name, { type: 'integer' }])),
  additionalProperties: { type: 'integer' },
});

const verifyAnswer = {
  type: 'object',
  required: ['valid', 'entries', 'files'],
  properties: {
    valid: { type: 'boolean' },
    entries: { type: 'integer', description: 'Entries that verified, from the first.' },
    firstInvalidId: { type: ['integer', 'null'], description: 'The first bad entry; null with truncated when only the tail is missing.' },
    truncated: { type: 'boolean' },
    reason: { type: 'string' },
    files: { type: 'integer' },
  },
};

const head = { type: ['object', 'null'], properties: { count: { type: 'integer' }, hash: { type: 'string' } } };

const statsAnswer = {
  type: 'object',
  required: ['enabled', 'entries', 'stored', 'byType', 'bySeverity', 'byOutcome'],
  properties: {
    enabled: { type: 'boolean' },
    entries: { type: 'integer', description: 'Entries in the chain (the newest id).' },
    stored: { type: 'integer', description: 'Entries held in memory; the counts cover these.' },
    byType: counts(auditTypeNames),
    bySeverity: counts(severities),
    byOutcome: counts(outcomes),
    hashing: { type: 'string', enum: ['sha256', 'hmac-sha256'] },
    fileBytes: { type: 'integer' },
    rotatedFiles: { type: 'integer' },
    recordedHead: head,
    pendingWrites: { type: 'integer' },
    writeFailures: { type: 'integer' },
    droppedEntries: { type: 'integer' },
    verificationAtStart: { anyOf: [verifyAnswer, { type: 'null' }] },
  },
};

const auditQuerystring = {
  type: 'object',
  additionalProperties: false,
  properties: {
    type: { type: 'string', enum: [...auditTypeNames] },
    user: { type: 'string', maxLength: 1024 },
    outcome: { type: 'string', enum: [...outcomes] },
    severity: { type: 'string', enum: [...severities] },
    since: { type: 'string', description: 'An entry id (entries after it) or an RFC 3339 instant (entries at or after it).' },
    limit: { type: 'integer', minimum: 1, maximum: auditPageLimitMax, description: `Default ${auditPageLimitDefault}.` },
  },
};

export async function auditRoutes(app: FastifyInstance, opts: { security: () => Security }): Promise<void> {
  app.setValidatorCompiler(dataValidatorCompiler);
  app.get<{ Querystring: AuditQuery }>('/v1/admin/audit', {
    config: { permission: 'admin' },
    schema: {
      operationId: 'auditEntries',
      tags: ['admin'],
      summary: 'The newest audit entries',
      description: 'Needs the admin role. Answers from the entries kept in memory (--audit-max-entries, filled from the files at start), newest first; the files hold them all. Filters combine with and.',
      querystring: auditQuerystring,
      response: {
        200: { type: 'object', required: ['entries'], properties: { entries: { type: 'array', items: auditEntry } } },
        ...problemResponses(),
      },
    },
    handler: async (req) => ({ entries: opts.security().audit.query(filterOf(req.query)) }),
  });

  app.get('/v1/admin/audit/verify', {
    config: { permission: 'admin' },
    schema: {
      operationId: 'auditVerify',
      tags: ['admin'],
      summary: 'Verify the audit chain on disk',
      description: 'Needs the admin role. Reads every file, oldest first, and checks each entry\'s id, prevHash and hash, and that the chain reaches the newest entry the database log recorded. `firstInvalidId` names the first bad entry (edited, inserted, reordered, or the first after removed ones); with only the tail missing it is null and `truncated` is true. `reason` says what failed.',
      response: { 200: verifyAnswer, ...problemResponses() },
    },
    handler: async () => opts.security().audit.verify(),
  });

  app.get('/v1/admin/audit/stats', {
    config: { permission: 'admin' },
    schema: {
      operationId: 'auditStats',
      tags: ['admin'],
      summary: 'Audit counts and state',
      description: 'Needs the admin role. Counts by type, severity and outcome over the entries held in memory (`stored`), the chain\'s length (`entries`), the hashing in use, the head recorded in the database, write failures, and the verification of the files at start (null while it runs).',
      response: { 200: statsAnswer, ...problemResponses() },
    },
    handler: async () => opts.security().audit.stats(),
  });
}

function filterOf(query: AuditQuery): AuditFilter {
  const filter: AuditFilter = { limit: query.limit ?? auditPageLimitDefault };
  if (query.type !== undefined) filter.type = query.type;
  if (query.user !== undefined) filter.user = query.user;
  if (query.outcome !== undefined) filter.outcome = query.outcome;
  if (query.severity !== undefined) filter.severity = query.severity;
  if (query.since !== undefined) {
    if (/^(0|[1-9][0-9]{0,15})$/.test(query.since)) filter.sinceId = Number(query.since);
    else if (/^\d{4}-\d{2}-\d{2}T/.test(query.since) && !Number.isNaN(Date.parse(query.since))) filter.sinceMs = Date.parse(query.since);
    else throw new DriftError('validation_failed', 'since must be an entry id or an RFC 3339 instant');
  }
  return filter;
}
