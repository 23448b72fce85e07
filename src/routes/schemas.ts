// The JSON Schemas the data routes share, declared once with `$id` and referenced by `$ref` from every route;
// openapi.yaml carries the same definitions under components.schemas, and test/http/openapi.test.ts keeps them equal.

import { createRequire } from 'node:module';
import { Ajv, type ValidateFunction } from 'ajv';
import type { FastifyInstance, FastifySchemaCompiler } from 'fastify';
import { errorCodes } from '../errors.js';
import { limits } from '../limits.js';
import { minSeqParam } from './min-seq.js';

// A request body's unknown members are refused (400), never ignored: a misspelt `where` must not answer every row.
// dataValidatorCompiler below runs Ajv with removeAdditional: false, so `additionalProperties: false` refuses
// rather than strips; test/http/query.test.ts guards it.
export function closedObject(properties: Record<string, unknown>, required: string[] = []): Record<string, unknown> {
  return { type: 'object', ...(required.length > 0 ? { required } : {}), properties, additionalProperties: false };
}

/** An arbitrary JSON document. `additionalProperties: true` is what keeps the serializer from answering `{}`. */
const documentSchema = {
  $id: 'Document',
  type: 'object',
  description: 'A JSON document, free-form: any members, nested objects and arrays.',
  additionalProperties: true,
};

const tableNameSchema = {
  $id: 'TableName',
  type: 'string',
  description:
    'A table name: ^[A-Za-z_][A-Za-z0-9_]{0,62}$, and names starting with "_" are reserved for the system, ' +
    'so a client may use ^[A-Za-z][A-Za-z0-9_]{0,62}$.',
  pattern: `^[A-Za-z][A-Za-z0-9_]{0,${limits.tableNameLengthMax - 1}}$`,
};

const fieldPathSchema = {
  $id: 'FieldPath',
  type: 'string',
  description: 'A dot-separated path into a document, e.g. "address.city".',
  minLength: 1,
  maxLength: limits.fieldPathLengthMax,
  pattern: '^[^.]+(\\.[^.]+)*$',
};

const rowKeySchema = {
  $id: 'RowKey',
  type: 'string',
  description: "A row's key: the string form of its primary-key field (a string, or a safe integer in decimal).",
  minLength: 1,
  maxLength: limits.keyLengthMax,
};

const seqSchema = {
  $id: 'Seq',
  type: 'integer',
  description: 'A commit sequence number.',
  minimum: 0,
};

const problemSchema = {
  $id: 'Problem',
  type: 'object',
  description: 'An RFC 9457 problem (Content-Type: application/problem+json).',
  required: ['type', 'title', 'status', 'code'],
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    code: { type: 'string', enum: [...errorCodes] },
    currentSeq: {
      description: "412: the seq of the row's last event (its delete, if deleted), null if never written.",
      type: ['integer', 'null'],
    },
    errors: {
      description: '400 validation_failed: the failed checks, Ajv style.',
      type: 'array',
      items: { type: 'object', additionalProperties: true },
    },
    retryable: { type: 'boolean' },
    opIndex: { type: 'integer' },
  },
  additionalProperties: true,
};

const tableSchema = {
  $id: 'Table',
  type: 'object',
  required: ['name', 'primaryKey', 'indexes', 'rowCount', 'createdSeq'],
  properties: {
    name: { type: 'string' },
    primaryKey: { type: 'string' },
    indexes: { type: 'array', items: { type: 'string' } },
    schema: { type: 'object', additionalProperties: true, description: 'The JSON Schema (2020-12) rows must satisfy.' },
    rowCount: { type: 'integer', description: 'Live rows at the newest committed state.' },
    createdSeq: { type: 'integer', description: 'Seq of the commit that created the table.' },
    forkedFrom: {
      type: 'object',
      required: ['table', 'seq'],
      properties: { table: { type: 'string' }, seq: { type: 'integer' } },
      description: 'A fork: the table it was made from and as of which seq (POST /v1/tables/{table}/fork).',
    },
  },
};

const tableListSchema = {
  $id: 'TableList',
  type: 'object',
  required: ['tables'],
  properties: { tables: { type: 'array', items: { $ref: 'Table#' } } },
};

const createTableSchema = {
  $id: 'CreateTable',
  ...closedObject(
    {
      name: { $ref: 'TableName#' },
      primaryKey: {
        type: 'string',
        description: 'The top-level field holding each row\'s key (a member name, no dots).',
        minLength: 1,
        maxLength: limits.fieldPathLengthMax,
      },
      indexes: { type: 'array', items: { $ref: 'FieldPath#' }, maxItems: limits.indexesPerTableMax },
      schema: { type: 'object', description: 'A JSON Schema (draft 2020-12) every written document must satisfy. Patterns must run in linear time, so backreferences, lookaround and Unicode property escapes are refused (400).' },
    },
    ['name', 'primaryKey'],
  ),
};

const createIndexSchema = {
  $id: 'CreateIndex',
  ...closedObject({ field: { $ref: 'FieldPath#' } }, ['field']),
};

