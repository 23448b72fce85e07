// A local cluster for tests, the bench and the README walkthrough: three etcd members and three DriftDB nodes on
// loopback ports, each with its own data dir under one directory. The tests and the bench drive it as a library
// (kill, pause and restart any process); `npm run cluster -- up|down|status` (scripts/cluster.ts) runs it detached.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Etcd3 } from 'etcd3';
import { ClusterKeys } from '../src/cluster/keys.js';
import { encodeBatch, encodeBatchFrames } from '../src/engine/log/batch.js';
import type { CommitRecord } from '../src/engine/types.js';

/** dist/src/cli.js, from this file's place in dist/scripts/. */
export const cliPath = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/cli.js');

export interface HarnessOptions {
  /** Root directory: etcd-N/ and node-N/ data dirs and their logs go under it. */
  dir: string;
  /** First of nine consecutive free ports (etcd clients, etcd peers, nodes); found free when absent. */
  basePort?: number;
  /** DRIFTDB_ADMIN_PASSWORD of every node (they share one user table, so one admin). */
  adminPassword: string;
  /** Extra `serve` flags for every node. */
  nodeArgs?: string[];
  /** Processes outlive this one (npm run cluster -- up); otherwise they are killed when it exits. */
  detached?: boolean;
  members?: number;
}

export interface Member {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  proc: ChildProcess | null;
  pid: number | null;
}

export interface NodeProcess {
  id: string;
  url: string;
  port: number;
  dataDir: string;
  proc: ChildProcess | null;
  pid: number | null;
  /** Resolves when the current process exits. */
  exited: Promise<void>;
  /** Size of its log file when the current process was started (the file is appended to across restarts). */
  logOffset: number;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const proc of live) proc.kill('SIGKILL');
});

/** Where `etcd` is: Debian's etcd-server installs it in /usr/bin. */
const etcdBinary = process.env.DRIFTDB_ETCD_BINARY ?? 'etcd';
/** A batch of records may be as large as a record (32 MiB) plus room; etcd refuses requests over this. */
const etcdRequestBytesMax = 40 * 1024 * 1024;

export class ClusterHarness {
  readonly etcd: Member[] = [];
  readonly nodes: NodeProcess[] = [];
  private constructor(readonly options: HarnessOptions & { basePort: number }) {}

  static async create(options: HarnessOptions): Promise<ClusterHarness> {
    const count = options.members ?? 3;
    const basePort = options.basePort ?? (await freePortRun(3 * count));
    const harness = new ClusterHarness({ ...options, basePort });
    fs.mkdirSync(options.dir, { recursive: true });
    for (let i = 0; i < count; i++) {
      const name = `etcd${i + 1}`;
      harness.etcd.push({
        name,
        clientUrl: `http://127.0.0.1:${basePort + i}`,
        peerUrl: `http://127.0.0.1:${basePort + count + i}`,
        dataDir: path.join(options.dir, name),
        proc: null,
        pid: null,
      });
      const port = basePort + 2 * count + i;
      harness.nodes.push({
        id: `node${i + 1}`,
        url: `http://127.0.0.1:${port}`,
        port,
        dataDir: path.join(options.dir, `node${i + 1}`),
        proc: null,
        pid: null,
        exited: Promise.resolve(),
        logOffset: 0,
      });
    }
    return harness;
  }

  /**
   * Creates a harness on free ports and brings it up. A port found free may be taken before a process binds it (by
   * another harness, or any program): then everything is stopped and it starts again on other ports, a few times.
   */
  static async launch(options: Omit<HarnessOptions, 'basePort'> & { dir: string }): Promise<ClusterHarness> {
    for (let attempt = 1; ; attempt++) {
      const harness = await ClusterHarness.create({ ...options, dir: attempt === 1 ? options.dir : `${options.dir}-${attempt}` });
      try {
        await harness.up();
        return harness;
      } catch (error) {
        await harness.down();
        if (attempt >= launchAttemptsMax || !/address already in use|EADDRINUSE/i.test(String(error))) throw error;
      }
    }
  }

