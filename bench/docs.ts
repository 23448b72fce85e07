// The synthetic rows every benchmark scenario writes: ~200-byte documents with predictable keys and index values.

import type { Doc } from '../src/engine/types.js';

/** Serialized size we aim for per document body (without the primary-key field the server adds). */
export const docBytesTarget = 200;
/** Rows that share one value of the `group` field: the indexed equality query matches this many. */
export const groupRowsCount = 10;
/** Distinct values of the second indexed field (`city`) in the restart/RSS data set. */
export const citiesCount = 100;

/** The key of preloaded row `i`: the same in the HTTP preload, the engine generator and the load workers. */
export function rowKey(i: number): string {
  return `row-${i}`;
}

/** Distinct `group` values for a table of `rows` rows, so that each value matches `groupRowsCount` rows. */
export function groupsFor(rows: number): number {
  return Math.max(1, Math.floor(rows / groupRowsCount));
}

export function groupValue(i: number, groups: number): string {
  return `g${i % groups}`;
}

/** Document number `i`; padded with a `note` so its JSON is close to `docBytesTarget` bytes. */
export function benchDoc(i: number, groups: number): Doc {
  const doc: Doc = {
    group: groupValue(i, groups),
    city: `c${i % citiesCount}`,
    name: `user-${i}`,
    score: ((i * 7919) % 100_000) / 100,
    active: i % 2 === 0,
    tags: ['alpha', 'beta'],
    n: 0,
    note: '',
  };
  const bytesWithoutNote = Buffer.byteLength(JSON.stringify(doc));
  doc.note = 'x'.repeat(Math.max(0, docBytesTarget - bytesWithoutNote));
  return doc;
}

/** A history key's `grp` changes once in this many of its versions. */
export const grpStepVersions = 10;

/**
 * Version `version` of history key `i`: ~200 bytes, with an indexed `grp` that moves to another value every
 * `grpStepVersions` versions (so 1 update in 10 changes the index) and stays shared by about `groupRowsCount` keys.
 */
export function historyDoc(i: number, version: number, groups: number): Doc {
  const doc: Doc = {
    grp: `g${(i + Math.floor(version / grpStepVersions)) % groups}`,
    v: version,
    name: `user-${i}`,
    score: ((i * 7919 + version * 104_729) % 100_000) / 100,
    active: (i + version) % 2 === 0,
    tags: ['alpha', 'beta'],
    note: '',
  };
  const bytesWithoutNote = Buffer.byteLength(JSON.stringify(doc));
  doc.note = 'y'.repeat(Math.max(0, docBytesTarget - bytesWithoutNote));
  return doc;
}
