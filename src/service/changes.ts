// The change feed's use cases over HTTP: a page that may wait (long-poll) for the caller's next commit, and
// Server-Sent Event streams that follow the feed for as long as the client keeps up. Streams hold no commits of
// their own: each is sent the next block of events when its socket can take it, so a slow client costs the server no
// memory; one that stops taking data while many commits arrive is told where to resume and closed. Streams that see
// the same commits from the same seq are sent one shared block, made and encoded once for all of them.

import type { ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { ChangesInput, ChangesPage, Database, FeedCommit, RowPolicies } from '../engine/index.js';
import { limits } from '../limits.js';

/** Commits read per page while a stream catches up. */
const streamPageCommits = 100;
/** A comment line goes out this often, so proxies and clients see the stream is alive. */
const heartbeatMs = 15_000;

export interface ChangeStreamOptions {
  /**
   * A client whose socket stays full while more than this many commits arrive is sent an error event and closed. Only
   * commits that arrive while it takes nothing count: a client catching up from far back reads its backlog from the
   * log at its own pace, and costs the server no memory while it does.
   */
  bufferCommits: number;
  /**
   * While commits keep coming, streams are sent their events at most this often (the first commit after a quiet
   * spell at once): one socket write per client then carries many commits instead of one group commit's.
   */
  flushMs: number;
}

/** Texts of the commits made lately: the feed hands every subscriber who sees a whole commit the same object. */
const commitTexts = new WeakMap<FeedCommit, string>();

/** The JSON text of one commit as the feed answers it (documents as their stored text, not re-serialized). */
export function commitJson(commit: FeedCommit): string {
  let text = commitTexts.get(commit);
  if (text === undefined) {
    text = commitText(commit);
    commitTexts.set(commit, text);
  }
  return text;
}

function commitText(commit: FeedCommit): string {
  const changes = commit.changes.map(
    (c) => `{"table":${JSON.stringify(c.table)},"key":${JSON.stringify(c.key)},"op":"${c.op}","doc":${c.json ?? 'null'}}`,
  );
  return `{"seq":${commit.seq},"ts":"${new Date(commit.ts).toISOString()}","changes":[${changes.join(',')}]}`;
}

export class ChangeService {
  private readonly db: () => Database;
  private readonly options: ChangeStreamOptions;
  /** The open streams, by the database they follow (one until the server swaps its database). */
  private readonly fanouts = new Map<Database, Fanout>();
  /** Long-polls waiting for a commit: told to stop waiting when the server stops. */
  private readonly waiters = new Set<() => void>();
  private closed = false;

  constructor(db: () => Database, options: ChangeStreamOptions) {
    this.db = db;
    this.options = options;
  }

  /** A page; with `waitMs`, waits (up to that long) for a commit the caller sees when the page would be empty. */
  async page(input: ChangesInput, waitMs: number): Promise<ChangesPage> {
    const db = this.db();
    let page = db.changes(input);
    if (page.commits.length > 0 || waitMs <= 0) return page;
    const deadline = Date.now() + Math.min(waitMs, limits.feedWaitMsMax);
    while (page.commits.length === 0 && Date.now() < deadline && !this.closed) {
      if (page.nextSince >= db.durableSeq && !(await this.nextCommit(db, deadline - Date.now()))) break;
      page = db.changes({ ...input, since: page.nextSince });
    }
    return page;
  }

  /** Follows the feed on `response` from `since` on, until the client goes, stops taking data, or the server stops. */
  stream(response: ServerResponse, input: Omit<ChangesInput, 'limit'>): void {
    const db = this.db();
    let fanout = this.fanouts.get(db);
    if (fanout === undefined) {
      fanout = new Fanout(db, this.options.flushMs, () => this.fanouts.delete(db));
      this.fanouts.set(db, fanout);
    }
    fanout.add(new ChangeStream(db, response, input, this.options));
  }

  /**
   * Ends every stream and answers every long-poll now (the server is stopping, and a request left waiting would hold
   * the shutdown past its grace): their clients resume elsewhere with Last-Event-ID or nextSince.
   */
  closeAll(): void {
    this.closed = true;
    for (const fanout of [...this.fanouts.values()]) fanout.endAll();
    for (const stopWaiting of [...this.waiters]) stopWaiting();
  }

  /** Resolves true when a commit becomes durable within `ms`, false when the time runs out first. */
  private nextCommit(db: Database, ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const settle = (committed: boolean): void => {
        clearTimeout(timer);
        unsubscribe();
        this.waiters.delete(stopWaiting);
        resolve(committed);
      };
      const stopWaiting = (): void => settle(false);
      const timer = setTimeout(stopWaiting, ms);
      const unsubscribe = db.subscribeChanges(() => settle(true));
      this.waiters.add(stopWaiting);
    });
  }
}

