// What a contract peer of the bench (the spec floor, the SQLite peer) must answer to DriftDB's bench requests, as
// DriftDB does: rows with their key and ETag, writes that are read back at the next seq, a query's 10 rows, the
// security headers, and 401 `unauthorized` without credentials. Otherwise its ratios would bound nothing.

import type { Test } from 'tap';
import { groupRowsCount, groupsFor, groupValue } from '../../bench/docs.js';
import { basicAuth, httpCall, makeAgent } from '../../bench/http.js';
import { authenticateChallenge } from '../../src/routes/problem.js';

/** Checks the peer at `baseUrl`, preloaded with `rows` rows and expecting `authorization`. */
export async function checkPeerAnswers(t: Test, baseUrl: string, authorization: string, rows: number): Promise<void> {
  const agent = makeAgent(1);
  t.teardown(() => agent.destroy());
  const headers = { authorization };

  const row = await httpCall({ agent, baseUrl, method: 'GET', path: '/v1/tables/bench_rows/rows/row-7', headers });
  t.equal(row.status, 200);
  t.match(row.body, { id: 'row-7', group: groupValue(7, groupsFor(rows)) });
  t.equal(row.headers.etag, '"8"', 'the ETag of its version');
  t.equal(row.headers['x-content-type-options'], 'nosniff', 'the security headers');
  t.ok(row.headers['x-request-id'], 'a request id');

  const put = await httpCall({ agent, baseUrl, method: 'PUT', path: '/v1/tables/bench_put/rows/new-1', headers, body: { n: 1 } });
  t.same([put.status, put.body, put.headers.etag], [201, { key: 'new-1', seq: rows + 1 }, `"${rows + 1}"`], 'a new key is created at the next seq');
  const again = await httpCall({ agent, baseUrl, method: 'PUT', path: '/v1/tables/bench_put/rows/new-1', headers, body: { n: 2 } });
  t.same([again.status, again.body], [200, { key: 'new-1', seq: rows + 2 }], 'a second write replaces it');
  const read = await httpCall({ agent, baseUrl, method: 'GET', path: '/v1/tables/bench_put/rows/new-1', headers });
  t.same([read.status, read.body, read.headers.etag], [200, { id: 'new-1', n: 2 }, `"${rows + 2}"`], 'the write is read back');

  const query = await httpCall({ agent, baseUrl, method: 'POST', path: '/v1/query', headers, body: { table: 'bench_rows', where: { group: 'g3' } } });
  t.equal(query.status, 200);
  const answer = query.body as { rows: { id: string; group: string }[]; nextCursor: null; seq: number };
  t.equal(answer.rows.length, groupRowsCount, 'a group holds 10 rows');
  t.ok(answer.rows.every((r) => r.group === 'g3'), 'all of that group');
  t.same([answer.nextCursor, answer.seq], [null, rows + 2], 'one page at the newest seq');

  const anonymous = await httpCall({ agent, baseUrl, method: 'GET', path: '/v1/tables/bench_rows/rows/row-7' });
  t.equal(anonymous.status, 401, 'no credentials, no row');
  t.match(anonymous.body, { status: 401, code: 'unauthorized' }, 'the contract\'s problem');
  t.equal(anonymous.headers['www-authenticate'], authenticateChallenge, 'with a challenge, as DriftDB sends it');
  const wrong = await httpCall({ agent, baseUrl, method: 'GET', path: '/v1/tables/bench_rows/rows/row-7', headers: { authorization: basicAuth('admin', 'nope') } });
  t.equal(wrong.status, 401, 'wrong credentials, no row');
}