const writeResultSchema = {
  $id: 'WriteResult',
  type: 'object',
  required: ['key', 'seq'],
  properties: {
    key: { type: 'string' },
    seq: { type: ['integer', 'null'], description: 'Seq of the commit; also sent as ETag: "<seq>".' },
  },
};

const pageSchema = {
  $id: 'Page',
  type: 'object',
  required: ['rows', 'nextCursor', 'seq'],
  properties: {
    rows: { type: 'array', items: { $ref: 'Document#' } },
    nextCursor: {
      type: ['string', 'null'],
      description:
        'Pass it back as `cursor` for the next page; null at the end. A page may hold fewer rows than `limit` and ' +
        'still have one (it ends before 16 MiB of JSON).',
    },
    seq: { type: 'integer', description: 'The snapshot every page of this listing reads.' },
  },
};

const historySchema = {
  $id: 'History',
  type: 'object',
  required: ['key', 'versions'],
  properties: {
    key: { type: 'string' },
    versions: {
      type: 'array',
      description: 'Every event of the key, oldest first.',
      items: {
        type: 'object',
        required: ['seq', 'ts', 'op', 'doc'],
        properties: {
          seq: { type: 'integer' },
          ts: { type: 'string', format: 'date-time', description: 'RFC 3339 commit time, millisecond precision.' },
          op: { type: 'string', enum: ['put', 'patch', 'delete'] },
          doc: {
            type: ['object', 'null'],
            additionalProperties: true,
            description: 'The full document after the event; null for a delete.',
          },
        },
      },
    },
  },
};

const asOfSchema = {
  $id: 'AsOf',
  description:
    'A point in time: a commit seq, or an RFC 3339 instant (the state after the last commit at or before it).',
  anyOf: [{ type: 'integer', minimum: 0 }, { type: 'string', minLength: 1 }],
};

const aggregateSchema = {
  $id: 'Aggregate',
  oneOf: [
    closedObject({ $count: { const: true } }, ['$count']),
    closedObject({ $sum: { $ref: 'FieldPath#' } }, ['$sum']),
    closedObject({ $avg: { $ref: 'FieldPath#' } }, ['$avg']),
    closedObject({ $min: { $ref: 'FieldPath#' } }, ['$min']),
    closedObject({ $max: { $ref: 'FieldPath#' } }, ['$max']),
  ],
};

/** The members of a query body; a batch's query op takes exactly these, beside its `op`. */
export const queryProperties = {
  table: { $ref: 'TableName#' },
  where: {
    type: 'object',
    description:
      'Field paths to a value (equality) or to operators $eq $ne $gt $gte $lt $lte $in $nin $exists $prefix ' +
      '$contains; $and/$or take arrays of where-objects, $not a where-object.',
    additionalProperties: true,
  },
  select: { type: 'array', items: { $ref: 'FieldPath#' } },
  orderBy: {
    type: 'array',
    items: closedObject(
      { field: { $ref: 'FieldPath#' }, dir: { type: 'string', enum: ['asc', 'desc'], default: 'asc' } },
      ['field'],
    ),
  },
  limit: { type: 'integer', minimum: 1, maximum: limits.pageLimitMax, default: limits.pageLimitDefault },
  cursor: { anyOf: [{ type: 'string' }, { type: 'null' }], description: 'A nextCursor of an earlier page.' },
  asOf: { $ref: 'AsOf#' },
  groupBy: { type: 'array', items: { $ref: 'FieldPath#' } },
  aggregates: { type: 'object', additionalProperties: { $ref: 'Aggregate#' } },
  history: { type: 'boolean', description: 'Every version, over all time, whose document matches `where`.' },
};

const querySchema = {
  $id: 'Query',
  ...closedObject({ ...queryProperties, minSeq: minSeqParam }, ['table']),
};

const explainSchema = {
  $id: 'Explain',
  type: 'object',
  required: ['plan'],
  properties: {
    plan: {
      type: 'object',
      required: ['access', 'estimatedRows'],
      properties: {
        access: { type: 'string', enum: ['primaryKey', 'index', 'scan'] },
        index: { type: 'string' },
        estimatedRows: { type: 'number' },
      },
      additionalProperties: true,
    },
  },
};

/** Every shared schema, in an order where each one's `$ref`s are declared before it. */
export const sharedSchemas: ReadonlyArray<{ $id: string } & Record<string, unknown>> = [
  documentSchema,
  tableNameSchema,
  fieldPathSchema,
  rowKeySchema,
  seqSchema,
  problemSchema,
  tableSchema,
  tableListSchema,
  createTableSchema,
  createIndexSchema,
  writeResultSchema,
  pageSchema,
  historySchema,
  asOfSchema,
  aggregateSchema,
  querySchema,
  explainSchema,
];

// ajv-formats (CommonJS) is required when the first validator is compiled, not at start: loading it costs start-up
// time (measured: see README.md, Performance).
const requireHere = createRequire(import.meta.url);
const addFormats = (ajv: Ajv): Ajv => (requireHere('ajv-formats') as (target: Ajv) => Ajv)(ajv);

