// Test helper: spawns the real built server (`node dist/src/cli.js serve`) on an ephemeral port and talks HTTP(S)
// to it. Every process it starts is killed when the test process exits, and temp data dirs it made are removed.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openApiViolation } from './openapi-check.js';

/** The admin password every helper-started server gets (through DRIFTDB_ADMIN_PASSWORD) unless env says otherwise. */
export const adminPassword = 'test-admin-password';
export const adminAuth = basicAuth('admin', adminPassword);

/** dist/src/cli.js, found from this file's place in dist/test/helpers/. */
export const cliPath = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli.js');

export function basicAuth(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

export interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** The parsed body when it is JSON, else undefined. */
  json: any;
}

export interface RequestOptions {
  /** An object is sent as JSON; a string or Buffer is sent as is (Content-Type defaults to application/json). */
  body?: unknown;
  headers?: Record<string, string>;
  /** Authorization header value; default the admin's Basic credentials, false for none. */
  auth?: string | false;
  timeoutMs?: number;
}

export interface SpawnOptions {
  /** Extra `serve` flags; they come after the helper's defaults (--port 0 --tls off), and the last flag wins. */
  args?: string[];
  /** Added to the environment; undefined removes a variable. DRIFTDB_* variables of the test runner are dropped. */
  env?: Record<string, string | undefined>;
  /** Use this data dir (e.g. to restart on one); default a fresh temp dir removed when the test process exits. */
  dataDir?: string;
  /** Options for node itself, before the script (e.g. --max-old-space-size=128). */
  nodeArgs?: string[];
}

export interface SpawnedServer {
  proc: ChildProcess;
  dataDir: string;
  /** Everything written so far (stdout is capped at a few MiB). */
  stdout(): string;
  stderr(): string;
  /** The URL of the "listening" log line; rejects if the process exits first. */
  listening: Promise<string>;
  /** Resolves with the exit code (null when killed by a signal) once the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface TestServer extends SpawnedServer {
  url: string;
  baseUrl: string;
  /** Basic header value for the admin user. */
  auth: string;
  request(method: string, urlPath: string, options?: RequestOptions): Promise<Response>;
  /** SIGTERM, then wait for the exit; answers the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL, then wait for the exit. */
  kill(): Promise<void>;
}

const live = new Set<ChildProcess>();
const tempDirs: string[] = [];
process.on('exit', () => {
  for (const proc of live) proc.kill('SIGKILL');
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});

export function makeTempDir(prefix = 'driftdb-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

const stdoutCaptureCharsMax = 4 * 1024 * 1024;

/** Starts the server process without waiting for readiness (for tests of failed starts). */
export function spawnServer(options: SpawnOptions = {}): SpawnedServer {
  const dataDir = options.dataDir ?? path.join(makeTempDir(), 'data');
  const env: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('DRIFTDB_')) env[name] = value;
  Object.assign(env, { DRIFTDB_ADMIN_PASSWORD: adminPassword }, options.env);
  for (const name of Object.keys(env)) if (env[name] === undefined) delete env[name];
  const args = [...(options.nodeArgs ?? []), cliPath, 'serve', '--port', '0', '--tls', 'off', '--data-dir', dataDir, ...(options.args ?? [])];
  const proc = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(proc);
  let out = '';
  let err = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.on('exit', (code, signal) => {
      live.delete(proc);
      resolve({ code, signal });
    });
  });
  const listening = new Promise<string>((resolve, reject) => {
    proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      if (out.length < stdoutCaptureCharsMax) out += chunk;
      const match = /"url":"([^"]+)","msg":"listening"|"msg":"listening"[^\n]*?"url":"([^"]+)"/.exec(out);
      if (match) resolve(match[1] ?? match[2]!);
    });
    void exited.then(({ code, signal }) =>
      reject(new Error(`server exited (code ${code}, signal ${signal}) before listening:\n${out}\n${err}`)),
    );
  });
  listening.catch(() => undefined);
  proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
  });
  return { proc, dataDir, stdout: () => out, stderr: () => err, listening, exited };
}

