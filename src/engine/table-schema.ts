// Table schemas (JSON Schema draft 2020-12, through ajv), compiled so that no document can make validation run
// for long: a schema's regular expressions run in linear time, whatever a writer sends.
//
// JavaScript regular expressions backtrack: `^(a+)+$` against forty `a`s and a `!` takes minutes, and validation
// runs on the one JavaScript thread. V8 has a linear-time engine for the expressions without backreferences or
// lookaround, and falls back to it for an expression that backtracks too much (the flag below). It runs them
// without the `u` flag only, so schema patterns are compiled without it; a pattern the linear engine cannot run,
// or one whose meaning needs `u` (`\p{…}` property escapes), is refused when the table is created.

import { createRequire } from 'node:module';
import v8 from 'node:v8';
import type { Ajv2020 } from 'ajv/dist/2020.js';
import type { ValidateFunction } from 'ajv';
import { DriftError } from '../errors.js';
import type { Json } from './types.js';

// The fallback applies to every expression compiled after this; the second flag lets `new RegExp(p, 'l')` ask
// whether the linear engine can run p.
v8.setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');
v8.setFlagsFromString('--enable-experimental-regexp-engine');

const requireHere = createRequire(import.meta.url);

let ajv: Ajv2020 | null = null;

/**
 * ajv and ajv-formats are loaded on first use: most starts never compile a table schema, and loading them costs
 * start-up time (measured: see docs/engine.md, "Measurements behind the design").
 */
function schemaAjv(): Ajv2020 {
  if (ajv !== null) return ajv;
  const { Ajv2020 } = requireHere('ajv/dist/2020.js') as { Ajv2020: new (options: object) => Ajv2020 };
  // Not strict: unknown keywords and formats are annotations in draft 2020-12, and a schema without `type` beside
  // `minimum` is valid. Known formats (email, date-time, uri…) are checked.
  ajv = new Ajv2020({ allErrors: true, strict: false, logger: false, unicodeRegExp: false });
  (requireHere('ajv-formats') as (target: Ajv2020) => Ajv2020)(ajv);
  return ajv;
}

/** Compiles a stored table schema (at creation and at replay); a schema ajv cannot compile is 400 validation_failed. */
export function compileTableSchema(schema: Json): ValidateFunction {
  try {
    return schemaAjv().compile(schema as object);
  } catch (error) {
    throw new DriftError('validation_failed', `The schema is not a valid JSON Schema: ${(error as Error).message}`);
  }
}

/** Refuses a new schema with a pattern the linear-time engine cannot run (400 validation_failed). */
export function checkSchemaPatterns(schema: Json): void {
  for (const pattern of schemaPatterns(schema)) {
    if (/\\[pP]\{/.test(pattern)) refusePattern(pattern, 'Unicode property escapes (\\p{…}) are not supported');
    try {
      new RegExp(pattern, 'l');
    } catch {
      refusePattern(pattern, 'backreferences, lookaround and large counted repetitions can take exponential time');
    }
  }
}

function refusePattern(pattern: string, why: string): never {
  throw new DriftError('validation_failed', `The schema's pattern ${JSON.stringify(pattern.slice(0, 100))} is refused: ${why}.`);
}

// Keywords whose values are data, not schemas: a member named `pattern` inside them is not a pattern.
const dataKeywords = new Set(['const', 'enum', 'default', 'examples']);

/** Every `pattern` and `patternProperties` expression of a schema, nested schemas included. */
function* schemaPatterns(node: Json): Generator<string> {
  if (Array.isArray(node)) {
    for (const item of node) yield* schemaPatterns(item);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  for (const [keyword, value] of Object.entries(node)) {
    if (dataKeywords.has(keyword)) continue;
    if (keyword === 'pattern' && typeof value === 'string') yield value;
    if (keyword === 'patternProperties' && value !== null && typeof value === 'object' && !Array.isArray(value)) {
      yield* Object.keys(value);
    }
    yield* schemaPatterns(value);
  }
}
