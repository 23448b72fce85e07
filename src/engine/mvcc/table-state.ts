// One table in memory: its definition, the version chain of every key (full history, oldest first), its
// secondary indexes and its schema validator. Versions above the durable watermark may sit at a chain's end;
// every reader names a snapshot seq and so never sees them.

import type { ValidateFunction } from 'ajv';
import { assert } from '../../assert.js';
import { compareCodePoints, getSegments } from '../json.js';
import { SecondaryIndex } from '../index/secondary-index.js';
import { SortedMap } from '../storage/sorted-map.js';
import type { Doc, Json, RowOp, TableDef, Version } from '../types.js';

export class TableState {
  readonly def: TableDef;
  readonly rows = new SortedMap<string, Version[]>(compareCodePoints);
  readonly indexes = new Map<string, SecondaryIndex>();
  readonly validate: ValidateFunction | null;
  /** Live rows at the newest applied state. */
  liveRows = 0;

  constructor(def: TableDef, validate: ValidateFunction | null) {
    this.def = def;
    this.validate = validate;
    for (const field of def.indexes) this.indexes.set(field, new SecondaryIndex(field));
  }

  /** The newest applied version of `key` (possibly above the durable watermark). */
  latest(key: string): Version | undefined {
    const chain = this.rows.get(key);
    return chain === undefined ? undefined : chain[chain.length - 1];
  }

  /** The version of `key` visible at snapshot `seq`. */
  versionAt(key: string, seq: number): Version | undefined {
    const chain = this.rows.get(key);
    return chain === undefined ? undefined : versionAt(chain, seq);
  }

  /** Appends one row event; `doc` is the parsed document when the caller already has it (saves a parse). */
  applyRow(seq: number, key: string, op: RowOp, json: string | null, doc?: Doc): void {
    const version: Version = { seq, op, json };
    // Keys often arrive in order (ids, replay of such): a key past the last one is new without a search.
    const lastKey = this.rows.lastKey();
    let chain = lastKey !== undefined && compareCodePoints(key, lastKey) > 0 ? undefined : this.rows.get(key);
    const wasLive = chain !== undefined && chain[chain.length - 1]!.json !== null;
    if (chain === undefined) {
      chain = [version];
      this.rows.set(key, chain);
    } else {
      assert(chain[chain.length - 1]!.seq < seq, 'row events must be applied in seq order');
      chain.push(version);
    }
    this.liveRows += (json !== null ? 1 : 0) - (wasLive ? 1 : 0);
    if (json !== null && this.indexes.size > 0) {
      const parsed = doc ?? (JSON.parse(json) as Doc);
      for (const index of this.indexes.values()) index.add(getSegments(parsed, index.path), key);
    }
  }

  /** Builds a new index from every version of every row, so it serves every snapshot. */
  addIndex(field: string): void {
    const index = new SecondaryIndex(field);
    for (const [key, chain] of this.rows.entries()) {
      for (const version of chain) {
        if (version.json !== null) index.add(getSegments(JSON.parse(version.json) as Json, index.path), key);
      }
    }
    this.indexes.set(field, index);
    this.def.indexes.push(field);
  }

  dropIndex(field: string): void {
    this.indexes.delete(field);
    this.def.indexes = this.def.indexes.filter((f) => f !== field);
  }
}

/** The newest version with seq ≤ `seq`; chains are short and usually read at their end, so scan backwards. */
export function versionAt(chain: readonly Version[], seq: number): Version | undefined {
  let i = chain.length - 1;
  if (chain[i]!.seq <= seq) return chain[i];
  if (i > 16) return versionAtBinary(chain, seq);
  while (i > 0 && chain[i]!.seq > seq) i--;
  return chain[i]!.seq <= seq ? chain[i] : undefined;
}

function versionAtBinary(chain: readonly Version[], seq: number): Version | undefined {
  let lo = 0;
  let hi = chain.length - 1;
  let found: Version | undefined;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (chain[mid]!.seq <= seq) {
      found = chain[mid];
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}
