// TLS modes of the real server: a self-signed certificate generated once into the data dir and reused, the
// operator's files, and the headers only HTTPS answers carry.

import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import t from 'tap';
import { makeTempDir, spawnServer, startServer } from '../helpers/server.js';

/** The SHA-256 fingerprint of the certificate a server presents. */
function servedFingerprint(url: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: hostname, port: Number(port), rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.end();
    });
    socket.on('error', reject);
  });
}

t.test('--tls self-signed generates a localhost certificate once and reuses it on later starts', async (t) => {
  const dataDir = path.join(makeTempDir(), 'data');
  const first = await startServer({ dataDir, args: ['--tls', 'self-signed'] });
  t.teardown(() => first.kill());
  t.match(first.url, /^https:\/\/127\.0\.0\.1:\d+$/);

  const certPath = path.join(dataDir, 'tls', 'cert.pem');
  const keyPath = path.join(dataDir, 'tls', 'key.pem');
  const cert = new X509Certificate(fs.readFileSync(certPath));
  t.match(cert.subject, /CN=localhost/);
  for (const name of ['DNS:localhost', 'IP Address:127.0.0.1', 'IP Address:0:0:0:0:0:0:0:1']) {
    t.ok(cert.subjectAltName?.includes(name), `SAN has ${name}: ${cert.subjectAltName}`);
  }
  t.equal(fs.statSync(keyPath).mode & 0o777, 0o600, 'the key is readable by its owner only');
  t.equal(await servedFingerprint(first.url), cert.fingerprint256, 'the server presents the stored certificate');
  t.match(first.stdout(), /generated self-signed certificate/);

  // The helper trusts the stored certificate (no rejectUnauthorized: false), so this also checks its names.
  const response = await first.request('GET', '/healthz');
  t.equal(response.status, 200);
  t.match(response.headers['strict-transport-security'], /max-age=\d+/);
  t.equal(response.headers['x-content-type-options'], 'nosniff');
  t.equal(await first.stop(), 0);

  const keyBefore = fs.readFileSync(keyPath, 'utf8');
  const second = await startServer({ dataDir, args: ['--tls', 'self-signed'] });
  t.teardown(() => second.kill());
  t.equal(await servedFingerprint(second.url), cert.fingerprint256, 'the same certificate is served again');
  t.equal(fs.readFileSync(keyPath, 'utf8'), keyBefore, 'the key is unchanged');
  t.notMatch(second.stdout(), /generated self-signed certificate/, 'nothing was generated');
  const authed = await second.request('GET', '/v1/tables');
  t.equal(authed.status, 200);
  t.match(authed.headers['strict-transport-security'], /max-age=/, 'errors and data answers carry HSTS too');
  const problem = await second.request('GET', '/v1/tables', { auth: false });
  t.equal(problem.status, 401);
  t.match(problem.headers['strict-transport-security'], /max-age=/);
});

t.test('--tls files serves the operator certificate and writes none into the data dir', async (t) => {
  // A certificate made elsewhere: borrow one from a self-signed start in another data dir.
  const donorDir = path.join(makeTempDir(), 'data');
  const donor = await startServer({ dataDir: donorDir, args: ['--tls', 'self-signed'] });
  await donor.stop();
  const certFile = path.join(makeTempDir(), 'server.crt');
  const keyFile = path.join(path.dirname(certFile), 'server.key');
  fs.copyFileSync(path.join(donorDir, 'tls', 'cert.pem'), certFile);
  fs.copyFileSync(path.join(donorDir, 'tls', 'key.pem'), keyFile);

  const server = await startServer({ args: ['--tls', 'files', '--tls-cert', certFile, '--tls-key', keyFile] });
  t.teardown(() => server.kill());
  t.match(server.url, /^https:/);
  t.equal(await servedFingerprint(server.url), new X509Certificate(fs.readFileSync(certFile)).fingerprint256);
  t.equal((await server.request('GET', '/readyz')).status, 200);
  t.notOk(fs.existsSync(path.join(server.dataDir, 'tls')), 'no generated certificate');
});

t.test('--tls files with an unreadable certificate exits 2 naming the flag', async (t) => {
  const missing = path.join(makeTempDir(), 'nope.crt');
  const spawned = spawnServer({ args: ['--tls', 'files', '--tls-cert', missing, '--tls-key', missing] });
  const { code } = await spawned.exited;
  t.equal(code, 2);
  t.match(spawned.stderr(), /--tls-cert: cannot read .*nope\.crt \(ENOENT\)/);
});