function validatorAjv(coerceTypes: false | 'array'): Ajv {
  // `discriminator` (OpenAPI's) lets a oneOf of closed objects name the one branch a value is checked against, so
  // a batch op with a stray member gets one precise error, not one per kind of op.
  const ajv = new Ajv({
    coerceTypes,
    useDefaults: true,
    removeAdditional: false,
    allErrors: false,
    allowUnionTypes: true,
    discriminator: true,
  });
  addFormats(ajv);
  for (const schema of sharedSchemas) ajv.addSchema(schema);
  return ajv;
}

// Built once per process: they hold compiled validators only (no request state), so every server shares them.
let validators: { json: Ajv; text: Ajv } | undefined;

/**
 * The validator compiler of the data routes. A JSON body is checked as sent, with no type coercion: Fastify's
 * default would turn `{"field": 7}` into the index "7" and `"indexes": "age"` into `["age"]`. Query strings, path
 * parameters and headers arrive as text, so there "limit=10" is coerced to 10.
 */
export const dataValidatorCompiler: FastifySchemaCompiler<unknown> = (route) =>
  compiledOnFirstUse(() => {
    validators ??= { json: validatorAjv(false), text: validatorAjv('array') };
    const ajv = route.httpPart === 'body' ? validators.json : validators.text;
    return ajv.compile(route.schema as object);
  });

/**
 * A validator compiled the first time it runs, not when its route is registered: compiling every route's schemas
 * was a quarter of the start-up time, which every restart pays. Fastify reads `errors` after a call and
 * `schemaEnv` before one (to hand Ajv the parent object); both come from the compiled function.
 */
function compiledOnFirstUse(compile: () => ValidateFunction): ValidateFunction {
  let compiled: ValidateFunction | undefined;
  const real = (): ValidateFunction => (compiled ??= compile());
  const validate = ((data: unknown, context?: Parameters<ValidateFunction>[1]) => real()(data, context)) as ValidateFunction;
  Object.defineProperty(validate, 'errors', { get: () => real().errors });
  Object.defineProperty(validate, 'schemaEnv', { get: () => real().schemaEnv });
  return validate;
}

/**
 * Adds the shared schemas to `app` unless they are already visible there, so the composition root and each
 * route plugin may both call it.
 */
export function addSharedSchemas(app: FastifyInstance): void {
  for (const schema of sharedSchemas) {
    if (app.getSchema(schema.$id) === undefined) app.addSchema(schema);
  }
}

export function ref(id: string): { $ref: string } {
  return { $ref: `${id}#` };
}

/** The statuses any authenticated data route may answer with a problem body. */
const routeErrorStatuses = [400, 401, 403, 423, 429, 500, 503];
/** Statuses only routes with a request body answer. */
const bodyErrorStatuses = [413, 415];

/**
 * Statuses of a route that runs inside a Transaction-Id's transaction: unknown (404), aborted or conflicting (409),
 * expired (410).
 */
const transactionErrorStatuses = [404, 409, 410];

/** Statuses of a write that takes an Idempotency-Key: still running (409), the key used for another request (422). */
const idempotencyErrorStatuses = [409, 422];

/**
 * The problem+json responses of a route: the common ones, plus the ones its own logic can produce.
 * `withBody` adds the body-parsing errors, `inTransaction` those of joining a transaction, `idempotent` those of
 * an Idempotency-Key.
 */
export function problemResponses(
  options: { extra?: number[]; withBody?: boolean; inTransaction?: boolean; idempotent?: boolean } = {},
): Record<number, unknown> {
  const statuses = [
    ...new Set([
      ...routeErrorStatuses,
      ...(options.withBody ? bodyErrorStatuses : []),
      ...(options.inTransaction ? transactionErrorStatuses : []),
      ...(options.idempotent ? idempotencyErrorStatuses : []),
      ...(options.extra ?? []),
    ]),
  ];
  const responses: Record<number, unknown> = {};
  for (const status of statuses.sort((a, b) => a - b)) responses[status] = ref('Problem');
  return responses;
}

const tableParam = { ...ref('TableName'), description: 'A table name.' };
const keyParam = { ...ref('RowKey'), description: 'The row key, percent-encoded (a "/" inside a key is sent as %2F).' };

export const tableParams = {
  type: 'object',
  required: ['table'],
  properties: { table: tableParam },
};

export const rowParams = {
  type: 'object',
  required: ['table', 'key'],
  properties: { table: tableParam, key: keyParam },
};

/** The header that runs a request inside an open transaction (http-api.md §6). */
export const transactionIdHeader = {
  type: 'string',
  description:
    'Run this request inside the open transaction with this id (http-api.md §6); without it the request is its own ' +
    'transaction (autocommit).',
};

/** Headers of a route that only takes Transaction-Id. */
export const transactionHeaders = { type: 'object', properties: { 'transaction-id': transactionIdHeader } };
