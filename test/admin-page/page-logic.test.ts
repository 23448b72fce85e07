// The admin page's pure logic, run in Node without a browser: the line diff behind its side-by-side views, its
// reader of the Server-Sent Events format, and its summary of the Prometheus text format.

import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import t from 'tap';

const pageDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../admin-page');
// The page is plain JavaScript for browsers, without type declarations: its modules are loaded as untyped values.
const load = (name: string): Promise<any> => import(pathToFileURL(path.join(pageDir, name)).href);

type Row = { kind: string; left: string | null; right: string | null };

t.test('the line diff aligns unchanged lines and pairs changes side by side', async (t) => {
  const { diffLines, jsonLines } = await load('diff-view.js');
  const rows: Row[] = diffLines(['a', 'b', 'c', 'd'], ['a', 'x', 'c', 'd', 'e']);
  t.same(rows, [
    { kind: 'same', left: 'a', right: 'a' },
    { kind: 'chg', left: 'b', right: 'x' },
    { kind: 'same', left: 'c', right: 'c' },
    { kind: 'same', left: 'd', right: 'd' },
    { kind: 'add', left: null, right: 'e' },
  ]);
  t.same(diffLines(['a', 'b'], []).map((row: Row) => row.kind), ['del', 'del'], 'a row that is gone');
  t.same(diffLines([], []), [], 'two absent rows');
  // Members are sorted, so the same content in another order is no change.
  t.same(jsonLines({ b: 1, a: { d: 2, c: 3 } }), jsonLines({ a: { c: 3, d: 2 }, b: 1 }));
  t.same(jsonLines(null), [], 'a deleted row has no lines');
});

t.test('the line diff keeps every line of both sides, in order, for random edits', async (t) => {
  const { diffLines } = await load('diff-view.js');
  let seed = 7;
  const random = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
  for (let round = 0; round < 200; round++) {
    const a = Array.from({ length: random(12) }, () => `l${random(6)}`);
    const b = a.filter(() => random(4) !== 0).flatMap((line) => (random(5) === 0 ? [line, `n${random(6)}`] : [line]));
    const rows: Row[] = diffLines(a, b);
    const left = rows.filter((row) => row.left !== null).map((row) => row.left);
    const right = rows.filter((row) => row.right !== null).map((row) => row.right);
    if (JSON.stringify(left) !== JSON.stringify(a) || JSON.stringify(right) !== JSON.stringify(b)) {
      t.fail(`round ${round}: ${JSON.stringify({ a, b, rows })}`);
      return;
    }
    // Every line b keeps from a is shown unchanged: the alignment is a longest common subsequence here.
    t.ok(rows.filter((row) => row.kind === 'same').length >= b.filter((line) => line.startsWith('l')).length, `round ${round}`);
  }
});

t.test('the event-stream reader follows the format across chunk boundaries', async (t) => {
  const { eventStreamParser } = await load('api.js');
  const events: Array<{ id: string | null; event: string; data: string }> = [];
  const feed = eventStreamParser((event: (typeof events)[number]) => events.push(event));
  const stream = ': driftdb change feed\r\n\r\nid: 5\nevent: change\ndata: {"seq":5}\n\nevent: error\ndata: line one\ndata:line two\r\n\r\ndata: no event name\n\n';
  // Every split point, including between \r and \n.
  for (let cut = 0; cut <= stream.length; cut++) {
    events.length = 0;
    feed(stream.slice(0, cut));
    feed(stream.slice(cut));
    t.same(
      events,
      [
        { id: '5', event: 'change', data: '{"seq":5}' },
        { id: '5', event: 'error', data: 'line one\nline two' },
        { id: '5', event: 'message', data: 'no event name' },
      ],
      `split at ${cut}`,
    );
  }
});

t.test('the metrics summary sums series over their labels', async (t) => {
  const { parsePrometheus } = await load('admin-view.js');
  const text = [
    '# HELP driftdb_commits_total Commits.',
    '# TYPE driftdb_commits_total counter',
    'driftdb_commits_total 42',
    'driftdb_http_request_duration_seconds_count{method="GET",route="/v1/tables",status_code="200"} 3',
    'driftdb_http_request_duration_seconds_count{method="PUT",route="/v1/tables/:table/rows/:key",status_code="201"} 4',
    'driftdb_heap_used_bytes 1.5e7',
    '',
  ].join('\n');
  const values: Map<string, number> = parsePrometheus(text);
  t.equal(values.get('driftdb_commits_total'), 42);
  t.equal(values.get('driftdb_http_requests'), 7);
  t.equal(values.get('driftdb_heap_used_bytes'), 15_000_000);
});
