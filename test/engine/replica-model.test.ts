// The cluster's commit decision against a single-node model (property-based). Three engines share one in-memory
// replicated log whose proposals and deliveries fast-check's scheduler interleaves at random, so nodes race for seqs,
// lose, catch up and decide again. Whatever the interleaving: every node ends with the same log, and running the
// commits that were accepted, one by one in log order, on a single node gives the same state at every seq. That is
// what makes the decision a pure function of the log prefix and the commit's own inputs.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { openDatabase, type Database, type ProposalOutcome, type ReplicaSink, type ReplicatedLog } from '../../src/engine/index.js';
import { DriftError, isDriftError } from '../../src/errors.js';

/** Proposals that lost the race for their seq, over every run: the property must have seen nodes decide again. */
let proposalsLost = 0;
/**
 * The shared log refuses proposals larger than this, as etcd does past --max-request-bytes: a group of several
 * commits is then proposed again in smaller groups (a proposal of one commit is at most about 260 bytes here, of two 300 to 440).
 */
const proposalBytesMax = 300;
let proposalsTooLarge = 0;

/** The shared log: batches in order; a proposal lands only if the head is the one it was decided against. */
class SharedLog {
  readonly batches: Buffer[] = [];
  head = 0;
  private readonly followers: Array<(value: Buffer) => void> = [];
  /** Interleaves proposals and deliveries; null runs them at once (setup). */
  scheduler: fc.Scheduler | null = null;

  link(): ReplicatedLog {
    let sink: ReplicaSink | null = null;
    let chain: Promise<void> = Promise.resolve();
    const step = (): Promise<void> => (this.scheduler === null ? Promise.resolve() : this.scheduler.schedule(Promise.resolve(), 'step'));
    return {
      start: async (given) => {
        sink = given;
        const deliverInOrder = (value: Buffer): void => {
          chain = chain.then(step).then(() => sink!.deliver(value));
        };
        for (const value of this.batches) deliverInOrder(value);
        this.followers.push(deliverInOrder);
        await chain;
      },
      propose: async (batch): Promise<ProposalOutcome> => {
        await step();
        // As etcd's --max-request-bytes: refused before it is ordered, so it never lands.
        if (this.scheduler !== null && batch.value.length > proposalBytesMax) {
          proposalsTooLarge++;
          throw new DriftError('payload_too_large', 'etcdserver: request is too large');
        }
        if (this.head !== batch.head) {
          proposalsLost++;
          return 'lost';
        }
        this.head = batch.lastSeq;
        this.batches.push(batch.value);
        for (const follower of this.followers) follower(batch.value);
        return 'appended';
      },
      refusal: () => null,
      close: async () => {},
    };
  }
}

type Op =
  | { kind: 'put' | 'create'; node: number; key: string; v: number }
  | { kind: 'patch'; node: number; key: string; field: 'a' | 'b'; v: number }
  | { kind: 'delete'; node: number; key: string }
  | { kind: 'keyed'; node: number; key: string; idempotencyKey: string; v: number }
  | { kind: 'transfer'; node: number; from: number; to: number; amount: number };

const keys = ['k1', 'k2', 'k3'];
const accounts = 3;

const opArbitrary: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constantFrom('put' as const, 'create' as const), node: fc.nat(2), key: fc.constantFrom(...keys), v: fc.nat(99) }),
  fc.record({ kind: fc.constant('patch' as const), node: fc.nat(2), key: fc.constantFrom(...keys), field: fc.constantFrom('a' as const, 'b' as const), v: fc.nat(99) }),
  fc.record({ kind: fc.constant('delete' as const), node: fc.nat(2), key: fc.constantFrom(...keys) }),
  // The same Idempotency-Key sent to several nodes: at most one of them may commit it.
  fc.record({ kind: fc.constant('keyed' as const), node: fc.nat(2), key: fc.constantFrom(...keys), idempotencyKey: fc.constantFrom('i1', 'i2'), v: fc.nat(99) }),
  fc
    .record({ kind: fc.constant('transfer' as const), node: fc.nat(2), from: fc.nat(accounts - 1), to: fc.nat(accounts - 1), amount: fc.integer({ min: 1, max: 9 }) })
    .filter((op) => op.from !== op.to),
);

