// Answers that carry user documents. Their schema (an open object) gives fast-json-stringify nothing to specialise
// on, so they are written here: with JSON.stringify, or, for whole stored documents, as the text they are stored as.
// Each route's response schema still documents the shape (and openapi.yaml repeats it).

import type { FastifyReply } from 'fastify';
import type { Page } from '../engine/index.js';

const jsonType = 'application/json; charset=utf-8';

/** Sends `body` serialized by JSON.stringify (fast-json-stringify cost a query page several times more). */
export function sendDocuments(reply: FastifyReply, body: object): FastifyReply {
  return sendJsonText(reply, JSON.stringify(body));
}

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
