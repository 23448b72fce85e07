// GET /admin/: the admin page, static files shipped in the package's admin-page/ folder, public (the page itself holds
// nothing secret: it signs in against the API like any client). Served from memory, gzip-compressed when the client
// accepts it, under a Content-Security-Policy of the page's own (src/security/headers.ts).

import path from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DriftError } from '../errors.js';
import { adminPageHeaders } from '../security/headers.js';
import { packageRoot } from './package-root.js';
import { acceptsGzip, clientHasFile, loadPageFiles, type PageFile, type PageFiles } from './page-files.js';
import { ref } from './schemas.js';

/** The folder, beside openapi.yaml at the package root. */
export const adminPageFolder = 'admin-page';

/** The page itself is checked on every load, so a new version is seen at once; the answer is a 304 when unchanged. */
const indexCacheControl = 'no-cache';
/** Assets live under their build's hash: a URL's content never changes, so a browser may keep it for a year. */
const assetCacheControl = 'public, max-age=31536000, immutable';

const tags = ['page'];
const nameParam = { type: 'string', minLength: 1, maxLength: 100 };
const pageAnswer = (what: string) => ({ type: 'string', description: what });
/** A build without the folder answers 404 for the page, as GET /openapi.json does for a build without openapi.yaml. */
const notShipped = 'this build ships no admin page';

export async function adminPageRoutes(app: FastifyInstance, opts: { dir?: string } = {}): Promise<void> {
  // Read on the first request, not at start: a server that nobody opens the page of pays nothing for it.
  let files: Promise<PageFiles> | undefined;
  const load = (): Promise<PageFiles> => {
    files ??= (async () => {
      try {
        return await loadPageFiles(opts.dir ?? path.join(await packageRoot(), adminPageFolder));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new DriftError('not_found', notShipped);
        throw error;
      }
    })();
    return files;
  };

  app.get('/admin', {
    config: { permission: 'public' },
    schema: {
      operationId: 'adminPageRedirect',
      tags,
      summary: 'The admin page, without its slash',
      description: 'A permanent redirect to /admin/, whose relative links need the trailing slash. No authentication.',
      responseHeaders: { 308: ['Location'] },
      response: { 308: { type: 'null', description: 'Go to /admin/.' } },
    },
    handler: async (_request, reply) => reply.code(308).header('location', '/admin/').send(),
  });

  app.get('/admin/', {
    config: { permission: 'public' },
    schema: {
      operationId: 'adminPage',
      tags,
      summary: 'The admin page',
      description:
        'The HTML of the admin page (tables, rows with a time slider, histories and diffs, the change feed, and for ' +
        'admins the audit log, slow queries and engine figures). No authentication: the page signs in against the API ' +
        'and keeps its credentials in memory only. Revalidated on every load (Cache-Control: no-cache, a weak ETag, ' +
        "304 when unchanged); gzip with Accept-Encoding: gzip. Its answers carry the page's own Content-Security-Policy " +
        "(scripts, styles and requests to this origin only, nothing inline).",
      produces: ['text/html'],
      response: {
        200: pageAnswer('The page.'),
        304: { type: 'null', description: 'Not modified: If-None-Match names the current version.' },
        404: ref('Problem'),
      },
    },
    handler: async (request, reply) => sendPageFile(request, reply, (await load()).index, indexCacheControl),
  });

  app.get<{ Params: { build: string; file: string } }>('/admin/:build/:file', {
    config: { permission: 'public' },
    schema: {
      operationId: 'adminPageAsset',
      tags,
      summary: "A script, style sheet or image of the admin page",
      description:
        'The page names these under the hash of its build, so a URL always means the same bytes: cached for a year ' +
        '(immutable). Only the files the package ships in admin-page/ are served, looked up by name; any other name, ' +
        'or another build, is 404 not_found. No authentication.',
      params: {
        type: 'object',
        required: ['build', 'file'],
        properties: { build: { ...nameParam, description: 'The build hash the page names.' }, file: { ...nameParam, description: 'A file name.' } },
      },
      produces: ['text/javascript', 'text/css', 'image/svg+xml'],
      response: {
        200: pageAnswer('The file.'),
        304: { type: 'null', description: 'Not modified: If-None-Match names its version.' },
        400: ref('Problem'),
        404: ref('Problem'),
      },
    },
    handler: async (request, reply) => {
      const { build, assets } = await load();
      const file = request.params.build === build ? assets.get(request.params.file) : undefined;
      if (file === undefined) throw new DriftError('not_found', 'the admin page has no such file');
      return sendPageFile(request, reply, file, assetCacheControl);
    },
  });
}

function sendPageFile(request: FastifyRequest, reply: FastifyReply, file: PageFile, cacheControl: string): FastifyReply {
  reply.headers(adminPageHeaders).header('cache-control', cacheControl).header('etag', file.etag).header('vary', 'accept-encoding');
  if (clientHasFile(request.headers['if-none-match'], file.etag)) return reply.code(304).send();
  const gzip = file.gzip !== null && acceptsGzip(request.headers['accept-encoding']);
  if (gzip) reply.header('content-encoding', 'gzip');
  return reply.type(file.type).send(gzip ? file.gzip : file.body);
}
