// The memory guard through the real server: filled to --memory-limit-mb, writes answer 503 naming the limit, reads
// go on, /readyz says why; after a SIGKILL a restart loads everything that was acknowledged. A limit larger than
// half the heap Node was given makes serve restart itself with a heap twice the limit.

import t from 'tap';
import { sleep, startServer, type Response, type TestServer } from '../helpers/server.js';

type Test = Parameters<Parameters<typeof t.test>[0]>[0];

const documentChars = 32 * 1024;

/**
 * Writes fresh 32 KiB rows, 8 at a time, until a whole round of them is refused while /readyz says why (a refusal
 * can lift again when a collection frees garbage: then the filling goes on). Answers the keys acknowledged, the
 * last refusal and the /readyz answer seen with it.
 */
async function fillToTheGuard(server: TestServer, rowsMax: number): Promise<{ acked: Map<string, number>; refusal: Response | null; ready: Response | null }> {
  const acked = new Map<string, number>();
  let refusal: Response | null = null;
  let ready: Response | null = null;
  for (let next = 0; ready === null && next < rowsMax; ) {
    refusal = null;
    const answers = await Promise.all(
      Array.from({ length: 8 }, async () => {
        const key = `r${next++}`;
        const response = await server.request('PUT', `/v1/tables/m/rows/${key}`, { body: { id: key, pad: key.padEnd(documentChars, '.') } });
        return { key, response };
      }),
    );
    let refused = 0;
    for (const { key, response } of answers) {
      if (response.status === 201) acked.set(key, response.json.seq);
      else if (response.status === 503) {
        refusal = response;
        refused++;
      } else throw new Error(`unexpected ${response.status}: ${response.text}`);
    }
    if (refused === answers.length) {
      const readiness = await server.request('GET', '/readyz', { auth: false });
      if (readiness.status === 503) ready = readiness;
    }
  }
  return { acked, refusal, ready };
}

async function everyAckReadable(t: Test, server: TestServer, acked: Map<string, number>): Promise<void> {
  let missing = 0;
  for (const [key, seq] of acked) {
    const response = await server.request('GET', `/v1/tables/m/rows/${key}`);
    if (response.status !== 200 || response.headers.etag !== `"${seq}"`) missing++;
  }
  t.equal(missing, 0, `all ${acked.size} acknowledged rows are readable with their seq`);
}

/** A server filled to its limit stays 503 on /readyz after a restart: it counts as started once recovered. */
const recovered = (response: Response): boolean => response.status === 200 || /memory limit/.test(response.text);

/** The "ready" log line's fields. */
function readyLine(server: TestServer): { memoryLimitMb: number; heapLimitMb: number } {
  const line = server.stdout().split('\n').find((l) => l.includes('"msg":"ready"'));
  if (line === undefined) throw new Error(`no ready line in:\n${server.stdout()}`);
  return JSON.parse(line);
}

async function portClosed(server: TestServer): Promise<boolean> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const answered = await server.request('GET', '/healthz', { auth: false, timeoutMs: 1000 }).then(
      () => true,
      () => false,
    );
    if (!answered) return true;
    await sleep(50);
  }
  return false;
}

for (const variant of [
  { name: 'in the heap Node was given', args: ['--memory-limit-mb', '48'], nodeArgs: [] as string[], heapLimitMb: null },
  { name: 'in a heap serve restarted itself with', args: ['--memory-limit-mb', '80'], nodeArgs: ['--max-old-space-size=96'], heapLimitMb: 160 },
]) {
  t.test(`${variant.name}: at the limit writes are refused and reads go on; a restart after SIGKILL loads every acknowledged write`, async (t) => {
    const { args, nodeArgs } = variant;
    const first = await startServer({ args, nodeArgs });
    t.teardown(() => first.kill());
    const limits = readyLine(first);
    t.equal(limits.memoryLimitMb, Number(args[1]));
    if (variant.heapLimitMb !== null) t.ok(limits.heapLimitMb >= variant.heapLimitMb, `serve restarted itself with a heap of ${limits.heapLimitMb} MiB`);
    t.equal((await first.request('POST', '/v1/tables', { body: { name: 'm', primaryKey: 'id' } })).status, 201);
    const { acked, refusal, ready } = await fillToTheGuard(first, 20_000);
    t.ok(refusal !== null, `writes were refused after ${acked.size} rows`);
    t.equal(refusal?.json.code, 'unavailable');
    t.match(refusal?.json.detail, new RegExp(`--memory-limit-mb ${args[1]}`), 'the refusal names the limit');
    t.ok(refusal?.headers['retry-after'], 'with Retry-After');
    t.equal(ready?.status, 503, '/readyz is 503 while writes are refused');
    t.match(ready?.json.detail, /memory limit/, 'and says why');
    t.equal((await first.request('GET', `/v1/tables/m/rows/${acked.keys().next().value!}`)).status, 200, 'reads go on');
    await first.kill();
    if (variant.heapLimitMb !== null) t.ok(await portClosed(first), 'killing serve killed the server it restarted');

    const second = await startServer({ dataDir: first.dataDir, args, nodeArgs, readyWhen: recovered });
    t.teardown(() => second.kill());
    await everyAckReadable(t, second, acked);
  });
}
