// Instructions per request of the spec floor, the SQLite peer and DriftDB, counted by valgrind's callgrind over
// HTTPS: a figure that does not move with the machine's load, unlike req/s and CPU time on 2 shared cores. Each server
// runs under callgrind with counting off; after a warm-up, counting is switched on for exactly `requests` requests
// (32 at a time) and off again. Not a test and not part of `npm run bench`: valgrind runs a server about 50 times
// slower, and a time-driven cost (a timer, a periodic check) weighs that much more than at full speed.
//
//   node dist/bench/instructions.js [--requests 8000] [--warmup 3000] [--kinds get,put,query] [--targets floor,sqlite,drift]

import { execFileSync, fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchDoc, groupsFor, groupValue, rowKey } from './docs.js';
import { freePort } from './procs.js';
import { putTable, rowsTable } from './scenarios-http.js';

const kinds = ['get', 'put', 'query'] as const;
const targets = ['floor', 'sqlite', 'drift'] as const;
type Kind = (typeof kinds)[number];
type Target = (typeof targets)[number];

interface Options {
  requests: number;
  warmup: number;
  kinds: Kind[];
  targets: Target[];
}

/** Rows every server holds before the count (the floor and the SQLite peer preload them themselves). */
const rows = 1000;
const concurrency = 32;
const password = 'instructions-bench-password';
const authorization = `Basic ${Buffer.from(`admin:${password}`).toString('base64')}`;
const distRoot = fileURLToPath(new URL('..', import.meta.url));

