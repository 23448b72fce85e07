// In-process micro-benchmark of an Idempotency-Key's cost on a row PUT, without HTTP: the engine's write with and
// without an entry, and the service's run (fingerprint, lookup, answer) around it, as CPU µs per write. Rounds
// alternate A B B A so a drift in the machine's load falls on both sides. Not a test: nothing is asserted.
//
//   node dist/bench/idempotency-micro.js [--writes N] [--in-flight N] [--rounds N]

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase, type CommitOutcome, type Database, type WriteResult } from '../src/engine/index.js';
import { IdempotencyService, type StoredAnswer } from '../src/service/idempotency.js';
import { benchDoc } from './docs.js';
import { parseIntegerOptions } from './micro-options.js';

interface Options {
  writes: number;
  inFlight: number;
  rounds: number;
}

function parseOptions(argv: string[]): Options {
  return parseIntegerOptions<Options>(argv, { writes: 20_000, inFlight: 32, rounds: 3 }, 1);
}

const table = 'micro';
const user = 'bench';
const body = JSON.stringify(benchDoc(0, 1));

/** The answer the row routes send for a write (routes/rows.ts writeAnswer). */
function writeAnswer(result: WriteResult): StoredAnswer {
  const json = JSON.stringify({ key: result.key, seq: result.seq });
  return { status: result.created ? 201 : 200, json, ...(result.seq !== null ? { headers: { etag: `"${result.seq}"` } } : {}) };
}

type Mode = 'engine' | 'engine+key' | 'service' | 'service+key';

/** One write as `mode` makes it; `n` makes its row key (and Idempotency-Key) new. */
async function write(db: Database, service: IdempotencyService, mode: Mode, prefix: string, n: number): Promise<void> {
  const key = `${prefix}-${n}`;
  // The route parses the body it received; so does every mode, so only the key's part differs.
  const doc = JSON.parse(body) as unknown;
  if (mode === 'engine') {
    await db.put({ table, key, doc });
    return;
  }
  if (mode === 'engine+key') {
    // The entry as the service makes it, with a fixed fingerprint: the engine's part alone.
    const answer = (outcome: CommitOutcome): StoredAnswer => writeAnswer({ key, seq: outcome.seq, created: outcome.created === true });
    const idempotency = { user, key, fingerprint: 'f'.repeat(43), expiresAt: Date.now() + 3600_000, answer: (outcome: CommitOutcome) => JSON.stringify(answer(outcome)) };
    writeAnswer(await db.put({ table, key, doc, idempotency }));
    return;
  }
  const call = { user, key: mode === 'service+key' ? key : undefined, method: 'PUT', path: `/v1/tables/${table}/rows/${key}`, body };
  const answer = (outcome: CommitOutcome): StoredAnswer => writeAnswer({ key, seq: outcome.seq, created: outcome.created === true });
  const result = await service.run(call, async (entry) => writeAnswer(await db.put({ table, key, doc, ...(entry === undefined ? {} : { idempotency: entry(answer) }) })));
  // What the route then sends: the status, the headers and the JSON text.
  if (result.json.length === 0) throw new Error('empty answer');
}

/** `writes` writes with `inFlight` at a time; CPU µs (user + system, every thread of the process) per write. */
async function measure(db: Database, service: IdempotencyService, mode: Mode, options: Options, prefix: string): Promise<{ cpuMicros: number; wallMicros: number }> {
  let next = 0;
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  const worker = async (): Promise<void> => {
    while (next < options.writes) await write(db, service, mode, prefix, next++);
  };
  await Promise.all(Array.from({ length: options.inFlight }, worker));
  const used = process.cpuUsage(cpu);
  const wall = Number(process.hrtime.bigint() - start) / 1000;
  return { cpuMicros: (used.user + used.system) / options.writes, wallMicros: wall / options.writes };
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const dir = mkdtempSync(join(tmpdir(), 'drift-idem-micro-'));
  const db = await openDatabase({ dataDir: dir });
  try {
    await db.createTable({ name: table, primaryKey: 'id', indexes: [] });
    const service = new IdempotencyService(() => db, { ttlMs: 24 * 3600_000 });
    const pairs: Array<[Mode, Mode]> = [
      ['engine', 'engine+key'],
      ['service', 'service+key'],
    ];
    // Warm-up: every mode once, discarded.
    for (const [a, b] of pairs) {
      await measure(db, service, a, { ...options, writes: Math.min(options.writes, 5000) }, `warm-${a}`);
      await measure(db, service, b, { ...options, writes: Math.min(options.writes, 5000) }, `warm-${b}`);
    }
    for (const [a, b] of pairs) {
      const cpu: Record<string, number[]> = { [a]: [], [b]: [] };
      const wall: Record<string, number[]> = { [a]: [], [b]: [] };
      for (let round = 0; round < options.rounds; round++) {
        for (const mode of round % 2 === 0 ? [a, b, b, a] : [b, a, a, b]) {
          const m = await measure(db, service, mode, options, `r${round}-${mode}-${cpu[mode]!.length}`);
          cpu[mode]!.push(m.cpuMicros);
          wall[mode]!.push(m.wallMicros);
        }
      }
      const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
      const line = (mode: Mode) =>
        `${mode.padEnd(12)} cpu/write ${median(cpu[mode]!).toFixed(1).padStart(6)} µs (${cpu[mode]!.map((x) => x.toFixed(0)).join('/')})  wall/write ${median(wall[mode]!).toFixed(1)} µs`;
      console.log(line(a));
      console.log(line(b));
      console.log(`${''.padEnd(12)} key adds ${(median(cpu[b]!) - median(cpu[a]!)).toFixed(1)} µs cpu; throughput ratio ${(median(wall[a]!) / median(wall[b]!)).toFixed(3)}`);
    }
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
