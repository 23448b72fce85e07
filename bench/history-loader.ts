// History load generator child process: writes `versions` versions of each of `keys` keys through the real server's
// POST /v1/batch, round by round (every key's version 0, then every key's version 1, …), so each key's versions lie
// spread over the whole log as years of updates would; one more key gets `historyKeyVersions` versions on the way.

import { performance } from 'node:perf_hooks';
import { groupsFor, historyDoc, rowKey } from './docs.js';
import { describeAnswer, httpCall, isRecord, makeAgent, type HttpAnswer } from './http.js';
import { serveOneJob } from './worker-protocol.js';

export interface HistoryLoadJob {
  baseUrl: string;
  authorization: string;
  table: string;
  keys: number;
  versions: number;
  /** The key that gets `historyKeyVersions` versions, spread over the load, for the history-latency row. */
  historyKey: string;
  historyKeyVersions: number;
  batchOps: number;
  batchesInFlight: number;
}

export interface HistoryLoadSummary {
  seconds: number;
  /** The batches' part of `seconds`: the load rate, without the history key's single PUTs at the end (if any). */
  batchSeconds: number;
  /** Versions written by the batches. */
  batchVersions: number;
  /** Versions written, the history key's included. */
  versionsWritten: number;
  commits: number;
  /** A seq at which every key exists (the largest seq of round 0's batches): `asOf` reads from here on find every key. */
  seqAllKeys: number;
  seqLast: number;
  /** The history key's versions that did not fit into the load's batches, written by single PUTs at the end. */
  historyKeyTailPuts: number;
  /** Batches that waited for an earlier batch of the same keys to commit (see `keyWindow`). */
  windowWaits: number;
}

/** A write's commit seq from its answer; any other status ends the load with the answer in the error. */
function commitSeq(answer: HttpAnswer, okStatuses: number[], what: string): number {
  const seq = isRecord(answer.body) ? answer.body['seq'] : undefined;
  if (!okStatuses.includes(answer.status) || typeof seq !== 'number') throw new Error(`${what}: ${describeAnswer(answer)}`);
  return seq;
}

async function load(job: HistoryLoadJob): Promise<HistoryLoadSummary> {
  if (job.batchOps > job.keys) throw new Error('batchOps must not exceed keys: a batch would write one key twice');
  const agent = makeAgent(job.batchesInFlight);
  const call = (method: string, path: string, body: unknown): Promise<HttpAnswer> =>
    httpCall({ agent, baseUrl: job.baseUrl, method, path, headers: { authorization: job.authorization }, body, timeoutMs: 120_000 });
  const groups = groupsFor(job.keys);
  const total = job.keys * job.versions;
  const batches = Math.ceil(total / job.batchOps);
  // Every `stride`-th batch also carries a version of the history key, so its versions spread over the whole log.
  // Those batches commit one after another (below), so they are at least `batchesInFlight` apart: one carrier's
  // predecessor has long committed when it starts, and the load keeps all its batches in flight.
  const stride = Math.max(job.batchesInFlight, Math.floor(batches / job.historyKeyVersions));
  const round0Batches = Math.ceil(job.keys / job.batchOps);
  const summary: HistoryLoadSummary = { seconds: 0, batchSeconds: 0, batchVersions: 0, versionsWritten: 0, commits: 0, seqAllKeys: 0, seqLast: 0, historyKeyTailPuts: 0, windowWaits: 0 };
  const window = keyWindow(job);
  let nextBatch = 0;
  /** Versions of the history key handed to batches so far; each is written by exactly one. */
  let historyVersions = 0;
  const started = performance.now();

  // Batches that carry the history key commit one after another, so they never contend for its lock and its
  // versions commit in order.
  let historyKeyTurn = Promise.resolve();

  const batchBody = (j: number, historyVersion: number | null): { ops: object[] } => {
    const ops: object[] = [];
    for (let flat = j * job.batchOps; flat < Math.min((j + 1) * job.batchOps, total); flat++) {
      const i = flat % job.keys;
      ops.push({ op: 'put', table: job.table, key: rowKey(i), doc: historyDoc(i, Math.floor(flat / job.keys), groups) });
    }
    if (historyVersion !== null) ops.push({ op: 'put', table: job.table, key: job.historyKey, doc: historyDoc(job.keys, historyVersion, groups) });
    return { ops };
  };
  const send = async (j: number, historyVersion: number | null): Promise<number> => {
    if (await window.enter(j)) summary.windowWaits++;
    const body = batchBody(j, historyVersion);
    const seq = commitSeq(await call('POST', '/v1/batch', body), [200], `batch ${j} of ${batches}`);
    window.leave(j);
    summary.versionsWritten += body.ops.length;
    return seq;
  };
  const worker = async (): Promise<void> => {
    while (nextBatch < batches) {
      const j = nextBatch++;
      let seq: number;
      if (j % stride === 0 && historyVersions < job.historyKeyVersions) {
        const version = historyVersions++;
        const turn = historyKeyTurn.then(() => send(j, version));
        historyKeyTurn = turn.then(() => undefined, () => undefined);
        seq = await turn;
      } else {
        seq = await send(j, null);
      }
      summary.commits++;
      summary.seqLast = Math.max(summary.seqLast, seq);
      if (j < round0Batches) summary.seqAllKeys = Math.max(summary.seqAllKeys, seq);
    }
  };
  try {
    await Promise.all(Array.from({ length: job.batchesInFlight }, worker));
    summary.batchSeconds = (performance.now() - started) / 1000;
    summary.batchVersions = summary.versionsWritten;
    // A small load has fewer batches than the history key has versions: the rest, one commit each.
    while (historyVersions < job.historyKeyVersions) {
      const path = `/v1/tables/${job.table}/rows/${encodeURIComponent(job.historyKey)}`;
      const answer = await call('PUT', path, historyDoc(job.keys, historyVersions++, groups));
      summary.seqLast = Math.max(summary.seqLast, commitSeq(answer, [200, 201], `PUT ${path}`));
      summary.historyKeyTailPuts++;
      summary.versionsWritten++;
      summary.commits++;
    }
  } finally {
    agent.destroy();
  }
  summary.seconds = (performance.now() - started) / 1000;
  return summary;
}

/**
 * Keeps the batches in flight on distinct keys, so no batch waits for another's row locks and a key's versions commit
 * in order: batch j (flat indexes j·ops … (j+1)·ops − 1, key = flat mod keys) may start only when every batch more
 * than `keys` flat indexes behind it has committed. With keys ≥ ops × in-flight, it never waits.
 */
function keyWindow(job: HistoryLoadJob): { enter(j: number): Promise<boolean>; leave(j: number): void } {
  const done = new Set<number>();
  let oldestOpen = 0;
  let waiters: (() => void)[] = [];
  const blocked = (j: number): boolean => (j + 1 - oldestOpen) * job.batchOps > job.keys;
  return {
    async enter(j) {
      if (!blocked(j)) return false;
      while (blocked(j)) await new Promise<void>((resolve) => waiters.push(resolve));
      return true;
    },
    leave(j) {
      done.add(j);
      while (done.delete(oldestOpen)) oldestOpen++;
      const woken = waiters;
      waiters = [];
      for (const wake of woken) wake();
    },
  };
}

serveOneJob<HistoryLoadJob, HistoryLoadSummary>(load);
