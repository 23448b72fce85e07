// Keeps openapi.yaml honest: it parses, every route the server registers is documented and nothing else is, request
// and success schemas equal the routes' own, shared components equal src/routes/schemas.ts, and auth is as documented.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastify, { type RouteOptions } from 'fastify';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config/index.js';
import { openDatabase } from '../../src/engine/index.js';
import { registerRoutes } from '../../src/routes/index.js';
import { sharedSchemas } from '../../src/routes/schemas.js';
import { Authenticator } from '../../src/security/auth.js';
import { UserStore } from '../../src/security/users.js';
import { buildServer } from '../../src/server.js';
import { TransactionService } from '../../src/service/transactions.js';
import { adminPassword, makeTempDir } from '../helpers/server.js';

// The yaml and Fastify's route options are untyped trees here.
type Json = any;

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const yamlText = readFileSync(path.join(repoRoot, 'openapi.yaml'), 'utf8');
const methods = ['get', 'put', 'post', 'patch', 'delete', 'head', 'options'];
/** The route plugins of this document's owner, whose problem statuses must match the yaml exactly. */
const dataRoute = /^\/v1\/(tables|query)/;
/** Placeholder values for path parameters when a test calls every documented route. */
const placeholders: Record<string, string> = {
  table: 'some_table',
  key: 'some-key',
  field: 'some.field',
  id: '00000000-0000-4000-8000-000000000000',
  name: 'sp1',
};

/** `$ref: 'X#'` (Fastify shared schema) → `$ref: '#/components/schemas/X'`, `$id` dropped: the yaml's form. */
function toOpenApi(schema: Json): Json {
  if (Array.isArray(schema)) return schema.map(toOpenApi);
  if (schema === null || typeof schema !== 'object') return schema;
  const out: Json = {};
  for (const [name, value] of Object.entries(schema)) {
    if (name === '$id') continue;
    out[name] = name === '$ref' && typeof value === 'string' ? `#/components/schemas/${value.replace(/#$/, '')}` : toOpenApi(value);
  }
  return out;
}

/** "METHOD /path/{param}" of every route in Fastify's printRoutes tree (HEAD left out: every GET has one). */
function routesOfTree(tree: string): Set<string> {
  const segments: string[] = [];
  const routes = new Set<string>();
  for (const line of tree.split('\n')) {
    const match = /^((?:│ {3}| {4})*)(?:├── |└── )(\S+)(?: \(([^)]*)\))?$/.exec(line);
    if (match === null) continue;
    segments.length = match[1]!.length / 4;
    segments.push(match[2]!);
    for (const method of (match[3] ?? '').split(', ')) {
      if (/^[A-Z]+$/.test(method) && method !== 'HEAD') routes.add(`${method} ${openApiPath(segments.join(''))}`);
    }
  }
  return routes;
}

function openApiPath(fastifyPath: string): string {
  return fastifyPath.replace(/:(\w+)/g, '{$1}');
}

function operations(doc: Json): Map<string, Json> {
  const found = new Map<string, Json>();
  for (const [route, item] of Object.entries<Json>(doc.paths)) {
    for (const method of methods) if (item[method] !== undefined) found.set(`${method.toUpperCase()} ${route}`, item[method]);
  }
  return found;
}

/** Follows `#/...` references through the document; undefined when one does not resolve. */
function resolve(doc: Json, ref: string): Json {
  if (!ref.startsWith('#/')) return undefined;
  return ref
    .slice(2)
    .split('/')
    .reduce((node: Json, step) => (node === undefined ? undefined : node[step.replace(/~1/g, '/').replace(/~0/g, '~')]), doc);
}

function refsIn(node: Json, found: string[] = []): string[] {
  if (Array.isArray(node)) for (const item of node) refsIn(item, found);
  else if (node !== null && typeof node === 'object') {
    for (const [name, value] of Object.entries(node)) {
      if (name === '$ref' && typeof value === 'string') found.push(value);
      else refsIn(value, found);
    }
  }
  return found;
}

async function serverDeps(t: Test) {
  const dataDir = makeTempDir();
  const db = await openDatabase({ dataDir });
  const users = await UserStore.open({ dataDir, adminPassword, announce: () => undefined });
  t.teardown(() => db.close());
  return { dataDir, db, users };
}

const doc: Json = parse(yamlText);

t.test('openapi.yaml parses as OpenAPI 3.1 with HTTP Basic security and resolvable references', async (t) => {
  t.match(doc.openapi, /^3\.1\.\d+$/);
  t.type(doc.info.title, 'string');
  t.type(doc.info.version, 'string');
  t.ok(Array.isArray(doc['x-driftdb-notes']) && doc['x-driftdb-notes'].length > 0, 'the documented choices are there');
  t.same(doc.components.securitySchemes.basicAuth, { type: 'http', scheme: 'basic', description: doc.components.securitySchemes.basicAuth.description });
  t.same(doc.security, [{ basicAuth: [] }]);
  const unresolved = refsIn(doc).filter((ref) => resolve(doc, ref) === undefined);
  t.same(unresolved, [], 'every $ref resolves inside the document');
  for (const [id, operation] of operations(doc)) {
    t.type(operation.operationId, 'string', `${id} has an operationId`);
    t.ok(Object.keys(operation.responses ?? {}).length > 0, `${id} documents its responses`);
  }
  const ids = [...operations(doc).values()].map((operation) => operation.operationId);
  t.equal(new Set(ids).size, ids.length, 'operationIds are unique');
});

