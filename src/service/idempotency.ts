// Idempotency-Key (http-api.md §9, the IETF draft): a write sent with a key runs once. Its first 2xx answer is
// recorded with the commit that makes the write (so it survives crashes, and is there exactly when the write is);
// a repeat by the same user with the same method, path and body bytes gets that answer again, replayed; the same
// key with another request is 422; a repeat while the first still runs is 409.

import { hash } from 'node:crypto';
import type { CommitOutcome, Database, IdempotencyRequest } from '../engine/index.js';
import { DriftError } from '../errors.js';

/** An answer as sent: status, the JSON text of its body, and the headers that belong to it (ETag, Location). */
export interface StoredAnswer {
  status: number;
  json: string;
  headers?: Record<string, string>;
}

export interface IdempotentCall {
  user: string;
  /** The Idempotency-Key header, or undefined when the request has none. */
  key: string | undefined;
  method: string;
  /** The path and query the request was sent to. */
  path: string;
  /** The request body's bytes as received ('' without one). */
  body: string;
}

/** Makes the idempotency entry of a write from how its commit's outcome becomes its answer. */
export type IdempotencyEntryMaker = (answer: (outcome: CommitOutcome) => StoredAnswer) => IdempotencyRequest;

/** A key is 1–255 visible ASCII characters. */
const keyPattern = /^[\x21-\x7e]{1,255}$/;

export class IdempotencyService {
  private readonly db: () => Database;
  private readonly ttlMs: number;
  /** user\0key of requests running now. */
  private readonly inFlight = new Set<string>();

  constructor(db: () => Database, options: { ttlMs: number }) {
    this.db = db;
    this.ttlMs = options.ttlMs;
  }

  /**
   * Runs `work` unless the key's answer is stored (then answers it, `replayed`). Without a key `work` gets undefined;
   * with one, a maker of the entry to hand the engine with the write: given how the commit's outcome becomes the
   * answer (which must be the answer `work` then sends), it answers the entry the commit records.
   */
  async run(call: IdempotentCall, work: (entry: IdempotencyEntryMaker | undefined) => Promise<StoredAnswer>): Promise<StoredAnswer & { replayed: boolean }> {
    if (call.key === undefined) return { ...(await work(undefined)), replayed: false };
    if (!keyPattern.test(call.key)) throw new DriftError('bad_request', 'Idempotency-Key must be 1 to 255 visible ASCII characters.');
    const fingerprint = hash('sha256', `${call.method}\n${call.path}\n${call.body}`, 'base64url');
    const stored = this.db().idempotencyEntry(call.user, call.key);
    if (stored !== null) {
      if (stored.fingerprint !== fingerprint) {
        throw new DriftError('idempotency_key_reused', 'This Idempotency-Key was used for another request (method, path or body differ).');
      }
      return { ...answerFromText(stored.answer), replayed: true };
    }
    const id = `${call.user}\u0000${call.key}`;
    if (this.inFlight.has(id)) throw new DriftError('idempotency_in_progress', 'A request with this Idempotency-Key is still running; retry once it is answered.');
    this.inFlight.add(id);
    try {
      const expiresAt = Date.now() + this.ttlMs;
      const key = call.key;
      const entry: IdempotencyEntryMaker = (answer) => ({
        user: call.user,
        key,
        fingerprint,
        expiresAt,
        answer: (outcome) => answerText(answer(outcome)),
      });
      return { ...(await work(entry)), replayed: false };
    } finally {
      this.inFlight.delete(id);
    }
  }
}

/**
 * The text an answer is stored as: its status and headers as a JSON array on the first line, then its body's JSON text
 * as sent. The body stays the text it is (a newline cannot be in it: JSON.stringify escapes newlines in strings), so
 * it is neither escaped when stored nor unescaped on a replay.
 */
function answerText(answer: StoredAnswer): string {
  return `${JSON.stringify(answer.headers === undefined ? [answer.status] : [answer.status, answer.headers])}\n${answer.json}`;
}

/** The answer a stored text holds: answerText's, or the JSON object { status, json, headers } stored before it. */
function answerFromText(text: string): StoredAnswer {
  if (text.startsWith('{')) return JSON.parse(text) as StoredAnswer;
  const newline = text.indexOf('\n');
  const [status, headers] = JSON.parse(text.slice(0, newline)) as [number, Record<string, string>?];
  return { status, json: text.slice(newline + 1), ...(headers === undefined ? {} : { headers }) };
}
