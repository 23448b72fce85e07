// The order of JSON: strings by Unicode code point, the one total order over JSON values that sorting, $min/$max,
// group ordering and secondary indexes share, and canonical JSON text for deep-equal values.

import type { Json } from './value.js';

const isHighSurrogate = (unit: number): boolean => unit >= 0xd800 && unit <= 0xdbff;
export const isLowSurrogate = (unit: number): boolean => unit >= 0xdc00 && unit <= 0xdfff;
export const endsWithHighSurrogate = (s: string): boolean =>
  s.length > 0 && isHighSurrogate(s.charCodeAt(s.length - 1));

/**
 * Compares strings by Unicode code points. JS `<` compares UTF-16 code units, which puts U+10000..U+10FFFF
 * (surrogate pairs) before U+E000..U+FFFF; code-point order puts them after. Lone surrogates count as the
 * code point of their own value. Negative, zero or positive like any comparator.
 */
export function compareCodePoints(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  let i = 0;
  while (i < length && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  if (i === length) return a.length - b.length;
  // The first difference may sit in the low half of a pair whose high half both strings share.
  const start = i > 0 && isHighSurrogate(a.charCodeAt(i - 1)) ? i - 1 : i;
  const pointA = a.codePointAt(start) as number;
  const pointB = b.codePointAt(start) as number;
  if (pointA !== pointB) return pointA - pointB;
  // Both strings hold the same lone high surrogate at `start`: the difference is the next code point.
  return (a.codePointAt(i) as number) - (b.codePointAt(i) as number);
}

/**
 * Sorts strings by code point, in place. The native sort compares UTF-16 code units, which agrees with code points
 * except around surrogate pairs: sort natively, check, and only keys that really differ pay for the comparator.
 */
export function sortByCodePoints(keys: string[]): string[] {
  keys.sort();
  for (let i = 1; i < keys.length; i++) {
    if (compareCodePoints(keys[i - 1]!, keys[i]!) >= 0) return keys.sort(compareCodePoints);
  }
  return keys;
}

/** Sorts objects by their `key` in code-point order, in place, checking a native sort as sortByCodePoints does. */
export function sortByKey<T extends { readonly key: string }>(items: T[]): T[] {
  items.sort((a, b) => compareCodeUnits(a.key, b.key));
  for (let i = 1; i < items.length; i++) {
    if (compareCodePoints(items[i - 1]!.key, items[i]!.key) >= 0) return items.sort((a, b) => compareCodePoints(a.key, b.key));
  }
  return items;
}

/** UTF-16 code-unit order: the engine's native string comparison. */
function compareCodeUnits(a: string, b: string): number {
  return a === b ? 0 : a < b ? -1 : 1;
}

const highUnit = /[\ud800-\uffff]/;

/**
 * Code-unit order equals code-point order whenever one side has no unit of U+D800 or above: at the first
 * difference that side's unit is then below every surrogate and every U+E000..U+FFFF unit under both orders. So a
 * search for a key made of such units (most keys) may use the engine's native comparison.
 */
compareCodePoints.forProbe = (probe: string) => (highUnit.test(probe) ? compareCodePoints : compareCodeUnits);

/**
 * The rank of a value's JSON type in the total order: missing < null < booleans < numbers < strings < arrays
 * < objects. Missing (undefined) sorts like "less than null" so `orderBy` places rows without the field first
 * when ascending and last when descending.
 */
export function typeRank(value: Json | undefined): number {
  if (value === undefined) return 0;
  if (value === null) return 1;
  switch (typeof value) {
    case 'boolean':
      return 2;
    case 'number':
      return 3;
    case 'string':
      return 4;
    default:
      return Array.isArray(value) ? 5 : 6;
  }
}

/**
 * The total order over JSON values (and missing). Within a type: false < true; numbers by value (-0 = 0);
 * strings by code point; arrays element by element, a proper prefix first; objects by their entries with keys
 * in code-point order, compared key then value, entry by entry, fewer entries first on a common prefix.
 */
export function compareJson(a: Json | undefined, b: Json | undefined): number {
  const rankA = typeRank(a);
  const rankB = typeRank(b);
  if (rankA !== rankB) return rankA - rankB;
  switch (rankA) {
    case 0:
    case 1:
      return 0;
    case 2:
    case 3:
      return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
    case 4:
      return compareCodePoints(a as string, b as string);
    case 5:
      return compareArrays(a as Json[], b as Json[]);
    default:
      return compareObjects(a as { [key: string]: Json }, b as { [key: string]: Json });
  }
}

function compareArrays(a: Json[], b: Json[]): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const order = compareJson(a[i], b[i]);
    if (order !== 0) return order;
  }
  return a.length - b.length;
}

function compareObjects(a: { [key: string]: Json }, b: { [key: string]: Json }): number {
  const keysA = Object.keys(a).sort(compareCodePoints);
  const keysB = Object.keys(b).sort(compareCodePoints);
  const length = Math.min(keysA.length, keysB.length);
  for (let i = 0; i < length; i++) {
    const keyA = keysA[i] as string;
    const keyB = keysB[i] as string;
    const order = compareCodePoints(keyA, keyB) || compareJson(a[keyA], b[keyB]);
    if (order !== 0) return order;
  }
  return keysA.length - keysB.length;
}

/** JSON text with object keys sorted, so deep-equal values (and -0/0) give the same text. */
export function canonicalJson(value: Json): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const keys = Object.keys(value).sort(compareCodePoints);
  return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key] as Json)}`).join(',')}}`;
}