  get endpoints(): string {
    return this.etcd.map((member) => member.clientUrl).join(',');
  }

  /** Starts every etcd member and every node, and waits until each node says it is ready. */
  async up(): Promise<void> {
    for (let i = 0; i < this.etcd.length; i++) this.startEtcd(i);
    await Promise.all(this.etcd.map((_, i) => this.waitEtcd(i)));
    for (let i = 0; i < this.nodes.length; i++) this.startNode(i);
    await Promise.all(this.nodes.map((_, i) => this.waitReady(i)));
  }

  startEtcd(i: number): void {
    const member = this.etcd[i]!;
    const cluster = this.etcd.map((m) => `${m.name}=${m.peerUrl}`).join(',');
    const args = [
      '--name', member.name,
      '--data-dir', member.dataDir,
      '--listen-client-urls', member.clientUrl,
      '--advertise-client-urls', member.clientUrl,
      '--listen-peer-urls', member.peerUrl,
      '--initial-advertise-peer-urls', member.peerUrl,
      '--initial-cluster', cluster,
      '--initial-cluster-state', 'new',
      '--initial-cluster-token', `driftdb-harness-${this.options.basePort}`,
      '--max-request-bytes', String(etcdRequestBytesMax),
      '--logger', 'zap',
      '--log-level', 'warn',
    ];
    const proc = this.spawn(etcdBinary, args, path.join(this.options.dir, `${member.name}.log`), {});
    member.proc = proc;
    member.pid = proc.pid ?? null;
  }

  startNode(i: number): void {
    const node = this.nodes[i]!;
    const args = [
      cliPath, 'serve',
      '--cluster', 'etcd',
      '--etcd-endpoints', this.endpoints,
      '--node-id', node.id,
      '--data-dir', node.dataDir,
      '--port', String(node.port),
      '--tls', 'off',
      '--memory-limit-mb', '512',
      ...(this.options.nodeArgs ?? []),
    ];
    const env = { DRIFTDB_ADMIN_PASSWORD: this.options.adminPassword };
    const logFile = path.join(this.options.dir, `${node.id}.log`);
    node.logOffset = fs.existsSync(logFile) ? fs.statSync(logFile).size : 0;
    const proc = this.spawn(process.execPath, args, path.join(this.options.dir, `${node.id}.log`), env);
    node.proc = proc;
    node.pid = proc.pid ?? null;
    node.exited = new Promise((resolve) => proc.on('exit', () => resolve()));
  }

