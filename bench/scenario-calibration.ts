// Calibration: the hello-world ceiling against itself plus a fixed amount of handler work, so that every run shows
// what a ratio target means in µs of per-request JavaScript work on the machine that produced the figures.

import { performance } from 'node:perf_hooks';
import type { BenchContext } from './context.js';
import { iterationsFor, workMicrosMax } from './busy-work.js';
import { describeAnswer, httpCall, isRecord, makeAgent } from './http.js';
import { measured, skipped, type ScenarioResult } from './report.js';
import { cpuNote, errorNotes, loadErrors, loadRun } from './scenarios-http.js';

/**
 * Handler work per request, in µs. On the 2-core bench machine ~12 µs already brings a hello-world down to about 0.6
 * of the ceiling and ~23 µs to about 0.43, so 10 and 25 µs span the ratio targets (0.35 to 0.7) and show the slope.
 */
export const calibrationWorkMicros = [10, 25] as const;

function rowName(micros: number, connections: number): string {
  return `hello-world + ${micros} µs of handler work (${connections} conn)`;
}

/** One row per work level, each with its own GET / run right before it, on the same ceiling process. */
export async function calibrationScenarios(ctx: BenchContext): Promise<ScenarioResult[]> {
  const { ceilingUrl, ceilingWorkIterationsPerMicro: iterationsPerMicro } = ctx;
  if (ceilingUrl === null || iterationsPerMicro === null) {
    return calibrationWorkMicros.map((micros) => skipped(rowName(micros, ctx.options.connections), 'the ceiling server did not start'));
  }
  await checkWorkRoute(ceilingUrl);
  const loopNote = await optimisedLoopNote(ceilingUrl);
  const results: ScenarioResult[] = [];
  for (const micros of calibrationWorkMicros) {
    const result = await workLevel(ctx, ceilingUrl, iterationsPerMicro, micros);
    result.notes.push(loopNote);
    results.push(result);
  }
  return results;
}

async function workLevel(ctx: BenchContext, url: string, iterationsPerMicro: number, micros: number): Promise<ScenarioResult> {
  const connections = ctx.options.connections;
  const ceiling = await loadRun(ctx, url, connections, { kind: 'hello' }, ctx.ceilingPid);
  const work = await loadRun(ctx, url, connections, { kind: 'work', micros }, ctx.ceilingPid);
  const iterations = iterationsFor(micros, iterationsPerMicro);
  return measured({
    name: rowName(micros, connections),
    value: work.okPerSecond,
    unit: 'req/s',
    ceiling: ceiling.okPerSecond,
    latencyMs: work.latencyMs,
    errors: loadErrors(work),
    notes: [
      `${micros} µs = ${iterations} iterations of the work loop, calibrated at start-up at ${iterationsPerMicro.toFixed(1)} per µs`,
      ...cpuNote(work, ceiling),
      ...errorNotes('work', work),
      ...errorNotes('ceiling', ceiling),
    ],
    details: { workMicros: micros, workIterationsPerMicro: iterationsPerMicro, workIterations: iterations, ceiling, work },
  });
}

/** Enough requests for V8 to optimise the route handler (and inline the loop), as under a load run. */
const warmupRequests = 3000;
const warmupInFlight = 16;

/**
 * Once the handler is hot, V8 inlines the work loop into it; that copy must run as fast as the calibrated one, or
 * every calibration row understates the work. Measured here (the fastest of 30 sequential requests each way) and
 * noted on the rows, with a warning when 1000 µs of work does not add about 1 ms: a test could not assert it on a
 * busy machine.
 */
async function optimisedLoopNote(baseUrl: string): Promise<string> {
  const agent = makeAgent(warmupInFlight);
  try {
    const get = (path: string) => httpCall({ agent, baseUrl, method: 'GET', path });
    for (let round = 0; round < warmupRequests / warmupInFlight; round++) {
      await Promise.all(Array.from({ length: warmupInFlight }, () => get('/work/1')));
    }
    const extraMs = (await fastestMs(get, `/work/${workMicrosMax}`, 30)) - (await fastestMs(get, '/work/0', 30));
    const plausible = extraMs > 0.5 && extraMs < 2;
    return `${plausible ? '' : 'WARNING: '}${workMicrosMax} µs of work added ${extraMs.toFixed(2)} ms in the optimised handler${
      plausible ? '' : ' (expected about 1 ms: the calibration rows are off on this run)'
    }`;
  } finally {
    agent.destroy();
  }
}

/** The fastest of `count` sequential requests, in ms: the least disturbed one. */
async function fastestMs(get: (path: string) => Promise<unknown>, path: string, count: number): Promise<number> {
  let fastest = Infinity;
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await get(path);
    fastest = Math.min(fastest, performance.now() - started);
  }
  return fastest;
}

/** The figures mean something only if the work route answers what GET / answers, and refuses what it should. */
async function checkWorkRoute(baseUrl: string): Promise<void> {
  const agent = makeAgent(1);
  try {
    const good = await httpCall({ agent, baseUrl, method: 'GET', path: `/work/${calibrationWorkMicros[0]}` });
    if (good.status !== 200 || !isRecord(good.body) || good.body['hello'] !== 'world') {
      throw new Error(`GET /work/${calibrationWorkMicros[0]} on the ceiling server: ${describeAnswer(good)}`);
    }
    const tooMuch = await httpCall({ agent, baseUrl, method: 'GET', path: `/work/${workMicrosMax + 1}` });
    if (tooMuch.status !== 400) throw new Error(`GET /work/${workMicrosMax + 1} should be refused: ${describeAnswer(tooMuch)}`);
  } finally {
    agent.destroy();
  }
}
