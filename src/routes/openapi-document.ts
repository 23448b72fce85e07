// Builds openapi.yaml from the routes the server registers: each route's schemas (params, querystring, headers, body,
// responses) and the documentation members of its schema (operationId, summary, description, tags…), plus the
// static parts of openapi-base.ts. `npm run openapi` writes it; test/http/openapi.test.ts fails when it is stale.
//
// Our own walk of the routes rather than @fastify/swagger: the document keeps its shared problem responses by status,
// its response headers and `x-driftdb-permission`, and it is built by a script at development time, so the server
// neither loads nor runs a generator when it starts.

import fastify, { type FastifyInstance, type RouteOptions } from 'fastify';
import { openApiBase } from './openapi-base.js';
import { sharedSchemas } from './schemas.js';

declare module 'fastify' {
  interface FastifySchema {
    /** Documentation only (Fastify never compiles these): they become the route's OpenAPI operation. */
    operationId?: string;
    summary?: string;
    description?: string;
    tags?: string[];
    /** Response headers by status: names of openApiBase.components.headers. */
    responseHeaders?: Record<number, string[]>;
    /** Request media types accepted besides application/json. */
    consumes?: string[];
    /** Media type(s) of the success answers when not application/json (several: the answer is one of them). */
    produces?: string | string[];
    /** The body may be left out (an absent body means `{}`). */
    bodyOptional?: boolean;
  }
}

// Route schemas and the document are JSON trees.
type Json = any;

/** The shared problem response (components.responses) of each error status. */
export const problemResponseNames: Readonly<Record<number, string>> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  409: 'Conflict',
  410: 'Gone',
  412: 'PreconditionFailed',
  413: 'PayloadTooLarge',
  415: 'UnsupportedMediaType',
  422: 'UnprocessableContent',
  423: 'Locked',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'Unavailable',
};

const defaultDescriptions: Readonly<Record<number, string>> = { 200: 'OK.', 201: 'Created.', 204: 'No content.', 304: 'Not modified.' };
const methodsOrder = ['get', 'put', 'post', 'patch', 'delete'];

/** Every route `register` adds to a bare Fastify instance, as registered (HEAD routes, which mirror GETs, left out). */
export async function collectRoutes(register: (app: FastifyInstance) => Promise<void>): Promise<RouteOptions[]> {
  const app = fastify();
  const routes: RouteOptions[] = [];
  app.addHook('onRoute', (route) => {
    if (route.method !== 'HEAD') routes.push(route);
  });
  await register(app);
  await app.ready();
  await app.close();
  return routes;
}

/** `$ref: 'X#'` (a Fastify shared schema) → `$ref: '#/components/schemas/X'`; `$id` dropped. */
export function toOpenApiSchema(schema: Json): Json {
  if (Array.isArray(schema)) return schema.map(toOpenApiSchema);
  if (schema === null || typeof schema !== 'object') return schema;
  const out: Json = {};
  for (const [name, value] of Object.entries(schema)) {
    if (name === '$id') continue;
    out[name] = name === '$ref' && typeof value === 'string' ? `#/components/schemas/${value.replace(/#$/, '')}` : toOpenApiSchema(value);
  }
  return out;
}

/** The whole document for these routes. Throws when a route lacks what the document needs (operationId, summary). */
export function openApiDocument(routes: readonly RouteOptions[]): Json {
  const paths: Json = {};
  const sorted = [...routes].sort((a, b) => (a.url === b.url ? 0 : a.url < b.url ? -1 : 1));
  for (const route of sorted) {
    const path = route.url.replace(/:(\w+)/g, '{$1}');
    paths[path] ??= {};
    paths[path][String(route.method).toLowerCase()] = operation(route);
  }
  for (const item of Object.values<Json>(paths)) {
    const ordered = Object.fromEntries(methodsOrder.filter((m) => item[m] !== undefined).map((m) => [m, item[m]]));
    for (const key of Object.keys(item)) delete item[key];
    Object.assign(item, ordered);
  }
  const schemas = Object.fromEntries(sharedSchemas.map((schema) => [schema.$id, toOpenApiSchema(schema)]));
  const { components, ...head } = structuredClone(openApiBase) as Json;
  return { ...head, paths, components: { ...components, schemas } };
}

function operation(route: RouteOptions): Json {
  const schema: Json = route.schema ?? {};
  const id = `${String(route.method)} ${route.url}`;
  for (const member of ['operationId', 'summary', 'tags']) {
    if (schema[member] === undefined) throw new Error(`route ${id} has no schema.${member}: every route documents itself (see src/routes/openapi-document.ts)`);
  }
  const permission = (route.config as Json)?.permission;
  const op: Json = { operationId: schema.operationId, tags: schema.tags, summary: schema.summary };
  if (schema.description !== undefined) op.description = schema.description;
  // Public routes (health, this document, the token route, --metrics-public) need no credentials.
  if (permission === 'public') op.security = [];
  const parameters = [...parametersOf(schema.params, 'path'), ...parametersOf(schema.querystring, 'query'), ...parametersOf(schema.headers, 'header')];
  if (parameters.length > 0) op.parameters = parameters;
  if (schema.body !== undefined) op.requestBody = requestBody(schema);
  if (permission !== undefined) op['x-driftdb-permission'] = permission;
  op.responses = responses(schema, id);
  return op;
}

function parametersOf(schema: Json, where: 'path' | 'query' | 'header'): Json[] {
  if (schema === undefined) return [];
  const required = new Set<string>(schema.required ?? []);
  return Object.entries<Json>(schema.properties ?? {}).map(([name, property]) => {
    const { description, ...rest } = property;
    const parameter: Json = { name: where === 'header' ? headerName(name) : name, in: where, required: where === 'path' || required.has(name) };
    if (description !== undefined) parameter.description = description;
    parameter.schema = toOpenApiSchema(rest);
    return parameter;
  });
}

/** `if-none-match` → `If-None-Match`: Fastify wants header schemas in lower case, people read them capitalised. */
function headerName(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_, dash: string, letter: string) => dash + letter.toUpperCase());
}

function requestBody(schema: Json): Json {
  const content: Json = { 'application/json': { schema: toOpenApiSchema(schema.body) } };
  for (const type of schema.consumes ?? []) content[type] = { schema: toOpenApiSchema(schema.body) };
  return { required: schema.bodyOptional !== true, content };
}

function responses(schema: Json, id: string): Json {
  const out: Json = {};
  const statuses = Object.keys(schema.response ?? {}).map(Number).sort((a, b) => a - b);
  if (statuses.length === 0) throw new Error(`route ${id} declares no response schema`);
  for (const status of statuses) {
    const response = schema.response[status];
    if (status >= 400) {
      const name = problemResponseNames[status];
      if (name === undefined) throw new Error(`route ${id}: no shared problem response for status ${status}`);
      out[status] = { $ref: `#/components/responses/${name}` };
      continue;
    }
    const { description, ...body } = response;
    const answer: Json = { description: description ?? defaultDescriptions[status] ?? 'OK.' };
    const headers = schema.responseHeaders?.[status] as string[] | undefined;
    if (headers !== undefined) answer.headers = Object.fromEntries(headers.map((name) => [name, { $ref: `#/components/headers/${name.replace(/-/g, '')}` }]));
    if (body.type !== 'null') {
      const types: string[] = [schema.produces ?? 'application/json'].flat();
      answer.content = Object.fromEntries(types.map((type) => [type, { schema: toOpenApiSchema(body) }]));
    }
    out[status] = answer;
  }
  return out;
}
