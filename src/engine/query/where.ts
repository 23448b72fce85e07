// The filter compiler: validates a `where` object (http-api.md §5) and turns it into a predicate over documents.
//
// Semantics, for a field value v (undefined when the path is missing):
//   plain value x / {$eq: x}  x null: v missing or null. Otherwise v deep-equals x ({"tags":"a"} ≠ ["a"]).
//   $ne x                     not $eq x, so it matches documents where the field is missing.
//   $gt $gte $lt $lte x       x a number, string or boolean; v of the same JSON type and ordered against x
//                             (numbers by value, strings by code point, false < true). Other types never match.
//   $in [x…] / $nin [x…]      some / no element $eq v; $nin therefore matches a missing field.
//   $exists bool              v present (null counts as present) / v missing.
//   $prefix s                 v a string starting with s (code points: half a surrogate pair is no prefix).
//   $contains x               v an array with an element that deep-equals x.
//   $not {ops} | x            field level: the negation of the operator object (or of equality with x).
//   $and [w…] $or [w…]        where-objects, non-empty arrays; $not w negates a where-object.
// Several fields in one where-object, and several operators in one operator object, are all ANDed.

import { limits } from '../../limits.js';
import type { Doc, Json } from '../types.js';
import {
  compareCodePoints,
  endsWithHighSurrogate,
  fieldOf,
  type FieldReader,
  isLowSurrogate,
  isPlainObject,
  jsonEquals,
  jsonProblem,
  type PathSegments,
} from '../json/index.js';
import { pointer, Problems } from './problems.js';

/** A compiled where: over a parsed document, or a stored row that reads the fields out of its text. */
export type Predicate = (doc: Doc | FieldReader) => boolean;
type Test = (value: Json | undefined) => boolean;

const rangeOperators = new Set(['$gt', '$gte', '$lt', '$lte']);
const matchNothing: Test = () => false;

/**
 * Compiles `where` (undefined or null = every document) or throws validation_failed listing every problem, each
 * named by a JSON Pointer under `at` (a query's `/where`; a row policy's `/read` or `/write`).
 */
export function compileWhere(where: unknown, at = '/where'): Predicate {
  const problems = new Problems();
  const predicate = compileWhereInto(where, problems, at);
  problems.throwIfAny();
  return predicate;
}

/** Whether `doc` satisfies `where`; compiles each call, so hot paths should keep compileWhere's predicate. */
export function matchesWhere(doc: Doc, where: unknown): boolean {
  return compileWhere(where)(doc);
}

/** Compiles into `problems` instead of throwing, so compileQuery can report every mistake of a query at once. */
export function compileWhereInto(where: unknown, problems: Problems, at: string): Predicate {
  if (where === undefined || where === null) return () => true;
  const compiler = new WhereCompiler(problems);
  const predicate = compiler.whereObject(where, at, 1);
  if (compiler.nodes > limits.queryNodesMax) {
    problems.add(at, `has ${compiler.nodes} conditions; at most ${limits.queryNodesMax} are allowed`);
  }
  return predicate;
}

/** Checks a field path (dot-separated, no empty segment, bounded length) and splits it. */
export function checkPath(path: unknown, problems: Problems, at: string): PathSegments | null {
  if (typeof path !== 'string') {
    problems.add(at, 'must be a field path string');
    return null;
  }
  if (path.length === 0 || path.length > limits.fieldPathLengthMax) {
    problems.add(at, `must be a field path of 1 to ${limits.fieldPathLengthMax} characters`);
    return null;
  }
  const segments = path.split('.');
  if (segments.some((segment) => segment.length === 0)) {
    problems.add(at, `"${path}" is not a field path: empty segment between dots`);
    return null;
  }
  return segments;
}

/** A plain object with at least one `$` key is an operator object; without any it is a literal to compare. */
export function isOperatorObject(value: unknown): value is { [op: string]: unknown } {
  return isPlainObject(value) && Object.keys(value).some((key) => key.startsWith('$'));
}

class WhereCompiler {
  nodes = 0;

  constructor(private readonly problems: Problems) {}

  whereObject(where: unknown, at: string, depth: number): Predicate {
    if (!isPlainObject(where)) {
      this.problems.add(at, 'must be an object of field conditions');
      return () => false;
    }
    if (depth > limits.documentDepthMax) {
      this.problems.add(at, `is nested more than ${limits.documentDepthMax} levels deep`);
      return () => false;
    }
    const parts: Predicate[] = [];
    for (const [key, condition] of Object.entries(where)) {
      this.nodes++;
      const here = pointer(at, key);
      if (key.startsWith('$')) parts.push(this.logical(key, condition, here, depth));
      else parts.push(this.field(key, condition, here, depth));
    }
    return allOf(parts);
  }

  private logical(op: string, operand: unknown, at: string, depth: number): Predicate {
    if (op === '$not') {
      const inner = this.whereObject(operand, at, depth + 1);
      return (doc) => !inner(doc);
    }
    if (op !== '$and' && op !== '$or') {
      this.problems.add(at, `unknown operator ${op}; at the top of a where-object only $and, $or and $not are allowed`);
      return () => false;
    }
    if (!Array.isArray(operand) || operand.length === 0) {
      this.problems.add(at, `${op} needs a non-empty array of where-objects`);
      return () => false;
    }
    const parts = operand.map((item, i) => this.whereObject(item, pointer(at, i), depth + 1));
    return op === '$and' ? allOf(parts) : anyOf(parts);
  }

  private field(path: string, condition: unknown, at: string, depth: number): Predicate {
    const segments = checkPath(path, this.problems, at);
    const test = this.condition(condition, at, depth + 1);
    if (segments === null) return () => false;
    return (doc) => test(fieldOf(doc, segments));
  }

