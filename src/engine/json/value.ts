// JSON values as the engine holds them: the Json and Doc types, dot paths, deep equality, and the one check
// that a value from outside is JSON (documents to store, query operands, cursors).

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type Doc = { [key: string]: Json };

/** A field path split at its dots: `address.city` → ['address', 'city']. */
export type PathSegments = readonly string[];

/**
 * The value at a dot path, or undefined when any step is missing. Paths walk objects only: an array or a
 * scalar on the way ends the walk (so `tags.0` is missing, never the first element). Only own properties
 * count, so `constructor` or `__proto__` never reach Object.prototype.
 */
export function getPath(doc: Doc, path: string): Json | undefined {
  return getSegments(doc, path.split('.'));
}

export function getSegments(value: Json | undefined, segments: PathSegments): Json | undefined {
  let current = value;
  for (const segment of segments) {
    if (current === null || typeof current !== 'object' || Array.isArray(current)) return undefined;
    if (!Object.hasOwn(current, segment)) return undefined;
    current = current[segment];
  }
  return current;
}

/**
 * A document that can answer the value at a path without being parsed whole: a stored row reads a field or two
 * straight out of its JSON text. Predicates take either a parsed document or one of these; a class, so that no
 * user document (a plain object, whatever its members) is ever mistaken for one.
 */
export abstract class FieldReader {
  /** The same value as getSegments(the parsed document, segments). */
  abstract field(segments: PathSegments): Json | undefined;
}

/** The value at a path of a parsed document or of a FieldReader. */
export function fieldOf(subject: Doc | FieldReader, segments: PathSegments): Json | undefined {
  return subject instanceof FieldReader ? subject.field(segments) : getSegments(subject, segments);
}

/** Defines an own enumerable property, so a key named `__proto__` stays data instead of changing the prototype. */
export function setOwn(target: { [key: string]: Json }, key: string, value: Json): void {
  Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
}

/** Deep equality of JSON values: arrays element by element, objects by key set (any order), numbers by value (-0 = 0). */
export function jsonEquals(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEquals(a[i] as Json, b[i] as Json)) return false;
    return true;
  }
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  for (const key of keys) {
    if (!Object.hasOwn(b, key) || !jsonEquals(a[key] as Json, b[key] as Json)) return false;
  }
  return true;
}

/**
 * Why `value` is not a JSON value nested at most `depthMax` levels deep, or null when it is: a phrase whose
 * subject is the value, as in "The document holds a value that is not a finite number". The one check of values
 * that reach the engine without passing through JSON.parse (undefined, NaN, class instances, cycles), for
 * documents, query operands and cursors alike.
 */
export function jsonProblem(value: unknown, depthMax: number): string | null {
  return problemAt(value, 0, depthMax);
}

function problemAt(value: unknown, depth: number, depthMax: number): string | null {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return null;
  const it = depth === 0 ? 'is' : 'holds a value that is';
  if (typeof value === 'number') return Number.isFinite(value) ? null : `${it} not a finite number`;
  if (typeof value !== 'object') return `${it} not a JSON value (${typeof value})`;
  if (depth >= depthMax) return `is nested too deeply (depth limit ${Math.max(depthMax, 0)})`;
  if (!Array.isArray(value)) {
    const proto = Object.getPrototypeOf(value) as unknown;
    if (proto !== Object.prototype && proto !== null) return `${it} not a plain JSON object`;
  }
  for (const item of Array.isArray(value) ? value : Object.values(value)) {
    const problem = problemAt(item, depth + 1, depthMax);
    if (problem !== null) return problem;
  }
  return null;
}

export function isPlainObject(value: unknown): value is { [key: string]: unknown } {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
