// Answers that carry user documents. Their schema (an open object) gives fast-json-stringify nothing to specialise
// on, so they are written here: with JSON.stringify, or, for whole stored documents, as the text they are stored as.
// Each route's response schema still documents the shape (and openapi.yaml repeats it).

import type { FastifyReply } from 'fastify';
import type { Page } from '../engine/index.js';

const jsonType = 'application/json; charset=utf-8';

/** Sends `body` serialized by JSON.stringify (fast-json-stringify cost a query page several times more). */
export function sendDocuments(reply: FastifyReply, body: object): FastifyReply {
  return reply.type(jsonType).send(JSON.stringify(body));
}

/** Sends a page (http-api.md §5); whole stored documents go out as their stored JSON text, not re-serialized. */
export function sendPage(reply: FastifyReply, page: Page): FastifyReply {
  if (page.rowsJson === undefined) return sendDocuments(reply, pageBody(page));
  const body = `{"rows":[${page.rowsJson.join(',')}],"nextCursor":${JSON.stringify(page.nextCursor)},"seq":${page.seq}}`;
  return reply.type(jsonType).send(body);
}

/** A page as the API shows it: without the engine's text copies of its rows. */
export function pageBody(page: Page): { rows: Page['rows']; nextCursor: string | null; seq: number } {
  return { rows: page.rows, nextCursor: page.nextCursor, seq: page.seq };
}
