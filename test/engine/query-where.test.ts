// The filter language operator by operator (http-api.md §5): missing versus null, deep equality, typed ranges,
// code-point string order, and a 400 validation_failed for every malformed where-clause.

import fc from 'fast-check';
import t from 'tap';
import type { Test } from 'tap';
import { DriftError } from '../../src/errors.js';
import { compareCodePoints, compareJson, getPath, jsonEquals } from '../../src/engine/json/index.js';
import { compileWhere, matchesWhere } from '../../src/engine/query/index.js';
import type { Doc, Json } from '../../src/engine/types.js';
import { refCompareStrings } from './query-fixtures.js';

const docs: Record<string, Doc> = {
  missing: { id: 'missing' },
  nullValue: { id: 'nullValue', f: null },
  zero: { id: 'zero', f: 0 },
  negativeZero: { id: 'negativeZero', f: -0 },
  one: { id: 'one', f: 1 },
  big: { id: 'big', f: 2 ** 53 - 1 },
  bigMinusOne: { id: 'bigMinusOne', f: 2 ** 53 - 2 },
  huge: { id: 'huge', f: 1e21 },
  stringOne: { id: 'stringOne', f: '1' },
  a: { id: 'a', f: 'a' },
  bmpHigh: { id: 'bmpHigh', f: '\uFFFF' },
  privateUse: { id: 'privateUse', f: '\uE000' },
  astral: { id: 'astral', f: '\u{1F600}' },
  falseValue: { id: 'falseValue', f: false },
  trueValue: { id: 'trueValue', f: true },
  arrayA: { id: 'arrayA', f: ['a'] },
  arrayAB: { id: 'arrayAB', f: ['a', 'b'] },
  arrayNested: { id: 'arrayNested', f: [{ x: 1, y: 2 }, null] },
  object: { id: 'object', f: { x: 1, y: [2, 3] } },
  objectReordered: { id: 'objectReordered', f: { y: [2, 3], x: 1 } },
  nested: { id: 'nested', f: { g: { h: 'deep' } } },
};

/** The ids of the fixture documents that `where` matches, in fixture order. */
function ids(where: unknown): string[] {
  const predicate = compileWhere(where);
  return Object.values(docs)
    .filter((doc) => predicate(doc))
    .map((doc) => doc.id as string);
}

/** The problems a refused where-clause lists; [] when it compiles. Any other error fails the test. */
function problemsOf(where: unknown): { instancePath: string; message: string }[] {
  try {
    compileWhere(where);
    return [];
  } catch (error) {
    if (error instanceof DriftError && error.code === 'validation_failed')
      return error.fields.errors as { instancePath: string; message: string }[];
    throw error;
  }
}

function rejects(t: Test, where: unknown, pointer: string, pattern: RegExp): void {
  const problems = problemsOf(where);
  t.ok(
    problems.some((problem) => problem.instancePath === pointer && pattern.test(problem.message)),
    `${JSON.stringify(where)?.slice(0, 80)} → ${JSON.stringify(problems).slice(0, 200)}`,
  );
}

t.test('null equality matches a null or missing field; $ne and $nin match a missing field', async (t) => {
  t.same(ids({ f: null }), ['missing', 'nullValue']);
  t.same(ids({ f: { $eq: null } }), ['missing', 'nullValue']);
  t.same(ids({ f: { $ne: null } }).length, Object.keys(docs).length - 2);
  t.ok(ids({ f: { $ne: 1 } }).includes('missing'));
  t.notOk(ids({ f: { $ne: 1 } }).includes('one'));
  t.ok(ids({ f: { $nin: [1, 'a'] } }).includes('missing'));
  t.same(ids({ f: { $in: [null] } }), ['missing', 'nullValue']);
  t.same(ids({ f: { $exists: true } }).length, Object.keys(docs).length - 1);
  t.same(ids({ f: { $exists: false } }), ['missing']);
  t.same(ids({ 'f.g.h': 'deep' }), ['nested']);
  t.same(ids({ 'f.g': { h: 'deep' } }), ['nested']);
  t.same(ids({ 'f.g.h': null }).length, Object.keys(docs).length - 1, 'a missing nested path equals null');
});

