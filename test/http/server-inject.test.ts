// buildServer in-process with light.inject: what a black box cannot provoke on demand — a bug inside a handler
// (500 without a trace of it in the answer), a database still recovering (503 + Retry-After) — and the status map.

import { Writable } from 'node:stream';
import fastify, { type FastifyInstance } from 'fastify';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { loadConfig } from '../../src/config/index.js';
import type { Database } from '../../src/engine/index.js';
import { DriftError, errorCodes } from '../../src/errors.js';
import { problemFromError, problemOf, statusByCode } from '../../src/routes/problem.js';
import { buildServer } from '../../src/server.js';
import { requirePermissionDeclarations } from '../../src/security/hooks.js';
import type { Security } from '../../src/security/security.js';
import { openServices } from '../helpers/app.js';
import { adminAuth as auth } from '../helpers/server.js';

/** A server whose database accessor is `db`; security is real (over its own database) unless it is recovering too. */
async function build(t: Test, db: () => Database, recovering = false): Promise<{ app: FastifyInstance; logs: () => string }> {
  const { security: services } = await openServices(t);
  const security = (): Security => {
    if (recovering) throw new DriftError('unavailable', 'recovering the log; retry shortly', { retryAfterSeconds: 1 });
    return services;
  };
  let logs = '';
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logs += String(chunk);
      done();
    },
  });
  const dataDir = t.testdir();
  const config = loadConfig(['--tls', 'off', '--data-dir', dataDir], {});
  const app = await buildServer(config, { db, security, logger: pino({ level: 'debug' }, sink) });
  t.teardown(() => app.close());
  return { app, logs: () => logs };
}

t.test('an unexpected error in a handler is a 500 internal that reveals nothing, and is logged in full', async (t) => {
  const secret = new Error('EIO: i/o error, write /var/lib/driftdb-secret/wal/0000000000000001.wal');
  const { app, logs } = await build(t, () => {
    throw secret;
  });
  const response = await app.inject({ method: 'GET', url: '/v1/admin/stats', headers: { authorization: auth, 'x-request-id': 'req-500' } });
  t.equal(response.statusCode, 500);
  t.match(response.headers['content-type'], /^application\/problem\+json/);
  const body = response.json();
  t.equal(body.code, 'internal');
  t.match(body.detail, /req-500/, 'names the request id to look up');
  t.notMatch(response.body, /driftdb-secret|EIO|\.wal|at .*\.js|stack/, 'no message, path or stack');
  t.match(logs(), /driftdb-secret/, 'the log has the cause');
  t.match(logs(), /"stack"/, 'and its stack');
});

t.test('while the database is recovering /readyz and data routes answer 503 unavailable with Retry-After', async (t) => {
  const { app } = await build(
    t,
    () => {
      throw new DriftError('unavailable', 'recovering the log; retry shortly', { retryAfterSeconds: 1 });
    },
    true,
  );
  const health = await app.inject({ method: 'GET', url: '/healthz' });
  t.equal(health.statusCode, 200, '/healthz does not wait for the database');
  for (const url of ['/readyz', '/v1/tables']) {
    const response = await app.inject({ method: 'GET', url, headers: { authorization: auth } });
    t.equal(response.statusCode, 503, url);
    t.equal(response.headers['retry-after'], '1');
    t.equal(response.json().code, 'unavailable');
  }
});

t.test('a 503 detail built from a system error does not show server paths', async (t) => {
  const { app } = await build(t, () => {
    throw new DriftError('unavailable', 'log write failed (EIO on /srv/data/wal/0000000000000007.wal); writes are stopped');
  });
  const response = await app.inject({ method: 'GET', url: '/readyz' });
  t.equal(response.statusCode, 503);
  t.notMatch(response.body, /\/srv\/data/);
  t.match(response.json().detail, /writes are stopped/);
});

t.test('every error code has a status, and the map matches the contract', async (t) => {
  for (const code of errorCodes) t.type(statusByCode[code], 'number', code);
  t.match(statusByCode, {
    bad_request: 400, validation_failed: 400, unauthorized: 401, forbidden: 403, not_found: 404,
    table_not_found: 404, row_not_found: 404, transaction_not_found: 404, table_exists: 409, index_exists: 409,
    transaction_aborted: 409, serialization_failure: 409, deadlock_detected: 409, lock_timeout: 409, read_only: 409,
    transaction_expired: 410, precondition_failed: 412, payload_too_large: 413, unsupported_media_type: 415,
    user_locked: 423, rate_limited: 429, internal: 500, unavailable: 503,
  });
});

t.test('a problem keeps its extra fields but never lets them replace the core members', async (t) => {
  const problem = problemOf('precondition_failed', 'row changed', { currentSeq: 7, status: 200, code: 'x' });
  t.same(problem.body, {
    type: 'urn:driftdb:problem:precondition_failed',
    title: 'Precondition failed',
    status: 412,
    detail: 'row changed',
    code: 'precondition_failed',
    currentSeq: 7,
  });
  t.equal(problemOf('lock_timeout', 'waited').body.retryable, true, 'retryable codes say so');
  t.equal(problemOf('unauthorized', 'no').headers['www-authenticate'], 'Basic realm="driftdb", Bearer realm="driftdb"');
  t.equal(problemOf('rate_limited', 'slow down', { retryAfterSeconds: 2.2 }).headers['retry-after'], '3');
  t.equal(problemFromError(new DriftError('internal', 'disk /x/y failed'), 'r1').body.detail.includes('/x/y'), false);
  t.equal(problemFromError('a string', 'r2').status, 500);
  t.equal(problemFromError(null, 'r3').status, 500);
});

t.test('a route without a declared permission stops the server from building, public routes included', async (t) => {
  const app = fastify();
  t.teardown(() => app.close());
  const registering = async (): Promise<void> => {
    requirePermissionDeclarations(app);
    await app.register(async (scope) => {
      scope.get('/declared', { config: { permission: 'public' } }, async () => ({ ok: true }));
      scope.get('/undeclared', async () => ({ ok: true }));
    });
    await app.ready();
  };
  await t.rejects(registering, /GET \/undeclared must declare config.permission/);
});
