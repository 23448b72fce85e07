// Test helper for cluster mode: a harness of three etcd members and three DriftDB nodes (scripts/cluster-harness.ts)
// in a temp dir, and a small HTTP client for the nodes. Every process is killed when the test process exits.

import path from 'node:path';
import { callNode, ClusterHarness, type NodeAnswer } from '../../scripts/cluster-harness.js';
import { adminPassword, basicAuth, makeTempDir } from './server.js';

export { ClusterHarness, sleep } from '../../scripts/cluster-harness.js';

export type Answer = NodeAnswer;

/** One request to a node as the admin; a refused or timed-out connection answers status 0 (the node is down). */
export function call(baseUrl: string, method: string, urlPath: string, body?: unknown, timeoutMs = 15_000): Promise<Answer> {
  return callNode(baseUrl, basicAuth('admin', adminPassword), method, urlPath, body, timeoutMs);
}

/** Three etcd members and three nodes, up and ready, in a fresh temp dir. */
export async function startCluster(nodeArgs: string[] = []): Promise<ClusterHarness> {
  return ClusterHarness.launch({ dir: path.join(makeTempDir('driftdb-cluster-'), 'cluster'), adminPassword, nodeArgs });
}

/** Every commit of the feed of `tables` on one node, from the start, as JSON text per commit. */
export async function feedOf(baseUrl: string, tables: string, minSeq: number): Promise<Array<{ seq: number; ts: string; changes: any[] }>> {
  const ready = await call(baseUrl, 'GET', `/v1/tables?minSeq=${minSeq}`, undefined, 30_000);
  if (ready.status !== 200) throw new Error(`node ${baseUrl} did not reach seq ${minSeq}: ${ready.status} ${JSON.stringify(ready.json)}`);
  const commits: Array<{ seq: number; ts: string; changes: any[] }> = [];
  let since = 0;
  for (;;) {
    const page = await call(baseUrl, 'GET', `/v1/changes?tables=${tables}&since=${since}&limit=1000`);
    if (page.status !== 200) throw new Error(`feed of ${baseUrl} answered ${page.status}`);
    commits.push(...page.json.commits);
    if (page.json.nextSince === since || page.json.nextSince >= minSeq) break;
    since = page.json.nextSince;
  }
  return commits.filter((commit) => commit.seq <= minSeq);
}
