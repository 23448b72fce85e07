// The answer writers of src/routes/answers.ts that do by hand what JSON.stringify and Date do: their output must be
// exactly theirs.

import fc from 'fast-check';
import t from 'tap';
import { isoFormatter } from '../../src/routes/answers.js';

t.test('isoFormatter writes what Date.prototype.toISOString writes, for any instants in any order', async (t) => {
  const instant = fc.oneof(
    // Commit times: near one another, mostly the same day, sometimes across midnight.
    fc.integer({ min: 1_700_000_000_000, max: 1_700_000_000_000 + 3 * 86_400_000 }),
    // Anything Date can hold, years below 0 and past 9999 included.
    fc.integer({ min: -8.64e15, max: 8.64e15 }),
    fc.double({ min: -1e13, max: 1e13, noNaN: true }),
  );
  fc.assert(
    fc.property(fc.array(instant, { maxLength: 50 }), (instants) => {
      const iso = isoFormatter();
      for (const ms of instants) {
        const expected = new Date(ms).toISOString();
        if (iso(ms) !== expected) throw new Error(`${ms}: ${iso(ms)} ≠ ${expected}`);
      }
    }),
    { numRuns: 2000 },
  );
  const iso = isoFormatter();
  t.equal(iso(Date.UTC(2026, 11, 8, 23, 59, 59, 999)), '2026-12-08T23:59:59.999Z');
  t.equal(iso(Date.UTC(2026, 11, 9, 0, 0, 0, 5)), '2026-12-09T00:00:00.005Z', 'across midnight');
  t.equal(iso(Date.UTC(2026, 11, 9, 0, 0, 0, 50)), '2026-12-09T00:00:00.050Z');
});
