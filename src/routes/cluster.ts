// Cluster routes (http-api.md §10): the cluster's state for admins, and the log stream a peer catches up from
// (node to node, authenticated by the cluster's secret, not by a user). Thin: the cluster module knows etcd.

import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { batchHeader, type Database } from '../engine/index.js';
import { DriftError } from '../errors.js';
import { problemResponses, ref } from './schemas.js';

/** What the routes need of the cluster module (src/cluster/cluster.ts); null on a single node. */
export interface ClusterRouteSource {
  status(): Promise<unknown>;
  /** True when the Authorization header carries the cluster's secret. */
  isPeer(authorization: string | undefined): boolean;
  /** Frames one batch of the log stream. */
  frame(value: Buffer): Buffer[];
}

const nodeSchema = {
  type: 'object',
  required: ['nodeId', 'url', 'appliedSeq', 'lastSeen'],
  properties: {
    nodeId: { type: 'string' },
    url: { type: 'string', description: 'Where the node serves (and peers stream its log from).' },
    appliedSeq: { type: 'integer', description: 'Highest seq the node has applied.' },
    durableSeq: { type: 'integer', description: 'Highest seq durable in its own log: etcd is trimmed behind the slowest node.' },
    lastSeen: { type: 'string', format: 'date-time', description: 'When the node last renewed its entry (every second).' },
  },
} as const;

const clusterSchema = {
  type: 'object',
  required: ['nodeId', 'mode', 'appliedSeq', 'etcd', 'nodes'],
  properties: {
    nodeId: { type: ['string', 'null'], description: 'This node (--node-id); null on a single node.' },
    mode: { type: 'string', enum: ['single', 'cluster'] },
    appliedSeq: { type: 'integer', description: 'Highest seq this node has applied and serves reads at.' },
    etcd: {
      type: ['object', 'null'],
      description: 'null on a single node.',
      required: ['endpoints', 'leader', 'revision'],
      properties: {
        endpoints: { type: 'array', items: { type: 'string' } },
        leader: { type: ['string', 'null'], description: 'Name of the etcd leader; null when etcd did not answer.' },
        revision: { type: ['integer', 'null'], description: 'etcd revision; null when etcd did not answer.' },
      },
    },
    nodes: { type: 'array', items: nodeSchema, description: 'The live nodes (whose etcd lease holds), this one included; empty on a single node.' },
  },
} as const;

/** Records per batch of the peer log stream, and bytes per response (the peer asks again from where it got to). */
const streamBatchRecords = 1_000;
const streamResponseBytesMax = 256 * 1024 * 1024;

interface ClusterRouteOptions {
  db: () => Database;
  cluster: ClusterRouteSource | null;
}

export async function clusterAdminRoutes(app: FastifyInstance, opts: ClusterRouteOptions): Promise<void> {
  app.get('/v1/admin/cluster', {
    config: { permission: 'admin' },
    schema: {
      operationId: 'clusterStatus',
      tags: ['admin'],
      summary: 'The cluster',
      description:
        'This node, how far it has applied the shared log, the etcd cluster (endpoints, leader, revision) and the live ' +
        'nodes with their applied and durable seqs. On a single node: mode "single", etcd null, no nodes.',
      response: { 200: { ...clusterSchema, description: 'The cluster as this node sees it.' }, ...problemResponses() },
    },
    handler: async () => {
      if (opts.cluster !== null) return opts.cluster.status();
      return { nodeId: null, mode: 'single', appliedSeq: opts.db().durableSeq, etcd: null, nodes: [] };
    },
  });
}

export async function clusterPeerRoutes(app: FastifyInstance, opts: ClusterRouteOptions): Promise<void> {
  app.get<{ Querystring: { after: number } }>('/v1/cluster/log', {
    config: { permission: 'public' },
    schema: {
      operationId: 'clusterLog',
      tags: ['admin'],
      summary: "A peer's log (node to node)",
      description:
        "Streams this node's durable log records after `after` as batches ([u32 LE length][batch] each), for a node " +
        'catching up past what etcd still holds. Nodes authenticate with the cluster\'s secret (Bearer), kept in etcd; ' +
        'no user credentials are accepted. 404 not_found on a single node.',
      querystring: {
        type: 'object',
        required: ['after'],
        additionalProperties: false,
        properties: { after: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } },
      },
      produces: 'application/octet-stream',
      response: {
        200: { type: 'string', format: 'binary', description: 'The batches, oldest first, up to the seq durable when each was read.' },
        400: ref('Problem'),
        401: ref('Problem'),
        404: ref('Problem'),
      },
    },
    handler: async (req, reply) => {
      const cluster = opts.cluster;
      if (cluster === null) throw new DriftError('not_found', 'This node is not part of a cluster.');
      if (!cluster.isPeer(req.headers.authorization)) throw new DriftError('unauthorized', 'Only nodes of the cluster may read its log.');
      const db = opts.db();
      return reply.type('application/octet-stream').send(Readable.from(logBatches(db, cluster, req.query.after)));
    },
  });
}

/** The framed batches after `after`, read as the stream is consumed (so a slow peer holds no backlog here). */
function* logBatches(db: Database, cluster: ClusterRouteSource, after: number): Generator<Buffer> {
  let sent = 0;
  let from = after;
  while (sent < streamResponseBytesMax) {
    const value = db.logBatch(from, streamBatchRecords);
    if (value === null) return;
    for (const part of cluster.frame(value)) {
      sent += part.length;
      yield part;
    }
    from = batchHeader(value).lastSeq;
  }
}
