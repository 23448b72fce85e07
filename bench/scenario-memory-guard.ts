// The memory guard (issue 10): a server started with a small --memory-limit-mb is written to until it refuses a write
// with 503 `unavailable`; then a read must still work and /readyz must say why. The row reports how many rows fit.
// Skipped, saying so, while `driftdb serve` does not know the flag (it exits 2 on an unknown flag).

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { BenchContext } from './context.js';
import { benchDoc, groupsFor, rowKey } from './docs.js';
import { driftCall, failureWithServer, serverLogPath, startDriftServer, stopDriftServer, type DriftServer } from './drift-server.js';
import { describeAnswer, httpCall, isRecord, makeAgent, type HttpAnswer } from './http.js';
import { failed, measured, skipped, type ScenarioResult } from './report.js';
import { rssMiB } from './scenario-restart.js';
import { checkRowCount, createTable } from './scenarios-http.js';

const guardTable = 'bench_guard';
/** Rows per batch while filling: the count of rows that fit is known to this many. */
const fillBatchOps = 500;
const fillBatchesInFlight = 4;
/** A guard that has not refused a write after this many rows per MiB of limit is not guarding (a row takes far more). */
const rowsPerLimitMibMax = 20_000;

export async function memoryGuardScenario(ctx: BenchContext): Promise<ScenarioResult> {
  const limitMb = ctx.options.guardLimitMb;
  const name = `memory guard: rows that fit under --memory-limit-mb ${limitMb}`;
  const dataDir = join(ctx.tmpRoot, 'guard-data');
  mkdirSync(dataDir, { recursive: true });
  let server: DriftServer;
  try {
    ({ server } = await startDriftServer({
      dataDir,
      logPath: serverLogPath(join(ctx.tmpRoot, 'logs'), 'memory-guard'),
      password: ctx.password,
      readyTimeoutMs: 60_000,
      cpuProfDir: ctx.options.cpuProfDir,
      serveArgs: ['--memory-limit-mb', String(limitMb)],
    }));
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (/unknown flag --memory-limit-mb/.test(message)) return skipped(name, '`driftdb serve` does not know --memory-limit-mb yet (it exits 2: unknown flag)');
    return failed(name, error);
  }
  try {
    return await fillUntilRefused(server, name, limitMb);
  } catch (error) {
    return failed(name, await failureWithServer(error, server));
  } finally {
    await stopDriftServer(server);
  }
}

async function fillUntilRefused(server: DriftServer, name: string, limitMb: number): Promise<ScenarioResult> {
  await createTable(server, { name: guardTable, primaryKey: 'id', indexes: ['group'] });
  const rowsMax = limitMb * rowsPerLimitMibMax;
  const groups = groupsFor(rowsMax);
  const agent = makeAgent(fillBatchesInFlight);
  const started = performance.now();
  let next = 0;
  let acknowledged = 0;
  // Set by the workers; declared wide so the compiler does not keep it narrowed to null after they ran.
  let refusal = null as HttpAnswer | null;
  const worker = async (): Promise<void> => {
    while (refusal === null && next < rowsMax) {
      const from = next;
      next += fillBatchOps;
      const ops = Array.from({ length: Math.min(fillBatchOps, rowsMax - from) }, (_, j) => ({ op: 'put', table: guardTable, key: rowKey(from + j), doc: benchDoc(from + j, groups) }));
      const answer = await httpCall({ agent, baseUrl: server.baseUrl, method: 'POST', path: '/v1/batch', headers: { authorization: server.authorization }, body: { ops } });
      if (answer.status === 200) acknowledged += ops.length;
      else if (answer.status === 503) refusal ??= answer;
      else throw new Error(`batch at row ${from}: ${describeAnswer(answer)}`);
    }
  };
  try {
    await Promise.all(Array.from({ length: fillBatchesInFlight }, worker));
  } finally {
    agent.destroy();
  }
  const seconds = (performance.now() - started) / 1000;
  if (refusal === null) return failed(name, new Error(`no write was refused after ${acknowledged} rows (${Math.round(acknowledged / seconds)} rows/s)`));
  const rss = rssMiB(server);
  const notes = [
    `${acknowledged} rows of ~200 bytes (one index) acknowledged in ${seconds.toFixed(1)} s, ${fillBatchOps} per batch, ${fillBatchesInFlight} in flight; server RSS at the refusal ${rss ?? '?'} MiB`,
    ...(await checkRefusal(server, refusal, limitMb)),
    ...(await checkRowCount(server, acknowledged, guardTable)),
  ];
  const problems = notes.filter((note) => note.startsWith('FAILED'));
  return measured({ name, value: acknowledged, unit: 'rows', errors: problems.length, notes, details: { acknowledged, seconds, rssMiB: rss, refusal: refusal.body } });
}

/** The refusal, a read and /readyz as the contract asks; a note per check, starting with FAILED when it does not hold. */
async function checkRefusal(server: DriftServer, refusal: HttpAnswer, limitMb: number): Promise<string[]> {
  const body = isRecord(refusal.body) ? refusal.body : {};
  const detail = typeof body['detail'] === 'string' ? body['detail'] : '';
  const notes = [`the first refusal: ${describeAnswer(refusal).slice(0, 200)}`];
  if (body['code'] !== 'unavailable') notes.push(`FAILED: the refusal's code is ${String(body['code'])}, not unavailable`);
  if (!detail.includes(String(limitMb))) notes.push(`FAILED: the refusal's detail does not name the limit (${limitMb})`);
  const read = await driftCall(server, 'GET', `/v1/tables/${guardTable}/rows/${rowKey(0)}`);
  notes.push(read.status === 200 ? 'a read after the refusal: 200' : `FAILED: a read after the refusal: ${describeAnswer(read).slice(0, 200)}`);
  const ready = await httpCall({ agent: server.agent, baseUrl: server.baseUrl, method: 'GET', path: '/readyz' });
  const says = describeAnswer(ready).slice(0, 200);
  notes.push(ready.status === 503 ? `/readyz: ${says}` : `FAILED: /readyz while writes are refused: ${says}`);
  return notes;
}
