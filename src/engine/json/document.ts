// Documents as DriftDB stores them: the document check, its size bound, RFC 7396 merge patch, key identity.

import { DriftError } from '../../errors.js';
import { limits } from '../../limits.js';
import { isPlainObject, jsonProblem, setOwn, type Doc, type Json } from './value.js';

/**
 * Checks that a value is a JSON document DriftDB can store: a plain object of JSON values only (finite numbers,
 * plain objects), nested at most documentDepthMax deep.
 */
export function checkDocument(value: unknown, what = 'document'): asserts value is Doc {
  if (!isPlainObject(value)) {
    throw new DriftError('validation_failed', `The ${what} must be a JSON object.`);
  }
  const problem = jsonProblem(value, limits.documentDepthMax);
  if (problem !== null) throw new DriftError('validation_failed', `The ${what} ${problem}.`);
}

/** Serializes a checked document, bounded by documentBytesMax. */
export function serializeChecked(doc: Doc, what = 'document'): string {
  const json = JSON.stringify(doc);
  if (json.length > limits.documentBytesMax) {
    throw new DriftError('payload_too_large', `The ${what} exceeds ${limits.documentBytesMax} bytes.`);
  }
  return json;
}

/** RFC 7396 JSON Merge Patch: returns a new document, leaving both inputs untouched. */
export function mergePatch(target: Json | undefined, patch: Json): Json {
  if (!isPlainObject(patch)) return patch;
  const result: Doc = {};
  if (isPlainObject(target)) {
    for (const key of Object.keys(target)) setOwn(result, key, target[key] as Json);
  }
  for (const key of Object.keys(patch)) {
    const value = patch[key] as Json;
    if (value === null) {
      delete result[key];
    } else {
      setOwn(result, key, mergePatch(Object.hasOwn(result, key) ? result[key] : undefined, value));
    }
  }
  return result;
}

/** The key identity of a primary-key value: strings as they are, safe integers in decimal; else null. */
export function keyOf(value: Json | undefined): string | null {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  return null;
}

export function checkKey(key: string): void {
  if (key.length === 0) throw new DriftError('validation_failed', 'A key may not be empty.');
  if (key.length > limits.keyLengthMax) {
    throw new DriftError('validation_failed', `A key may be at most ${limits.keyLengthMax} characters long.`);
  }
}

