// GET /openapi.json: the repository's openapi.yaml, parsed on the first request (not at every start) and served as JSON.

import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { DriftError } from '../errors.js';
import { packageRoot } from './package-root.js';
import { ref } from './schemas.js';

/** The OpenAPI document as JSON text, or null when the package ships no openapi.yaml. */
export async function loadOpenApiJson(): Promise<string | null> {
  let text: string;
  try {
    text = await fs.readFile(path.join(await packageRoot(), 'openapi.yaml'), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  // The YAML parser is loaded here too, not at start: only this route needs it.
  const { parse } = await import('yaml');
  return JSON.stringify(parse(text));
}

export async function openApiRoutes(app: FastifyInstance, opts: { load: () => Promise<string | null> }): Promise<void> {
  let document: Promise<string | null> | undefined;
  app.get('/openapi.json', {
    config: { permission: 'public' },
    schema: {
      operationId: 'openapi',
      tags: ['health'],
      summary: 'This document, as JSON',
      description: 'No authentication.',
      response: { 200: { type: 'object', additionalProperties: true, description: 'The OpenAPI document.' }, 404: ref('Problem') },
    },
    handler: async (_request, reply) => {
      document ??= opts.load();
      const json = await document;
      if (json === null) throw new DriftError('not_found', 'this build ships no openapi.yaml');
      return reply.type('application/json; charset=utf-8').send(json);
    },
  });
}
