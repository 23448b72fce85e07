// The change feed's use cases over HTTP: a page that may wait (long-poll) for the caller's next commit, and
// Server-Sent Event streams that follow the feed for as long as the client keeps up. Streams hold no commits of
// their own: each reads the next page when its socket can take it, so a slow client costs the server no memory;
// one that stops taking data while many commits arrive is told where to resume and closed.

import type { ServerResponse } from 'node:http';
import type { ChangesInput, ChangesPage, Database, FeedCommit } from '../engine/index.js';
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
  private readonly streams = new Set<ChangeStream>();
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
    const stream = new ChangeStream(this.db(), response, input, this.options, () => this.streams.delete(stream));
    this.streams.add(stream);
    stream.start();
  }

  /**
   * Ends every stream and answers every long-poll now (the server is stopping, and a request left waiting would hold
   * the shutdown past its grace): their clients resume elsewhere with Last-Event-ID or nextSince.
   */
  closeAll(): void {
    this.closed = true;
    for (const stream of [...this.streams]) stream.end();
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

class ChangeStream {
  private lastSent: number;
  /** The newest durable seq when the client's socket was found full; null while the client takes what is sent. */
  private stalledAt: number | null = null;
  private pumping = false;
  private ended = false;
  private readonly unsubscribe: () => void;
  private readonly heartbeat: NodeJS.Timeout;

  constructor(
    private readonly db: Database,
    private readonly response: ServerResponse,
    private readonly input: Omit<ChangesInput, 'limit'>,
    private readonly options: ChangeStreamOptions,
    private readonly onEnd: () => void,
  ) {
    this.lastSent = input.since;
    // The feed calls once per group commit: one page and one socket write for all its commits.
    this.unsubscribe = db.subscribeChanges(() => this.pump());
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

  start(): void {
    // A comment at once: the client knows the stream is open before the first commit arrives.
    this.response.write(': driftdb change feed\n\n');
    this.pump();
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.unsubscribe();
    clearInterval(this.heartbeat);
    this.response.end();
    this.onEnd();
  }

  /** Sends what the client has not seen, page by page, while its socket takes it. */
  private pump(): void {
    if (this.pumping || this.ended) return;
    this.pumping = true;
    // The events of one pump leave in one socket write (one TLS record, one syscall) instead of one each.
    this.response.cork();
    try {
      while (!this.ended && this.lastSent < this.db.durableSeq) {
        if (this.response.writableNeedDrain) {
          this.stalledAt ??= this.db.durableSeq;
          if (this.db.durableSeq - this.stalledAt > this.options.bufferCommits) this.tooSlow();
          return;
        }
        const page = this.db.changes({ ...this.input, since: this.lastSent, limit: streamPageCommits });
        // Stop at the commit that fills the socket: the rest of the page waits in the log, not in this process.
        let full = false;
        for (const commit of page.commits) {
          full = !this.response.write(`id: ${commit.seq}\nevent: change\ndata: ${commitJson(commit)}\n\n`);
          this.lastSent = commit.seq;
          if (full) break;
        }
        if (!full) this.lastSent = page.nextSince;
      }
    } catch (error) {
      this.fail(error instanceof Error ? error.message : String(error));
    } finally {
      this.pumping = false;
      // end() has sent everything already (a response's end uncorks its socket fully).
      if (!this.ended) this.response.uncork();
    }
  }

  private tooSlow(): void {
    const detail =
      `The client took nothing while more than ${this.options.bufferCommits} commits arrived (--changes-buffer-commits); ` +
      `resume after seq ${this.lastSent} (Last-Event-ID: ${this.lastSent}).`;
    this.send('error', { code: 'unavailable', detail, lastEventId: this.lastSent, since: this.lastSent });
    this.end();
  }

  private fail(reason: string): void {
    this.send('error', { code: 'internal', detail: `The feed could not be read (${reason}); resume after seq ${this.lastSent}.`, lastEventId: this.lastSent, since: this.lastSent });
    this.end();
  }

  private send(event: string, data: object): void {
    this.response.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }
}
