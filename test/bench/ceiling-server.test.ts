// The benchmark's ceiling server and its calibrated work loop: GET /work/:micros must answer exactly what GET / answers,
// and refuse what is out of range. How long the work takes is the bench's to measure (scenario-calibration.ts), not a test's.

import t from 'tap';
import { calibrateIterationsPerMicro, iterationsFor, parseWorkMicros, spin, workMicrosMax } from '../../bench/busy-work.js';
import type { CeilingReady } from '../../bench/ceiling-server.js';
import { workerScripts } from '../../bench/context.js';
import { httpCall, makeAgent } from '../../bench/http.js';
import { startService, stopChild } from '../../bench/procs.js';

t.test('work micros are whole numbers from 0 to the maximum, nothing else', async (t) => {
  t.equal(parseWorkMicros('0'), 0);
  t.equal(parseWorkMicros('25'), 25);
  t.equal(parseWorkMicros(String(workMicrosMax)), workMicrosMax);
  for (const bad of [String(workMicrosMax + 1), '-1', '1.5', '1e2', 'abc', '', ' 10', '99999']) {
    t.equal(parseWorkMicros(bad), null, JSON.stringify(bad));
  }
});

t.test('the calibration gives a positive rate and work scales with the µs asked for', async (t) => {
  const iterationsPerMicro = calibrateIterationsPerMicro();
  t.ok(Number.isFinite(iterationsPerMicro) && iterationsPerMicro > 0, `rate ${iterationsPerMicro}`);
  t.equal(iterationsFor(0, iterationsPerMicro), 0);
  t.equal(iterationsFor(1000, 2.5), 2500);
  t.equal(iterationsFor(10, 2.5), 25);
  // The loop's time is measured by the bench (its calibration rows note how long 1000 µs took in the optimised
  // handler); a test only checks that it runs and leaves a result behind, whatever the machine is doing.
  spin(iterationsFor(10, iterationsPerMicro));
  t.pass('the loop ran');
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