  private spawn(command: string, args: string[], logFile: string, env: Record<string, string>): ChildProcess {
    const out = fs.openSync(logFile, 'a');
    const childEnv: Record<string, string | undefined> = {};
    for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('DRIFTDB_')) childEnv[name] = value;
    const proc = spawn(command, args, { env: { ...childEnv, ...env }, stdio: ['ignore', out, out], detached: this.options.detached === true });
    fs.closeSync(out);
    if (this.options.detached === true) proc.unref();
    else {
      live.add(proc);
      proc.on('exit', () => live.delete(proc));
    }
    return proc;
  }

  /** Sends `signal` to an etcd member (SIGKILL, SIGSTOP, SIGCONT…); waits for its exit on SIGKILL. */
  async signalEtcd(i: number, signal: NodeJS.Signals): Promise<void> {
    const member = this.etcd[i]!;
    const proc = member.proc;
    if (proc === null) return;
    if (proc.exitCode !== null || proc.signalCode !== null) {
      // Gone already (it never started, or died): no exit event will come.
      member.proc = null;
      return;
    }
    const exited = signal === 'SIGKILL' || signal === 'SIGTERM' ? new Promise((resolve) => proc.once('exit', resolve)) : null;
    proc.kill(signal);
    if (exited !== null) {
      await exited;
      member.proc = null;
    }
  }

  /** SIGKILLs (or SIGTERMs) a node and waits for it to exit. */
  async stopNode(i: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const node = this.nodes[i]!;
    if (node.proc === null) return;
    node.proc.kill(signal);
    await node.exited;
    node.proc = null;
  }

  /** The index of the etcd leader, asked of the members through etcd's JSON gateway; -1 if none answers. */
  async etcdLeader(): Promise<number> {
    for (const member of this.etcd) {
      if (member.proc === null) continue;
      try {
        const status = (await postJson(`${member.clientUrl}/v3/maintenance/status`, {}, 1_000)) as { leader?: string; header?: { member_id?: string } };
        const members = (await postJson(`${member.clientUrl}/v3/cluster/member/list`, {}, 1_000)) as { members?: Array<{ ID: string; name: string }> };
        const leader = members.members?.find((m) => m.ID === status.leader);
        if (leader !== undefined) return this.etcd.findIndex((m) => m.name === leader.name);
      } catch {
        // Try the next member.
      }
    }
    return -1;
  }

  async waitEtcd(i: number, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const member = this.etcd[i]!;
    while (Date.now() < deadline) {
      if (member.proc !== null && member.proc.exitCode !== null) {
        throw new Error(`etcd member ${member.name} exited (${member.proc.exitCode}) before it was healthy: ${logTail(path.join(this.options.dir, `${member.name}.log`))}`);
      }
      try {
        const response = await fetch(`${member.clientUrl}/health`, { signal: AbortSignal.timeout(1_000) });
        if (response.ok) {
          // Another harness's member may hold the port this one could not bind: then the URL must not be used.
          if (!(await this.answersAs(member))) throw new Error(`address already in use: another etcd answers at ${member.clientUrl}`);
          return;
        }
      } catch (error) {
        if (/address already in use/.test(String(error))) throw error;
        // Not up yet.
      }
      await sleep(100);
    }
    throw new Error(`etcd member ${member.name} did not become healthy within ${timeoutMs} ms`);
  }

  /** Whether the etcd at the member's client URL is this member of this harness's cluster (its name and peer URL). */
  private async answersAs(member: Member): Promise<boolean> {
    const status = (await postJson(`${member.clientUrl}/v3/maintenance/status`, {}, 2_000)) as { header?: { member_id?: string } };
    const list = (await postJson(`${member.clientUrl}/v3/cluster/member/list`, {}, 2_000)) as { members?: Array<{ ID: string; name: string; peerURLs?: string[] }> };
    const self = list.members?.find((m) => m.ID === status.header?.member_id);
    return self?.name === member.name && (self.peerURLs ?? []).includes(member.peerUrl);
  }

  /** Waits for a node's /readyz to answer 200 (it has caught up with the shared log). */
  async waitReady(i: number, timeoutMs = 60_000): Promise<void> {
    const node = this.nodes[i]!;
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      if (node.proc !== null && node.proc.exitCode !== null) {
        throw new Error(`${node.id} exited (${node.proc.exitCode}) before it was ready: ${logTail(path.join(this.options.dir, `${node.id}.log`))}`);
      }
      try {
        const response = await fetch(`${node.url}/readyz`, { signal: AbortSignal.timeout(2_000) });
        // Ready, and listening there itself: another harness's node may hold the port this one could not bind.
        if (response.ok && this.listened(node)) return;
        last = await response.text();
      } catch (error) {
        last = String(error);
      }
      await sleep(100);
    }
    throw new Error(`${node.id} was not ready within ${timeoutMs} ms: ${last}`);
  }

  /** Whether the node's current process logged that it listens (its log since it was started). */
  private listened(node: NodeProcess): boolean {
    try {
      const fd = fs.openSync(path.join(this.options.dir, `${node.id}.log`), 'r');
      try {
        const bytes = fs.fstatSync(fd).size - node.logOffset;
        const buffer = Buffer.alloc(Math.max(0, bytes));
        fs.readSync(fd, buffer, 0, buffer.length, node.logOffset);
        return buffer.toString('utf8').includes('"msg":"listening"');
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      return false;
    }
  }

  /** Stops every node (SIGTERM: they finish in-flight requests) and then every etcd member. */
  async down(): Promise<void> {
    await Promise.all(this.nodes.map((_, i) => this.stopNode(i, 'SIGTERM')));
    for (let i = 0; i < this.etcd.length; i++) {
      this.etcd[i]!.proc?.kill('SIGCONT');
      await this.signalEtcd(i, 'SIGTERM');
    }
  }
}

