// The benchmark's spec floor answers DriftDB's own bench requests as DriftDB does (peer-answers.ts says what that is).

import t from 'tap';
import { workerScripts } from '../../bench/context.js';
import type { FloorReady } from '../../bench/floor-server.js';
import { basicAuth } from '../../bench/http.js';
import { startService, stopChild } from '../../bench/procs.js';
import { checkPeerAnswers } from './peer-answers.js';

t.test('the floor answers the bench requests the way DriftDB does', async (t) => {
  const rows = 1000;
  const authorization = basicAuth('admin', 'floor-test-password');
  const { child, ready } = await startService<FloorReady>(workerScripts.floor, 60_000, [String(rows), authorization]);
  t.teardown(() => stopChild(child));
  await checkPeerAnswers(t, `https://127.0.0.1:${ready.port}`, authorization, rows);
});
