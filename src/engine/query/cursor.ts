// Query cursors: opaque base64url text naming the snapshot, the position after the last row returned, and a
// fingerprint of the query, so that following cursors reads one snapshot and a cursor cannot be replayed
// against a different query (that is a 400, not a silently wrong page).
//
// Cursors are not signed: a forged one can only move the position or the snapshot, both of which a client may
// ask for anyway; the database still checks the snapshot against the newest seq.

import { createHash } from 'node:crypto';
import { DriftError } from '../../errors.js';
import type { Json } from '../types.js';
import { canonicalJson, isPlainObject, jsonProblem } from '../json/index.js';
import { limits } from '../../limits.js';

export type CursorPosition =
  /** Unordered rows: the last key returned. */
  | { kind: 'key'; key: string }
  /** Ordered rows: the last row's orderBy values (undefined = field missing) and its key. */
  | { kind: 'ordered'; values: (Json | undefined)[]; key: string }
  /** History: the last version's key and seq, and the key before it in the version stream (the resume point). */
  | { kind: 'version'; afterKey: string | null; key: string; seq: number }
  /** Aggregates: group rows already returned (the groups are recomputed at the same snapshot, in the same order). */
  | { kind: 'offset'; offset: number };

export interface Cursor {
  /** The snapshot seq the first page was read at. */
  seq: number;
  fingerprint: string;
  position: CursorPosition;
}

const cursorVersion = 1;

/** A short hash of a query's canonical shape; 96 bits keeps accidental collisions out of reach. */
export function fingerprintOf(shape: Json): string {
  return createHash('sha256').update(canonicalJson(shape)).digest('base64url').slice(0, 16);
}

export function encodeCursor(cursor: Cursor): string {
  const { position } = cursor;
  let p: Json;
  switch (position.kind) {
    case 'key':
      p = { t: 'k', k: position.key };
      break;
    case 'ordered':
      // Missing and null must stay distinct, so each value is boxed: [] = missing, [v] = v.
      p = { t: 'o', k: position.key, o: position.values.map((value) => (value === undefined ? [] : [value])) };
      break;
    case 'version':
      p = { t: 'v', a: position.afterKey, k: position.key, q: position.seq };
      break;
    case 'offset':
      p = { t: 'n', n: position.offset };
      break;
  }
  const body: Json = { v: cursorVersion, s: cursor.seq, f: cursor.fingerprint, p };
  return Buffer.from(JSON.stringify(body), 'utf8').toString('base64url');
}

/** Decodes a cursor or throws validation_failed: anything not made by encodeCursor is rejected. */
export function decodeCursor(text: unknown): Cursor {
  const cursor = typeof text === 'string' && /^[A-Za-z0-9_-]+$/.test(text) ? parse(text) : null;
  if (cursor === null) {
    throw new DriftError('validation_failed', 'cursor is malformed: pass back a nextCursor exactly as received', {
      errors: [{ instancePath: '/cursor', message: 'is not a cursor of this query API' }],
    });
  }
  return cursor;
}

function parse(text: string): Cursor | null {
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
  if (!isPlainObject(body) || body.v !== cursorVersion) return null;
  const { s: seq, f: fingerprint } = body;
  if (!Number.isSafeInteger(seq) || (seq as number) < 0 || typeof fingerprint !== 'string') return null;
  const position = parsePosition(body.p);
  return position === null ? null : { seq: seq as number, fingerprint, position };
}

function parsePosition(p: unknown): CursorPosition | null {
  if (!isPlainObject(p)) return null;
  const key = p.k;
  switch (p.t) {
    case 'k':
      return typeof key === 'string' ? { kind: 'key', key } : null;
    case 'o': {
      const boxes = p.o;
      if (typeof key !== 'string' || !Array.isArray(boxes)) return null;
      if (!boxes.every((box) => Array.isArray(box) && box.length <= 1)) return null;
      if (jsonProblem(boxes, limits.documentDepthMax + 2) !== null) return null;
      return { kind: 'ordered', key, values: boxes.map((box: Json[]) => box[0]) };
    }
    case 'v': {
      const afterKey = p.a;
      if (typeof key !== 'string' || !(afterKey === null || typeof afterKey === 'string')) return null;
      if (!Number.isSafeInteger(p.q)) return null;
      return { kind: 'version', afterKey, key, seq: p.q as number };
    }
    case 'n':
      return Number.isSafeInteger(p.n) && (p.n as number) >= 0 ? { kind: 'offset', offset: p.n as number } : null;
    default:
      return null;
  }
}