/** Events of whole commits after a seq, as one text. */
interface EventBlock {
  text: string;
  /** The seq the next block starts after. */
  nextSince: number;
}

/**
 * The events of the commits after `since` the input's caller sees, from one page: whole commits, no more bytes than
 * limits.feedEventBlockBytesMax (but at least one commit, however large). Empty when the page held nothing for the
 * caller.
 */
function eventBlock(db: Database, input: Omit<ChangesInput, 'limit'>, since: number): EventBlock {
  const page = db.changes({ ...input, since, limit: streamPageCommits });
  let text = '';
  let bytes = 0;
  for (const commit of page.commits) {
    const event = `id: ${commit.seq}\nevent: change\ndata: ${commitJson(commit)}\n\n`;
    bytes += Buffer.byteLength(event);
    if (bytes > limits.feedEventBlockBytesMax && text !== '') return { text, nextSince: commit.seq - 1 };
    text += event;
  }
  return { text, nextSince: page.nextSince };
}

/**
 * The streams following one database: it hears of commits once per turn and, at most every `flushMs` while they keep
 * coming, sends each stream what it has not seen. Streams at the same seq that see the same commits (the same tables,
 * and no row policy on them, or the same caller's policies) get each block as one Buffer, read, built and encoded
 * once; the others, and any stream whose socket is full, catch up on their own.
 */
class Fanout {
  private readonly streams = new Set<ChangeStream>();
  private unsubscribe: (() => void) | null = null;
  private timer: NodeJS.Timeout | null = null;
  private lastFlushAt = -Infinity;

  constructor(
    private readonly db: Database,
    private readonly flushMs: number,
    private readonly onEmpty: () => void,
  ) {}

  add(stream: ChangeStream): void {
    this.streams.add(stream);
    this.unsubscribe ??= this.db.subscribeChanges(() => this.committed());
    stream.start(() => this.remove(stream));
  }

  endAll(): void {
    for (const stream of [...this.streams]) stream.end();
  }

  private remove(stream: ChangeStream): void {
    this.streams.delete(stream);
    if (this.streams.size > 0) return;
    this.unsubscribe?.();
    this.unsubscribe = null;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.onEmpty();
  }

  /** Commits became durable: send them now if the feed was quiet, else at the end of the current window. */
  private committed(): void {
    if (this.timer !== null) return;
    const wait = this.lastFlushAt + this.flushMs - performance.now();
    if (wait <= 0) this.flush();
    else
      this.timer = setTimeout(() => {
        this.timer = null;
        this.flush();
      }, wait);
  }

  private flush(): void {
    this.lastFlushAt = performance.now();
    const durable = this.db.durableSeq;
    // Streams that can share a block, by the view they see (null: no row policy applies) and then tables and seq.
    const groups = new Map<RowPolicies | null, Map<string, ChangeStream[]>>();
    for (const stream of [...this.streams]) {
      if (!stream.ready(durable)) {
        stream.pump();
        continue;
      }
      const view = stream.view();
      let byPosition = groups.get(view);
      if (byPosition === undefined) groups.set(view, (byPosition = new Map()));
      const key = `${stream.since} ${stream.tablesKey}`;
      const group = byPosition.get(key);
      if (group === undefined) byPosition.set(key, [stream]);
      else group.push(stream);
    }
    for (const byPosition of groups.values()) {
      for (const group of byPosition.values()) {
        if (group.length === 1) group[0]!.pump();
        else this.share(group, durable);
      }
    }
  }

  /** Sends every stream of `group` (the same view, at the same seq, sockets not full) the same blocks up to `durable`. */
  private share(group: ChangeStream[], durable: number): void {
    let members = group;
    let since = members[0]!.since;
    try {
      while (members.length > 0 && since < durable) {
        const block = eventBlock(this.db, members[0]!.input, since);
        const bytes = block.text === '' ? null : Buffer.from(block.text);
        since = block.nextSince;
        // A stream whose socket filled leaves the group: it goes on alone once its client has read (on 'drain').
        members = members.filter((stream) => stream.sendBlock(bytes, since));
      }
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      for (const stream of members) stream.fail(reason);
    }
  }
}

