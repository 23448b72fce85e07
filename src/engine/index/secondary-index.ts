// A secondary index on one field path: every value the field ever held (in any version) → the keys that held it.
// Entries are never removed when a row changes, so the index is a superset for every snapshot; readers re-check
// each candidate against the version they read. That keeps time travel and the index trivially consistent.

import { canonicalJson, compareCodePoints } from '../json.js';
import { typeRank } from '../query/json.js';
import type { IndexLookup } from '../query/source.js';
import type { Json } from '../types.js';
import { SortedMap } from '../storage/sorted-map.js';

/** A normalized index value: scalars as they are, arrays and objects as canonical JSON text. */
export type IndexValue = null | boolean | number | string | { json: string };

type KeySet = string | string[] | Set<string>;

// Small key lists stay arrays (cheap), bigger ones become Sets so that adding stays O(1).
const keyArrayLengthMax = 16;

export function compareIndexValues(a: IndexValue, b: IndexValue): number {
  // The query layer's type order; a composite {json} value ranks as an object, after every scalar.
  const ra = typeRank(a as Json);
  const rb = typeRank(b as Json);
  if (ra !== rb) return ra - rb;
  switch (ra) {
    case 1:
      return 0;
    case 2:
      return Number(a) - Number(b);
    case 3:
      return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
    case 4:
      return compareCodePoints(a as string, b as string);
    default:
      return compareCodePoints((a as { json: string }).json, (b as { json: string }).json);
  }
}

export function normalizeIndexValue(value: Json): IndexValue {
  if (value === null || typeof value !== 'object') return value;
  return { json: canonicalJson(value) };
}

export class SecondaryIndex {
  readonly field: string;
  readonly path: readonly string[];
  private readonly entries = new SortedMap<IndexValue, KeySet>(compareIndexValues);

  constructor(field: string) {
    this.field = field;
    this.path = field.split('.');
  }

  get distinctValues(): number {
    return this.entries.size;
  }

  /** Records that `key` held `value`; a missing field (undefined) is not indexed. */
  add(value: Json | undefined, key: string): void {
    if (value === undefined) return;
    const normalized = normalizeIndexValue(value);
    const existing = this.entries.get(normalized);
    if (existing === undefined) {
      this.entries.set(normalized, key);
    } else if (typeof existing === 'string') {
      if (existing !== key) this.entries.set(normalized, [existing, key]);
    } else if (Array.isArray(existing)) {
      if (existing[existing.length - 1] === key || existing.includes(key)) return;
      if (existing.length < keyArrayLengthMax) existing.push(key);
      else this.entries.set(normalized, new Set([...existing, key]));
    } else {
      existing.add(key);
    }
  }

  /** Appends an entry during a checkpoint load; entries arrive in index order. */
  load(value: IndexValue, keys: string | string[]): void {
    this.entries.set(value, Array.isArray(keys) && keys.length > keyArrayLengthMax ? new Set(keys) : keys);
  }

  *lookup(lookup: IndexLookup): Iterable<string> {
    for (const keys of this.matchingKeySets(lookup)) {
      if (typeof keys === 'string') yield keys;
      else yield* keys;
    }
  }

  estimate(lookup: IndexLookup, cap = 100_000): number {
    let count = 0;
    for (const keys of this.matchingKeySets(lookup)) {
      count += typeof keys === 'string' ? 1 : Array.isArray(keys) ? keys.length : keys.size;
      if (count >= cap) return cap;
    }
    return count;
  }

  /** Every entry in index order, for checkpoints. */
  *dump(): Iterable<[IndexValue, string | string[]]> {
    for (const [value, keys] of this.entries.entries()) {
      yield [value, typeof keys === 'string' ? keys : [...keys]];
    }
  }

  private *matchingKeySets(lookup: IndexLookup): Iterable<KeySet> {
    if (lookup.kind === 'eq') {
      const keys = this.entries.get(normalizeIndexValue(lookup.value));
      if (keys !== undefined) yield keys;
      return;
    }
    const { lower, upper } = lookup;
    const sample = (lower ?? upper)?.value;
    if (sample === undefined) return;
    const typeLow: IndexValue = typeof sample === 'number' ? -Infinity : '';
    const start: IndexValue = lower ? lower.value : typeLow;
    const startInclusive = lower ? lower.inclusive : true;
    for (const [value, keys] of this.entries.entries({ from: start })) {
      if (typeof value !== typeof sample) return;
      if (!startInclusive && compareIndexValues(value, start) === 0) continue;
      if (upper) {
        const order = compareIndexValues(value, upper.value);
        if (order > 0 || (order === 0 && !upper.inclusive)) return;
      }
      yield keys;
    }
  }
}
