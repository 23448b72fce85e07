// A small HTTPS/JSON client over loopback for the orchestrator and the transaction worker (self-signed certs accepted).

import { Agent, request } from 'node:https';

/** Per-request bound: a request that takes longer is reported as an error, never awaited forever. */
export const requestTimeoutMs = 30_000;

export interface HttpAnswer {
  status: number;
  /** Parsed JSON body, or the raw text when it is not JSON, or null when empty. */
  body: unknown;
  headers: Record<string, string | string[] | undefined>;
}

export interface HttpCall {
  agent: Agent;
  baseUrl: string;
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: unknown;
  timeoutMs?: number;
}

export function makeAgent(maxSockets: number): Agent {
  // The servers under test use self-signed certificates on loopback; verifying them measures nothing.
  return new Agent({ keepAlive: true, maxSockets, rejectUnauthorized: false });
}

export function basicAuth(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

export function httpCall(call: HttpCall): Promise<HttpAnswer> {
  const payload = call.body === undefined ? undefined : Buffer.from(JSON.stringify(call.body));
  const headers: Record<string, string> = { ...call.headers };
  if (payload !== undefined) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(payload.length);
  }
  const url = new URL(call.path, call.baseUrl);
  return new Promise((resolve, reject) => {
    const req = request(url, { method: call.method, agent: call.agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body: parseBody(Buffer.concat(chunks).toString('utf8')), headers: res.headers });
      });
    });
    req.setTimeout(call.timeoutMs ?? requestTimeoutMs, () => req.destroy(new Error(`${call.method} ${call.path} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

function parseBody(text: string): unknown {
  if (text === '') return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** A one-line description of an unexpected answer, for reports. */
export function describeAnswer(answer: HttpAnswer): string {
  const text = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
  return `${answer.status} ${(text ?? '').slice(0, 300)}`;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
