// Keeps openapi.yaml honest: it is exactly what `npm run openapi` makes from the routes (and so is the SDK's types
// file), @redocly/cli finds no error in it, every route the server registers is in it and nothing else is, auth is
// as documented, and GET /openapi.json serves it. (Every answer of every HTTP test is also checked against it: see
// test/helpers/openapi-check.ts.)

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { parse } from 'yaml';
import { generateOpenApiYaml, openApiPath, sdkTypesPath } from '../../scripts/openapi.js';
import { sdkTypes } from '../../scripts/sdk-types.js';
import { collectRoutes, openApiDocument } from '../../src/routes/openapi-document.js';
import { routesOfTree } from '../helpers/route-tree.js';
import { buildServer } from '../../src/server.js';
import { openApiViolation } from '../helpers/openapi-check.js';
import { openServices } from '../helpers/app.js';

// The yaml is an untyped tree here.
type Json = any;

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const yamlText = readFileSync(openApiPath, 'utf8');
const doc: Json = parse(yamlText);
const methods = ['get', 'put', 'post', 'patch', 'delete'];
/** Placeholder values for path parameters when a test calls every documented route. */
const placeholders: Record<string, string> = {
  table: 'some_table',
  key: 'some-key',
  field: 'some.field',
  id: '00000000-0000-4000-8000-000000000000',
  name: 'sp1',
};

function operations(document: Json): Map<string, Json> {
  const found = new Map<string, Json>();
  for (const [route, item] of Object.entries<Json>(document.paths)) {
    for (const method of methods) if (item[method] !== undefined) found.set(`${method.toUpperCase()} ${route}`, item[method]);
  }
  return found;
}

/** A server over real services; closed before them when the test ends. */
async function server(t: Test, args: string[] = []) {
  const { config, db, security } = await openServices(t, args);
  const app = await buildServer(config, { db: () => db, security: () => security, logger: pino({ level: 'silent' }) });
  t.teardown(() => app.close());
  await app.ready();
  return app;
}

t.test('openapi.yaml and the SDK types are what npm run openapi makes from the routes today', async (t) => {
  const generated = await generateOpenApiYaml();
  t.ok(generated === yamlText, 'openapi.yaml is current (else run npm run openapi and commit it)');
  t.ok((await sdkTypes(generated)) === readFileSync(sdkTypesPath, 'utf8'), 'clients/typescript/src/schema.d.ts is current');
  t.match(doc.openapi, /^3\.1\.\d+$/);
  t.ok(Array.isArray(doc['x-driftdb-notes']) && doc['x-driftdb-notes'].length > 0, 'the documented choices are there');
  const ids = [...operations(doc).values()].map((operation) => operation.operationId);
  t.equal(new Set(ids).size, ids.length, 'operationIds are unique');
  t.same(doc.components.securitySchemes.basicAuth?.scheme, 'basic', 'HTTP Basic credentials');
  t.same(doc.components.securitySchemes.bearerAuth?.scheme, 'bearer', 'and bearer tokens');
});

t.test('@redocly/cli lint finds no error in openapi.yaml', async (t) => {
  const redocly = path.join(repoRoot, 'node_modules', '.bin', 'redocly');
  const result = spawnSync(redocly, ['lint', '--format', 'json', openApiPath], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' },
    timeout: 120_000,
  });
  const report = JSON.parse(result.stdout.slice(result.stdout.indexOf('{'))) as { totals: { errors: number; warnings: number }; problems: Array<{ severity: string; message: string }> };
  t.equal(report.totals.errors, 0, report.problems.filter((p) => p.severity === 'error').map((p) => p.message).join('; ') || 'no errors');
  t.comment(`redocly: ${report.totals.warnings} warnings`);
  t.equal(result.status, 0, 'redocly exits 0');
});

t.test('every route the server registers is in openapi.yaml, and every documented route is registered', async (t) => {
  for (const args of [[], ['--metrics-public']]) {
    const app = await server(t, args);
    const registered = new Set([...routesOfTree(app.printRoutes({ commonPrefix: false }))].map((route) => route.replace(/:(\w+)/g, '{$1}')));
    t.ok(registered.has('PUT /v1/tables/{table}/rows/{key}') && registered.has('GET /metrics'), `the route tree was read (${registered.size} routes)`);
    const documented = new Set(operations(doc).keys());
    t.same([...registered].filter((route) => !documented.has(route)).sort(), [], `${args.join(' ')}: no registered route is missing`);
    t.same([...documented].filter((route) => !registered.has(route)).sort(), [], `${args.join(' ')}: no documented route is missing`);
  }
});

t.test('documented public routes answer without credentials; every other route asks for them (401)', async (t) => {
  const app = await server(t);
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

t.test('a route that does not document itself stops the generator with its name', async (t) => {
  const routes = await collectRoutes(async (app) => {
    app.get('/undocumented', { schema: { response: { 200: { type: 'object' } } } }, async () => ({}));
  });
  t.throws(() => openApiDocument(routes), /route GET \/undocumented has no schema\.operationId/);
});

t.test('GET /openapi.json serves openapi.yaml as JSON', async (t) => {
  const app = await server(t);
  const res = await app.inject({ method: 'GET', url: '/openapi.json' });
  t.equal(res.statusCode, 200);
  t.match(String(res.headers['content-type']), /^application\/json/);
  t.same(JSON.parse(res.body), doc);
});

t.test('the answer check of the HTTP helpers catches an answer the document does not allow', async (t) => {
  const put = { method: 'PUT', url: '/v1/tables/t/rows/k', contentType: 'application/json; charset=utf-8', text: '' };
  t.equal(openApiViolation({ ...put, status: 201, json: { key: 'k', seq: 3 } }), null, 'a documented answer passes');
  t.match(openApiViolation({ ...put, status: 201, json: { key: 'k' } }), /body not matching PUT \/v1\/tables\/\{table\}\/rows\/\{key\}/);
  t.match(openApiViolation({ ...put, status: 418, json: {} }), /a status .* does not document/);
  t.match(openApiViolation({ ...put, status: 404, contentType: 'application/json', json: { code: 'x' } }), /not a problem\+json/);
  t.match(openApiViolation({ ...put, url: '/v2/nothing', status: 200, json: {} }), /no documented route matches/);
  const problem = { type: 'urn:driftdb:problem:not_found', title: 'Not found', status: 404, code: 'not_found', detail: 'x' };
  t.equal(openApiViolation({ ...put, url: '/v2/nothing', status: 404, contentType: 'application/problem+json', json: problem }), null);
});
