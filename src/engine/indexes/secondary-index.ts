// A secondary index on one field path: every value the field ever held (in any version) → the keys that held it.
// Entries are never removed when a row changes, so the index is a superset for every snapshot; readers re-check
// each candidate against the version they read. That keeps time travel and the index trivially consistent.

import { assert } from '../../assert.js';
import { canonicalJson, compareCodePoints, typeRank } from '../json/index.js';
import type { IndexLookup } from '../query/source.js';
import type { Json } from '../types.js';
import { SortedMap } from '../storage/sorted-map.js';

/** A normalized index value: scalars as they are, arrays and objects as canonical JSON text. */
export type IndexValue = null | boolean | number | string | { json: string };

type KeySet = string | string[] | Set<string>;

// Small key lists stay arrays (cheap), bigger ones become Sets so that adding stays O(1). A checkpoint loads
// long lists as arrays; the first add to one makes it a Set.
const keyArrayLengthMax = 16;

function compareIndexValues(a: IndexValue, b: IndexValue): number {
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

function normalizeIndexValue(value: Json): IndexValue {
  if (value === null || typeof value !== 'object') return value;
  return { json: canonicalJson(value) };
}

/** `keys` with `key` added: the same array or Set grown in place, or a new KeySet when its shape changes. */
function withKey(keys: KeySet | undefined, key: string): KeySet {
  if (keys === undefined) return key;
  if (typeof keys === 'string') return keys === key ? keys : [keys, key];
  if (Array.isArray(keys)) {
    if (keys[keys.length - 1] === key || keys.includes(key)) return keys;
    if (keys.length < keyArrayLengthMax) {
      keys.push(key);
      return keys;
    }
    return new Set([...keys, key]);
  }
  keys.add(key);
  return keys;
}

function keysOf(keys: KeySet): Iterable<string> {
  return typeof keys === 'string' ? [keys] : keys;
}

/**
 * Entries gathered while recovery stages the index: hashed by value, since their order is needed only once, when
 * the sorted map is built. Scalars are their own hash keys; composite values are keyed by their canonical JSON.
 */
interface Staged {
  scalars: Map<null | boolean | number | string, StagedKeys>;
  composites: Map<string, StagedKeys>;
}

/** A value's keys in arrival order; `repeats` once a key that may already be there was appended without a check. */
interface StagedKeys {
  keys: string[];
  repeats: boolean;
}

function stageEntry(staged: Staged, value: IndexValue, key: string, keyIsNew: boolean): void {
  let entry: StagedKeys | undefined;
  if (value !== null && typeof value === 'object') {
    entry = staged.composites.get(value.json);
    if (entry === undefined) staged.composites.set(value.json, (entry = { keys: [], repeats: false }));
  } else {
    entry = staged.scalars.get(value);
    if (entry === undefined) staged.scalars.set(value, (entry = { keys: [], repeats: false }));
  }
  const keys = entry.keys;
  if (keys.length > 0 && keys[keys.length - 1] === key) return;
  // A key new to the table cannot be listed yet; any other one is appended too and duplicates go at the end.
  if (!keyIsNew && keys.length > 0) entry.repeats = true;
  keys.push(key);
}

/** The KeySet of staged keys: duplicates dropped; long lists stay arrays until a key is added at run time. */
function keySetOfStaged(entry: StagedKeys): KeySet {
  const keys = entry.repeats ? [...new Set(entry.keys)] : entry.keys;
  return keys.length === 1 ? keys[0]! : keys;
}

export class SecondaryIndex {
  readonly field: string;
  readonly path: readonly string[];
  private entries = new SortedMap<IndexValue, KeySet>(compareIndexValues);
  private staged: Staged | null = null;

  constructor(field: string) {
    this.field = field;
    this.path = field.split('.');
  }

  get distinctValues(): number {
    assert(this.staged === null, 'a staged index is not readable');
    return this.entries.size;
  }

  /**
   * Records that `key` held `value`; a missing field (undefined) is not indexed. `keyIsNew` promises that the
   * table had no version of `key` before, so that staging may skip the duplicate check.
   */
  add(value: Json | undefined, key: string, keyIsNew = false): void {
    if (value === undefined) return;
    const normalized = normalizeIndexValue(value);
    if (this.staged !== null) {
      stageEntry(this.staged, normalized, key, keyIsNew);
      return;
    }
    const existing = this.entries.get(normalized);
    const grown = withKey(existing, key);
    if (grown !== existing) this.entries.set(normalized, grown);
  }

  /** From now until finishStaging, adds go to hash maps; nothing may read the index meanwhile. */
  beginStaging(): void {
    this.staged ??= { scalars: new Map(), composites: new Map() };
  }

  /**
   * Orders the staged entries and folds them into the index. Few beside many loaded ones (a short log after a
   * checkpoint) are inserted one by one; otherwise the loaded ones join the staged and the map is built in bulk.
   */
  finishStaging(): void {
    const staged = this.staged;
    if (staged === null) return;
    this.staged = null;
    const stagedCount = staged.scalars.size + staged.composites.size;
    if (this.entries.size > 4 * stagedCount) {
      for (const [value, entry] of staged.scalars) this.merge(value, entry.keys);
      for (const [json, entry] of staged.composites) this.merge({ json }, entry.keys);
      return;
    }
    for (const [value, keys] of this.entries.entries()) {
      for (const key of keysOf(keys)) stageEntry(staged, value, key, false);
    }
    const values: IndexValue[] = [...staged.scalars.keys()];
    const keySets: KeySet[] = [...staged.scalars.values()].map(keySetOfStaged);
    for (const [json, entry] of staged.composites) {
      values.push({ json });
      keySets.push(keySetOfStaged(entry));
    }
    const order = values.map((_, i) => i).sort((a, b) => compareIndexValues(values[a]!, values[b]!));
    this.entries = SortedMap.fromSorted<IndexValue, KeySet>(
      compareIndexValues,
      order.map((i) => values[i]!),
      order.map((i) => keySets[i]!),
    );
  }

  private merge(value: IndexValue, keys: Iterable<string>): void {
    const existing = this.entries.get(value);
    let grown = existing;
    for (const key of keys) grown = withKey(grown, key);
    if (grown !== existing) this.entries.set(value, grown!);
  }

  /**
   * Loads a checkpoint's entries, ascending by value, into an index that holds none yet. Long key lists stay
   * arrays until a key is added to them (withKey turns them into Sets then), so a load builds no Sets.
   */
  loadSorted(values: IndexValue[], keys: Array<string | string[]>): void {
    assert(this.entries.size === 0, 'a checkpoint loads into an empty index');
    this.entries = SortedMap.fromSorted<IndexValue, KeySet>(compareIndexValues, values, keys);
  }

  *lookup(lookup: IndexLookup): Iterable<string> {
    assert(this.staged === null, 'a staged index is not readable');
    for (const keys of this.matchingKeySets(lookup)) {
      if (typeof keys === 'string') yield keys;
      else yield* keys;
    }
  }

  estimate(lookup: IndexLookup, cap = 100_000): number {
    assert(this.staged === null, 'a staged index is not readable');
    let count = 0;
    for (const keys of this.matchingKeySets(lookup)) {
      count += typeof keys === 'string' ? 1 : Array.isArray(keys) ? keys.length : keys.size;
      if (count >= cap) return cap;
    }
    return count;
  }

  /** Every entry in index order, for checkpoints. */
  *dump(): Iterable<[IndexValue, string | string[]]> {
    assert(this.staged === null, 'a staged index is not readable');
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
