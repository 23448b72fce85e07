// In-process route tests: buildServer over a real engine in a fresh data dir, spoken to with fastify.inject.

import type { Test } from 'tap';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/index.js';
import { openDatabase } from '../../src/engine/index.js';
import { UserStore } from '../../src/security/users.js';
import { buildServer } from '../../src/server.js';
import { openApiViolation } from './openapi-check.js';
import { adminPassword, basicAuth, makeTempDir, type Response } from './server.js';

export interface Call {
  body?: unknown;
  headers?: Record<string, string>;
  auth?: string | false;
}

// One user store for the file: hashing the admin password (scrypt) per test would dominate the run time.
let usersOnce: Promise<UserStore> | undefined;

/** `args` are extra `serve` flags (e.g. --slow-query-threshold-ms 0), after the defaults. */
export async function startApp(t: Test, args: string[] = []) {
  const dataDir = t.testdir();
  const config = loadConfig(['--data-dir', dataDir, '--tls', 'off', '--log-level', 'silent', ...args], {});
  const db = await openDatabase({ dataDir });
  usersOnce ??= UserStore.open({ dataDir: makeTempDir(), adminPassword, announce: () => undefined });
  const users = await usersOnce;
  const app = await buildServer(config, { db: () => db, logger: pino({ level: 'silent' }), users });
  t.teardown(async () => {
    await app.close();
    await db.close();
  });
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
  return { app, db, users, call };
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
