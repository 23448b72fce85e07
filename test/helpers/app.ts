// In-process route tests: buildServer over a real engine and real security services in a fresh data dir, spoken to
// with fastify.inject.

import type { Test } from 'tap';
import { pino } from 'pino';
import { loadConfig, type Config } from '../../src/config/index.js';
import { openDatabase, type Database } from '../../src/engine/index.js';
import { hashPassword, type PasswordHash } from '../../src/security/password.js';
import { Security } from '../../src/security/security.js';
import { ensureSystemTable, systemTables } from '../../src/security/system-tables.js';
import { buildServer } from '../../src/server.js';
import { openApiViolation } from './openapi-check.js';
import { adminPassword, basicAuth, type Response } from './server.js';

export interface Call {
  body?: unknown;
  headers?: Record<string, string>;
  auth?: string | false;
}

// One scrypt hash of the admin password for the whole file: hashing it per test would dominate the run time.
let adminHashOnce: Promise<PasswordHash> | undefined;

/** Puts the admin (with the shared hash) into a new database, so opening security does not hash again. */
export async function seedAdmin(db: Database): Promise<void> {
  adminHashOnce ??= hashPassword(adminPassword);
  await ensureSystemTable(db, systemTables.users);
  const now = new Date().toISOString();
  const doc = { username: 'admin', roles: ['admin'], password: await adminHashOnce, createdAt: now, updatedAt: now };
  await db.put({ table: systemTables.users.name, key: 'admin', doc });
}

/** An open database with seeded admin and security services, closed when the test ends. */
export async function openServices(t: Test, args: string[] = []): Promise<{ config: Config; db: Database; security: Security }> {
  const dataDir = t.testdir();
  const config = loadConfig(['--data-dir', dataDir, '--tls', 'off', '--log-level', 'silent', ...args], {});
  const db = await openDatabase({ dataDir });
  await seedAdmin(db);
  const security = await Security.open({ config, db, logger: pino({ level: 'silent' }), announce: () => undefined });
  t.teardown(async () => {
    await security.close();
    await db.close();
  });
  return { config, db, security };
}

/** `args` are extra `serve` flags (e.g. --slow-query-threshold-ms 0), after the defaults. */
export async function startApp(t: Test, args: string[] = []) {
  const { config, db, security } = await openServices(t, args);
  const app = await buildServer(config, { db: () => db, security: () => security, logger: pino({ level: 'silent' }) });
  // Registered after openServices' teardown, so it runs first: the server closes before security and the database.
  t.teardown(() => app.close());
  const call = async (method: string, url: string, options: Call = {}): Promise<Response> => {
    const headers: Record<string, string> = {};
    if (options.auth !== false) headers.authorization = options.auth ?? basicAuth('admin', adminPassword);
    let payload: string | undefined;
    if (options.body !== undefined) {
      payload = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
      headers['content-type'] = 'application/json';
    }
    Object.assign(headers, options.headers);
    const res = await app.inject({ method: method as 'GET', url, headers, payload });
    const json = /json/.test(String(res.headers['content-type'])) && res.body !== '' ? JSON.parse(res.body) : undefined;
    const contentType = res.headers['content-type'] as string | undefined;
    const violation = openApiViolation({ method, url, status: res.statusCode, contentType, json, text: res.body });
    if (violation !== null) throw new Error(`openapi.yaml: ${violation}`);
    return { status: res.statusCode, headers: res.headers as Response['headers'], text: res.body, json };
  };
  return { app, db, security, users: security.users, call };
}

export function expectProblem(t: Test, res: Response, status: number, code: string): void {
  t.equal(res.status, status, `status ${status} (${res.text.slice(0, 200)})`);
  t.match(String(res.headers['content-type']), /^application\/problem\+json/);
  t.equal(res.json?.code, code);
  t.equal(res.json?.status, status);
}

export async function withTable(t: Test, def: Record<string, unknown> = { name: 'docs', primaryKey: 'id' }) {
  const api = await startApp(t);
  t.equal((await api.call('POST', '/v1/tables', { body: def })).status, 201);
  return api;
}
