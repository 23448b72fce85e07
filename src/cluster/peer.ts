// Catch-up from a peer's log, for a node whose log ends before what etcd still holds (it was away while etcd was
// trimmed, or it is new). A peer streams its own log from a seq on (GET /v1/cluster/log, routes/cluster.ts) as
// batches, each [u32 LE length][batch]; the node applies them as it applies etcd's, so its own log gets every record
// with its own locations. Peers authenticate to each other with the cluster's secret, kept in etcd.

import http from 'node:http';
import https from 'node:https';
import { DriftError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { NodeRegistry } from './registry.js';

const peerLogPath = '/v1/cluster/log';
/** A batch in the stream is at most this large (a record is at most limits.recordBytesMax; a batch holds few). */
const peerBatchBytesMax = 64 * 1024 * 1024;
/** With no peer able to serve the missing records, the node asks again after this long (it is not ready meanwhile). */
const peerRetryMs = 1_000;

export interface PeerCatchUpOptions {
  registry: NodeRegistry;
  nodeId: string;
  secret(): string;
  logger: Logger;
  /** The seq this node has applied now (it grows as batches are delivered). */
  appliedSeq(): number;
}

/** Streams records after `afterSeq` from live peers until this node has applied at least `untilSeq`. */
export async function catchUpFromPeers(
  options: PeerCatchUpOptions,
  untilSeq: number,
  deliver: (value: Buffer) => Promise<void>,
  isClosed: () => boolean,
): Promise<void> {
  let waitingLogged = false;
  while (options.appliedSeq() < untilSeq && !isClosed()) {
    const peers = (await options.registry.list()).filter((node) => node.nodeId !== options.nodeId && node.durableSeq > options.appliedSeq());
    peers.sort((a, b) => b.durableSeq - a.durableSeq);
    for (const peer of peers) {
      const from = options.appliedSeq();
      try {
        await streamFromPeer(peer.url, from, options.secret(), deliver);
        options.logger.info({ module: 'cluster', peer: peer.nodeId, fromSeq: from, toSeq: options.appliedSeq() }, 'caught up from a peer');
      } catch (error) {
        options.logger.warn({ module: 'cluster', peer: peer.nodeId, err: String(error) }, 'catching up from a peer failed; trying another');
      }
      if (options.appliedSeq() >= untilSeq) return;
    }
    if (!waitingLogged) {
      options.logger.warn({ module: 'cluster', appliedSeq: options.appliedSeq(), untilSeq }, 'waiting for a peer that holds the records etcd no longer has');
      waitingLogged = true;
    }
    await new Promise((resolve) => setTimeout(resolve, peerRetryMs));
  }
}

/** One request to one peer: every batch it streams is delivered, in order, before the next is read. */
async function streamFromPeer(baseUrl: string, afterSeq: number, secret: string, deliver: (value: Buffer) => Promise<void>): Promise<void> {
  const url = new URL(`${peerLogPath}?after=${afterSeq}`, baseUrl);
  const response = await get(url, secret);
  if (response.statusCode !== 200) {
    response.resume();
    throw new Error(`peer answered ${response.statusCode}`);
  }
  let pending: Buffer = Buffer.alloc(0);
  for await (const chunk of response as AsyncIterable<Buffer>) {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    for (;;) {
      if (pending.length < 4) break;
      const bytes = pending.readUInt32LE(0);
      if (bytes === 0 || bytes > peerBatchBytesMax) throw new Error(`peer sent a batch of ${bytes} bytes`);
      if (pending.length < 4 + bytes) break;
      const value = pending.subarray(4, 4 + bytes);
      pending = pending.subarray(4 + bytes);
      await deliver(Buffer.from(value));
    }
  }
  if (pending.length > 0) throw new Error('peer stream ended inside a batch');
}

function get(url: URL, secret: string): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const options = { headers: { authorization: `Bearer ${secret}` } };
    // Peers are found through etcd, and the secret, not the certificate, is what they prove themselves by: a node's
    // certificate is self-signed by default, so it is not verified here.
    const request =
      url.protocol === 'https:' ? https.get(url, { ...options, rejectUnauthorized: false }, resolve) : http.get(url, options, resolve);
    request.on('error', reject);
    request.setTimeout(30_000, () => request.destroy(new Error('peer did not answer within 30 s')));
  });
}

/** Frames one batch for the stream. */
export function framePeerBatch(value: Buffer): Buffer[] {
  if (value.length > peerBatchBytesMax) throw new DriftError('internal', 'a batch is too large to stream');
  const length = Buffer.allocUnsafe(4);
  length.writeUInt32LE(value.length, 0);
  return [length, value];
}
