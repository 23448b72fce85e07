// `npm run cluster -- up|down|status [--dir DIR] [--base-port N]`: a local three-node DriftDB cluster on three etcd
// members, for trying cluster mode by hand (README, "Several nodes"). `up` starts the processes detached and writes
// their pids to DIR/state.json; `down` stops them (`up` again resumes the same cluster and data); `status` shows each
// process and the cluster as node1 sees it.

import fs from 'node:fs';
import path from 'node:path';
import { ClusterHarness } from './cluster-harness.js';

interface State {
  basePort: number;
  adminPassword: string;
  etcd: Array<{ name: string; clientUrl: string; pid: number | null }>;
  nodes: Array<{ id: string; url: string; pid: number | null }>;
}

const usage = 'Usage: npm run cluster -- up|down|status [--dir DIR] [--base-port N]';

function option(args: string[], name: string): string | undefined {
  const at = args.indexOf(name);
  return at < 0 ? undefined : args[at + 1];
}

function alive(pid: number | null): boolean {
  if (pid === null) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function up(dir: string, basePort: number | undefined): Promise<number> {
  const previous = readState(dir);
  if (previous !== null && [...previous.etcd, ...previous.nodes].some((p) => alive(p.pid))) {
    process.stderr.write(`a cluster is already running from ${dir} (npm run cluster -- down first)\n`);
    return 1;
  }
  // A cluster brought up again from the same directory keeps its ports (etcd's members know each other by them) and
  // its admin password (the nodes' data has it already).
  const adminPassword = previous?.adminPassword ?? process.env.DRIFTDB_ADMIN_PASSWORD ?? 'driftdb-cluster-admin';
  const ports = basePort ?? previous?.basePort;
  const harness = await ClusterHarness.create({ dir, adminPassword, detached: true, ...(ports !== undefined ? { basePort: ports } : {}) });
  await harness.up();
  const state: State = {
    basePort: harness.options.basePort,
    adminPassword,
    etcd: harness.etcd.map((m) => ({ name: m.name, clientUrl: m.clientUrl, pid: m.pid })),
    nodes: harness.nodes.map((n) => ({ id: n.id, url: n.url, pid: n.pid })),
  };
  fs.writeFileSync(statePathOf(dir), `${JSON.stringify(state, null, 2)}\n`);
  process.stdout.write(`etcd:  ${harness.endpoints}\n`);
  for (const node of harness.nodes) process.stdout.write(`${node.id}: ${node.url}  (data ${node.dataDir}, log ${path.join(dir, `${node.id}.log`)})\n`);
  process.stdout.write(`admin password: ${adminPassword}\n`);
  return 0;
}

function statePathOf(dir: string): string {
  return path.join(dir, 'state.json');
}

/** The state `up` wrote in `dir`, or null when no cluster was started from it. */
function readState(dir: string): State | null {
  const statePath = statePathOf(dir);
  return fs.existsSync(statePath) ? (JSON.parse(fs.readFileSync(statePath, 'utf8')) as State) : null;
}

async function down(dir: string): Promise<number> {
  const state = readState(dir);
  if (state === null) {
    process.stderr.write(`no cluster state in ${dir}\n`);
    return 1;
  }
  // Nodes first (they finish their requests and close their logs), then etcd.
  for (const group of [state.nodes, state.etcd]) {
    for (const p of group) if (alive(p.pid)) process.kill(p.pid!, 'SIGCONT');
    for (const p of group) if (alive(p.pid)) process.kill(p.pid!, 'SIGTERM');
    const deadline = Date.now() + 20_000;
    while (group.some((p) => alive(p.pid)) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  // The state stays: `up` from this directory again reuses its ports and password; `status` shows everything stopped.
  process.stdout.write('stopped\n');
  return 0;
}

async function status(dir: string): Promise<number> {
  const state = readState(dir);
  if (state === null) {
    process.stdout.write(`no cluster running from ${dir}\n`);
    return 1;
  }
  for (const m of state.etcd) process.stdout.write(`${m.name.padEnd(6)} ${m.clientUrl}  pid ${m.pid} ${alive(m.pid) ? 'running' : 'stopped'}\n`);
  for (const n of state.nodes) process.stdout.write(`${n.id.padEnd(6)} ${n.url}  pid ${n.pid} ${alive(n.pid) ? 'running' : 'stopped'}\n`);
  const auth = `Basic ${Buffer.from(`admin:${state.adminPassword}`).toString('base64')}`;
  for (const node of state.nodes) {
    try {
      const response = await fetch(`${node.url}/v1/admin/cluster`, { headers: { authorization: auth }, signal: AbortSignal.timeout(3_000) });
      process.stdout.write(`${JSON.stringify(await response.json(), null, 2)}\n`);
      return 0;
    } catch {
      // Ask the next node.
    }
  }
  process.stdout.write('no node answered\n');
  return 1;
}

async function main(args: string[]): Promise<number> {
  const [command] = args;
  const dir = path.resolve(option(args, '--dir') ?? '.cluster');
  const basePortText = option(args, '--base-port');
  if (command === 'up') return up(dir, basePortText === undefined ? undefined : Number(basePortText));
  if (command === 'down') return down(dir);
  if (command === 'status') return status(dir);
  process.stderr.write(`${usage}\n`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`cluster: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
