// Keeps etcd holding only the tail of the log. Every node keeps the whole history in its own log, so once a record
// is durable on the live nodes, etcd need not keep it: the node with the lowest id among the live ones raises the
// floor to a little behind the slowest live node's durable seq, deletes the batches at or below it, and compacts
// etcd's revisions. A node that was away for longer catches up from a peer's log instead.

import type { Etcd3 } from 'etcd3';
import type { Logger } from '../observability/logger.js';
import type { ClusterKeys } from './keys.js';
import type { NodeRegistry } from './registry.js';

export interface TrimmerOptions {
  client: Etcd3;
  keys: ClusterKeys;
  registry: NodeRegistry;
  nodeId: string;
  logger: Logger;
  intervalMs: number;
  /** Records kept in etcd behind the slowest node, so a node that restarts briefly catches up from etcd alone. */
  keepRecords: number;
  /**
   * Live nodes whose logs must all hold a record before etcd lets it go: two, so losing any one machine (a node's
   * disk or an etcd member) still leaves a copy of every acknowledged record.
   */
  copiesMin: number;
}

const floorDigits = 16;

export class Trimmer {
  private timer: NodeJS.Timeout | null = null;
  private running = false;

  constructor(private readonly options: TrimmerOptions) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.options.intervalMs).unref();
  }

  private async tick(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      await this.trim();
    } catch (error) {
      this.options.logger.warn({ module: 'cluster', err: String(error) }, 'trimming etcd failed; will try again');
    } finally {
      this.running = false;
    }
  }

  /** One round: raise the floor if this node is the lowest-named live one and the nodes are far enough ahead. */
  async trim(): Promise<number | null> {
    const { client, keys } = this.options;
    const nodes = await this.options.registry.list();
    if (nodes.length < this.options.copiesMin || nodes[0]!.nodeId !== this.options.nodeId) return null;
    const slowest = Math.min(...nodes.map((node) => node.durableSeq));
    const floor = slowest - this.options.keepRecords;
    const current = Number((await client.get(keys.floor).string()) ?? 0);
    if (floor <= current) return null;
    // The floor goes up first, and only up (compared as zero-padded text): a reader that finds a gap in the log
    // must find the floor past it, or it would wait for records etcd no longer has.
    const padded = String(floor).padStart(floorDigits, '0');
    const raised = await (current === 0 ? client.if(keys.floor, 'Create', '==', 0) : client.if(keys.floor, 'Value', '<', padded))
      .then(client.put(keys.floor).value(padded))
      .commit();
    if (!raised.succeeded) return null;
    const deleted = await client.delete().inRange({ start: keys.logPrefix, end: keys.log(floor + 1) }).exec();
    // Deleted keys stay in etcd's history until its revisions are compacted.
    await client.kv.compact({ revision: deleted.header.revision, physical: false });
    this.options.logger.info({ module: 'cluster', floor, batches: Number(deleted.deleted), slowest }, 'trimmed the shared log in etcd');
    return floor;
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
  }
}
