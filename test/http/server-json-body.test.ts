// The request body parser on its own: native JSON semantics, depth and number checks outside strings only.

import fc from 'fast-check';
import t from 'tap';
import { DriftError } from '../../src/errors.js';
import { parseJsonBody } from '../../src/security/json-body.js';

function codeOf(fn: () => unknown): string | null {
  try {
    fn();
    return null;
  } catch (error) {
    return error instanceof DriftError ? error.code : `not a DriftError: ${String(error)}`;
  }
}

t.test('valid JSON parses as JSON.parse does; an empty body is no body', async (t) => {
  t.same(parseJsonBody('{"a":[1,2.5,"x",null,true]}', 64), { a: [1, 2.5, 'x', null, true] });
  t.equal(parseJsonBody('', 64), undefined);
  t.equal(parseJsonBody('7', 64), 7);
});

t.test('text that is not JSON is bad_request', async (t) => {
  for (const text of ['{', '{"a":}', 'undefined', "{'a':1}", '{"a":1}x', ' ']) {
    t.equal(codeOf(() => parseJsonBody(text, 64)), 'bad_request', JSON.stringify(text));
  }
});

t.test('a "__proto__" key is an own data property and the prototype is untouched', async (t) => {
  const value = parseJsonBody('{"__proto__":{"polluted":true},"constructor":{"prototype":{"x":1}}}', 64) as Record<string, unknown>;
  t.ok(Object.hasOwn(value, '__proto__'));
  t.equal(Object.getPrototypeOf(value), Object.prototype);
  t.equal(({} as Record<string, unknown>).polluted, undefined);
});

t.test('integer literals beyond ±(2^53−1) are validation_failed; their neighbours inside the range pass', async (t) => {
  const refused = ['9007199254740992', '-9007199254740992', '99999999999999999', '1' + '0'.repeat(400), '[1, 9007199254740993]'];
  for (const text of refused) t.equal(codeOf(() => parseJsonBody(text, 64)), 'validation_failed', text.slice(0, 30));
  const accepted = ['9007199254740991', '-9007199254740991', '0', '-0', '1000000000000000', '[1,2,3]'];
  for (const text of accepted) t.equal(codeOf(() => parseJsonBody(text, 64)), null, text);
});

t.test('numbers with a fraction or exponent are doubles and pass, unless beyond the double range', async (t) => {
  for (const text of ['1e21', '1E+21', '12345678901234567890.0', '-1.5e-300', '9007199254740993.5', '1e308']) {
    t.equal(codeOf(() => parseJsonBody(text, 64)), null, text);
  }
  for (const text of ['1e400', '-1E309', '{"a":[1e999]}']) {
    t.equal(codeOf(() => parseJsonBody(text, 64)), 'validation_failed', text);
  }
});

t.test('digits and brackets inside strings, escaped quotes included, are not numbers or nesting', async (t) => {
  const texts = [
    '{"n":"12345678901234567890"}',
    '{"12345678901234567890":1}',
    '{"s":"\\\\","n":1}',
    '{"s":"\\"12345678901234567890\\"","n":2}',
    `{"s":"${'['.repeat(100)}"}`,
    '{"s":"\\\\\\"[[[[","t":"]]]"}',
  ];
  for (const text of texts) t.equal(codeOf(() => parseJsonBody(text, 3)), null, text);
  t.equal(codeOf(() => parseJsonBody('{"s":"\\\\","n":12345678901234567890}', 64)), 'validation_failed', 'after an escaped backslash the string ends');
});

t.test('nesting is limited to depthMax levels of objects and arrays', async (t) => {
  const nested = (levels: number): string => '['.repeat(levels) + ']'.repeat(levels);
  t.equal(codeOf(() => parseJsonBody(nested(64), 64)), null);
  t.equal(codeOf(() => parseJsonBody(nested(65), 64)), 'validation_failed');
  t.equal(codeOf(() => parseJsonBody('{"a":{"b":[{}]}}', 4)), null);
  t.equal(codeOf(() => parseJsonBody('{"a":{"b":[{"c":[]}]}}', 4)), 'validation_failed');
  t.equal(codeOf(() => parseJsonBody('[[],[],[],[],[]]', 2)), null, 'siblings do not add up');
  t.equal(codeOf(() => parseJsonBody(nested(500_000), 64)), 'validation_failed', 'very deep input does not crash');
});

t.test('for any JSON value, the verdict matches a reference walk of the parsed value', async (t) => {
  const depthOf = (value: unknown): number =>
    typeof value === 'object' && value !== null ? 1 + Math.max(0, ...Object.values(value).map(depthOf)) : 0;
  // JSON.stringify writes integral doubles below 1e21 as plain digits: an unsafe one must then be refused.
  const hasUnsafeIntegerLiteral = (value: unknown): boolean =>
    typeof value === 'number'
      ? /^-?\d+$/.test(JSON.stringify(value)) && !Number.isSafeInteger(value)
      : typeof value === 'object' && value !== null && Object.values(value).some(hasUnsafeIntegerLiteral);
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 6 }), (value) => {
      const text = JSON.stringify(value);
      const refused = depthOf(value) > 4 || hasUnsafeIntegerLiteral(value);
      return codeOf(() => parseJsonBody(text, 4)) === (refused ? 'validation_failed' : null);
    }),
    { numRuns: 1000 },
  );
  t.pass('property held');
});
