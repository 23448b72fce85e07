// One table in memory: its definition, the version chain of every key (full history, oldest first), its
// secondary indexes and its schema validator. Versions above the durable watermark may sit at a chain's end;
// every reader names a snapshot seq and so never sees them.

import type { ValidateFunction } from 'ajv';
import { assert } from '../../assert.js';
import { compareCodePoints, getSegments, sortByCodePoints } from '../json.js';
import { extractPath } from '../json-fields.js';
import { SecondaryIndex } from '../index/secondary-index.js';
import { SortedMap } from '../storage/sorted-map.js';
import type { Doc, RowOp, TableDef, Version } from '../types.js';

export class TableState {
  readonly def: TableDef;
  readonly indexes = new Map<string, SecondaryIndex>();
  readonly validate: ValidateFunction | null;
  /** Live rows at the newest applied state. */
  liveRows = 0;
  /** Versions held, every key's chain counted (metrics: versions held). */
  versionCount = 0;
  private rowMap = new SortedMap<string, Version[]>(compareCodePoints);
  /**
   * While recovery stages the table, chains of keys the row map does not hold gather here, hashed: recovery
   * needs no order, and one sort at the end costs far less than an ordered insert per key.
   */
  private staged: Map<string, Version[]> | null = null;
  /**
   * Point lookups by hash: key → the same chain array the row map holds, filled as keys are first read or
   * written. A tree descent cost a GET ~3 µs under load; filling it lazily keeps restarts from paying for a
   * million inserts. It never holds more keys than the row map, and chains are only ever appended to.
   */
  private chainByKey = new Map<string, Version[]>();

  constructor(def: TableDef, validate: ValidateFunction | null) {
    this.def = def;
    this.validate = validate;
    for (const field of def.indexes) this.indexes.set(field, new SecondaryIndex(field));
  }

  /** Every key's version chain in key order. */
  get rows(): SortedMap<string, Version[]> {
    assert(this.staged === null, 'a staged table is not readable');
    return this.rowMap;
  }

  /** Every version of `key`, oldest first, or undefined when it was never written. */
  chain(key: string): readonly Version[] | undefined {
    assert(this.staged === null, 'a staged table is not readable');
    return this.cachedChain(key);
  }

  /** The newest applied version of `key` (possibly above the durable watermark). */
  latest(key: string): Version | undefined {
    const chain = this.chain(key);
    return chain === undefined ? undefined : chain[chain.length - 1];
  }

  /** The version of `key` visible at snapshot `seq`. */
  versionAt(key: string, seq: number): Version | undefined {
    const chain = this.chain(key);
    return chain === undefined ? undefined : versionAt(chain, seq);
  }

  private cachedChain(key: string): Version[] | undefined {
    let chain = this.chainByKey.get(key);
    if (chain === undefined) {
      chain = this.rowMap.get(key);
      if (chain !== undefined) this.chainByKey.set(key, chain);
    }
    return chain;
  }

  /** Appends one row event; `doc` is the parsed document when the caller already has it (saves a parse). */
  applyRow(seq: number, key: string, op: RowOp, json: string | null, doc?: Doc): void {
    const version: Version = { seq, op, json };
    let chain = this.staged === null ? this.findChain(key) : (this.staged.get(key) ?? this.rowMap.get(key));
    const isNew = chain === undefined;
    const wasLive = chain !== undefined && chain[chain.length - 1]!.json !== null;
    if (chain === undefined) {
      chain = [version];
      if (this.staged === null) {
        this.rowMap.set(key, chain);
        this.chainByKey.set(key, chain);
      } else {
        this.staged.set(key, chain);
      }
    } else {
      assert(chain[chain.length - 1]!.seq < seq, 'row events must be applied in seq order');
      chain.push(version);
    }
    this.liveRows += (json !== null ? 1 : 0) - (wasLive ? 1 : 0);
    this.versionCount++;
    if (json !== null && this.indexes.size > 0) {
      // Replay has only the text: the indexed fields are read out of it rather than parsing every document.
      for (const index of this.indexes.values()) {
        index.add(doc === undefined ? extractPath(json, index.path) : getSegments(doc, index.path), key, isNew);
      }
    }
  }

  // Keys often arrive in order (ids): a key past the last one is new without a search.
  private findChain(key: string): Version[] | undefined {
    const known = this.chainByKey.get(key);
    if (known !== undefined) return known;
    const lastKey = this.rowMap.lastKey();
    return lastKey !== undefined && compareCodePoints(key, lastKey) > 0 ? undefined : this.cachedChain(key);
  }

  /** Builds a new index from every version of every row, so it serves every snapshot. */
  addIndex(field: string): void {
    const index = new SecondaryIndex(field);
    if (this.staged !== null) index.beginStaging();
    for (const [key, chain] of this.allChains()) {
      let isNew = true;
      for (const version of chain) {
        if (version.json === null) continue;
        index.add(extractPath(version.json, index.path), key, isNew);
        isNew = false;
      }
    }
    this.indexes.set(field, index);
    this.def.indexes.push(field);
  }

  dropIndex(field: string): void {
    this.indexes.delete(field);
    this.def.indexes = this.def.indexes.filter((f) => f !== field);
  }

  /**
   * Recovery's bulk mode: until finishStaging, row and index writes go to hash maps and nothing may read the
   * table. A recovery applies a million events; ordered inserts would cost it a tree descent each.
   */
  beginStaging(): void {
    this.staged ??= new Map();
    for (const index of this.indexes.values()) index.beginStaging();
  }

  /** Orders what was staged into the row map and the indexes; the table is readable again. */
  finishStaging(): void {
    const staged = this.staged;
    if (staged === null) return;
    this.staged = null;
    for (const index of this.indexes.values()) index.finishStaging();
    if (this.rowMap.size > 4 * staged.size) {
      for (const [key, chain] of staged) this.rowMap.set(key, chain);
      return;
    }
    for (const [key, chain] of this.rowMap.entries()) staged.set(key, chain);
    const keys = sortByCodePoints([...staged.keys()]);
    this.rowMap = SortedMap.fromSorted(
      compareCodePoints,
      keys,
      keys.map((key) => staged.get(key)!),
    );
  }

  /** Loads a checkpoint's rows, ascending by key, into a table that holds none yet. */
  loadSortedRows(keys: string[], chains: Version[][]): void {
    assert(this.rowMap.size === 0 && (this.staged === null || this.staged.size === 0), 'a checkpoint loads into an empty table');
    this.rowMap = SortedMap.fromSorted(compareCodePoints, keys, chains);
    for (const chain of chains) {
      if (chain[chain.length - 1]!.json !== null) this.liveRows++;
      this.versionCount += chain.length;
    }
  }

  private *allChains(): Iterable<[string, Version[]]> {
    yield* this.rowMap.entries();
    if (this.staged !== null) yield* this.staged;
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
