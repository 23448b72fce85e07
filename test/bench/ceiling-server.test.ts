// The benchmark's ceiling server and its calibrated work loop: GET /work/:micros must answer exactly what GET / answers,
// refuse what is out of range, and spend about the time it was asked for, also once V8 has inlined the loop into the route.

import { performance } from 'node:perf_hooks';
import t from 'tap';
import { calibrateIterationsPerMicro, iterationsFor, parseWorkMicros, spin, workMicrosMax } from '../../bench/busy-work.js';
import type { CeilingReady } from '../../bench/ceiling-server.js';
import { workerScripts } from '../../bench/context.js';
import { httpCall, makeAgent } from '../../bench/http.js';
import { startService, stopChild } from '../../bench/procs.js';

/** Enough requests for V8 to optimise the route handler (and inline the loop), as under a load run. */
const warmupRequests = 3000;
const warmupInFlight = 16;

t.test('work micros are whole numbers from 0 to the maximum, nothing else', async (t) => {
  t.equal(parseWorkMicros('0'), 0);
  t.equal(parseWorkMicros('25'), 25);
  t.equal(parseWorkMicros(String(workMicrosMax)), workMicrosMax);
  for (const bad of [String(workMicrosMax + 1), '-1', '1.5', '1e2', 'abc', '', ' 10', '99999']) {
    t.equal(parseWorkMicros(bad), null, JSON.stringify(bad));
  }
});

t.test('the calibrated loop takes at least about the µs it was sized for', async (t) => {
  const iterationsPerMicro = calibrateIterationsPerMicro();
  t.ok(Number.isFinite(iterationsPerMicro) && iterationsPerMicro > 0, `rate ${iterationsPerMicro}`);
  // The calibration kept its fastest trial, so a later run is no faster; other load can only make it slower.
  const micros = 2000;
  let fastestMicros = Infinity;
  for (let run = 0; run < 3; run++) {
    const started = performance.now();
    spin(iterationsFor(micros, iterationsPerMicro));
    fastestMicros = Math.min(fastestMicros, (performance.now() - started) * 1000);
  }
  t.ok(fastestMicros >= micros * 0.5, `${micros} µs of work took ${fastestMicros.toFixed(0)} µs`);
});

t.test('GET /work/:micros answers like GET / and refuses bad micros with 400', async (t) => {
  const { child, ready } = await startService<CeilingReady>(workerScripts.ceiling, 60_000);
  const agent = makeAgent(1);
  t.teardown(async () => {
    agent.destroy();
    await stopChild(child);
  });
  t.ok(ready.port > 0 && ready.workIterationsPerMicro > 0, JSON.stringify(ready));
  const baseUrl = `https://127.0.0.1:${ready.port}`;
  const get = (path: string) => httpCall({ agent, baseUrl, method: 'GET', path });
  const hello = await get('/');
  const work = await get('/work/25');
  t.same([hello.status, hello.body], [200, { hello: 'world' }]);
  t.same([work.status, work.body], [200, { hello: 'world' }]);
  t.equal(work.headers['content-type'], hello.headers['content-type']);
  t.equal((await get('/work/0')).status, 200);
  for (const bad of [String(workMicrosMax + 1), '-1', '1.5', 'abc']) t.equal((await get(`/work/${bad}`)).status, 400, bad);
});

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

// Once the handler is hot, V8 inlines the work loop into it; that copy must run as fast as the calibrated one.
t.test('GET /work/1000 still takes about 1 ms more than GET /work/0 once the handler is optimised', async (t) => {
  const { child, ready } = await startService<CeilingReady>(workerScripts.ceiling, 60_000);
  const agent = makeAgent(warmupInFlight);
  t.teardown(async () => {
    agent.destroy();
    await stopChild(child);
  });
  const get = (path: string) => httpCall({ agent, baseUrl: `https://127.0.0.1:${ready.port}`, method: 'GET', path });
  for (let round = 0; round < warmupRequests / warmupInFlight; round++) {
    await Promise.all(Array.from({ length: warmupInFlight }, () => get('/work/1')));
  }
  const extraMs = (await fastestMs(get, `/work/${workMicrosMax}`, 30)) - (await fastestMs(get, '/work/0', 30));
  t.ok(extraMs > 0.5 && extraMs < 2, `${workMicrosMax} µs of work added ${extraMs.toFixed(2)} ms`);
});
