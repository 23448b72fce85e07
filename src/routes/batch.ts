// POST /v1/batch (http-api.md §6): several operations in one transaction, all or nothing. A failing operation
// answers its own error with `opIndex`, and nothing is written.

import type { FastifyInstance } from 'fastify';
import { isolationLevels, type Database, type Isolation, type QuerySpec, type Transaction } from '../engine/index.js';
import { DriftError, isDriftError } from '../errors.js';
import { limits } from '../limits.js';
import { rolesAllow } from '../security/auth.js';
import { pageBody, sendDocuments } from './answers.js';
import { dataValidatorCompiler, problemResponses } from './schemas.js';

type BatchOp =
  | { op: 'put' | 'patch'; table: string; key: string; doc: unknown; ifSeq?: number }
  | { op: 'delete'; table: string; key: string; ifSeq?: number }
  | { op: 'get'; table: string; key: string }
  | ({ op: 'query' } & QuerySpec);

interface BatchBody {
  isolation?: Isolation;
  ops: BatchOp[];
}

const batchBody = {
  type: 'object',
  required: ['ops'],
  additionalProperties: false,
  properties: {
    isolation: { type: 'string', enum: [...isolationLevels], default: 'serializable' },
    ops: {
      type: 'array',
      minItems: 1,
      maxItems: limits.batchOpsMax,
      items: {
        type: 'object',
        required: ['op', 'table'],
        properties: {
          op: { type: 'string', enum: ['put', 'patch', 'delete', 'get', 'query'] },
          table: { type: 'string' },
          key: { type: 'string', minLength: 1, maxLength: limits.keyLengthMax },
          doc: { type: 'object', additionalProperties: true },
          ifSeq: { type: 'integer', minimum: 0, description: "Apply only if the row's current version is this seq." },
        },
        additionalProperties: true,
      },
    },
  },
};

const batchResponse = {
  type: 'object',
  required: ['seq', 'results'],
  properties: {
    seq: { type: ['integer', 'null'], description: 'Seq of the commit; null when the batch wrote nothing.' },
    results: { type: 'array', items: { type: 'object', additionalProperties: true } },
  },
};

const writeOps = new Set(['put', 'patch', 'delete']);

export async function batchRoutes(app: FastifyInstance, opts: { db: () => Database }): Promise<void> {
  app.setValidatorCompiler(dataValidatorCompiler);
  app.post<{ Body: BatchBody }>('/v1/batch', {
    config: { permission: 'read' },
    schema: { body: batchBody, response: { 200: batchResponse, ...problemResponses({ extra: [404, 409, 412], withBody: true }) } },
    handler: async (req, reply) => {
      if (req.body.ops.some((op) => writeOps.has(op.op)) && !rolesAllow(req.principal.roles, 'write')) {
        throw new DriftError('forbidden', 'Writing needs the writer or admin role.');
      }
      return sendDocuments(reply, await runBatch(opts.db(), req.body));
    },
  });
}

async function runBatch(db: Database, body: BatchBody): Promise<{ seq: number | null; results: unknown[] }> {
  const tx = db.begin(body.isolation === undefined ? {} : { isolation: body.isolation });
  const results: unknown[] = [];
  try {
    for (const [opIndex, op] of body.ops.entries()) {
      try {
        results.push(await runOp(db, tx, op));
      } catch (error) {
        throw withOpIndex(error, opIndex);
      }
    }
    const { seq } = await tx.commit();
    return { seq, results };
  } finally {
    if (tx.state === 'active' || tx.state === 'aborted') tx.rollback();
  }
}

async function runOp(db: Database, tx: Transaction, op: BatchOp): Promise<unknown> {
  switch (op.op) {
    case 'put':
    case 'patch':
    case 'delete': {
      const conditions = op.ifSeq === undefined ? {} : { ifMatch: op.ifSeq };
      if (op.op !== 'delete' && op.doc === undefined) {
        throw new DriftError('validation_failed', `A ${op.op} operation needs a doc.`);
      }
      const input = { table: op.table, key: requireKey(op.key), tx, ...conditions };
      const result =
        op.op === 'put'
          ? await db.put({ ...input, doc: op.doc })
          : op.op === 'patch'
            ? await db.patch({ ...input, patch: op.doc })
            : await db.delete(input);
      return { op: op.op, key: result.key, created: result.created };
    }
    case 'get': {
      const row = db.get({ table: op.table, key: requireKey(op.key), tx });
      return { op: 'get', key: row.key, seq: row.seq, doc: row.doc };
    }
    case 'query': {
      const { op: _op, ...spec } = op;
      return { op: 'query', ...pageBody(db.query(spec, { tx })) };
    }
  }
}

function requireKey(key: string | undefined): string {
  if (key === undefined) throw new DriftError('validation_failed', 'This operation needs a key.');
  return key;
}

function withOpIndex(error: unknown, opIndex: number): unknown {
  if (!isDriftError(error)) return error;
  return new DriftError(error.code, `Operation ${opIndex}: ${error.message}`, { ...error.fields, opIndex });
}
