// Resolves a client's `asOf` (a seq, or an RFC 3339 instant) to the seq of the snapshot it names.

import { DriftError } from '../../errors.js';

const rfc3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * `tsOf(seq)` must not decrease as seq grows. An instant names the state after the last commit at or before it;
 * one before the first commit names the empty state (seq 0); a seq past `newestSeq` is refused.
 */
export function resolveAsOf(raw: number | string, newestSeq: number, tsOf: (seq: number) => number): number {
  if (typeof raw === 'number' || /^\d+$/.test(raw)) {
    const seq = Number(raw);
    if (!Number.isSafeInteger(seq) || seq < 0) {
      throw new DriftError('validation_failed', 'asOf must be a non-negative integer seq or an RFC 3339 instant.');
    }
    if (seq > newestSeq) {
      throw new DriftError('validation_failed', `asOf ${seq} is beyond the newest committed seq ${newestSeq}.`, {
        newestSeq,
      });
    }
    return seq;
  }
  const instant = parseInstant(raw);
  if (Number.isNaN(instant)) {
    throw new DriftError('validation_failed', 'asOf must be a non-negative integer seq or an RFC 3339 instant.');
  }
  return lastSeqAtOrBefore(instant, newestSeq, tsOf);
}

/** Milliseconds of an RFC 3339 instant, or NaN; Date.parse rolls a day that does not exist (11-31) into the next month. */
function parseInstant(raw: string): number {
  const parts = rfc3339.exec(raw);
  if (parts === null) return NaN;
  const [year, month, day] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
  const lastDay = new Date(0);
  lastDay.setUTCFullYear(year, month, 0); // day 0 of the next month; setUTCFullYear, unlike Date.UTC, keeps years < 100
  const daysInMonth = lastDay.getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth) return NaN;
  return Date.parse(raw);
}

function lastSeqAtOrBefore(instant: number, newestSeq: number, tsOf: (seq: number) => number): number {
  let lo = 1;
  let hi = newestSeq;
  let found = 0;
  while (lo <= hi) {
    const mid = Math.floor((lo + hi) / 2);
    if (tsOf(mid) <= instant) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}
