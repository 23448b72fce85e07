// GET /openapi.json: the repository's openapi.yaml, parsed once at startup and served as JSON.

import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { parse } from 'yaml';
import { DriftError } from '../errors.js';

/** The package root: the nearest directory above this file whose package.json names driftdb (src/ or dist/src/). */
async function packageRoot(): Promise<string> {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(await fs.readFile(path.join(dir, 'package.json'), 'utf8')) as { name?: string };
      if (pkg.name === 'driftdb') return dir;
    } catch {
      // No package.json here; keep climbing.
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('cannot find the driftdb package root');
    dir = parent;
  }
}

/** The OpenAPI document as JSON text, or null when the package ships no openapi.yaml. */
export async function loadOpenApiJson(): Promise<string | null> {
  let text: string;
  try {
    text = await fs.readFile(path.join(await packageRoot(), 'openapi.yaml'), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  return JSON.stringify(parse(text));
}

export async function openApiRoutes(app: FastifyInstance, opts: { document: string | null }): Promise<void> {
  app.get('/openapi.json', async (_request, reply) => {
    if (opts.document === null) throw new DriftError('not_found', 'this build ships no openapi.yaml');
    return reply.type('application/json; charset=utf-8').send(opts.document);
  });
}