class ChangeStream {
  /** The seq up to which the client has been sent every commit it sees. */
  since: number;
  /** Which tables the stream sees, as a text that is equal for equal sets. */
  readonly tablesKey: string;
  /** The newest durable seq when the client's socket was found full; null while the client takes what is sent. */
  private stalledAt: number | null = null;
  private pumping = false;
  private ended = false;
  private onEnd: () => void = () => {};
  private readonly heartbeat: NodeJS.Timeout;

  constructor(
    private readonly db: Database,
    private readonly response: ServerResponse,
    readonly input: Omit<ChangesInput, 'limit'>,
    private readonly options: ChangeStreamOptions,
  ) {
    this.since = input.since;
    this.tablesKey = input.tables === null ? '*' : [...input.tables].sort().join(',');
    // A socket that is full already shows nothing is wrong with the server; a comment there would only pile up.
    this.heartbeat = setInterval(() => {
      if (!this.response.writableNeedDrain) this.response.write(': keep-alive\n\n');
    }, heartbeatMs);
    this.heartbeat.unref();
    response.on('close', () => this.end());
    response.on('drain', () => {
      this.stalledAt = null;
      this.pump();
    });
  }

  start(onEnd: () => void): void {
    this.onEnd = onEnd;
    // A comment at once: the client knows the stream is open before the first commit arrives.
    this.response.write(': driftdb change feed\n\n');
    this.pump();
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.heartbeat);
    this.response.end();
    this.onEnd();
  }

  /** True when the stream is behind `durable` and its socket takes data: it may be sent a shared block. */
  ready(durable: number): boolean {
    return !this.ended && !this.pumping && this.since < durable && !this.response.writableNeedDrain;
  }

  /**
   * What decides which rows the stream sees besides its tables: null when no row policy applies to them (its view is
   * then any caller's with those tables), else its caller's policies (the same object for all of a caller's streams).
   * Asked at each send, since policies may change while a stream is open.
   */
  view(): RowPolicies | null {
    const { tables, policies } = this.input;
    if (policies === undefined || policies === null) return null;
    if (tables === null) return policies;
    for (const table of tables) if (policies.forTable(table) !== null) return policies;
    return null;
  }

  /** Writes a shared block (null: nothing the stream sees) that ends at `nextSince`; false once the socket is full. */
  sendBlock(bytes: Buffer | null, nextSince: number): boolean {
    if (this.ended) return false;
    this.since = nextSince;
    if (bytes === null) return true;
    // Corked around the write, the block leaves now, in one socket write with its chunk's framing, rather than on
    // the next tick, after the answers to the writes it carries.
    this.response.cork();
    const taken = this.response.write(bytes);
    this.response.uncork();
    return taken;
  }

  /** Sends what the client has not seen, block by block, while its socket takes it. */
  pump(): void {
    if (this.pumping || this.ended) return;
    this.pumping = true;
    // The blocks of one pump leave in one socket write (one TLS record, one syscall) instead of one each.
    this.response.cork();
    try {
      while (!this.ended && this.since < this.db.durableSeq) {
        if (this.response.writableNeedDrain) {
          this.stalledAt ??= this.db.durableSeq;
          if (this.db.durableSeq - this.stalledAt > this.options.bufferCommits) this.tooSlow();
          return;
        }
        // One block at a time: what the socket cannot take yet waits in the log, not in this process.
        const block = eventBlock(this.db, this.input, this.since);
        if (block.text !== '') this.response.write(block.text);
        this.since = block.nextSince;
      }
    } catch (error) {
      this.fail(error instanceof Error ? error.message : String(error));
    } finally {
      this.pumping = false;
      // end() has sent everything already (a response's end uncorks its socket fully).
      if (!this.ended) this.response.uncork();
    }
  }

  fail(reason: string): void {
    this.send('error', { code: 'internal', detail: `The feed could not be read (${reason}); resume after seq ${this.since}.`, lastEventId: this.since, since: this.since });
    this.end();
  }

  private tooSlow(): void {
    const detail =
      `The client took nothing while more than ${this.options.bufferCommits} commits arrived (--changes-buffer-commits); ` +
      `resume after seq ${this.since} (Last-Event-ID: ${this.since}).`;
    this.send('error', { code: 'unavailable', detail, lastEventId: this.since, since: this.since });
    this.end();
  }

  private send(event: string, data: object): void {
    this.response.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }
}
