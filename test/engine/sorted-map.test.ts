// SortedMap against a model (a plain Map, sorted on demand), plus structural invariants and a timing print.

import t from 'tap';
import fc from 'fast-check';
import { SortedMap, type RangeOptions } from '../../src/engine/storage/sorted-map.js';

const byNumber = (a: number, b: number): number => a - b;
const byString = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** The reference: a Map and, when asked, its keys sorted. */
class Model {
  readonly map = new Map<number, number>();
  sortedKeys(): number[] {
    return [...this.map.keys()].sort(byNumber);
  }
  range(options: RangeOptions<number>): [number, number][] {
    return this.sortedKeys()
      .filter((k) => inRange(k, options))
      .map((k) => [k, this.map.get(k) as number]);
  }
  /** The smallest key in range greater than `previous` (or the first in range), as the model is now. */
  nextAfter(previous: number | undefined, options: RangeOptions<number>): number | undefined {
    let best: number | undefined;
    for (const k of this.map.keys()) {
      if ((previous === undefined || k > previous) && (best === undefined || k < best) && inRange(k, options)) best = k;
    }
    return best;
  }
}

function inRange(k: number, { after, from, to, toInclusive }: RangeOptions<number>): boolean {
  if (after !== undefined && !(k > after)) return false;
  if (from !== undefined && !(k >= from)) return false;
  if (to !== undefined && (toInclusive ? k > to : k >= to)) return false;
  return true;
}

// Keys cluster low (so point ops and range bounds hit stored keys) or spread wide (deep trees from bulk runs).
const keyArb = fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 20_000 }));
const rangeArb: fc.Arbitrary<RangeOptions<number>> = fc.oneof(
  fc.record({ after: keyArb }, { requiredKeys: [] }),
  fc.record({ from: keyArb, to: keyArb, toInclusive: fc.boolean() }, { requiredKeys: [] }),
  fc.record({ after: keyArb, to: keyArb, toInclusive: fc.boolean() }, { requiredKeys: [] }),
);
const mutationArb = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), key: keyArb, value: fc.integer() }),
  fc.record({ kind: fc.constant('delete' as const), key: keyArb }),
);
type Mutation = typeof mutationArb extends fc.Arbitrary<infer M> ? M : never;
/** A mutation during iteration, at `delta` from the key the cursor returned last: it lands in the cursor's leaf. */
const nearbyMutationArb = fc.record({ kind: fc.constantFrom('set' as const, 'delete' as const), delta: fc.integer({ min: -4, max: 8 }) });
type NearbyMutation = typeof nearbyMutationArb extends fc.Arbitrary<infer M> ? M : never;

const opArb = fc.oneof(
  { weight: 6, arbitrary: mutationArb },
  // Bulk runs build trees several levels deep (a branch holds 64 leaves of 128) and then empty them again.
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('setRun' as const),
      start: keyArb,
      count: fc.integer({ min: 1, max: 12_000 }),
      stride: fc.integer({ min: -3, max: 3 }).filter((s) => s !== 0),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('deleteRun' as const),
      start: keyArb,
      count: fc.integer({ min: 1, max: 12_000 }),
      stride: fc.integer({ min: 1, max: 3 }),
    }),
  },
  // Thinning deletes a pseudo-random share of all keys, so leaves everywhere underflow, borrow and merge.
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('thin' as const), seed: fc.nat(), keepOneIn: fc.integer({ min: 1, max: 6 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('iterate' as const), range: rangeArb }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('iterateWhileMutating' as const),
      range: rangeArb,
      steps: fc.array(fc.array(fc.oneof(mutationArb, nearbyMutationArb), { maxLength: 3 }), { maxLength: 40, size: 'max' }),
    }),
  },
);
type Op = typeof opArb extends fc.Arbitrary<infer O> ? O : never;

function mutate(map: SortedMap<number, number>, model: Model, m: Mutation): void {
  if (m.kind === 'set') {
    map.set(m.key, m.value);
    model.map.set(m.key, m.value);
  } else {
    const had = model.map.delete(m.key);
    if (map.delete(m.key) !== had) throw new Error(`delete(${m.key}) should answer ${had}`);
  }
}