function parseOptions(argv: string[]): Options {
  const options: Options = { requests: 8000, warmup: 3000, kinds: [...kinds], targets: [...targets] };
  for (let i = 0; i < argv.length; i += 2) {
    const [name, value] = [argv[i], argv[i + 1] ?? ''];
    if (name === '--requests' || name === '--warmup') {
      const n = Number(value);
      if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${name} takes a positive integer`);
      options[name === '--requests' ? 'requests' : 'warmup'] = n;
    } else if (name === '--kinds') options.kinds = listOf(value, kinds);
    else if (name === '--targets') options.targets = listOf(value, targets);
    else throw new Error(`unknown option ${name}`);
  }
  return options;
}

function listOf<T extends string>(value: string, allowed: readonly T[]): T[] {
  const items = value.split(',');
  for (const item of items) if (!allowed.includes(item as T)) throw new Error(`${item} is not one of ${allowed.join(', ')}`);
  return items as T[];
}

/** A server under callgrind, counting nothing until told to. */
interface Counted {
  child: ChildProcess;
  port: number;
  dir: string;
}

async function startCounted(target: Target): Promise<Counted> {
  const dir = mkdtempSync(join(tmpdir(), `driftdb-instructions-${target}-`));
  const valgrind = ['--tool=callgrind', '--instr-atstart=no', `--callgrind-out-file=${join(dir, 'callgrind.out')}`];
  const log = openSync(join(dir, 'server.log'), 'a');
  if (target === 'drift') {
    const port = await freePort();
    const cli = join(distRoot, 'src', 'cli.js');
    const args = ['serve', '--data-dir', join(dir, 'data'), '--host', '127.0.0.1', '--port', String(port), '--tls', 'self-signed', '--heap-reclaim-idle-ms', '0'];
    const child = spawn('valgrind', [...valgrind, process.execPath, cli, ...args], { env: { ...process.env, DRIFTDB_ADMIN_PASSWORD: password }, stdio: ['ignore', log, log] });
    return { child, port, dir };
  }
  // The peers are worker scripts that report their port over IPC; fork() runs them under valgrind instead of node.
  const script = join(distRoot, 'bench', `${target}-server.js`);
  const child = fork(script, [String(rows), authorization, ...(target === 'sqlite' ? [join(dir, 'data')] : [])], {
    execPath: 'valgrind',
    execArgv: [...valgrind, process.execPath],
    stdio: ['ignore', log, log, 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (message) => resolve((message as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`${target} server exited (${code}) before it was ready; see ${dir}/server.log`)));
  });
  return { child, port, dir };
}

const agent = new https.Agent({ keepAlive: true, maxSockets: concurrency, rejectUnauthorized: false });

function call(port: number, method: string, path: string, body?: unknown): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string | number> = { authorization };
    if (data !== undefined) Object.assign(headers, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) });
    const request = https.request({ host: '127.0.0.1', port, method, path, agent, headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
    });
    request.on('error', reject);
    request.end(data);
  });
}

async function waitReady(server: Counted, target: Target): Promise<void> {
  const path = target === 'drift' ? '/readyz' : `/v1/tables/${rowsTable}/rows/${rowKey(0)}`;
  for (;;) {
    if (server.child.exitCode !== null) throw new Error(`${target} exited before it was ready; see ${server.dir}/server.log`);
    try {
      if ((await call(server.port, 'GET', path)).status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** DriftDB starts empty: the same tables and rows the peers preload, with the same index on `group`. */
async function preloadDrift(port: number): Promise<void> {
  for (const body of [{ name: rowsTable, primaryKey: 'id', indexes: ['group'] }, { name: putTable, primaryKey: 'id', indexes: [] }]) {
    const answer = await call(port, 'POST', '/v1/tables', body);
    if (answer.status !== 201) throw new Error(`POST /v1/tables: ${answer.status} ${answer.text}`);
  }
  const groups = groupsFor(rows);
  await run(rows, (i) => ['PUT', `/v1/tables/${rowsTable}/rows/${rowKey(i)}`, benchDoc(i, groups)], port);
}

/** Keys of PUTs made so far: each PUT writes a new one. */
let putsMade = 0;

/** One request of a kind; `i` numbers it within its run (the row or group it reads). */
function requestOf(kind: Kind, i: number): [string, string, unknown?] {
  const groups = groupsFor(rows);
  if (kind === 'get') return ['GET', `/v1/tables/${rowsTable}/rows/${rowKey(i % rows)}`];
  if (kind === 'put') {
    const n = putsMade++;
    return ['PUT', `/v1/tables/${putTable}/rows/put-${n}`, benchDoc(n, groups)];
  }
  return ['POST', '/v1/query', { table: rowsTable, where: { group: groupValue(i % groups, groups) } }];
}

/** `count` requests, `concurrency` at a time, the i-th made by `make(i)`; every answer must be a success. */
async function run(count: number, make: (i: number) => [string, string, unknown?], port: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const [method, path, body] = make(next++);
      const answer = await call(port, method, path, body);
      if (answer.status >= 300) throw new Error(`${method} ${path}: ${answer.status} ${answer.text}`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/** Instructions of a counted run, and the parts of them that depend on timing more than on the request. */
interface Count {
  total: number;
  /** V8's garbage collector: a major collection falls in one run's window and not in another's. */
  gc: number;
  /** V8's optimizing compilers: how much is still being compiled after the warm-up. */
  compiler: number;
}

const gcFunctions = /Mark|Sweep|Scaveng|Evacuat|Compact|MemoryChunk|RememberedSet|SlotSet|Heap::|SizeFromMap|GCTracer|BodyDescriptor|Worklist/;
const compilerFunctions = /compiler::|maglev|Maglev|turboshaft|Turboshaft/;

/** The counted dump (the one with the most instructions), split by callgrind_annotate's per-function totals. */
function countedInstructions(dir: string): Count {
  let most = 0;
  let counted = '';
  for (const file of readdirSync(dir).filter((name) => name.startsWith('callgrind.out'))) {
    for (const match of readFileSync(join(dir, file), 'utf8').matchAll(/^(?:summary|totals): (\d+)/gm)) {
      if (Number(match[1]) > most) [most, counted] = [Number(match[1]), join(dir, file)];
    }
  }
  const count: Count = { total: most, gc: 0, compiler: 0 };
  const annotated = execFileSync('callgrind_annotate', ['--threshold=100', counted], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  for (const line of annotated.split('\n')) {
    const match = /^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)$/.exec(line);
    if (match === null || match[2]!.includes('PROGRAM TOTALS')) continue;
    const instructions = Number(match[1]!.replaceAll(',', ''));
    if (gcFunctions.test(match[2]!)) count.gc += instructions;
    else if (compilerFunctions.test(match[2]!)) count.compiler += instructions;
  }
  return count;
}

async function measure(target: Target, kind: Kind, options: Options): Promise<Count> {
  const server = await startCounted(target);
  try {
    await waitReady(server, target);
    if (target === 'drift') await preloadDrift(server.port);
    await run(options.warmup, (i) => requestOf(kind, i), server.port);
    const control = (...args: string[]): void => void execFileSync('callgrind_control', [...args, String(server.child.pid)], { stdio: 'ignore' });
    control('--zero');
    control('--instr=on');
    await run(options.requests, (i) => requestOf(kind, i), server.port);
    control('--instr=off');
    control('--dump');
    server.child.kill('SIGTERM');
    await new Promise((resolve) => server.child.once('exit', resolve));
    const count = countedInstructions(server.dir);
    return { total: count.total / options.requests, gc: count.gc / options.requests, compiler: count.compiler / options.requests };
  } finally {
    if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
    rmSync(server.dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  if (spawnSync('valgrind', ['--version']).status !== 0) throw new Error('valgrind is not installed (apt-get install valgrind)');
  process.stdout.write(`instructions per request, HTTPS, ${options.requests} counted after ${options.warmup} of warm-up, ${concurrency} at a time\n`);
  const figure = (n: number): string => Math.round(n).toLocaleString('en-US').padStart(9);
  for (const kind of options.kinds) {
    const counts = new Map<Target, Count>();
    for (const target of options.targets) {
      const count = await measure(target, kind, options);
      counts.set(target, count);
      const steady = count.total - count.gc - count.compiler;
      process.stdout.write(`${kind.padEnd(6)} ${target.padEnd(7)} ${figure(count.total)}  (collector ${figure(count.gc)}, compiler ${figure(count.compiler)}, the rest ${figure(steady)})\n`);
    }
    const drift = counts.get('drift');
    for (const peer of ['floor', 'sqlite'] as const) {
      const other = counts.get(peer);
      if (drift === undefined || other === undefined) continue;
      // As a rate, like the bench's ratios: the peer's instructions per request over DriftDB's; also without the
      // compiler, whose share is about when functions got optimized, not about the request.
      const rate = (other.total / drift.total).toFixed(3);
      const compiled = ((other.total - other.compiler) / (drift.total - drift.compiler)).toFixed(3);
      process.stdout.write(`${kind.padEnd(6)} DriftDB ÷ ${peer}, as a rate: ${rate} (${compiled} without the compiler)\n`);
    }
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
