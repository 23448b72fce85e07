// Test helper: checks a real answer against openapi.yaml. The HTTP helpers (server.ts, app.ts) run every answer of
// every HTTP test through it, so the document and the server cannot drift apart unnoticed.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { parse } from 'yaml';

// The document is a JSON tree.
type Json = any;

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const methods = ['get', 'put', 'post', 'patch', 'delete'];

interface Operation {
  route: string;
  pattern: RegExp;
  method: string;
  id: string;
  responses: Json;
}

let loaded: { doc: Json; operations: Operation[]; ajv: Ajv2020; validators: Map<string, ValidateFunction> } | undefined;

function load(): NonNullable<typeof loaded> {
  if (loaded !== undefined) return loaded;
  const doc = parse(readFileSync(path.join(repoRoot, 'openapi.yaml'), 'utf8'));
  const operations: Operation[] = [];
  for (const [route, item] of Object.entries<Json>(doc.paths)) {
    const pattern = new RegExp(`^${route.replace(/\./g, '\\.').replace(/\{\w+\}/g, '[^/]+')}$`);
    for (const method of methods) {
      if (item[method] !== undefined) operations.push({ route, pattern, method: method.toUpperCase(), id: `${method.toUpperCase()} ${route}`, responses: item[method].responses });
    }
  }
  const ajv = new Ajv2020({ strict: false, allErrors: true, allowUnionTypes: true });
  (addFormatsModule as unknown as (ajv: Ajv2020) => void)(ajv);
  ajv.addSchema({ ...doc, $id: 'openapi' });
  loaded = { doc, operations, ajv, validators: new Map() };
  return loaded;
}

function resolveRef(doc: Json, node: Json): Json {
  if (node?.$ref === undefined) return node;
  return node.$ref
    .slice(2)
    .split('/')
    .reduce((at: Json, step: string) => at?.[step.replace(/~1/g, '/').replace(/~0/g, '~')], doc);
}

function pointer(...steps: string[]): string {
  return `openapi#/${steps.map((step) => step.replace(/~/g, '~0').replace(/\//g, '~1')).join('/')}`;
}

export interface Answer {
  method: string;
  /** The request URL's path (and query string). */
  url: string;
  status: number;
  contentType: string | undefined;
  /** The parsed body when it is JSON, else undefined. */
  json: unknown;
  text: string;
}

/**
 * What is wrong with `answer` according to openapi.yaml, or null when nothing is. An answer to a documented route
 * must carry a documented status with a body of its schema; any answer of 400 or more must be a problem.
 */
export function openApiViolation(answer: Answer): string | null {
  const { doc, operations, ajv, validators } = load();
  const method = answer.method === 'HEAD' ? 'GET' : answer.method;
  const pathname = answer.url.split('?')[0]!;
  const operation = operations.find((op) => op.method === method && op.pattern.test(pathname));
  const where = `${answer.method} ${pathname.slice(0, 120)} answered ${answer.status}`;
  if (operation === undefined) {
    // No documented route: only a problem can be right (404 not_found, a malformed request).
    return answer.status >= 400 ? problemViolation(answer, where, ajv) : `${where}, but no documented route matches`;
  }
  const documented = operation.responses[String(answer.status)];
  if (documented === undefined) return `${where}, a status ${operation.id} does not document`;
  const response = resolveRef(doc, documented);
  if (answer.status >= 400) return problemViolation(answer, where, ajv);
  if (answer.method === 'HEAD' || response.content === undefined) return answer.text === '' || answer.method === 'HEAD' ? null : `${where} with a body where none is documented`;
  // A route may document several media types (the admin page's assets): the answer must be one of them.
  const documentedTypes = Object.keys(response.content);
  const mediaType = documentedTypes.find((type) => (answer.contentType ?? '').startsWith(type));
  if (mediaType === undefined) return `${where} as ${answer.contentType}, documented ${documentedTypes.join(' or ')}`;
  if (!mediaType.endsWith('json')) return null;
  const schemaPointer = pointer('paths', operation.route, operation.method.toLowerCase(), 'responses', String(answer.status), 'content', mediaType, 'schema');
  let validate = validators.get(schemaPointer);
  if (validate === undefined) {
    validate = ajv.getSchema(schemaPointer);
    if (validate === undefined) return `cannot compile the schema at ${schemaPointer}`;
    validators.set(schemaPointer, validate);
  }
  return validate(answer.json) ? null : `${where} with a body not matching ${operation.id}: ${ajv.errorsText(validate.errors)}`;
}

function problemViolation(answer: Answer, where: string, ajv: Ajv2020): string | null {
  if (answer.method === 'HEAD') return null;
  if (!(answer.contentType ?? '').startsWith('application/problem+json')) return `${where} as ${answer.contentType}, not a problem+json`;
  const validate = ajv.getSchema('openapi#/components/schemas/Problem')!;
  if (!validate(answer.json)) return `${where}: not a Problem: ${ajv.errorsText(validate.errors)}`;
  if ((answer.json as { status?: number }).status !== answer.status) return `${where}, but the problem says status ${(answer.json as { status?: number }).status}`;
  return null;
}
