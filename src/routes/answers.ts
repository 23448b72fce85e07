// Answers that carry user documents. Their schema (an open object) gives fast-json-stringify nothing to specialise
// on, so they are written here: with JSON.stringify, or, for whole stored documents, as the text they are stored as.
// Each route's response schema still documents the shape (and openapi.yaml repeats it).

import type { FastifyReply } from 'fastify';
import type { HistoryResult, Page } from '../engine/index.js';

const jsonType = 'application/json; charset=utf-8';

/** Sends an answer already written as JSON text. */
export function sendJsonText(reply: FastifyReply, text: string): FastifyReply {
  return reply.type(jsonType).send(text);
}

/** Sends a page (http-api.md §5); whole stored documents go out as their stored JSON text, not re-serialized. */
export function sendPage(reply: FastifyReply, page: Page): FastifyReply {
  reply.rows = (page.rowsJson ?? page.rows).length;
  return sendJsonText(reply, `{${pageMembers(page)}}`);
}

/** A page's members as JSON text, `"rows":[…],"nextCursor":…,"seq":…`, for an answer that embeds the page. */
export function pageMembers(page: Page): string {
  const rows = page.rowsJson === undefined ? JSON.stringify(page.rows) : `[${page.rowsJson.join(',')}]`;
  return `"rows":${rows},"nextCursor":${JSON.stringify(page.nextCursor)},"seq":${page.seq}`;
}

/**
 * Sends a key's history (http-api.md §4): each version's document goes out as its stored JSON text, with the members
 * JSON.stringify would write around it ({key, versions: [{seq, ts, op, doc}]}), so no document is parsed and written
 * again (for a history of 1,000 versions that took more time than reading them).
 */
export function sendHistory(reply: FastifyReply, history: HistoryResult): FastifyReply {
  reply.rows = history.versions.length;
  const iso = isoFormatter();
  let text = `{"key":${JSON.stringify(history.key)},"versions":[`;
  history.versions.forEach((v, i) => {
    // op is one of put, patch, delete: nothing in it needs escaping.
    text += `${i === 0 ? '' : ','}{"seq":${v.seq},"ts":"${iso(v.ts)}","op":"${v.op}","doc":${v.json ?? 'null'}}`;
  });
  return sendJsonText(reply, `${text}]}`);
}

const dayMs = 86_400_000;

/**
 * Date.prototype.toISOString for many instants in a row, at a fraction of its cost (it took a third of the time to
 * write the text of a 1,000-version history): the date part is computed once per day, the time of day by arithmetic.
 */
export function isoFormatter(): (ms: number) => string {
  let dayStart = NaN;
  let datePart = '';
  const two = (n: number): string => (n < 10 ? `0${n}` : `${n}`);
  return (ms) => {
    const t = ms - dayStart;
    if (!(t >= 0 && t < dayMs) || !Number.isInteger(ms)) {
      const iso = new Date(ms).toISOString();
      // Years past 9999 (or before 0) are written with a sign and six digits: those days are not cached.
      if (iso.length === 24 && Number.isInteger(ms)) {
        dayStart = Math.floor(ms / dayMs) * dayMs;
        datePart = iso.slice(0, 11);
      }
      return iso;
    }
    const milli = t % 1000;
    const seconds = Math.floor(t / 1000);
    return `${datePart}${two(Math.floor(seconds / 3600))}:${two(Math.floor(seconds / 60) % 60)}:${two(seconds % 60)}.${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
  };
}
