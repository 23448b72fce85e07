import t from 'tap';
import fc from 'fast-check';
import { checkDocument, compareCodePoints, jsonProblem, keyOf, mergePatch, serializeChecked } from '../../src/engine/json/index.js';

function serializeDocument(value: unknown): string {
  checkDocument(value);
  return serializeChecked(value);
}
import { resolveAsOf } from '../../src/engine/mvcc/as-of.js';
import type { Json } from '../../src/engine/types.js';

t.test('code point order puts astral characters after every BMP character', async (t) => {
  const words = ['b', 'a', '\u{1F600}', '\uFFFD', 'ab', '', '10', '9'];
  const expected = [...words].sort((x, y) => {
    const a = [...x].map((c) => c.codePointAt(0)!);
    const b = [...y].map((c) => c.codePointAt(0)!);
    for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
    return a.length - b.length;
  });
  t.same([...words].sort(compareCodePoints), expected);
  t.ok(compareCodePoints('\u{1F600}', '\uFFFD') > 0, 'U+1F600 sorts after U+FFFD');
  t.ok(compareCodePoints('10', '9') < 0, 'keys compare as strings');
});

t.test("a probe's comparator gives compareCodePoints' sign against every key", async (t) => {
  const units = fc.constantFrom('a', 'z', '\u00e9', '\ud7ff', '\ud800', '\udbff', '\udc00', '\udfff', '\ue000', '\uffff', '\u{1F600}', '\u{10FFFF}');
  const keys = fc.array(units, { maxLength: 6 }).map((parts) => parts.join(''));
  const sign = (n: number): number => Math.sign(n);
  fc.assert(
    fc.property(keys, keys, (probe, key) => {
      const fast = compareCodePoints.forProbe(probe);
      return sign(fast(key, probe)) === sign(compareCodePoints(key, probe)) && sign(fast(probe, key)) === sign(compareCodePoints(probe, key));
    }),
    { numRuns: 5000 },
  );
  t.equal(compareCodePoints.forProbe('row-42'), compareCodePoints.forProbe('k'), 'plain keys share the native comparison');
  t.equal(compareCodePoints.forProbe('\ue000'), compareCodePoints, 'keys with high units keep the code-point comparison');
});

t.test('merge patch follows RFC 7396 and keeps __proto__ as a plain key', async (t) => {
  const cases: Array<[Json, Json, Json]> = [
    [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
    [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
    [{ a: 'b' }, { a: null }, {}],
    [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
    [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
    [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
    [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
    [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ];
  for (const [target, patch, result] of cases) t.same(mergePatch(target, patch), result, JSON.stringify(patch));
  const patched = mergePatch({}, JSON.parse('{"__proto__":{"polluted":true}}') as Json) as Record<string, unknown>;
  t.equal(Object.getPrototypeOf(patched), Object.prototype, 'the prototype is untouched');
  t.same(JSON.parse(JSON.stringify(patched)), JSON.parse('{"__proto__":{"polluted":true}}'));
  t.equal(({} as Record<string, unknown>).polluted, undefined);
});

t.test('documents are checked for shape, depth, numbers and size', async (t) => {
  t.equal(serializeDocument({ a: 1 }), '{"a":1}');
  t.throws(() => serializeDocument([1]), { code: 'validation_failed' });
  t.throws(() => serializeDocument(null), { code: 'validation_failed' });
  t.throws(() => serializeDocument({ a: Number.NaN }), { code: 'validation_failed' });
  t.throws(() => serializeDocument({ a: undefined }), { code: 'validation_failed' });
  let deep: Json = 1;
  for (let i = 0; i < 70; i++) deep = { d: deep };
  t.throws(() => serializeDocument(deep), { code: 'validation_failed' });
  t.throws(() => serializeDocument({ big: 'x'.repeat(5 * 1024 * 1024) }), { code: 'payload_too_large' });
});

t.test('documents and query operands share one JSON check, which names the problem', async (t) => {
  t.throws(() => checkDocument({ a: [1, Number.NaN] }), { message: 'The document holds a value that is not a finite number.' });
  t.throws(() => checkDocument({ at: new Date(0) }, 'patch'), { message: 'The patch holds a value that is not a plain JSON object.' });
  let deep: Json = 1;
  for (let i = 0; i < 70; i++) deep = { d: deep };
  t.throws(() => checkDocument(deep), { message: /^The document is nested too deeply \(depth limit \d+\)\.$/ });
  t.equal(jsonProblem(undefined, 1), 'is not a JSON value (undefined)');
  t.equal(jsonProblem({ a: [] }, 1), 'is nested too deeply (depth limit 1)');
  t.equal(jsonProblem({ a: [] }, 2), null);
});

t.test('key identity is the string form of strings and safe integers only', async (t) => {
  t.equal(keyOf('a'), 'a');
  t.equal(keyOf(7), '7');
  t.equal(keyOf(1.5), null);
  t.equal(keyOf(2 ** 53), null);
  t.equal(keyOf(null), null);
});

t.test('asOf resolves seqs and instants against commit times', async (t) => {
  const ts = [0, 1000, 2000, 2000, 5000];
  const tsOf = (seq: number): number => ts[seq]!;
  t.equal(resolveAsOf(3, 4, tsOf), 3);
  t.equal(resolveAsOf('4', 4, tsOf), 4);
  t.throws(() => resolveAsOf(5, 4, tsOf), { code: 'validation_failed' });
  t.throws(() => resolveAsOf('-1', 4, tsOf), { code: 'validation_failed' });
  t.throws(() => resolveAsOf('yesterday', 4, tsOf), { code: 'validation_failed' });
  t.equal(resolveAsOf(new Date(999).toISOString(), 4, tsOf), 0, 'before the first commit: empty state');
  t.equal(resolveAsOf(new Date(2000).toISOString(), 4, tsOf), 3, 'equal to a ts includes that version');
  t.equal(resolveAsOf(new Date(4999).toISOString(), 4, tsOf), 3);
  t.equal(resolveAsOf('2100-01-01T00:00:00Z', 4, tsOf), 4, 'after the newest: the newest state');
  t.equal(resolveAsOf('1970-01-01T01:00:02+01:00', 4, tsOf), 3, 'offsets are honoured');
  for (const day of ['2026-11-31', '2026-02-29', '2025-13-01', '2026-00-10', '2026-04-00', '1900-02-29']) {
    t.throws(() => resolveAsOf(`${day}T00:00:00Z`, 4, tsOf), { code: 'validation_failed' }, `${day} does not exist`);
  }
  t.equal(resolveAsOf('2024-02-29T00:00:00Z', 4, tsOf), 4, 'a leap day exists');
  t.equal(resolveAsOf('0004-02-29T00:00:00Z', 4, tsOf), 0, 'so does one before year 100');
});
