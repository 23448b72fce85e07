// extractPath against the model it replaces: getSegments over a full JSON.parse, on random documents and paths.

import t from 'tap';
import fc from 'fast-check';
import { extractPath, getSegments } from '../../src/engine/json/index.js';
import type { Json } from '../../src/engine/types.js';

const names = fc.oneof(
  fc.constantFrom('a', 'b', 'group', 'city', '__proto__', 'constructor', 'a.b', '', 'x y', 'ü', '😀', '"q"', 'back\\slash', '\n'),
  fc.string({ maxLength: 4 }),
);

const docs = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.integer(),
    fc.string({ maxLength: 8 }),
    fc.constantFrom('}', '{', ']', '"', '\\', ',', ':', '\\"}'),
    fc.array(tie('value'), { maxLength: 3 }),
    tie('object'),
  ),
  object: fc.dictionary(names, tie('value'), { maxKeys: 5 }),
}));

function model(text: string, segments: string[]): Json | undefined {
  return getSegments(JSON.parse(text) as Json, segments);
}

t.test('extractPath agrees with getSegments(JSON.parse(text))', async (t) => {
  let found = 0;
  fc.assert(
    fc.property(docs.object, fc.array(names, { minLength: 1, maxLength: 3 }), fc.boolean(), (doc, segments, pretty) => {
      const text = pretty ? JSON.stringify(doc, null, 2) : JSON.stringify(doc);
      // Paths that exist are the interesting ones: also walk into the document's own names.
      const own = Object.keys(doc);
      const paths = [segments, own.length > 0 ? [own[0]!, ...segments.slice(1)] : segments];
      for (const path of paths) {
        const got = extractPath(text, path);
        if (got !== undefined) found++;
        if (!Object.is(JSON.stringify(got), JSON.stringify(model(text, path)))) return false;
      }
      return true;
    }),
    { numRuns: 3000 },
  );
  t.ok(found > 500, `${found} paths led to a value (the rest to a missing one)`);
});

t.test('examples: nested paths, arrays on the way, escaped names, -0 and big numbers', async (t) => {
  const text = JSON.stringify({ a: { b: [1, { c: 2 }], 'd"': 3, e: { f: 'x}' } }, n: -0, big: 1e308, s: 'a\\"b' });
  t.same(extractPath(text, ['a', 'e', 'f']), 'x}');
  t.same(extractPath(text, ['a', 'b']), [1, { c: 2 }]);
  t.equal(extractPath(text, ['a', 'b', 'c']), undefined, 'an array on the way ends the walk');
  t.equal(extractPath(text, ['a', 'missing']), undefined);
  t.equal(extractPath(text, ['a', 'd"']), 3, 'an escaped name is decoded');
  t.equal(extractPath(text, ['big']), 1e308);
  t.equal(extractPath(text, ['s']), 'a\\"b');
  t.equal(extractPath(text, ['n', 'x']), undefined, 'a scalar on the way ends the walk');
  t.equal(extractPath('{"__proto__":{"x":1}}', ['__proto__', 'x']), 1, '__proto__ is data, as JSON.parse makes it');
});