/** Runs one op on a database; answers the seq it committed at, or null when it was refused. */
async function run(db: Database, op: Op): Promise<number | null> {
  try {
    switch (op.kind) {
      case 'put':
        return (await db.put({ table: 'items', key: op.key, doc: { v: op.v } })).seq;
      case 'create':
        return (await db.put({ table: 'items', key: op.key, doc: { v: op.v }, ifNoneMatch: true })).seq;
      case 'patch':
        return (await db.patch({ table: 'items', key: op.key, patch: { [op.field]: op.v } })).seq;
      case 'delete':
        return (await db.delete({ table: 'items', key: op.key })).seq;
      case 'keyed': {
        // As the idempotency service does: a key whose answer is stored is replayed, not written again.
        if (db.idempotencyEntry('u', op.idempotencyKey) !== null) return null;
        const idempotency = { user: 'u', key: op.idempotencyKey, fingerprint: 'f', expiresAt: Date.now() + 60_000, answer: () => '{}' };
        return (await db.put({ table: 'items', key: op.key, doc: { v: op.v }, idempotency })).seq;
      }
      case 'transfer': {
        const tx = db.begin({ isolation: 'serializable' });
        try {
          const from = db.get({ table: 'accounts', key: `a${op.from}`, tx }).doc.balance as number;
          const to = db.get({ table: 'accounts', key: `a${op.to}`, tx }).doc.balance as number;
          await db.put({ table: 'accounts', key: `a${op.from}`, doc: { balance: from - op.amount }, tx });
          await db.put({ table: 'accounts', key: `a${op.to}`, doc: { balance: to + op.amount }, tx });
          return (await tx.commit()).seq;
        } finally {
          if (tx.state === 'active' && !tx.committing) tx.rollback();
        }
      }
    }
  } catch (error) {
    if (isDriftError(error) && ['precondition_failed', 'row_not_found', 'serialization_failure', 'deadlock_detected', 'lock_timeout', 'idempotency_in_progress'].includes(error.code)) return null;
    throw error;
  }
}

async function setup(db: Database): Promise<void> {
  await db.createTable({ name: 'items', primaryKey: 'id' });
  await db.createTable({ name: 'accounts', primaryKey: 'id' });
  const tx = db.begin({ isolation: 'read_committed' });
  for (let i = 0; i < accounts; i++) await db.put({ table: 'accounts', key: `a${i}`, doc: { balance: 100 }, tx });
  await tx.commit();
}

/** Both tables' rows as of `seq`, as text. */
function stateAt(db: Database, seq: number): string {
  return JSON.stringify(['items', 'accounts'].map((table) => db.scan({ table, asOf: seq, limit: 100 }).rows));
}

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'driftdb-replica-model-'));
}

t.test('raced commits give the same log on every node and the same states as one node running them in log order', async (t) => {
  const dirs: string[] = [];
  t.teardown(() => {
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  });
  await fc.assert(
    fc.asyncProperty(fc.array(opArbitrary, { minLength: 1, maxLength: 12 }), fc.scheduler(), async (ops, scheduler) => {
      const shared = new SharedLog();
      const nodes: Database[] = [];
      for (let i = 0; i < 3; i++) {
        const dir = tempDir();
        dirs.push(dir);
        nodes.push(await openDatabase({ dataDir: dir, replicatedLog: shared.link(), clusterCommitTimeoutMs: 60_000 }));
      }
      const modelDir = tempDir();
      dirs.push(modelDir);
      const model = await openDatabase({ dataDir: modelDir });
      try {
        await setup(nodes[0]!);
        await setup(model);
        shared.scheduler = scheduler;
        const results = await scheduler.waitFor(Promise.all(ops.map((op) => run(nodes[op.node]!, op))));
        // A commit is answered once applied on its own node: the other nodes' deliveries may still be scheduled.
        await scheduler.waitAll();
        shared.scheduler = null;
        const head = shared.head;
        await Promise.all(nodes.map((db) => db.waitForSeq(head, 10_000)));
        // Every node holds the same log.
        const states = nodes.map((db) => stateAt(db, head));
        if (states[1] !== states[0] || states[2] !== states[0]) throw new Error('the nodes disagree');
        // The accepted commits, in log order, on one node: the same state at every seq.
        const accepted = ops.map((op, i) => ({ op, seq: results[i]! })).filter((r) => r.seq !== null).sort((a, b) => a.seq! - b.seq!);
        const keyed = accepted.flatMap(({ op }) => (op.kind === 'keyed' ? [op.idempotencyKey] : []));
        if (new Set(keyed).size !== keyed.length) throw new Error(`an Idempotency-Key was committed twice: ${keyed.join(', ')}`);
        for (const { op, seq } of accepted) {
          const modelSeq = await run(model, op);
          if (modelSeq !== seq) throw new Error(`op ${JSON.stringify(op)} committed at ${seq} in the cluster, at ${modelSeq} on one node`);
          if (stateAt(model, seq) !== stateAt(nodes[0]!, seq)) throw new Error(`the states at seq ${seq} differ`);
        }
        if (head !== model.durableSeq) throw new Error(`the cluster log ends at ${head}, the model at ${model.durableSeq}`);
        const total = (nodes[0]!.scan({ table: 'accounts' }).rows as Array<{ balance: number }>).reduce((sum, row) => sum + row.balance, 0);
        if (total !== accounts * 100) throw new Error(`the accounts hold ${total}`);
      } finally {
        await Promise.all([...nodes, model].map((db) => db.close()));
      }
    }),
    { numRuns: 25 },
  );
  t.ok(proposalsLost > 0, `nodes lost races for seqs and decided again (${proposalsLost} proposals lost)`);
  t.ok(proposalsTooLarge > 0, `groups refused as too large were proposed again in smaller ones (${proposalsTooLarge} refused)`);
});
