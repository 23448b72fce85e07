// The security headers of every response, computed once at start-up by helmet and then set as a constant.
// @fastify/helmet builds the helmet middleware again on every request, which halved a hello-world's throughput
// (measured: see README.md, Performance); the headers themselves never change here.

import type { IncomingMessage, ServerResponse } from 'node:http';
import helmet from 'helmet';
import { assert } from '../assert.js';

export const hstsMaxAgeSeconds = 365 * 24 * 3600;

/**
 * What the admin page's answers carry instead of the API's policy (src/routes/admin-page.ts sets them over the
 * headers below): its scripts, styles and icon come from this origin only and nothing inline runs, so a document
 * shown on the page can never become code; it talks to this origin only, submits no form anywhere (its sign-in is
 * read by script, never sent as a URL), keeps its base URL, and is framed nowhere. Its window shares no browsing
 * context group with other origins' windows.
 */
export const adminPageHeaders: Readonly<Record<string, string>> = Object.freeze({
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'cross-origin-opener-policy': 'same-origin',
});

/** Every header helmet sets for a JSON API, keyed in lower case; HSTS only when served over HTTPS. */
export function securityHeaders(options: { https: boolean }): Readonly<Record<string, string>> {
  const middleware = helmet({
    // A JSON API embeds nothing and is embedded nowhere: one CSP says so, frame-ancestors included.
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    strictTransportSecurity: options.https ? { maxAge: hstsMaxAgeSeconds, includeSubDomains: true } : false,
    xContentTypeOptions: true,
    referrerPolicy: { policy: 'no-referrer' },
    crossOriginResourcePolicy: { policy: 'same-origin' },
    // The rest of helmet's defaults guard HTML pages (and every byte is paid on every answer, by both sides).
    crossOriginOpenerPolicy: false,
    crossOriginEmbedderPolicy: false,
    originAgentCluster: false,
    xDnsPrefetchControl: false,
    xDownloadOptions: false,
    xFrameOptions: false,
    xPermittedCrossDomainPolicies: false,
    xXssProtection: false,
  });
  const headers: Record<string, string> = {};
  const response = {
    setHeader(name: string, value: string | number | readonly string[]) {
      headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value);
    },
    removeHeader(name: string) {
      delete headers[name.toLowerCase()];
    },
  };
  let finished = false;
  middleware({ headers: {} } as IncomingMessage, response as unknown as ServerResponse, (error?: unknown) => {
    if (error !== undefined) throw error;
    finished = true;
  });
  assert(finished && headers['x-content-type-options'] === 'nosniff', 'helmet ran synchronously and set nosniff');
  return Object.freeze(headers);
}
