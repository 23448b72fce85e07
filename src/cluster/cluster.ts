// Cluster mode put together (http-api.md §10): one etcd client, the shared log the engine proposes to and follows,
// this node's entry in the registry, trimming of etcd, catch-up from peers, and the status GET /v1/admin/cluster shows.
// The composition root (cli.ts) connects it before opening the database and hands the database its log.

import { randomBytes, timingSafeEqual, createHash } from 'node:crypto';
import { Etcd3, type IOptions } from 'etcd3';
import type { ReplicaSink, ReplicatedLog } from '../engine/index.js';
import type { Logger } from '../observability/logger.js';
import { EtcdLog } from './etcd-log.js';
import { ClusterKeys } from './keys.js';
import { catchUpFromPeers, framePeerBatch } from './peer.js';
import { NodeRegistry, type NodeEntry } from './registry.js';
import { Trimmer } from './trimmer.js';

export interface ClusterOptions {
  endpoints: string[];
  prefix: string;
  nodeId: string;
  logger: Logger;
  /** No etcd answer for this long: writes are refused (503) and /readyz says why. */
  quorumLossMs?: number;
  /** Each etcd request gets this long before it counts as failed (and is tried on another member). */
  requestTimeoutMs?: number;
  trimIntervalMs?: number;
  trimKeepRecords?: number;
}

/** GET /v1/admin/cluster (http-api.md §10). */
export interface ClusterStatus {
  nodeId: string;
  mode: 'cluster';
  appliedSeq: number;
  etcd: { endpoints: string[]; leader: string | null; revision: number | null };
  nodes: NodeEntry[];
}

const defaults = {
  quorumLossMs: 5_000,
  requestTimeoutMs: 2_000,
  trimIntervalMs: 5_000,
  trimKeepRecords: 100_000,
  leaseSeconds: 10,
  announceIntervalMs: 1_000,
};

/** Until etcd first answers, the node asks again this often. */
const connectRetryMs = 1_000;
/** gRPC messages up to this size: a batch may hold a record of limits.recordBytesMax. */
const grpcMessageBytesMax = 64 * 1024 * 1024;

export class Cluster {
  readonly log: EtcdLog;
  readonly registry: NodeRegistry;
  private readonly trimmer: Trimmer;
  private readonly client: Etcd3;
  private readonly keys: ClusterKeys;
  private sink: ReplicaSink | null = null;
  private url: string | null = null;
  /** The peers' shared secret (as a digest), read from etcd by connect(). */
  private secret: { text: string; digest: Buffer } | null = null;
  private closed = false;

  /** Makes the client (it connects on first use); connect() must succeed before the database opens. */
  constructor(private readonly options: ClusterOptions) {
    const { logger, nodeId } = options;
    const client = new Etcd3(clientOptions(options));
    const keys = new ClusterKeys(options.prefix);
    this.client = client;
    this.keys = keys;
    this.registry = new NodeRegistry({
      client,
      keys,
      nodeId,
      logger,
      leaseSeconds: defaults.leaseSeconds,
      intervalMs: defaults.announceIntervalMs,
    });
    this.trimmer = new Trimmer({
      client,
      keys,
      registry: this.registry,
      nodeId,
      logger,
      intervalMs: options.trimIntervalMs ?? defaults.trimIntervalMs,
      keepRecords: options.trimKeepRecords ?? defaults.trimKeepRecords,
      copiesMin: 2,
    });
    const peers = { registry: this.registry, nodeId, secret: () => this.secret?.text ?? '', logger, appliedSeq: () => this.sink?.appliedSeq ?? 0 };
    this.log = new EtcdLog({
      client,
      watchClient: () => new Etcd3(clientOptions(options)),
      keys,
      logger,
      quorumLossMs: options.quorumLossMs ?? defaults.quorumLossMs,
      catchUpFromPeer: (_afterSeq, untilSeq, deliver) => catchUpFromPeers(peers, untilSeq, deliver, () => this.closed),
    });
  }

  /**
   * Reads (or, for a new cluster, creates) the peers' secret, which also proves etcd answers; until it does, the node
   * keeps trying (it serves /healthz and answers 503 meanwhile).
   */
  async connect(): Promise<void> {
    const { client, keys } = this;
    for (let attempt = 1; !this.closed; attempt++) {
      try {
        const proposed = randomBytes(32).toString('base64url');
        const created = await client.if(keys.secret, 'Create', '==', 0).then(client.put(keys.secret).value(proposed)).else(client.get(keys.secret)).commit();
        const text = created.succeeded ? proposed : created.responses[0]!.response_range!.kvs[0]!.value.toString();
        this.secret = { text, digest: digest(text) };
        return;
      } catch (error) {
        if (attempt === 1 || attempt % 10 === 0) this.options.logger.warn({ module: 'cluster', err: String(error), attempt }, 'cannot reach etcd; retrying');
        await new Promise((resolve) => setTimeout(resolve, connectRetryMs));
      }
    }
  }

  /** The shared log for openDatabase; the registry announces this node as soon as the engine follows it. */
  replicatedLog(): ReplicatedLog {
    const start = async (sink: ReplicaSink): Promise<void> => {
      this.sink = sink;
      this.announce();
      await this.log.start(sink);
      this.trimmer.start();
    };
    return { start, propose: (batch) => this.log.propose(batch), refusal: () => this.log.refusal(), close: () => this.close() };
  }

  /** The URL peers reach this node at, known once it listens. */
  setUrl(url: string): void {
    this.url = url;
    this.announce();
  }

  private announce(): void {
    const sink = this.sink;
    if (this.url === null || sink === null) return;
    this.registry.start(this.url, () => ({ appliedSeq: sink.appliedSeq, durableSeq: sink.durableSeq }));
  }

  /** True when `authorization` carries the cluster's secret (a peer asking for this node's log). */
  isPeer(authorization: string | undefined): boolean {
    const token = /^Bearer (.+)$/.exec(authorization ?? '')?.[1];
    return token !== undefined && this.secret !== null && timingSafeEqual(digest(token), this.secret.digest);
  }

  frame(value: Buffer): Buffer[] {
    return framePeerBatch(value);
  }

  async status(): Promise<ClusterStatus> {
    const [nodes, etcd] = await Promise.all([this.registry.list(), this.etcdStatus()]);
    return { nodeId: this.options.nodeId, mode: 'cluster', appliedSeq: this.sink?.appliedSeq ?? 0, etcd, nodes };
  }

  private async etcdStatus(): Promise<ClusterStatus['etcd']> {
    try {
      const [status, members] = await Promise.all([this.client.maintenance.status(), this.client.cluster.memberList({})]);
      const leader = members.members.find((member) => member.ID === status.leader);
      return { endpoints: this.options.endpoints, leader: leader?.name ?? (status.leader === '0' ? null : status.leader), revision: Number(status.header.revision) };
    } catch {
      return { endpoints: this.options.endpoints, leader: null, revision: null };
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.trimmer.stop();
    await this.log.close();
    await this.registry.close();
    this.client.close();
  }
}

function clientOptions(options: ClusterOptions): IOptions {
  const timeoutMs = options.requestTimeoutMs ?? defaults.requestTimeoutMs;
  return {
    hosts: options.endpoints,
    dialTimeout: timeoutMs,
    grpcOptions: { 'grpc.max_receive_message_length': grpcMessageBytesMax, 'grpc.max_send_message_length': grpcMessageBytesMax },
    // Every call but a stream (watch, lease keep-alive) has a deadline: a paused member must not hold a request forever.
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + timeoutMs }),
  };
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