t.test('every route the server registers is in openapi.yaml, and every documented route is registered', async (t) => {
  const { dataDir, db, users } = await serverDeps(t);
  const config = loadConfig(['--data-dir', dataDir, '--tls', 'off', '--log-level', 'silent'], {});
  const app = await buildServer(config, { db: () => db, logger: pino({ level: 'silent' }), users });
  t.teardown(() => app.close());
  await app.ready();
  const registered = routesOfTree(app.printRoutes({ commonPrefix: false }));
  t.ok(registered.has('PUT /v1/tables/{table}/rows/{key}'), `the route tree was read (${[...registered].length} routes)`);
  const documented = new Set(operations(doc).keys());
  t.same([...registered].filter((route) => !documented.has(route)).sort(), [], 'no registered route is missing from openapi.yaml');
  t.same([...documented].filter((route) => !registered.has(route)).sort(), [], 'no documented route is missing from the server');
});

t.test('each route\'s request, success schemas, statuses and permission are the ones openapi.yaml documents', async (t) => {
  const { db, users } = await serverDeps(t);
  // A bare instance with an onRoute hook sees each route's options; buildServer registers its routes before it returns.
  const app = fastify();
  const routes: RouteOptions[] = [];
  app.addHook('onRoute', (route) => {
    if (route.method !== 'HEAD') routes.push(route);
  });
  const transactions = new TransactionService(() => db);
  await registerRoutes(app, {
    db: () => db,
    transactions,
    authenticator: new Authenticator({ users }),
    loadOpenApi: async () => null,
    observability: { metrics: null, slowQueries: null, redact: false, engineObserver: undefined },
    config: { metricsPublic: false, slowQueryThresholdMs: 1000, slowQueryMaxStored: 1000 },
  });
  t.teardown(async () => {
    await app.close();
    transactions.closeAll();
  });
  await app.ready();
  const documented = operations(doc);
  t.ok(routes.length >= 10, `routes were collected (${routes.length})`);
  for (const route of routes) {
    const id = `${String(route.method)} ${openApiPath(route.url)}`;
    const operation = documented.get(id);
    if (!t.ok(operation, `${id} is documented`)) continue;
    const schema = (route.schema ?? {}) as Json;
    const permission = (route.config as Json)?.permission;
    t.equal(operation['x-driftdb-permission'], permission, `${id}: permission`);
    if (schema.body !== undefined) {
      t.same(operation.requestBody?.content?.['application/json']?.schema, toOpenApi(schema.body), `${id}: request body`);
    } else {
      t.equal(operation.requestBody, undefined, `${id}: no request body`);
    }
    const routeStatuses = Object.keys(schema.response ?? {}).sort();
    const docStatuses = Object.keys(operation.responses).sort();
    const missing = routeStatuses.filter((status) => !docStatuses.includes(status));
    t.same(missing, [], `${id}: every status the route declares is documented`);
    if (dataRoute.test(route.url)) t.same(docStatuses, routeStatuses, `${id}: exactly the statuses the route declares`);
    for (const status of routeStatuses.filter((s) => Number(s) < 400)) {
      const response = schema.response[status];
      const content = operation.responses[status]?.content?.['application/json']?.schema;
      if (response.type === 'null') t.equal(content, undefined, `${id} ${status}: no body`);
      else t.same(content, toOpenApi(response), `${id} ${status}: response schema`);
    }
    for (const status of docStatuses.filter((s) => Number(s) >= 400)) {
      const problem = resolve(doc, operation.responses[status].$ref ?? '#/none');
      t.ok(problem?.content?.['application/problem+json'], `${id} ${status}: a problem+json response`);
    }
  }
});

t.test('components.schemas carry exactly the shared schemas of src/routes/schemas.ts', async (t) => {
  for (const schema of sharedSchemas) {
    t.same(doc.components.schemas[schema.$id], toOpenApi(schema), schema.$id);
  }
  const shared = new Set(sharedSchemas.map((schema) => schema.$id));
  t.same(Object.keys(doc.components.schemas).filter((name) => !shared.has(name)), [], 'no stale component schema');
});

t.test('documented public routes answer without credentials; every other route asks for them (401)', async (t) => {
  const { dataDir, db, users } = await serverDeps(t);
  const config = loadConfig(['--data-dir', dataDir, '--tls', 'off', '--log-level', 'silent'], {});
  const app = await buildServer(config, { db: () => db, logger: pino({ level: 'silent' }), users });
  t.teardown(() => app.close());
  for (const [id, operation] of operations(doc)) {
    const [method, route] = id.split(' ') as [string, string];
    const url = route.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(placeholders[name] ?? 'x'));
    const res = await app.inject({ method: method as 'GET', url });
    const isPublic = Array.isArray(operation.security) && operation.security.length === 0;
    if (isPublic) t.not(res.statusCode, 401, `${id} is public`);
    else {
      t.equal(res.statusCode, 401, `${id} needs credentials`);
      t.ok(res.headers['www-authenticate'], `${id} sends a challenge`);
    }
  }
});

t.test('GET /openapi.json serves openapi.yaml as JSON', async (t) => {
  const { dataDir, db, users } = await serverDeps(t);
  const config = loadConfig(['--data-dir', dataDir, '--tls', 'off', '--log-level', 'silent'], {});
  const app = await buildServer(config, { db: () => db, logger: pino({ level: 'silent' }), users });
  t.teardown(() => app.close());
  const res = await app.inject({ method: 'GET', url: '/openapi.json' });
  t.equal(res.statusCode, 200);
  t.match(String(res.headers['content-type']), /^application\/json/);
  t.same(JSON.parse(res.body), doc);
});
