// The change feed through the real server (http-api.md §9): pages and their bounds, grants and system tables,
// Server-Sent Events framing and resumption, long-polls, streams and waits ending with the server, and the bound on
// a client that stops reading.

import t from 'tap';
import { sleep, startServer, type TestServer } from '../helpers/server.js';
import { openSse } from '../helpers/sse.js';

async function table(server: TestServer, name: string): Promise<void> {
  const created = await server.request('POST', '/v1/tables', { body: { name, primaryKey: 'id' } });
  if (created.status !== 201) throw new Error(created.text);
}

async function newestSeq(server: TestServer): Promise<number> {
  return (await server.request('GET', '/v1/admin/stats')).json.seq;
}

t.test('SIGTERM ends open streams and waiting long-polls, and the server exits 0', async (t) => {
  const server = await startServer();
  t.teardown(() => server.kill());
  await table(server, 'items');
  const since = await newestSeq(server);
  const stream = await openSse(server.url, `/v1/changes?since=${since}`);
  t.teardown(() => stream.close());
  t.equal(stream.status, 200);
  await stream.waitFor(() => stream.comments.length > 0);
  const polling = server.request('GET', `/v1/changes?since=${since}&waitMs=30000`, { timeoutMs: 60_000 }).catch((error: Error) => error);
  // The long-poll is waiting (no commit comes) when the signal arrives.
  await sleep(300);
  t.equal(await server.stop(), 0, 'exit code 0');
  await stream.ended;
  const answer = await polling;
  if (answer instanceof Error) t.fail(`the long-poll got no answer: ${answer.message}`);
  else t.same({ status: answer.status, commits: answer.json.commits }, { status: 200, commits: [] }, 'the long-poll is answered, empty');
});