  /** A field's condition: an operator object, or a literal meaning equality. */
  private condition(condition: unknown, at: string, depth: number): Test {
    if (!isOperatorObject(condition)) return this.equals(condition, at, depth);
    const tests: Test[] = [];
    for (const [op, operand] of Object.entries(condition)) {
      const here = pointer(at, op);
      if (!op.startsWith('$')) {
        this.problems.add(here, `mixes a field name with operators; write {"${op}": …} as a separate condition`);
        continue;
      }
      this.nodes++;
      tests.push(this.operator(op, operand, here, depth));
    }
    return tests.length === 1 ? (tests[0] as Test) : (value) => tests.every((test) => test(value));
  }

  private operator(op: string, operand: unknown, at: string, depth: number): Test {
    if (rangeOperators.has(op)) return this.range(op, operand, at);
    switch (op) {
      case '$eq':
        return this.equals(operand, at, depth);
      case '$ne':
        return negate(this.equals(operand, at, depth));
      case '$in':
        return this.inList(operand, at, depth);
      case '$nin':
        return negate(this.inList(operand, at, depth));
      case '$exists':
        return this.exists(operand, at);
      case '$prefix':
        return this.prefix(operand, at);
      case '$contains':
        return this.contains(operand, at, depth);
      case '$not':
        return negate(this.condition(operand, at, depth + 1));
      default:
        this.problems.add(at, `unknown operator ${op}`);
        return matchNothing;
    }
  }

  private literal(value: unknown, at: string, depth: number): value is Json {
    const problem = jsonProblem(value, limits.documentDepthMax - depth);
    if (problem !== null) this.problems.add(at, problem);
    return problem === null;
  }

  private equals(value: unknown, at: string, depth: number): Test {
    if (!this.literal(value, at, depth)) return matchNothing;
    return equalityTest(value);
  }

  private range(op: string, operand: unknown, at: string): Test {
    if (typeof operand !== 'number' && typeof operand !== 'string' && typeof operand !== 'boolean') {
      this.problems.add(at, `${op} needs a number, a string or a boolean`);
      return matchNothing;
    }
    if (!this.literal(operand, at, 0)) return matchNothing;
    const accept = acceptOrder(op);
    if (typeof operand === 'string') {
      return (value) => typeof value === 'string' && accept(compareCodePoints(value, operand));
    }
    // Numbers and booleans (false < true) compare with < and >, which never mix types here.
    const type = typeof operand;
    const bound = operand as number;
    return (value) =>
      typeof value === type && accept((value as number) < bound ? -1 : (value as number) > bound ? 1 : 0);
  }

  private inList(operand: unknown, at: string, depth: number): Test {
    if (!Array.isArray(operand)) {
      this.problems.add(at, 'needs an array of values');
      return matchNothing;
    }
    if (operand.length > limits.inListMax) {
      this.problems.add(at, `has ${operand.length} values; at most ${limits.inListMax} are allowed`);
      return matchNothing;
    }
    if (!operand.every((item, i) => this.literal(item, pointer(at, i), depth + 1))) return matchNothing;
    return membershipTest(operand as Json[]);
  }

  private exists(operand: unknown, at: string): Test {
    if (typeof operand !== 'boolean') {
      this.problems.add(at, '$exists needs true or false');
      return matchNothing;
    }
    return operand ? (value) => value !== undefined : (value) => value === undefined;
  }

  private prefix(operand: unknown, at: string): Test {
    if (typeof operand !== 'string') {
      this.problems.add(at, '$prefix needs a string');
      return matchNothing;
    }
    // A prefix ending in a high surrogate must not match the first half of a surrogate pair.
    const splitsPair = endsWithHighSurrogate(operand);
    return (value) =>
      typeof value === 'string' &&
      value.startsWith(operand) &&
      !(splitsPair && value.length > operand.length && isLowSurrogate(value.charCodeAt(operand.length)));
  }

  private contains(operand: unknown, at: string, depth: number): Test {
    if (!this.literal(operand, at, depth)) return matchNothing;
    const element = equalityTest(operand);
    return (value) => Array.isArray(value) && value.some((item) => element(item));
  }
}

/** Equality as a where-clause means it: null also matches a missing field; other values compare deeply. */
function equalityTest(expected: Json): Test {
  if (expected === null) return (value) => value === undefined || value === null;
  if (typeof expected !== 'object') return (value) => value === expected;
  return (value) => value !== undefined && jsonEquals(value, expected);
}

/** Scalars go through Sets (SameValueZero, so -0 = 0) so a 10 000-value $in stays cheap per document. */
function membershipTest(values: Json[]): Test {
  const scalars = new Set<Json>();
  const composites: Json[] = [];
  let matchesNull = false;
  for (const value of values) {
    if (value === null) matchesNull = true;
    else if (typeof value === 'object') composites.push(value);
    else scalars.add(value);
  }
  return (value) => {
    if (value === undefined || value === null) return matchesNull;
    if (typeof value !== 'object') return scalars.has(value);
    return composites.some((candidate) => jsonEquals(value, candidate));
  };
}

function acceptOrder(op: string): (order: number) => boolean {
  switch (op) {
    case '$gt':
      return (order) => order > 0;
    case '$gte':
      return (order) => order >= 0;
    case '$lt':
      return (order) => order < 0;
    default:
      return (order) => order <= 0;
  }
}

function negate(test: Test): Test {
  return (value) => !test(value);
}

function allOf(parts: Predicate[]): Predicate {
  if (parts.length === 1) return parts[0] as Predicate;
  return (doc) => parts.every((part) => part(doc));
}

function anyOf(parts: Predicate[]): Predicate {
  if (parts.length === 1) return parts[0] as Predicate;
  return (doc) => parts.some((part) => part(doc));
}
