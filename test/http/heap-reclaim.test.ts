// The heap reclaimer in the real server: once recovery has replayed the log, before the server says it is ready, a
// compacting collection runs and is logged; --heap-reclaim-idle-ms 0 turns it off.

import t from 'tap';
import { sleep, startServer } from '../helpers/server.js';

/** The JSON log lines of a server's stdout with this msg. */
function logLines(stdout: string, msg: string): Array<Record<string, unknown>> {
  return stdout
    .split('\n')
    .filter((line) => line.includes(`"${msg}"`))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((entry) => entry['msg'] === msg);
}

/** The server's stdout once its "ready" line is there (logged just after /readyz turns 200). */
async function outputWhenReady(stdout: () => string): Promise<string> {
  for (let tries = 0; tries < 1000 && !stdout().includes('"ready"'); tries++) await sleep(10);
  return stdout();
}

t.test('a restart that replays the log reclaims the heap before it is ready', async (t) => {
  const first = await startServer();
  await first.request('POST', '/v1/tables', { body: { name: 'notes', primaryKey: 'id' } });
  for (let i = 0; i < 20; i++) await first.request('PUT', `/v1/tables/notes/rows/n${i}`, { body: { text: `note ${i}` } });
  t.equal(await first.stop(), 0);
  const restarted = await startServer({ dataDir: first.dataDir });
  t.teardown(() => restarted.stop());
  const out = await outputWhenReady(restarted.stdout);
  const [reclaim] = logLines(out, 'heap reclaimed');
  t.ok(reclaim, 'a "heap reclaimed" line is logged');
  t.equal(reclaim?.['reason'], 'recovered');
  t.equal(reclaim?.['module'], 'memory');
  t.type(reclaim?.['liveMiB'], 'number');
  t.ok(out.indexOf('"heap reclaimed"') < out.indexOf('"ready"'), 'before the server is ready');
  const rows = await restarted.request('GET', '/v1/tables/notes/rows/n19');
  t.equal(rows.status, 200, 'and the replayed data is there');
});

t.test('--heap-reclaim-idle-ms 0 turns it off', async (t) => {
  const server = await startServer({ args: ['--heap-reclaim-idle-ms', '0'] });
  t.teardown(() => server.stop());
  t.match(await outputWhenReady(server.stdout), /"ready"/);
  t.same(logLines(server.stdout(), 'heap reclaimed'), [], 'no collection is logged');
});
