// The shared commit log on etcd (the engine's ReplicatedLog port). A proposal is one etcd transaction:
// If(head = the seq it was decided against) Then(put the batch under log/<last seq>, put head = last seq); etcd's Raft
// orders them and makes them durable on a quorum. Every node follows log/ in key order: batches the watch delivers
// (or that its own proposal just appended) are handed to the engine when they continue what it applied; anything else
// (a gap, a stalled watch, an idle moment) is read from etcd by range. Where etcd was trimmed past this node's log,
// the missing records come from a peer first.

import type { Etcd3, Watcher } from 'etcd3';
import { batchHeader, type ProposalOutcome, type ReplicaSink, type ReplicatedLog } from '../engine/index.js';
import { DriftError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { ClusterKeys } from './keys.js';

export interface EtcdLogOptions {
  client: Etcd3;
  /** Builds a fresh client for the watch: a watch stalled on a paused member is moved by replacing its client. */
  watchClient(): Etcd3;
  keys: ClusterKeys;
  logger: Logger;
  /** Writes are refused once no etcd request has succeeded for this long (no quorum reachable). */
  quorumLossMs: number;
  /** Streams the records after `afterSeq`, up to at least `untilSeq`, from a peer node into `deliver`. */
  catchUpFromPeer(afterSeq: number, untilSeq: number, deliver: (value: Buffer) => Promise<void>): Promise<void>;
}

/** Batches read from etcd per range request while catching up, at most. */
const pullBatchesMax = 256;
/**
 * Bytes a range answer should carry at most: an answer larger than the etcd client's 64 MiB gRPC receive limit fails
 * whole. A batch may be megabytes (up to the proposal bound, or one commit alone larger still), so each range asks for
 * as many batches as this holds at the size of the largest batch in the previous answer (at first, at the proposal
 * bound), and a range refused anyway is asked again for half as many.
 */
const pullRangeBytesMax = 48 * 1024 * 1024;
const batchBytesAssumed = 4 * 1024 * 1024;
/** With nothing from the watch for this long, the log is read from etcd (a stalled watch, a missed event). */
const pollIntervalMs = 500;
/** How often the node checks that etcd answers, when nothing else asked it lately. */
const probeIntervalMs = 1_000;
/** After a failed read, the follower waits this long before the next. */
const retryDelayMs = 250;

export class EtcdLog implements ReplicatedLog {
  private readonly client: Etcd3;
  private readonly keys: ClusterKeys;
  private readonly logger: Logger;
  private sink: ReplicaSink | null = null;
  /** When an etcd request last succeeded (a linearizable one: a quorum answered). */
  private lastContact = Date.now();
  private lastError = 'none yet';
  private catchingUp = true;
  /** Batches seen (watch, own appends) but not delivered yet, by last seq. */
  private readonly buffered = new Map<number, Buffer>();
  private wake: (() => void) | null = null;
  /** A proposal lost its seq: the batch that took it is read from etcd at once rather than awaited from the watch. */
  private pullWanted = false;
  private watchClient: Etcd3 | null = null;
  private watcher: Watcher | null = null;
  /** Batches asked for per range read (see pullRangeBytesMax). */
  private pullBatches = batchesWithin(batchBytesAssumed);
  /** A range read found batches the watch had not delivered: when it happens twice in a row the watch is replaced. */
  private watchMisses = 0;
  private probeTimer: NodeJS.Timeout | null = null;
  private following: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly options: EtcdLogOptions) {
    this.client = options.client;
    this.keys = options.keys;
    this.logger = options.logger;
  }

  // ---- proposing ------------------------------------------------------------------------------------------

  async propose(batch: { head: number; lastSeq: number; value: Buffer }): Promise<ProposalOutcome> {
    const { keys } = this;
    const ifHead = batch.head === 0 ? this.client.if(keys.head, 'Create', '==', 0) : this.client.if(keys.head, 'Value', '==', String(batch.head));
    let succeeded: boolean;
    try {
      const result = await ifHead
        .then(this.client.put(keys.log(batch.lastSeq)).value(batch.value), this.client.put(keys.head).value(String(batch.lastSeq)))
        .commit();
      succeeded = result.succeeded;
    } catch (error) {
      this.failed(error);
      if (/too large/i.test(String(error))) throw new DriftError('payload_too_large', 'etcd refused the commit as too large (see --max-request-bytes of etcd).');
      throw error;
    }
    this.contacted();
    // Ours now: the engine need not wait for the watch to hear of it. Lost: the winner's batch is read at once.
    if (succeeded) this.buffered.set(batch.lastSeq, batch.value);
    else this.pullWanted = true;
    this.wake?.();
    return succeeded ? 'appended' : 'lost';
  }

  refusal(): string | null {
    if (this.closed) return 'the node is leaving the cluster';
    if (this.catchingUp) return 'this node is catching up with the shared log';
    const silentMs = Date.now() - this.lastContact;
    if (silentMs < this.options.quorumLossMs) return null;
    return `no etcd quorum reachable: no answer for ${silentMs} ms (${this.lastError})`;
  }

  // ---- following ------------------------------------------------------------------------------------------

  async start(sink: ReplicaSink): Promise<void> {
    this.sink = sink;
    const head = await this.readSeq(this.keys.head);
    // Catch up to the head seen now before saying ready; what commits meanwhile arrives through the watch.
    while (sink.appliedSeq < head && !this.closed) {
      const progressed = await this.pull();
      if (!progressed) await delay(retryDelayMs);
    }
    this.catchingUp = false;
    this.probeTimer = setInterval(() => void this.probe(), probeIntervalMs).unref();
    this.following = this.follow();
  }

  /**
   * Delivers batches in order until close: buffered ones when they continue the log, else read from etcd when a
   * proposal lost its seq or when nothing arrived for a poll interval. Only such a quiet interval that finds new
   * batches counts against the watch: a wake-up by a batch already applied (the watch echoing this node's own
   * appends) is no sign of a missed one, and reopening the watch stalls delivery.
   */
  private async follow(): Promise<void> {
    await this.openWatch();
    while (!this.closed) {
      try {
        if (await this.deliverBuffered()) continue;
        const woken = await this.sleep(pollIntervalMs);
        if (this.closed) break;
        if (woken && !this.pullWanted) continue;
        this.pullWanted = false;
        const found = await this.pull();
        if (woken) continue;
        this.watchMisses = found ? this.watchMisses + 1 : 0;
        if (this.watchMisses >= 2) await this.replaceWatch();
      } catch (error) {
        if (this.closed) break;
        this.logger.warn({ module: 'cluster', err: String(error) }, 'following the shared log failed; retrying');
        await delay(retryDelayMs);
      }
    }
  }

  /** Hands the buffered batch that continues the log to the engine; true if one did. */
  private async deliverBuffered(): Promise<boolean> {
    const sink = this.sink!;
    let delivered = false;
    for (;;) {
      const next = this.takeContinuation();
      if (next === null) return delivered;
      await sink.deliver(next);
      delivered = true;
    }
  }

  /** The buffered batch holding appliedSeq + 1, dropping those already applied. */
  private takeContinuation(): Buffer | null {
    const applied = this.sink!.appliedSeq;
    let found: Buffer | null = null;
    for (const [lastSeq, value] of this.buffered) {
      if (lastSeq <= applied) {
        this.buffered.delete(lastSeq);
        continue;
      }
      if (found === null && batchHeader(value).firstSeq <= applied + 1) {
        this.buffered.delete(lastSeq);
        found = value;
      }
    }
    return found;
  }

  /**
   * Reads the batches after the applied seq from etcd and delivers them; true if any were. Where etcd no longer holds
   * the next record (trimmed behind this node), a peer streams the missing ones first.
   */
  private async pull(): Promise<boolean> {
    const sink = this.sink!;
    const from = sink.appliedSeq + 1;
    let response;
    for (;;) {
      try {
        response = await this.client.getAll().inRange({ start: this.keys.log(from), end: this.keys.logEnd }).limit(this.pullBatches).exec();
        break;
      } catch (error) {
        this.failed(error);
        if (!isTooLargeToReceive(error) || this.pullBatches === 1) throw error;
        this.pullBatches = Math.max(1, this.pullBatches >> 1);
        this.logger.info({ module: 'cluster', batches: this.pullBatches }, 'a range of the shared log was too large to receive; reading fewer batches at a time');
      }
    }
    this.contacted();
    let largest = 0;
    for (const kv of response.kvs) largest = Math.max(largest, kv.value.length);
    if (response.kvs.length > 0) this.pullBatches = batchesWithin(largest);
    let delivered = false;
    for (const kv of response.kvs) {
      const header = batchHeader(kv.value);
      if (header.lastSeq <= sink.appliedSeq) continue;
      if (header.firstSeq > sink.appliedSeq + 1) {
        await this.catchUpPastFloor();
        return true;
      }
      await sink.deliver(kv.value);
      delivered = true;
    }
    if (!delivered && response.kvs.length === 0) {
      // Nothing at or after the next seq: either we are at the head, or the log was trimmed past us entirely.
      const floor = await this.readSeq(this.keys.floor);
      if (floor > sink.appliedSeq) {
        await this.catchUpPastFloor();
        return true;
      }
    }
    return delivered;
  }

  /** etcd was trimmed past this node's log: stream the missing records from a peer. */
  private async catchUpPastFloor(): Promise<void> {
    const sink = this.sink!;
    const floor = await this.readSeq(this.keys.floor);
    if (floor <= sink.appliedSeq) return;
    this.logger.info({ module: 'cluster', appliedSeq: sink.appliedSeq, floor }, 'etcd no longer holds the next records; catching up from a peer');
    await this.options.catchUpFromPeer(sink.appliedSeq, floor, (value) => sink.deliver(value));
  }

  private async readSeq(key: string): Promise<number> {
    let text: string | null;
    try {
      text = await this.client.get(key).string();
    } catch (error) {
      this.failed(error);
      throw error;
    }
    this.contacted();
    return text === null ? 0 : Number(text);
  }

  // ---- the watch ------------------------------------------------------------------------------------------

  private async openWatch(): Promise<void> {
    if (this.closed) return;
    this.watchClient ??= this.options.watchClient();
    try {
      // From now on: anything older is read by range (the follower reads from its applied seq whenever it lags).
      const watcher = await this.watchClient.watch().prefix(this.keys.logPrefix).create();
      watcher.on('put', (kv) => {
        const { lastSeq } = batchHeader(kv.value);
        // This node's own appends come back through the watch after they were delivered: nothing to do.
        if (this.sink !== null && lastSeq <= this.sink.appliedSeq) return;
        this.buffered.set(lastSeq, kv.value);
        this.wake?.();
      });
      watcher.on('error', (error) => this.logger.warn({ module: 'cluster', err: String(error) }, 'the etcd watch failed'));
      this.watcher = watcher;
    } catch (error) {
      this.logger.warn({ module: 'cluster', err: String(error) }, 'cannot watch the shared log; reading it by polling');
    }
  }

  /** The watch delivered nothing while the log grew: it may hang on a paused member; a new client picks a host anew. */
  private async replaceWatch(): Promise<void> {
    this.watchMisses = 0;
    this.logger.info({ module: 'cluster' }, 'the etcd watch fell behind; reopening it');
    const old = this.watchClient;
    this.watcher = null;
    this.watchClient = null;
    old?.close();
    await this.openWatch();
  }

  // ---- health ---------------------------------------------------------------------------------------------

  private async probe(): Promise<void> {
    if (this.closed || Date.now() - this.lastContact < probeIntervalMs) return;
    await this.readSeq(this.keys.head).catch(() => {});
  }

  private contacted(): void {
    this.lastContact = Date.now();
  }

  private failed(error: unknown): void {
    this.lastError = error instanceof Error ? error.message : String(error);
  }

  private sleep(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = null;
        resolve(false);
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve(true);
      };
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.probeTimer !== null) clearInterval(this.probeTimer);
    this.wake?.();
    await this.following.catch(() => {});
    await this.watcher?.cancel().catch(() => {});
    this.watchClient?.close();
  }
}

/** Batches of `batchBytes` that fit a range answer of pullRangeBytesMax, from 1 to pullBatchesMax. */
function batchesWithin(batchBytes: number): number {
  return Math.max(1, Math.min(pullBatchesMax, Math.floor(pullRangeBytesMax / Math.max(1, batchBytes))));
}

/** gRPC's refusal of an answer larger than the client may receive (RESOURCE_EXHAUSTED, "larger than max"). */
function isTooLargeToReceive(error: unknown): boolean {
  return /RESOURCE_EXHAUSTED|larger than max/i.test(String(error));
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
