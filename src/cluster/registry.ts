// The nodes of a cluster as etcd knows them: each node keeps nodes/<id> under a lease it renews, holding its URL and
// how far it has applied and made durable the shared log. The key goes when the node stops or its lease lapses, so
// the list is the live nodes: GET /v1/admin/cluster shows it, trimming and peer catch-up read it.

import type { Etcd3, Lease } from 'etcd3';
import type { Logger } from '../observability/logger.js';
import type { ClusterKeys } from './keys.js';

export interface NodeEntry {
  nodeId: string;
  /** Where peers reach its HTTP API. */
  url: string;
  appliedSeq: number;
  /** Highest seq durable in its own log. */
  durableSeq: number;
  /** When it last renewed its entry (RFC 3339). */
  lastSeen: string;
}

export interface NodeRegistryOptions {
  client: Etcd3;
  keys: ClusterKeys;
  nodeId: string;
  logger: Logger;
  /** A node silent this long drops out of the list. */
  leaseSeconds: number;
  /** How often the entry is rewritten. */
  intervalMs: number;
}

export class NodeRegistry {
  private lease: Lease | null = null;
  private timer: NodeJS.Timeout | null = null;
  private url: string | null = null;
  private progress: () => { appliedSeq: number; durableSeq: number } = () => ({ appliedSeq: 0, durableSeq: 0 });
  private writing = false;
  private closed = false;

  constructor(private readonly options: NodeRegistryOptions) {}

  /** Starts announcing this node (once its URL and progress are known), and keeps doing so until close. */
  start(url: string, progress: () => { appliedSeq: number; durableSeq: number }): void {
    this.url = url;
    this.progress = progress;
    if (this.timer !== null) return;
    void this.announce();
    this.timer = setInterval(() => void this.announce(), this.options.intervalMs).unref();
  }

  /** The live nodes, this one included once it announced itself. */
  async list(): Promise<NodeEntry[]> {
    const entries = await this.options.client.getAll().prefix(this.options.keys.nodesPrefix).strings();
    return Object.values(entries)
      .map((text) => JSON.parse(text) as NodeEntry)
      .sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0));
  }

  private async announce(): Promise<void> {
    if (this.writing || this.closed || this.url === null) return;
    this.writing = true;
    try {
      this.lease ??= this.newLease();
      const { appliedSeq, durableSeq } = this.progress();
      const entry: NodeEntry = { nodeId: this.options.nodeId, url: this.url, appliedSeq, durableSeq, lastSeen: new Date().toISOString() };
      await this.lease.put(this.options.keys.node(this.options.nodeId)).value(JSON.stringify(entry));
    } catch (error) {
      this.options.logger.warn({ module: 'cluster', err: String(error) }, 'cannot announce this node in etcd');
    } finally {
      this.writing = false;
    }
  }

  private newLease(): Lease {
    const lease = this.options.client.lease(this.options.leaseSeconds, { autoKeepAlive: true });
    lease.on('lost', (error) => {
      this.options.logger.warn({ module: 'cluster', err: String(error) }, 'lost the etcd lease of this node; taking a new one');
      if (this.lease === lease) this.lease = null;
    });
    return lease;
  }

  /** Stops announcing and removes the entry at once (revoking the lease), so peers stop counting on this node. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== null) clearInterval(this.timer);
    await this.lease?.revoke().catch(() => {});
  }
}