async function postJson(url: string, body: unknown, timeoutMs: number): Promise<unknown> {
  const response = await fetch(url, { method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) });
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  return response.json();
}

/** Attempts of launch() when a port was taken between the check and the bind. */
const launchAttemptsMax = 4;

/** The last lines of a process's log, for an error saying why it stopped. */
function logTail(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').slice(-600);
  } catch {
    return '(no log)';
  }
}

/**
 * The first of `count` consecutive ports that are free on 127.0.0.1 now, below Linux's ephemeral range (32768 on):
 * outgoing connections take their local ports from there, and could take one between this check and the bind.
 */
export interface NodeAnswer {
  status: number;
  json: any;
  headers: Headers;
}

/**
 * One request to a node with the given Authorization; a refused or timed-out connection answers status 0 (the node is
 * down). A body that is not JSON comes back as its text.
 */
export async function callNode(baseUrl: string, authorization: string, method: string, urlPath: string, body?: unknown, timeoutMs = 15_000): Promise<NodeAnswer> {
  try {
    const response = await fetch(`${baseUrl}${urlPath}`, {
      method,
      headers: { authorization, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    let json: unknown;
    try {
      json = text.length > 0 ? JSON.parse(text) : undefined;
    } catch {
      json = text;
    }
    return { status: response.status, json, headers: response.headers };
  } catch {
    return { status: 0, json: undefined, headers: new Headers() };
  }
}

/**
 * Appends `count` one-row PUT commits to the shared log in etcd, as a node proposes them (batches of sealed records,
 * each conditional on the head), `perBatch` to a batch, each document padded with `padChars` characters; answers the
 * last seq. For the bench and tests that need a long log fast: through the API a million commits take this machine
 * a quarter of an hour. The live nodes apply the batches as any others.
 */
export async function appendBulkCommits(endpoints: string, input: { table: string; count: number; perBatch: number; padChars: number }): Promise<number> {
  const client = new Etcd3({ hosts: endpoints.split(',') });
  const keys = new ClusterKeys('driftdb/');
  const pad = 'x'.repeat(input.padChars);
  try {
    let made = 0;
    let head = Number((await client.get(keys.head).string()) ?? '0');
    while (made < input.count) {
      const size = Math.min(input.perBatch, input.count - made);
      const ts = Date.now();
      const records: CommitRecord[] = Array.from({ length: size }, (_, i) => {
        const key = `k${made + i}`;
        return { seq: head + 1 + i, ts, changes: [{ kind: 'row', table: input.table, key, op: 'put', doc: JSON.stringify({ id: key, i: made + i, pad }) }] };
      });
      const last = head + size;
      const result = await client
        .if(keys.head, 'Value', '==', String(head))
        .then(client.put(keys.log(last)).value(encodeBatch(`bulk:${last}`, head + 1, encodeBatchFrames(records))), client.put(keys.head).value(String(last)))
        .commit();
      if (result.succeeded) {
        made += size;
        head = last;
      } else {
        // Something else committed meanwhile (a node's own system write): propose after it.
        head = Number((await client.get(keys.head).string()) ?? '0');
      }
    }
    return head;
  } finally {
    client.close();
  }
}

export async function freePortRun(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 12_000 + Math.floor(Math.random() * 20_000);
    let free = true;
    for (let port = base; port < base + count && free; port++) free = await portFree(port);
    if (free) return base;
  }
  throw new Error(`no run of ${count} free ports found`);
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
