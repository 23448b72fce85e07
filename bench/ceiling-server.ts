// The ceiling: a Fastify 5 hello-world over HTTPS in its own process; DriftDB's throughput is quoted as a ratio to it.
// GET /work/:micros answers the same after about that many µs of CPU work, to show how fast the ratio falls with work.

import Fastify from 'fastify';
import { generate } from 'selfsigned';
import { calibrateIterationsPerMicro, iterationsFor, parseWorkMicros, spin, workMicrosMax } from './busy-work.js';

/** The ceiling server's first IPC message: where it listens and how fast its work loop runs. */
export interface CeilingReady {
  port: number;
  /** Iterations of the work loop per µs, calibrated at start-up. */
  workIterationsPerMicro: number;
}

async function main(): Promise<void> {
  // The same kind of certificate a DriftDB data dir gets: self-signed, for localhost and 127.0.0.1.
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
    keySize: 2048,
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] },
    ],
  });
  // Before listening, so no request competes with the timing.
  const workIterationsPerMicro = calibrateIterationsPerMicro();
  const app = Fastify({ logger: false, https: { key: pems.private, cert: pems.cert } });
  app.get('/', async () => ({ hello: 'world' }));
  // No schema on purpose: the reply is serialised exactly as GET /'s, so the only difference is the work.
  app.get<{ Params: { micros: string } }>('/work/:micros', async (request, reply) => {
    const micros = parseWorkMicros(request.params.micros);
    if (micros === null) return reply.code(400).send({ error: `micros must be a whole number from 0 to ${workMicrosMax}` });
    spin(iterationsFor(micros, workIterationsPerMicro));
    return { hello: 'world' };
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
  process.once('disconnect', () => process.exit(0));
  const ready: CeilingReady = { port, workIterationsPerMicro };
  process.send!(ready);
}

main().catch((error: unknown) => {
  process.stderr.write(`ceiling server failed: ${String(error)}\n`);
  process.exit(1);
});
