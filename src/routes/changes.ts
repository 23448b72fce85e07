// GET /v1/changes (http-api.md §9): the change feed as a page (long-polled with waitMs) or, for
// `Accept: text/event-stream`, as Server-Sent Events resumed with Last-Event-ID. Thin: the caller's tables and
// grants are settled here; reading, waiting and streaming are the ChangeService's.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Database, RowPolicies } from '../engine/index.js';
import { DriftError } from '../errors.js';
import { limits } from '../limits.js';
import { tableDenial } from '../security/access.js';
import type { Security } from '../security/security.js';
import { commitJson, type ChangeService } from '../service/changes.js';
import { sendJsonText } from './answers.js';
import { problemResponses } from './schemas.js';

interface ChangesQuery {
  tables?: string;
  since?: number;
  limit?: number;
  waitMs?: number;
}

const seqPattern = /^(0|[1-9]\d{0,15})$/;

const querystring = {
  type: 'object',
  properties: {
    tables: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]{0,62}(,[A-Za-z_][A-Za-z0-9_]{0,62})*$', description: 'Only rows of these tables (comma-separated).' },
    since: { type: 'integer', minimum: 0, description: 'Commits after this seq (exclusive); 0 = from the start. Last-Event-ID wins over it.' },
    limit: {
      type: 'integer',
      minimum: 1,
      maximum: limits.feedPageCommitsMax,
      description: `Commits per page (default ${limits.feedPageCommitsDefault}); a commit is never split.`,
    },
    waitMs: { type: 'integer', minimum: 0, maximum: limits.feedWaitMsMax, description: 'Wait this long for a commit when none is there yet.' },
  },
  additionalProperties: false,
} as const;

const change = {
  type: 'object',
  required: ['table', 'key', 'op', 'doc'],
  properties: {
    table: { type: 'string' },
    key: { type: 'string' },
    op: { type: 'string', enum: ['put', 'patch', 'delete'] },
    doc: { type: ['object', 'null'], additionalProperties: true, description: 'The whole new document; null for a delete.' },
  },
} as const;

const changesPage = {
  type: 'object',
  required: ['commits', 'nextSince'],
  properties: {
    commits: {
      type: 'array',
      items: {
        type: 'object',
        required: ['seq', 'ts', 'changes'],
        properties: { seq: { type: 'integer' }, ts: { type: 'string', format: 'date-time' }, changes: { type: 'array', items: change } },
      },
    },
    nextSince: { type: 'integer', description: 'The since of the next page.' },
  },
} as const;

export async function changesRoutes(
  app: FastifyInstance,
  opts: { db: () => Database; changes: ChangeService; security: () => Security },
): Promise<void> {
  app.get<{ Querystring: ChangesQuery }>('/v1/changes', {
    config: { permission: 'read' },
    schema: {
      operationId: 'changes',
      tags: ['changes'],
      summary: 'The change feed',
      description:
        'Durable commits after `since`, in seq order, each with the rows it changed (`doc` the whole new document, null ' +
        'for a delete) in the tables the caller may read (or those named in `tables`), row policies applied; commits ' +
        'left with no visible row are left out. With `Accept: text/event-stream`: Server-Sent Events, one `change` ' +
        'event per commit with `id:` its seq, resumed after `Last-Event-ID`, a comment line every 15 s; a client that ' +
        'takes nothing while more than --changes-buffer-commits commits arrive gets an `error` event naming the seq to ' +
        'resume after, and the stream closes. A page looks at up to 10,000 commits: when `commits` is empty, go on from ' +
        '`nextSince`.',
      querystring,
      headers: {
        type: 'object',
        properties: {
          'last-event-id': { type: 'string', description: 'Resume after this seq (wins over since).' },
          accept: { type: 'string' },
        },
      },
      response: {
        200: { ...changesPage, description: 'A page of commits (or, with Accept: text/event-stream, the event stream).' },
        ...problemResponses({ extra: [404] }),
      },
    },
    handler: async (req, reply) => {
      const since = sinceOf(req);
      const tables = tablesOf(req, opts);
      // Row policies apply to the feed as to every read (http-api.md §8): a change shows only if its document (a
      // delete: the version before it) is one the caller may read.
      const input = { since, tables, policies: req.rowPolicies };
      // HEAD (which Fastify answers from this GET route) gets a page's head: a stream would never end its answer.
      if (req.method === 'GET' && wantsEvents(req)) {
        // A bad since must be an ordinary 400 problem, before the stream starts.
        opts.db().changes({ ...input, limit: 1 });
        return streamChanges(reply, opts.changes, input);
      }
      const page = await opts.changes.page({ ...input, limit: req.query.limit ?? limits.feedPageCommitsDefault }, req.query.waitMs ?? 0);
      reply.rows = page.commits.length;
      return sendJsonText(reply, `{"commits":[${page.commits.map(commitJson).join(',')}],"nextSince":${page.nextSince}}`);
    },
  });
}

function sinceOf(req: FastifyRequest<{ Querystring: ChangesQuery }>): number {
  const lastEventId = req.headers['last-event-id'];
  if (typeof lastEventId === 'string') {
    if (!seqPattern.test(lastEventId.trim())) throw new DriftError('validation_failed', 'Last-Event-ID must be a seq, as the feed sends it.');
    return Number(lastEventId.trim());
  }
  return req.query.since ?? 0;
}

/** The tables named (each must exist and be readable: 404, 403), or the caller's grants, or null for every table. */
function tablesOf(req: FastifyRequest<{ Querystring: ChangesQuery }>, opts: { db: () => Database; security: () => Security }): ReadonlySet<string> | null {
  const principal = req.principal;
  if (req.query.tables === undefined) return principal.grants;
  const names = new Set(req.query.tables.split(','));
  for (const table of names) {
    opts.db().getTable(table);
    const reason = tableDenial(principal, { table, permission: 'read' });
    if (reason !== null) {
      opts.security().audit.record('access_denied', { user: principal.username, clientIp: req.ip, requestId: req.id }, { method: 'GET', route: '/v1/changes', permission: 'read', table });
      throw new DriftError('forbidden', reason);
    }
  }
  return names;
}

function wantsEvents(req: FastifyRequest): boolean {
  return /\btext\/event-stream\b/.test(req.headers.accept ?? '');
}

function streamChanges(
  reply: FastifyReply,
  changes: ChangeService,
  input: { since: number; tables: ReadonlySet<string> | null; policies: RowPolicies },
): FastifyReply {
  const headers = { ...reply.getHeaders(), 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' };
  reply.hijack();
  reply.raw.writeHead(200, headers as Record<string, string>);
  changes.stream(reply.raw, input);
  return reply;
}
