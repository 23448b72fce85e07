// The HTTP side every contract peer shares (the spec floor, the SQLite peer): Fastify over HTTPS doing only what
// http-api.md asks of every request (Basic auth as a string compare, the security headers, a request id) and writing
// answers with DriftDB's own coalescing. A peer adds its routes and its storage; the rest is identical, so two peers'
// rows differ only by what their storage costs.

import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { generate } from 'selfsigned';
import { requestIdFrom } from '../src/observability/logger.js';
import type { ErrorCode } from '../src/errors.js';
import { problemContentType, problemOf } from '../src/routes/problem.js';
import { securityHeaders } from '../src/security/headers.js';

const jsonType = 'application/json; charset=utf-8';

export interface PeerInput {
  /** The exact Authorization header every /v1 request must carry. */
  authorization: string;
  routes: (app: FastifyInstance) => void;
  /** Runs once when the peer stops (SIGTERM or the orchestrator gone), before the process exits. */
  onStop: () => void;
}

/** Builds and starts the peer on a free loopback port; answers the port (the caller sends its ready message). */
export async function servePeer(input: PeerInput): Promise<number> {
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], { keySize: 2048, algorithm: 'sha256' });
  const headers = securityHeaders({ https: true });
  const app = Fastify({ logger: false, https: { key: pems.private, cert: pems.cert }, genReqId: (request) => requestIdFrom(request.headers['x-request-id']) });
  // The cheapest credential check there is: the header itself as the cache key (DriftDB hashes it first).
  app.addHook('onRequest', (request, reply, done) => {
    reply.headers(headers).header('x-request-id', request.id);
    if (request.headers.authorization !== input.authorization) {
      void sendProblem(reply, 'unauthorized', 'missing or wrong credentials');
      return;
    }
    done();
  });
  input.routes(app);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  let stopped = false;
  const stop = (): void => {
    if (!stopped) {
      stopped = true;
      input.onStop();
    }
    process.exit(0);
  };
  process.once('SIGTERM', () => void app.close().then(stop));
  process.once('disconnect', stop);
  return port;
}

/** A document or a page as stored JSON text, sent as it is. */
export function sendText(reply: FastifyReply, text: string): FastifyReply {
  return reply.type(jsonType).send(text);
}

/** An error as DriftDB renders it (problem.ts): the same status, headers and RFC 9457 body for the same code. */
export function sendProblem(reply: FastifyReply, code: ErrorCode, detail: string): FastifyReply {
  const problem = problemOf(code, detail);
  return reply.code(problem.status).headers(problem.headers).type(problemContentType).send(problem.body);
}

/** A peer's entry point: a failure to start is printed and the process exits non-zero. */
export function runPeer(name: string, main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    process.stderr.write(`${name} failed: ${String(error)}\n`);
    process.exit(1);
  });
}
