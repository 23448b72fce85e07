// The idempotency store keeps per key only where its commit is: expiry, a key recorded again, the bound on keys, and
// whole entries read back from the commit's record (or kept whole when a checkpoint loaded them).

import t from 'tap';
import { IdempotencyStore } from '../../src/engine/mvcc/idempotency.js';
import type { CommitRecord } from '../../src/engine/types.js';
import { limits } from '../../src/limits.js';

/** Records whose only change is the entry of key `k<seq>` by user `u`. */
function recordAt(seq: number): CommitRecord {
  return { seq, ts: seq, changes: [{ kind: 'idempotency', user: 'u', key: `k${seq}`, fingerprint: `f${seq}`, answer: `a${seq}`, expiresAt: 1000 + seq }] };
}

function slot(seq: number, key = `k${seq}`, expiresAt = 1000 + seq) {
  return { user: 'u', key, seq, expiresAt, answerChars: 2 };
}

t.test('an entry is found until it expires, read whole from its record', async (t) => {
  const reads: number[] = [];
  const store = new IdempotencyStore((seq) => (reads.push(seq), recordAt(seq)));
  store.record(slot(1), 0);
  store.record(slot(2), 0);
  t.same(store.slot('u', 'k1', 0), { seq: 1, expiresAt: 1001 });
  t.equal(store.slot('v', 'k1', 0), null, 'keys are per user');
  t.same(store.entry('u', 'k2', store.slot('u', 'k2', 0)!), { user: 'u', key: 'k2', fingerprint: 'f2', answer: 'a2', expiresAt: 1002, seq: 2 });
  t.same(reads, [2], 'only a whole entry reads its record');
  t.equal(store.slot('u', 'k1', 1001), null, 'expired at its expiresAt');
  store.record(slot(3), 1001.5);
  t.equal(store.size, 2, 'the expired entry is dropped when the next is recorded');
  t.same(
    store.liveUpTo(2, 0).map((s) => s.key),
    ['k2'],
    'a checkpoint at seq 2 holds the live entries up to it',
  );
});

t.test('a key recorded again counts once, at its newer commit; the stale slot drops nothing', async (t) => {
  const store = new IdempotencyStore(recordAt);
  store.record(slot(1, 'same', 5000), 0);
  store.record(slot(2), 0);
  store.record(slot(3, 'same', 1003), 0);
  t.equal(store.size, 2);
  t.same(store.slot('u', 'same', 0), { seq: 3, expiresAt: 1003 });
  store.record(slot(4), 1002.5);
  t.same(store.slot('u', 'same', 1002.5), { seq: 3, expiresAt: 1003 }, 'the first slot of the key, stale, did not drop it');
});

t.test('past the bound on keys the oldest go first, across the queue being compacted', async (t) => {
  const store = new IdempotencyStore(recordAt);
  const entriesMax = limits.idempotencyEntriesMax;
  const total = entriesMax + 5000;
  for (let seq = 1; seq <= total; seq++) store.record(slot(seq, `k${seq}`, Number.MAX_SAFE_INTEGER), 0);
  t.equal(store.size, entriesMax);
  t.equal(store.slot('u', 'k5000', 0), null, 'the oldest were dropped');
  t.same(store.slot('u', `k${total}`, 0), { seq: total, expiresAt: Number.MAX_SAFE_INTEGER });
  t.same(store.slot('u', 'k5001', 0), { seq: 5001, expiresAt: Number.MAX_SAFE_INTEGER }, 'positions still hold after compaction');
});

t.test('an entry loaded from a checkpoint stays whole: its record may be below the log', async (t) => {
  const store = new IdempotencyStore(() => {
    throw new Error('no record below the log');
  });
  store.load({ user: 'u', key: 'old', fingerprint: 'fp', answer: 'ans\u0000with nul', expiresAt: 9000, seq: 7 }, 0);
  t.same(store.entry('u', 'old', store.slot('u', 'old', 0)!), { user: 'u', key: 'old', fingerprint: 'fp', answer: 'ans\u0000with nul', expiresAt: 9000, seq: 7 });
});

t.test("each slot keeps its own seq, expiry and answer size across the queue's growth and compaction", async (t) => {
  const store = new IdempotencyStore(recordAt);
  // Answers of a fixed size, so the bound on answer characters keeps exactly `kept` of them: past it the oldest go.
  const kept = 3000;
  const answerChars = Math.floor(limits.idempotencyAnswerCharsMax / kept);
  const total = 3 * kept;
  for (let seq = 1; seq <= total; seq++) store.record({ user: 'u', key: `k${seq}`, seq, expiresAt: 10_000 + seq, answerChars }, 0);
  t.equal(store.size, kept, 'the bound on answer characters counted every slot once');
  t.equal(store.slot('u', `k${total - kept}`, 0), null);
  t.same(store.slot('u', `k${total - kept + 1}`, 0), { seq: total - kept + 1, expiresAt: 10_000 + total - kept + 1 });
  const live = store.liveUpTo(total, 0);
  t.equal(live.length, kept);
  t.ok(
    live.every((slot) => slot.key === `k${slot.seq}` && slot.expiresAt === 10_000 + slot.seq && slot.answerChars === answerChars),
    'every live slot has its own numbers',
  );
  t.same(store.slot('u', `k${total}`, 10_000 + total), null, 'and expires at its own expiry');
});