function apply(t: Checker, map: SortedMap<number, number>, model: Model, op: Op): void {
  switch (op.kind) {
    case 'set':
    case 'delete':
      mutate(map, model, op);
      break;
    case 'setRun':
      for (let i = 0, k = op.start; i < op.count && k >= 0; i++, k += op.stride) mutate(map, model, { kind: 'set', key: k, value: i });
      break;
    case 'deleteRun':
      for (let i = 0, k = op.start; i < op.count; i++, k += op.stride) mutate(map, model, { kind: 'delete', key: k });
      break;
    case 'thin':
      for (const k of [...model.map.keys()]) {
        if (Math.imul(k ^ op.seed, 0x9e3779b1) >>> 28 < 16 - 16 / op.keepOneIn) mutate(map, model, { kind: 'delete', key: k });
      }
      break;
    case 'iterate':
      t.same([...map.entries(op.range)], model.range(op.range), `entries(${JSON.stringify(op.range)})`);
      t.same([...map.keys(op.range)], model.range(op.range).map(([k]) => k));
      break;
    case 'iterateWhileMutating':
      iterateWhileMutating(map, model, op.range, op.steps);
      break;
  }
}

/** Checks the documented guarantee: each next() yields the smallest in-range key after the previous one, now. */
function iterateWhileMutating(
  map: SortedMap<number, number>,
  model: Model,
  range: RangeOptions<number>,
  steps: (Mutation | NearbyMutation)[][],
): void {
  const cursor = map.entries(range);
  let previous: number | undefined;
  for (let step = 0; ; step++) {
    const expected = model.nextAfter(previous, range);
    const result = cursor.next();
    if (expected === undefined) {
      if (!result.done) throw new Error(`cursor yielded ${JSON.stringify(result.value)} past the end`);
      return;
    }
    if (result.done) throw new Error(`cursor ended early; expected ${expected}`);
    const [key, value] = result.value;
    if (key !== expected || value !== model.map.get(expected)) {
      throw new Error(`cursor yielded [${key}, ${value}]; expected [${expected}, ${model.map.get(expected)}]`);
    }
    previous = key;
    for (const m of steps[step] ?? []) {
      if ('key' in m) mutate(map, model, m);
      else if (m.kind === 'set') mutate(map, model, { kind: 'set', key: key + m.delta, value: step });
      else mutate(map, model, { kind: 'delete', key: key + m.delta });
    }
  }
}

function checkAll(t: Checker, map: SortedMap<number, number>, model: Model): void {
  map.assertInvariants();
  t.equal(map.size, model.map.size, 'size');
  const keys = model.sortedKeys();
  t.same(map.first(), keys.length ? [keys[0], model.map.get(keys[0])] : undefined, 'first()');
  const last = keys[keys.length - 1];
  t.same(map.last(), keys.length ? [last, model.map.get(last)] : undefined, 'last()');
  t.same([...map.keys()], keys, 'all keys in order');
  for (const probe of [0, 1, 77, 4096, 29_999, ...keys.slice(0, 50)]) {
    t.equal(map.get(probe), model.map.get(probe), `get(${probe})`);
    t.equal(map.has(probe), model.map.has(probe), `has(${probe})`);
  }
}

t.test('random set/delete/range-iterate sequences agree with a Map model', async (t) => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 50 }), (ops) => {
      const map = new SortedMap<number, number>(byNumber);
      const model = new Model();
      const quiet = quietChecker();
      for (const op of ops) {
        apply(quiet, map, model, op);
        map.assertInvariants();
      }
      checkAll(quiet, map, model);
      if (quiet.failures.length > 0) throw new Error(quiet.failures.join('\n'));
    }),
    { numRuns: 100 },
  );
  t.pass('model agreed on every run');
});

t.test('the model test can fail: a map that loses a key is caught', async (t) => {
  const map = new SortedMap<number, number>(byNumber);
  const model = new Model();
  for (let k = 0; k < 500; k++) mutate(map, model, { kind: 'set', key: k, value: k });
  model.map.set(1000, 1);
  const quiet = quietChecker();
  checkAll(quiet, map, model);
  t.ok(quiet.failures.length > 0, 'a missing key shows up as a failure');
});

t.test('deep trees: 200k random inserts and deletes keep every invariant and the order', async (t) => {
  const map = new SortedMap<number, number>(byNumber);
  const model = new Model();
  const random = fc.sample(fc.integer({ min: 0, max: 400_000 }), { numRuns: 200_000, seed: 42 });
  for (const k of random) mutate(map, model, { kind: 'set', key: k, value: k * 2 });
  map.assertInvariants();
  t.equal(map.size, model.map.size);
  for (const k of random.slice(0, 180_000)) mutate(map, model, { kind: 'delete', key: k });
  map.assertInvariants();
  t.same([...map.keys()], model.sortedKeys());
  for (const k of model.sortedKeys()) mutate(map, model, { kind: 'delete', key: k });
  map.assertInvariants();
  t.equal(map.size, 0);
  t.equal(map.first(), undefined);
  t.equal(map.last(), undefined);
  t.same([...map.entries()], []);
});

