// The pure part of a row write: given the row's current state, check the write's conditions and compute the
// document it leaves behind (PUT replaces, PATCH merges per RFC 7396, DELETE tombstones).

import { DriftError } from '../../errors.js';
import { checkDocument, checkKey, isPlainObject, keyOf, mergePatch, serializeChecked, setOwn } from '../json/index.js';
import type { Doc, RowOp } from '../types.js';
import type { TableState } from './table-state.js';

export interface RowWriteRequest {
  op: RowOp;
  key: string;
  /** The document (put) or the merge patch (patch); absent for delete. */
  body?: unknown;
  ifMatch?: number | '*';
  ifNoneMatch?: boolean;
}

/** What the writer sees of the row before its write. */
export interface CurrentRow {
  /** JSON of the live document, or null when absent or deleted. */
  json: string | null;
  /** Seq of the row's last committed event (a delete too), or null when never written. */
  seq: number | null;
}

export interface ComputedWrite {
  op: RowOp;
  json: string | null;
  doc: Doc | null;
  created: boolean;
}

export function computeRowWrite(table: TableState, request: RowWriteRequest, current: CurrentRow): ComputedWrite {
  checkKey(request.key);
  checkConditions(request, current);
  const exists = current.json !== null;
  if (request.op === 'delete') {
    if (!exists) throw new DriftError('row_not_found', `Row '${request.key}' does not exist.`);
    return { op: 'delete', json: null, doc: null, created: false };
  }
  const doc = request.op === 'put' ? putDocument(table, request) : patchDocument(table, request, current.json);
  checkSchema(table, doc);
  // Both inputs were checked, and merging never nests deeper than its inputs: only the size is left to check.
  return { op: request.op, json: serializeChecked(doc), doc, created: !exists };
}

function checkConditions(request: RowWriteRequest, current: CurrentRow): void {
  const exists = current.json !== null;
  const { ifMatch, ifNoneMatch } = request;
  const failed =
    (ifNoneMatch === true && exists) ||
    (ifMatch === '*' && !exists) ||
    (typeof ifMatch === 'number' && (!exists || current.seq !== ifMatch));
  if (failed) {
    throw new DriftError('precondition_failed', `The condition on row '${request.key}' does not hold.`, {
      currentSeq: current.seq,
    });
  }
}

function putDocument(table: TableState, request: RowWriteRequest): Doc {
  const doc = request.body;
  checkDocument(doc);
  const pk = table.def.primaryKey;
  // Spread and computed keys define own properties, so even a "__proto__" member stays plain data.
  if (!Object.hasOwn(doc, pk)) return { [pk]: request.key, ...doc };
  if (keyOf(doc[pk]) !== request.key) {
    throw new DriftError(
      'validation_failed',
      `The document's primary key '${pk}' must be a string or safe integer equal to the key in the path.`,
    );
  }
  return doc;
}

function patchDocument(table: TableState, request: RowWriteRequest, currentJson: string | null): Doc {
  const patch = request.body;
  checkDocument(patch, 'patch');
  const pk = table.def.primaryKey;
  if (Object.hasOwn(patch, pk) && keyOf(patch[pk]) !== request.key) {
    throw new DriftError('validation_failed', `A patch may not change the primary key '${pk}'.`);
  }
  const base = currentJson === null ? {} : (JSON.parse(currentJson) as Doc);
  const merged = mergePatch(base, patch);
  if (!isPlainObject(merged)) throw new DriftError('validation_failed', 'A patch must be a JSON object.');
  if (!Object.hasOwn(merged, pk)) setOwn(merged, pk, request.key);
  return merged;
}

function checkSchema(table: TableState, doc: Doc): void {
  const validate = table.validate;
  if (validate === null || validate(doc)) return;
  throw new DriftError('validation_failed', `The document does not match the schema of table '${table.def.name}'.`, {
    errors: (validate.errors ?? []).map((e) => ({
      instancePath: e.instancePath,
      keyword: e.keyword,
      message: e.message ?? '',
      params: e.params,
    })),
  });
}