t.test('equality compares whole values: arrays in order, objects in any key order, -0 equal to 0', async (t) => {
  t.same(ids({ f: 'a' }), ['a'], '{"f":"a"} does not match ["a"]');
  t.same(ids({ f: ['a'] }), ['arrayA']);
  t.same(ids({ f: ['b', 'a'] }), [], 'array order matters');
  t.same(ids({ f: { x: 1, y: [2, 3] } }), ['object', 'objectReordered']);
  t.same(ids({ f: { $eq: { y: [2, 3], x: 1 } } }), ['object', 'objectReordered']);
  t.same(ids({ f: { x: 1 } }), [], 'a sub-object is not equal');
  t.same(ids({ f: 0 }), ['zero', 'negativeZero']);
  t.same(ids({ f: -0 }), ['zero', 'negativeZero']);
  t.same(ids({ f: 1 }), ['one'], 'the number 1 is not the string "1" nor true');
  t.same(ids({ f: 2 ** 53 - 1 }), ['big'], 'large integers compare exactly');
  t.same(ids({ f: 1e21 }), ['huge']);
  t.same(ids({ f: { $in: [[{ y: 2, x: 1 }, null], 'a'] } }), ['a', 'arrayNested']);
  t.same(ids({ f: {} }), [], 'an empty object is a literal, not an operator object');
});

t.test('ordering operators match only values of the operand JSON type', async (t) => {
  t.same(ids({ f: { $gt: 0 } }), ['one', 'big', 'bigMinusOne', 'huge']);
  t.same(ids({ f: { $gte: 0, $lt: 1 } }), ['zero', 'negativeZero']);
  t.same(ids({ f: { $gt: 2 ** 53 - 2 } }), ['big', 'huge']);
  t.same(ids({ f: { $lte: -0 } }), ['zero', 'negativeZero']);
  t.same(ids({ f: { $gte: '' } }), ['stringOne', 'a', 'bmpHigh', 'privateUse', 'astral']);
  t.same(ids({ f: { $lt: 'a' } }), ['stringOne'], 'no number, array or null is below a string');
  t.same(ids({ f: { $gt: false } }), ['trueValue']);
  t.same(ids({ f: { $lt: true } }), ['falseValue']);
  t.same(ids({ f: { $gt: '0', $lt: 5 } }), [], 'a value cannot be both a string and a number');
});

t.test('strings order by code point, so astral characters sort after U+FFFF', async (t) => {
  t.same(ids({ f: { $gt: '\uFFFF' } }), ['astral']);
  t.same(ids({ f: { $gt: '\uE000' } }), ['bmpHigh', 'astral']);
  t.same(ids({ f: { $lt: '\u{1F600}', $gte: '\uE000' } }), ['bmpHigh', 'privateUse']);
  t.ok(compareCodePoints('\u{1F600}', '\uFFFF') > 0, 'JS < would say the opposite');
  t.ok(compareCodePoints('a\uD83D', 'a\u{1F600}') < 0, 'a lone surrogate is below any astral code point');
  t.ok(compareCodePoints('\uD83Da', '\uD83Db') < 0, 'after a shared lone surrogate the next code point decides');
  t.equal(compareCodePoints('ab', 'ab'), 0);
  const unit = fc.oneof(
    fc.constantFrom('\uD800', '\uDBFF', '\uDC00', '\uDFFF', '\uE000', '\uFFFF', 'a', '\u{10000}', '\u{10FFFF}'),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
  );
  const text = fc.string({ unit, maxLength: 5 });
  fc.assert(
    fc.property(text, text, (a, b) => Math.sign(compareCodePoints(a, b)) === Math.sign(refCompareStrings(a, b))),
    { numRuns: 2000 },
  );
});