t.test('sorted input fills leaves completely (compact bulk load)', async (t) => {
  const map = new SortedMap<string, number>(byString);
  const n = 100_000;
  for (let i = 0; i < n; i++) map.set(rowKey(i), i);
  map.assertInvariants();
  t.equal(map.size, n);
  t.same(map.first(), [rowKey(0), 0]);
  t.same(map.last(), [rowKey(n - 1), n - 1]);
  t.same([...map.keys({ from: rowKey(500), to: rowKey(503) })], [rowKey(500), rowKey(501), rowKey(502)]);
  t.same([...map.keys({ after: rowKey(500), to: rowKey(502), toInclusive: true })], [rowKey(501), rowKey(502)]);
  t.equal(map.get(rowKey(77_777)), 77_777);
  t.equal(map.get('row-x'), undefined);
});

t.test('fromSorted builds a valid tree at every size around node boundaries, and it then takes any change', async (t) => {
  // 128 entries fill a leaf and 64 leaves a branch: sizes around those multiples exercise the evened-out last nodes.
  const sizes = [0, 1, 2, 31, 32, 127, 128, 129, 160, 161, 128 * 64, 128 * 64 + 1, 128 * 64 + 31, 128 * 65 + 1, 128 * 64 * 64 + 129];
  for (const n of sizes) {
    const keys = Array.from({ length: n }, (_, i) => i * 2);
    const map = SortedMap.fromSorted(byNumber, keys, keys.map((k) => k + 1));
    map.assertInvariants();
    const model = new Model();
    for (const k of keys) model.map.set(k, k + 1);
    const quiet = quietChecker();
    checkAll(quiet, map, model);
    // Appends, inserts between keys and deletes from the bulk-built shape.
    for (let i = 0; i < 300; i++) mutate(map, model, { kind: 'set', key: 2 * n + i, value: i });
    for (let i = 0; i < Math.min(n, 4000); i += 3) mutate(map, model, { kind: 'set', key: 2 * i + 1, value: i });
    for (let i = 0; i < n; i += 2) mutate(map, model, { kind: 'delete', key: 2 * i });
    map.assertInvariants();
    checkAll(quiet, map, model);
    if (quiet.failures.length > 0) t.fail(`size ${n}: ${quiet.failures.slice(0, 3).join('; ')}`);
  }
  t.pass('every size checked');
});

t.test('fromSorted refuses keys that do not strictly ascend', async (t) => {
  t.throws(() => SortedMap.fromSorted(byNumber, [1, 3, 3], [0, 0, 0]), { name: 'AssertionError' });
  t.throws(() => SortedMap.fromSorted(byNumber, [2, 1], [0, 0]), { name: 'AssertionError' });
  t.throws(() => SortedMap.fromSorted(byNumber, [1, 2], [0]), { name: 'AssertionError' });
});

t.test('iterating the whole map while deleting every key it yields', async (t) => {
  const map = new SortedMap<number, number>(byNumber);
  for (let k = 0; k < 5000; k++) map.set(k, k);
  const seen: number[] = [];
  for (const [k] of map.entries()) {
    seen.push(k);
    map.delete(k);
    if (k % 2 === 0) map.set(k + 0.5, 0); // inserted ahead of the cursor: must come next
  }
  t.equal(seen.length, 5000 + 2500);
  t.ok(seen.every((k, i) => i === 0 || k > seen[i - 1]), 'strictly ascending');
  t.equal(map.size, 0);
  map.assertInvariants();
});

t.test('a range that starts both after and from a key is a programmer error', async (t) => {
  const map = new SortedMap<number, number>(byNumber);
  t.throws(() => map.entries({ after: 1, from: 2 }), { name: 'AssertionError' });
});

function rowKey(i: number): string {
  return `row-${String(i).padStart(8, '0')}`;
}

/** The two checks the model helpers use; quietChecker collects failures instead of a TAP line per check. */
interface Checker {
  equal(actual: unknown, expected: unknown, message?: string): void;
  same(actual: unknown, expected: unknown, message?: string): void;
}

function quietChecker(): Checker & { failures: string[] } {
  const failures: string[] = [];
  const show = (value: unknown): string => String(JSON.stringify(value)).slice(0, 200);
  return {
    failures,
    equal(actual, expected, message = 'equal') {
      if (!Object.is(actual, expected)) failures.push(`${message}: ${show(actual)} !== ${show(expected)}`);
    },
    same(actual, expected, message = 'same') {
      if (JSON.stringify(actual) !== JSON.stringify(expected)) {
        failures.push(`${message}: ${show(actual)} vs ${show(expected)}`);
      }
    },
  };
}
