// The container's HEALTHCHECK: GET /healthz on the server's own port, over HTTPS unless DRIFTDB_TLS=off. Exit 0 when
// it answers 200. The certificate is not verified: this is a liveness probe over loopback, not a client.
import http from 'node:http';
import https from 'node:https';

const port = Number(process.env.DRIFTDB_PORT ?? 8443);
const plain = process.env.DRIFTDB_TLS === 'off';
const request = (plain ? http : https).get(
  { host: '127.0.0.1', port, path: '/healthz', timeout: 2500, rejectUnauthorized: false },
  (response) => {
    response.resume();
    process.exit(response.statusCode === 200 ? 0 : 1);
  },
);
request.on('timeout', () => request.destroy(new Error('timeout')));
request.on('error', () => process.exit(1));