/** Starts the server and resolves once GET /readyz answers 200. */
export async function startServer(
  options: SpawnOptions & {
    readyTimeoutMs?: number;
    /** When the server counts as started, from its /readyz answer; default a 200. */
    readyWhen?: (response: Response) => boolean;
  } = {},
): Promise<TestServer> {
  const spawned = spawnServer(options);
  const url = await spawned.listening;
  const agentOptions = { keepAlive: true, maxSockets: 64 };
  const agent = url.startsWith('https:')
    ? new https.Agent({ ...agentOptions, ca: trustedCert(spawned.dataDir, options.args ?? []) })
    : new http.Agent(agentOptions);
  const server: TestServer = {
    ...spawned,
    url,
    baseUrl: url,
    auth: adminAuth,
    request: (method, urlPath, requestOptions) => request(agent, url, method, urlPath, requestOptions),
    async stop() {
      spawned.proc.kill('SIGTERM');
      const { code } = await withTimeout(spawned.exited, 15_000, 'server did not exit after SIGTERM');
      agent.destroy();
      return code;
    },
    async kill() {
      spawned.proc.kill('SIGKILL');
      await spawned.exited;
      agent.destroy();
    },
  };
  try {
    await waitReady(server, options.readyTimeoutMs ?? 20_000, options.readyWhen ?? ((response) => response.status === 200));
  } catch (error) {
    await server.kill();
    throw error;
  }
  return server;
}

/** The certificate a client should trust: the self-signed one in the data dir, or the one given by --tls-cert. */
function trustedCert(dataDir: string, args: string[]): string {
  const certFlag = args.lastIndexOf('--tls-cert');
  const file = certFlag === -1 ? path.join(dataDir, 'tls', 'cert.pem') : args[certFlag + 1]!;
  return fs.readFileSync(file, 'utf8');
}

async function waitReady(server: TestServer, timeoutMs: number, readyWhen: (response: Response) => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const exit = await Promise.race([server.exited, sleep(0).then(() => null)]);
    if (exit !== null) throw new Error(`server exited (code ${exit.code}) before ready:\n${server.stdout()}\n${server.stderr()}`);
    try {
      const response = await server.request('GET', '/readyz', { auth: false, timeoutMs: 2_000 });
      if (readyWhen(response)) return;
      last = `${response.status} ${response.text}`;
    } catch (error) {
      last = String(error);
    }
    await sleep(50);
  }
  throw new Error(`server not ready within ${timeoutMs} ms (last answer: ${last})\n${server.stderr()}`);
}

function request(agent: http.Agent, baseUrl: string, method: string, urlPath: string, options: RequestOptions = {}): Promise<Response> {
  const headers: Record<string, string> = {};
  if (options.auth !== false) headers.authorization = options.auth ?? adminAuth;
  let payload: Buffer | undefined;
  if (options.body !== undefined) {
    payload = typeof options.body === 'string' || Buffer.isBuffer(options.body) ? Buffer.from(options.body) : Buffer.from(JSON.stringify(options.body));
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(payload.length);
  }
  Object.assign(headers, options.headers);
  const url = new URL(urlPath, baseUrl);
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(url, { method, headers, agent, timeout: options.timeoutMs ?? 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        if (/json/.test(String(res.headers['content-type'])) && text !== '') {
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
        }
        // Every answer of every test is checked against openapi.yaml: the document and the server cannot drift apart.
        const violation = openApiViolation({ method, url: url.pathname + url.search, status: res.statusCode!, contentType: res.headers['content-type'], json, text });
        if (violation !== null) reject(new Error(`openapi.yaml: ${violation}`));
        else resolve({ status: res.statusCode!, headers: res.headers, text, json });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(message)), ms);
    }),
  ]);
}