t.test('$prefix matches string starts by code point; $contains matches array elements deeply', async (t) => {
  t.same(ids({ f: { $prefix: '' } }), ['stringOne', 'a', 'bmpHigh', 'privateUse', 'astral']);
  t.same(ids({ f: { $prefix: '\uD83D' } }), [], 'half a surrogate pair is no prefix');
  t.same(ids({ f: { $prefix: '\u{1F600}' } }), ['astral']);
  t.same(ids({ id: { $prefix: 'big' } }), ['big', 'bigMinusOne']);
  t.same(ids({ f: { $contains: 'a' } }), ['arrayA', 'arrayAB']);
  t.same(ids({ f: { $contains: { y: 2, x: 1 } } }), ['arrayNested']);
  t.same(ids({ f: { $contains: null } }), ['arrayNested']);
  t.same(ids({ f: { $contains: ['a'] } }), [], 'no element of ["a"] equals ["a"]');
  t.same(ids({ 'f.x': { $contains: 1 } }), [], 'a non-array never contains');
});

t.test('$and, $or and $not combine where-objects; several fields or operators all have to hold', async (t) => {
  t.same(ids({ $or: [{ f: 1 }, { f: 'a' }] }), ['one', 'a']);
  t.same(ids({ $and: [{ f: { $gte: 0 } }, { f: { $lt: 2 } }] }), ['zero', 'negativeZero', 'one']);
  t.same(ids({ $not: { f: { $exists: true } } }), ['missing']);
  t.same(
    ids({ f: { $not: { $gte: 1 } }, id: { $prefix: 'b' } }),
    ['bmpHigh'],
    'field-level $not negates its operators',
  );
  t.same(ids({ f: { $not: 1 }, id: 'one' }), []);
  t.same(ids({ id: 'one', f: 2 }), []);
  t.same(ids({}), Object.keys(docs));
  t.same(ids(null), Object.keys(docs), 'null means no filter');
  t.same(ids({ $not: {} }), []);
  t.equal(matchesWhere({ a: { b: 1 } }, { 'a.b': 1 }), true);
});

t.test('paths walk own object members only', async (t) => {
  const doc = JSON.parse('{"a":{"b":[{"c":1}]},"__proto__":{"polluted":true},"n":null}') as Doc;
  t.equal(getPath(doc, 'a.b.0.c'), undefined, 'array elements are not path steps');
  t.equal(getPath(doc, 'constructor'), undefined);
  t.equal(getPath(doc, 'toString'), undefined);
  t.same(getPath(doc, '__proto__'), { polluted: true }, 'a JSON member named __proto__ is data');
  t.equal(getPath(doc, 'n.x'), undefined);
  t.equal(matchesWhere(doc, { 'constructor.name': { $exists: true } }), false);
});

t.test('jsonEquals and compareJson agree with each other on random values', async (t) => {
  const value = fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>;
  fc.assert(
    fc.property(
      value,
      value,
      (a, b) =>
        jsonEquals(a, b) === (compareJson(a, b) === 0) &&
        Math.sign(compareJson(a, b)) === -Math.sign(compareJson(b, a)),
    ),
    { numRuns: 1000 },
  );
  t.ok(compareJson(undefined, null) < 0 && compareJson(null, false) < 0 && compareJson(true, -1e300) < 0);
  t.ok(compareJson(1e300, '') < 0 && compareJson('\u{10FFFF}', []) < 0 && compareJson([{}], {}) < 0);
  t.ok(
    compareJson([1], [1, 0]) < 0 && compareJson({ a: 2 }, { b: 1 }) < 0 && compareJson({ a: 1 }, { a: 1, b: 0 }) < 0,
  );
});

