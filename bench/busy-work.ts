// Deterministic CPU work of a given length in µs, calibrated once per process: the handler work of the ceiling
// server's GET /work/:micros, which shows what a ratio to the ceiling means in µs of per-request work.

import { performance } from 'node:perf_hooks';

/** The most work one request may ask for: 1 ms is far past any route we measure, and a typo cannot stall the server. */
export const workMicrosMax = 1000;
/** Length of one timed calibration trial: long against the timer's resolution, short against a scheduler time slice. */
const calibrationTrialMs = 2;
/** Trials timed; the fastest one is the least disturbed by other processes and interrupts. */
const calibrationTrials = 20;
/** Untimed calls before timing, enough for V8 to optimise both the loop and the function's entry (as in the handler). */
const warmupCalls = 200;
const warmupIterationsPerCall = 100_000;
/** Iterations of the first, rough timing that sizes the trials. */
const probeIterations = 1_000_000;

// Every call leaves its result here: a module-level variable that the next call reads, so V8 cannot drop the loop.
let sink = 0;

/** Runs the loop `iterations` times: integer multiply-add only, no allocation, the same work every time. */
export function spin(iterations: number): void {
  // `| 0` types x as int32 from the start. Without it, once V8 inlines spin() into a Fastify handler, x stays a
  // generic number and each iteration round-trips through a double: about 4.5 times the calibrated time.
  let x = sink | 0;
  for (let i = 0; i < iterations; i++) x = (Math.imul(x, 31) + i) | 0;
  sink = x;
}

/** Loop iterations that take about `micros` µs at the calibrated rate. */
export function iterationsFor(micros: number, iterationsPerMicro: number): number {
  return Math.round(micros * iterationsPerMicro);
}

/** The route parameter as a whole number of µs in 0..workMicrosMax, or null for anything else. */
export function parseWorkMicros(text: string): number | null {
  if (!/^\d{1,4}$/.test(text)) return null;
  const micros = Number(text);
  return micros <= workMicrosMax ? micros : null;
}

/** Iterations of spin() per µs on this machine, from the fastest of several ~2 ms trials after a JIT warm-up. */
export function calibrateIterationsPerMicro(): number {
  for (let call = 0; call < warmupCalls; call++) spin(warmupIterationsPerCall);
  const probeMs = Math.max(timeSpinMs(probeIterations), 0.001);
  const trialIterations = Math.max(1, Math.round((probeIterations * calibrationTrialMs) / probeMs));
  let fastestMs = Infinity;
  for (let trial = 0; trial < calibrationTrials; trial++) fastestMs = Math.min(fastestMs, timeSpinMs(trialIterations));
  return trialIterations / (Math.max(fastestMs, 0.001) * 1000);
}

function timeSpinMs(iterations: number): number {
  const started = performance.now();
  spin(iterations);
  return performance.now() - started;
}
