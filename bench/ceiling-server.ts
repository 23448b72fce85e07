// The ceiling: a Fastify 5 hello-world over HTTPS in its own process; DriftDB's throughput is quoted as a ratio to it.

import Fastify from 'fastify';
import { generate } from 'selfsigned';

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
  const app = Fastify({ logger: false, https: { key: pems.private, cert: pems.cert } });
  app.get('/', async () => ({ hello: 'world' }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
  process.once('disconnect', () => process.exit(0));
  process.send!({ port });
}

main().catch((error: unknown) => {
  process.stderr.write(`ceiling server failed: ${String(error)}\n`);
  process.exit(1);
});