t.test('malformed where-clauses are refused with validation_failed naming the spot', async (t) => {
  rejects(t, { f: { $regex: 'a' } }, '/where/f/$regex', /unknown operator \$regex/);
  rejects(t, { $nor: [{ f: 1 }] }, '/where/$nor', /unknown operator \$nor/);
  rejects(t, { $eq: 1 }, '/where/$eq', /unknown operator/);
  rejects(t, { f: { $in: 'a' } }, '/where/f/$in', /array/);
  rejects(t, { f: { $nin: { a: 1 } } }, '/where/f/$nin', /array/);
  rejects(t, { $and: { f: 1 } }, '/where/$and', /non-empty array of where-objects/);
  rejects(t, { $or: [] }, '/where/$or', /non-empty array/);
  rejects(t, { $or: [1] }, '/where/$or/0', /object/);
  rejects(t, { $not: [{ f: 1 }] }, '/where/$not', /object/);
  rejects(t, { f: { $prefix: 1 } }, '/where/f/$prefix', /\$prefix needs a string/);
  rejects(t, { f: { $exists: 1 } }, '/where/f/$exists', /true or false/);
  rejects(t, { f: { $gt: null } }, '/where/f/$gt', /number, a string or a boolean/);
  rejects(t, { f: { $lt: [1] } }, '/where/f/$lt', /number, a string or a boolean/);
  rejects(t, { f: { $gt: 1, g: 2 } }, '/where/f/g', /mixes a field name with operators/);
  rejects(t, { 'a..b': 1 }, '/where/a..b', /empty segment/);
  rejects(t, { '': 1 }, '/where/', /field path/);
  rejects(t, { ['x'.repeat(300)]: 1 }, `/where/${'x'.repeat(300)}`, /1 to 256 characters/);
  rejects(t, { 'a/b': { $bad: 1 } }, '/where/a~1b/$bad', /unknown operator/);
  rejects(t, [{ f: 1 }], '/where', /object/);
  rejects(t, 'f = 1', '/where', /object/);
  rejects(t, { f: { $eq: undefined } }, '/where/f/$eq', /not a JSON value/);
  rejects(t, { f: { $eq: Number.NaN } }, '/where/f/$eq', /finite/);
});

t.test('where-clauses past the node, list or depth bounds are refused', async (t) => {
  const wide = Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [`f${i}`, i]));
  rejects(t, wide, '/where', /at most 1000/);
  t.doesNotThrow(() => compileWhere(Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`f${i}`, i]))));
  rejects(t, { f: { $in: Array.from({ length: 10_001 }, (_, i) => i) } }, '/where/f/$in', /at most 10000/);
  t.doesNotThrow(() => compileWhere({ f: { $in: Array.from({ length: 10_000 }, (_, i) => i) } }));
  let deep: Json = { f: 1 };
  for (let i = 0; i < 80; i++) deep = { $not: deep };
  t.throws(() => compileWhere(deep), { code: 'validation_failed', message: /nested more than 64/ });
  let deepValue: Json = 1;
  for (let i = 0; i < 80; i++) deepValue = [deepValue];
  t.throws(() => compileWhere({ f: deepValue }), { code: 'validation_failed', message: /nested too deeply/ });
});

t.test('one error lists every problem of the where-clause', async (t) => {
  try {
    compileWhere({ a: { $bad: 1 }, b: { $in: 2 }, $xor: [] });
    t.fail('accepted');
  } catch (error) {
    const drift = error as DriftError;
    t.equal(drift.code, 'validation_failed');
    t.equal((drift.fields.errors as unknown[]).length, 3);
    t.match(drift.message, /and 2 more problems/);
  }
});

t.test('a large $in list stays exact for scalars, -0 and composite values', async (t) => {
  const list: Json[] = Array.from({ length: 5000 }, (_, i) => `v${i}`);
  list.push(-0, { x: 1 });
  const predicate = compileWhere({ f: { $in: list } });
  t.ok(predicate({ f: 'v4999' }));
  t.ok(predicate({ f: 0 }));
  t.ok(predicate({ f: { x: 1 } }));
  t.notOk(predicate({ f: 'v5000' }));
  t.notOk(predicate({ f: ['v1'] }));
  t.notOk(predicate({}));
});
