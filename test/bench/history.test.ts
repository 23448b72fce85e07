// The history scenario's plumbing at a tiny scale, against the real server: the loader writes every version of every
// key in order (and the long-history key's versions), the latency worker reads them back without errors, and the
// scenario and the memory-guard scenario produce their rows. Durations and rates are the bench's to measure, not these tests'.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { workerScripts, type BenchContext } from '../../bench/context.js';
import { groupsFor, historyDoc, rowKey } from '../../bench/docs.js';
import { driftCall, serverLogPath, startDriftServer, stopDriftServer } from '../../bench/drift-server.js';
import type { HistoryLoadJob, HistoryLoadSummary } from '../../bench/history-loader.js';
import type { LatencyJob, LatencySummary } from '../../bench/latency-worker.js';
import { parseOptions } from '../../bench/options.js';
import { makeTempDir, removeTempDir, runWorker } from '../../bench/procs.js';
import { historyScenarios } from '../../bench/scenario-history.js';
import { memoryGuardScenario } from '../../bench/scenario-memory-guard.js';
import { createTable } from '../../bench/scenarios-http.js';

const password = 'history-test-password';

function context(t: Test, argv: string[]): BenchContext {
  const tmpRoot = makeTempDir('history-test');
  t.teardown(() => removeTempDir(tmpRoot));
  // As run.ts lays a run's temp dir out: the servers' logs go here.
  mkdirSync(join(tmpRoot, 'logs'));
  return { options: parseOptions(argv), ceilingUrl: null, ceilingPid: null, ceilingWorkIterationsPerMicro: null, tmpRoot, password };
}

t.test('a history document is about 200 bytes and its grp changes in 1 of 10 versions', async (t) => {
  const groups = groupsFor(100_000);
  const bytes = Buffer.byteLength(JSON.stringify(historyDoc(99_999, 199, groups)));
  t.ok(bytes >= 190 && bytes <= 230, `${bytes} bytes`);
  const grps = Array.from({ length: 30 }, (_, version) => historyDoc(5, version, groups)['grp']);
  const changes = grps.filter((grp, version) => version > 0 && grp !== grps[version - 1]).length;
  t.equal(changes, 2, 'versions 10 and 20 move the key to another grp');
});

t.test('the loader writes every version of every key in order, and the reads find them', async (t) => {
  const dir = makeTempDir('history-loader-test');
  t.teardown(() => removeTempDir(dir));
  const { server } = await startDriftServer({ dataDir: join(dir, 'data'), logPath: serverLogPath(dir, 'history'), password, readyTimeoutMs: 60_000 });
  t.teardown(() => stopDriftServer(server));
  await createTable(server, { name: 'h', primaryKey: 'id', indexes: ['grp'] });
  const keys = 30;
  const versions = 12;
  // 36 batches of 10 in flight 4 at a time over 30 keys: the key window must hold some back. Every 4th batch carries
  // a version of the long key (9 of them); its other 3 go by PUT.
  const job: HistoryLoadJob = { baseUrl: server.baseUrl, authorization: server.authorization, table: 'h', keys, versions, historyKey: 'long', historyKeyVersions: 12, batchOps: 10, batchesInFlight: 4 };
  const load = await runWorker<HistoryLoadJob, HistoryLoadSummary>(workerScripts.historyLoader, job, 120_000);
  t.equal(load.versionsWritten, keys * versions + 12);
  t.equal(load.historyKeyTailPuts, 3);
  t.ok(load.windowWaits > 0, 'the 4th batch in flight would share keys with the 1st, so it waited');
  t.ok(load.seqAllKeys > 0 && load.seqAllKeys <= load.seqLast, JSON.stringify(load));

  for (const key of [rowKey(0), rowKey(17), rowKey(keys - 1)]) {
    const history = await driftCall(server, 'GET', `/v1/tables/h/rows/${key}/history`);
    const seen = (history.body as { versions: { doc: { v: number } }[] }).versions.map((version) => version.doc.v);
    t.same(seen, Array.from({ length: versions }, (_, v) => v), `${key}: every version, in order`);
  }
  const long = await driftCall(server, 'GET', '/v1/tables/h/rows/long/history');
  t.same((long.body as { versions: { doc: { v: number } }[] }).versions.map((version) => version.doc.v), Array.from({ length: 12 }, (_, v) => v), 'the long key: every version, in order');
  for (let i = 0; i < keys; i++) {
    const old = await driftCall(server, 'GET', `/v1/tables/h/rows/${rowKey(i)}?asOf=${load.seqAllKeys}`);
    if (old.status !== 200) t.fail(`${rowKey(i)} is absent at seq ${load.seqAllKeys}: ${old.status}`);
  }

  const run = (request: LatencyJob['request']) =>
    runWorker<LatencyJob, LatencySummary>(workerScripts.latency, { baseUrl: server.baseUrl, authorization: server.authorization, clients: 2, durationSeconds: 1, warmupSeconds: 0, request }, 60_000);
  const asOf = await run({ kind: 'asOf', table: 'h', keys, seqMin: load.seqAllKeys, seqMax: load.seqLast });
  t.ok(asOf.requests > 0 && asOf.errors === 0, JSON.stringify(asOf.statusCodes));
  const history = await run({ kind: 'history', table: 'h', key: 'long' });
  t.ok(history.requests > 0 && history.errors === 0 && history.bodyBytesMean > 12 * 200, `${history.bodyBytesMean} bytes per answer`);
});

t.test('the history scenario produces all its rows at a tiny scale', async (t) => {
  const ctx = context(t, ['--history-keys', '20', '--history-versions', '3', '--duration', '1', '--warmup', '0']);
  const results = await historyScenarios(ctx);
  t.equal(results.length, 8);
  for (const result of results) {
    t.equal(result.status, 'measured', `${result.name}: ${result.reason ?? ''}`);
    t.equal(result.errors ?? 0, 0, `${result.name}: no errors`);
  }
  const problems = results.flatMap((r) => r.notes).filter((note) => /expected|absent|versions, expected/.test(note));
  t.same(problems, [], 'the reads found what the load wrote');
});

t.test('the memory-guard scenario is skipped until the flag exists, and then finds the guard', async (t) => {
  const ctx = context(t, ['--guard-limit-mb', '128']);
  const result = await memoryGuardScenario(ctx);
  if (result.status === 'skipped') {
    t.match(result.reason, /does not know --memory-limit-mb/);
  } else {
    t.equal(result.status, 'measured', result.reason ?? '');
    t.equal(result.errors, 0, result.notes.join(' | '));
  }
});
