// Micro-benchmark of the change feed's fan-out: engine writes in this process, the ChangeService sending them to
// `subscribers` Server-Sent Event streams over real TLS sockets, read by a child process (so their reading is not
// counted here). Answers the CPU µs per write without streams and with them, and the fan-out's µs per subscriber per
// commit; the HTTP route and the clients' parsing are left out, so the figure is the feed's own. Rounds alternate
// A B B A so a drift in the machine's load falls on both sides. Not a test: nothing is asserted.
//
//   node dist/bench/feed-micro.js [--writes N] [--in-flight N] [--subscribers N] [--rounds N] [--flush-ms N]

import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import type http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openDatabase, type Database } from '../src/engine/index.js';
import { ChangeService } from '../src/service/changes.js';
import { benchDoc } from './docs.js';
import { parseIntegerOptions } from './micro-options.js';

interface Options {
  writes: number;
  inFlight: number;
  subscribers: number;
  rounds: number;
  flushMs: number;
}

function parseOptions(argv: string[]): Options {
  return parseIntegerOptions<Options>(argv, { writes: 5000, inFlight: 32, subscribers: 100, rounds: 2, flushMs: 5 }, 0);
}

const table = 'micro';

/** Parent → child: open `count` streams after `since`; count `events` change events in all; close them. */
type ToClient = { open: { port: number; since: number; count: number } } | { expect: number } | { close: true };
/** Child → parent: the streams are open; every expected event arrived (and the child's CPU µs meanwhile). */
type ToParent = { opened: true } | { received: number; cpuMicros: number };

/** What every change event holds once (its event line). */
const marker = '\nevent: change';

/** The child: opens the streams and counts events, as cheaply as it can (the server's cost is the one measured). */
function client(): void {
  const agent = new https.Agent({ keepAlive: true, maxSockets: Infinity, rejectUnauthorized: false });
  let requests: http.ClientRequest[] = [];
  let received = 0;
  let expected = Infinity;
  let cpu = process.cpuUsage();
  const check = (): void => {
    if (received < expected) return;
    expected = Infinity;
    const used = process.cpuUsage(cpu);
    process.send!({ received, cpuMicros: used.user + used.system } satisfies ToParent);
  };
  process.on('message', (message: ToClient) => {
    if ('open' in message) {
      const { port, since, count } = message.open;
      let opened = 0;
      received = 0;
      requests = Array.from({ length: count }, () => {
        const req = https.request({ host: '127.0.0.1', port, path: '/', agent, headers: { accept: 'text/event-stream', 'last-event-id': String(since) } }, (res) => {
          opened++;
          if (opened === count) process.send!({ opened: true } satisfies ToParent);
          res.setEncoding('latin1');
          // The end of the last chunk, shorter than the marker: a marker split between two chunks is counted once.
          let tail = '';
          res.on('data', (chunk: string) => {
            const text = tail + chunk;
            for (let at = text.indexOf(marker); at !== -1; at = text.indexOf(marker, at + 1)) received++;
            tail = text.slice(-(marker.length - 1));
            check();
          });
        });
        req.end();
        return req;
      });
    } else if ('expect' in message) {
      cpu = process.cpuUsage();
      expected = message.expect;
      check();
    } else {
      for (const req of requests) req.destroy();
      requests = [];
    }
  });
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const dir = mkdtempSync(join(tmpdir(), 'drift-feed-micro-'));
  const db = await openDatabase({ dataDir: dir });
  const child = fork(fileURLToPath(import.meta.url), ['client'], { stdio: 'inherit' });
  const changes = new ChangeService(() => db, { bufferCommits: 10_000_000, flushMs: options.flushMs });
  const { generate } = await import('selfsigned');
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], { keyType: 'ec', curve: 'P-256', algorithm: 'sha256' });
  const server = https.createServer({ key: pems.private, cert: pems.cert }, (req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    changes.stream(res, { since: Number(req.headers['last-event-id']), tables: new Set([table]) });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  try {
    await db.createTable({ name: table, primaryKey: 'id', indexes: [] });
    const results: Record<'without' | 'with', Array<{ cpu: number; client: number }>> = { without: [], with: [] };
    // Warm-up: one round of each side, discarded.
    await side(db, child, port, options, 'with', 'warm');
    await side(db, child, port, options, 'without', 'warm');
    for (let round = 0; round < options.rounds; round++) {
      for (const mode of round % 2 === 0 ? (['without', 'with', 'with', 'without'] as const) : (['with', 'without', 'without', 'with'] as const)) {
        results[mode].push(await side(db, child, port, options, mode, `r${round}-${mode}-${results[mode].length}`));
      }
    }
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
    const without = median(results.without.map((r) => r.cpu));
    const withSubs = median(results.with.map((r) => r.cpu));
    console.log(`without streams   cpu/write ${without.toFixed(1)} µs (${results.without.map((r) => r.cpu.toFixed(0)).join('/')})`);
    console.log(`${String(options.subscribers).padStart(3)} streams       cpu/write ${withSubs.toFixed(1)} µs (${results.with.map((r) => r.cpu.toFixed(0)).join('/')})`);
    console.log(`fan-out           ${((withSubs - without) / options.subscribers).toFixed(2)} µs per subscriber per commit (flush window ${options.flushMs} ms)`);
    console.log(`reading client    ${median(results.with.map((r) => r.client)).toFixed(2)} µs per subscriber per commit (counting events only)`);
  } finally {
    changes.closeAll();
    child.kill();
    server.close();
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One side's writes: CPU µs of this process per write, until every stream had every commit; the client's per event. */
async function side(
  db: Database,
  child: ChildProcess,
  port: number,
  options: Options,
  mode: 'with' | 'without',
  prefix: string,
): Promise<{ cpu: number; client: number }> {
  const subscribers = mode === 'with' ? options.subscribers : 0;
  const message = (predicate: (m: ToParent) => boolean): Promise<ToParent> =>
    new Promise((resolve) => {
      const listener = (m: ToParent): void => {
        if (!predicate(m)) return;
        child.off('message', listener);
        resolve(m);
      };
      child.on('message', listener);
    });
  if (subscribers > 0) {
    const opened = message((m) => 'opened' in m);
    child.send({ open: { port, since: db.durableSeq, count: subscribers } } satisfies ToClient);
    await opened;
    child.send({ expect: options.writes * subscribers } satisfies ToClient);
  }
  const received = subscribers > 0 ? message((m) => 'received' in m) : Promise.resolve(null);
  const body = benchDoc(0, 1);
  let next = 0;
  const cpu = process.cpuUsage();
  await Promise.all(
    Array.from({ length: options.inFlight }, async () => {
      while (next < options.writes) await db.put({ table, key: `${prefix}-${next++}`, doc: body });
    }),
  );
  const done = (await received) as { cpuMicros: number } | null;
  const used = process.cpuUsage(cpu);
  if (subscribers > 0) {
    child.send({ close: true } satisfies ToClient);
    // The streams end on the server too (their sockets close) before the next side starts.
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  return { cpu: (used.user + used.system) / options.writes, client: done === null ? 0 : done.cpuMicros / options.writes / subscribers };
}

if (process.argv[2] === 'client') client();
else await main();
