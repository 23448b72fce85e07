// The admin page's static route: what it serves and with which headers (its own CSP, caching, gzip, 304), that the
// API keeps its own policy, that no request can reach a file outside the page's folder, and that the page's
// scripts never keep credentials anywhere but in memory. (test/admin-page/browser.test.ts drives the page itself.)

import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import fastify, { type FastifyInstance } from 'fastify';
import t from 'tap';
import { adminPageFolder, adminPageRoutes } from '../../src/routes/admin-page.js';
import { acceptsGzip, clientHasFile } from '../../src/routes/page-files.js';
import { installProblemHandlers } from '../../src/routes/problem.js';
import { addSharedSchemas } from '../../src/routes/schemas.js';
import { startApp } from '../helpers/app.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const pageDir = path.join(repoRoot, adminPageFolder);

/** GET over a real socket, the path sent exactly as written (no client normalizes dot segments or escapes). */
function rawGet(app: FastifyInstance, urlPath: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  const { port } = app.server.address() as AddressInfo;
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, method: 'GET', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** The build hash and asset names the served HTML refers to. */
function assetsOf(html: string): { build: string; names: string[] } {
  const refs = [...html.matchAll(/(?:href|src)="\.\/([0-9a-f]{12})\/([^"]+)"/g)];
  return { build: refs[0]![1]!, names: [...new Set(refs.map((ref) => ref[2]!))] };
}

t.test('GET /admin/ serves the page under its own CSP, revalidated on every load; the API keeps its policy', async (t) => {
  const { call } = await startApp(t);
  const redirect = await call('GET', '/admin', { auth: false });
  t.equal(redirect.status, 308);
  t.equal(redirect.headers.location, '/admin/');

  const page = await call('GET', '/admin/', { auth: false });
  t.equal(page.status, 200);
  t.match(page.headers['content-type'], /^text\/html; charset=utf-8/);
  const csp = String(page.headers['content-security-policy']);
  t.match(csp, /script-src 'self'/);
  t.match(csp, /style-src 'self'/);
  t.match(csp, /connect-src 'self'/);
  t.match(csp, /frame-ancestors 'none'/);
  t.notMatch(csp, /unsafe-inline|unsafe-eval|\*/, 'nothing inline, no wildcard');
  t.equal(page.headers['x-content-type-options'], 'nosniff');
  t.equal(page.headers['cache-control'], 'no-cache');
  t.match(page.headers.etag, /^W\/"/);
  t.equal(page.headers.vary, 'accept-encoding');
  t.notMatch(page.text, /\{\{/, 'every placeholder was filled');
  t.notMatch(page.text, /<script(?![^>]*\ssrc=)[^>]*>/, 'no inline script');
  t.notMatch(page.text, /<style|\sstyle=/, 'no inline style');

  const api = await call('GET', '/v1/tables');
  t.equal(api.headers['content-security-policy'], "default-src 'none';frame-ancestors 'none'", 'the API answers keep the API policy');
  t.equal((await call('GET', '/healthz', { auth: false })).headers['content-security-policy'], "default-src 'none';frame-ancestors 'none'");

  const again = await call('GET', '/admin/', { auth: false, headers: { 'if-none-match': String(page.headers.etag) } });
  t.equal(again.status, 304, 'an unchanged page is not sent again');
  t.equal(again.text, '');
});

t.test('every asset the page names is served, immutable under its build hash; other names and builds are 404', async (t) => {
  const { call } = await startApp(t);
  const page = await call('GET', '/admin/', { auth: false });
  const { build, names } = assetsOf(page.text);
  const shipped = readdirSync(pageDir).filter((name) => name !== 'index.html').sort();
  t.same([...names].sort(), shipped, 'the page names (or preloads) every file the folder ships');
  const types: Record<string, RegExp> = { js: /^text\/javascript/, css: /^text\/css/, svg: /^image\/svg\+xml/ };
  for (const name of names) {
    const asset = await call('GET', `/admin/${build}/${name}`, { auth: false });
    t.equal(asset.status, 200, name);
    t.match(asset.headers['content-type'], types[path.extname(name).slice(1)]!, `${name} has its type`);
    t.equal(asset.headers['cache-control'], 'public, max-age=31536000, immutable', `${name} is cached for good`);
    t.match(String(asset.headers['content-security-policy']), /script-src 'self'/);
    t.equal(asset.text, readFileSync(path.join(pageDir, name), 'utf8'), `${name} is the shipped file`);
  }
  const other = await call('GET', `/admin/000000000000/main.js`, { auth: false });
  t.equal(other.status, 404, 'another build');
  t.equal(other.json.code, 'not_found');
  t.equal((await call('GET', `/admin/${build}/nothing.js`, { auth: false })).status, 404, 'an unknown name');
  t.equal((await call('GET', `/admin/${build}/index.html`, { auth: false })).status, 404, 'the page is served at /admin/ only');
});

t.test('files go out gzip-compressed when the client accepts gzip, and plain when it does not', async (t) => {
  const { app } = await startApp(t);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const plain = await rawGet(app, '/admin/');
  t.equal(plain.headers['content-encoding'], undefined);
  const { build } = assetsOf(plain.body.toString('utf8'));
  for (const url of ['/admin/', `/admin/${build}/main.js`, `/admin/${build}/admin.css`]) {
    const identity = await rawGet(app, url, { 'accept-encoding': 'identity' });
    const gzip = await rawGet(app, url, { 'accept-encoding': 'gzip, deflate, br' });
    t.equal(gzip.headers['content-encoding'], 'gzip', `${url} compressed`);
    t.ok(gzip.body.length < identity.body.length, `${url}: ${gzip.body.length} < ${identity.body.length} bytes`);
    t.same(gunzipSync(gzip.body), identity.body, `${url}: the same bytes once unpacked`);
    t.equal(gzip.headers.etag, identity.headers.etag, 'one validator for both encodings');
    const refused = await rawGet(app, url, { 'accept-encoding': 'gzip;q=0, identity' });
    t.equal(refused.headers['content-encoding'], undefined, `${url}: gzip;q=0 is a refusal`);
  }
});

t.test('Accept-Encoding and If-None-Match are read as RFC 9110 says', async (t) => {
  t.ok(acceptsGzip('gzip'));
  t.ok(acceptsGzip('deflate, GZIP;q=0.5'));
  t.ok(acceptsGzip('*'));
  t.ok(acceptsGzip('br;q=1, *;q=0.1'));
  t.notOk(acceptsGzip(undefined));
  t.notOk(acceptsGzip(''));
  t.notOk(acceptsGzip('identity'));
  t.notOk(acceptsGzip('gzip;q=0'));
  t.notOk(acceptsGzip('gzip;q=0.000, *'), 'gzip refused by name wins over *');
  t.notOk(acceptsGzip('*;q=0'));
  t.ok(clientHasFile('W/"abc"', 'W/"abc"'));
  t.ok(clientHasFile('"abc"', 'W/"abc"'), 'weak comparison');
  t.ok(clientHasFile('"x", W/"abc"', 'W/"abc"'));
  t.ok(clientHasFile('*', 'W/"abc"'));
  t.notOk(clientHasFile('"abcd"', 'W/"abc"'));
  t.notOk(clientHasFile(undefined, 'W/"abc"'));
});

t.test('no path reaches a file outside the page folder, nor a file inside it that is not a page file', async (t) => {
  // A folder of our own: the page, a secret beside the folder, and files inside it that must never be served.
  const root = t.testdir({
    'secret.js': 'SECRET-OUTSIDE',
    page: {
      'index.html': '<!doctype html><script type="module" src="./{{build}}/main.js"></script>',
      'main.js': 'export {};',
      '.env': 'SECRET-DOTFILE',
      'notes.txt': 'SECRET-TEXT',
      'Upper.js': 'SECRET-CASE',
      sub: { 'deep.js': 'SECRET-SUBFOLDER' },
    },
  });
  symlinkSync(path.join(root, 'secret.js'), path.join(root, 'page', 'link.js'));
  mkdirSync(path.join(root, 'page', 'dir.js'));
  writeFileSync(path.join(root, 'page', 'dir.js', 'x'), 'SECRET-DIR');
  const app = fastify();
  addSharedSchemas(app);
  installProblemHandlers(app);
  await app.register(adminPageRoutes, { dir: path.join(root, 'page') });
  t.teardown(() => app.close());
  await app.listen({ port: 0, host: '127.0.0.1' });
  const html = (await rawGet(app, '/admin/')).body.toString('utf8');
  const { build } = assetsOf(html);
  t.equal((await rawGet(app, `/admin/${build}/main.js`)).status, 200, 'the page file itself is served');

  const attempts = [
    `/admin/${build}/..%2Fsecret.js`,
    `/admin/${build}/..%2F..%2Fsecret.js`,
    `/admin/${build}/%2e%2e%2fsecret.js`,
    `/admin/${build}/%2E%2E%2Fsecret.js`,
    `/admin/${build}/..%5Csecret.js`,
    `/admin/${build}/..\\secret.js`,
    `/admin/${build}/....//secret.js`,
    `/admin/${build}/%252e%252e%252fsecret.js`,
    `/admin/${build}/%2Fetc%2Fpasswd`,
    `/admin/${build}/secret.js%00.js`,
    `/admin/../secret.js`,
    `/admin/${build}/../../secret.js`,
    `/admin/..%2F..%2Fsecret.js`,
    `/admin/%2e%2e/secret.js`,
    `/admin/%2e%2e/%2e%2e/secret.js`,
    `/admin/${build}/sub%2Fdeep.js`,
    `/admin/${build}/sub/deep.js`,
    `/admin/${build}/.env`,
    `/admin/${build}/notes.txt`,
    `/admin/${build}/Upper.js`,
    `/admin/${build}/link.js`,
    `/admin/${build}/dir.js`,
    `/admin/${build}/dir.js%2Fx`,
    `/admin//secret.js`,
  ];
  for (const attempt of attempts) {
    const res = await rawGet(app, attempt);
    t.ok(res.status === 404 || res.status === 400, `${attempt} → ${res.status}`);
    t.notMatch(res.body.toString('utf8'), /SECRET/, `${attempt} reveals nothing`);
  }
});

t.test('a build without the page folder answers 404 not_found, not an error', async (t) => {
  const app = fastify();
  addSharedSchemas(app);
  installProblemHandlers(app);
  await app.register(adminPageRoutes, { dir: path.join(t.testdir(), 'absent') });
  t.teardown(() => app.close());
  for (const url of ['/admin/', '/admin/0123456789ab/main.js']) {
    const res = await app.inject({ method: 'GET', url });
    t.equal(res.statusCode, 404, url);
    t.equal(res.json().code, 'not_found');
  }
});

t.test("the page's scripts keep credentials in memory only and never build HTML from text", async (t) => {
  for (const name of readdirSync(pageDir).filter((file) => file.endsWith('.js'))) {
    // Comments may name what the code must not use.
    const source = readFileSync(path.join(pageDir, name), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
    for (const banned of ['localStorage', 'sessionStorage', 'document.cookie', 'indexedDB', 'innerHTML', 'outerHTML', 'insertAdjacentHTML', 'document.write', 'eval(', 'new Function']) {
      t.notOk(source.includes(banned), `${name} does not use ${banned}`);
    }
  }
});
