// The server's TLS key and certificate: generated once into <data-dir>/tls/ (--tls self-signed), read from the
// operator's files (--tls files), or none (--tls off).

import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ConfigError, type Config } from '../config/index.js';
import { writeFileAtomic } from './atomic-file.js';

export interface TlsMaterial {
  key: string;
  cert: string;
  /** Where the certificate lives, so clients (and tests) can trust it. */
  certPath: string;
}

export interface TlsLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

/** The self-signed certificate lives this long; a start within the renewal margin of its end makes a new one. */
const selfSignedValidityDays = 825;
const selfSignedRenewalMarginMs = 30 * 24 * 3600 * 1000;

export function selfSignedPaths(dataDir: string): { key: string; cert: string } {
  const dir = path.join(dataDir, 'tls');
  return { key: path.join(dir, 'key.pem'), cert: path.join(dir, 'cert.pem') };
}

export async function loadTlsMaterial(config: Config, logger: TlsLogger): Promise<TlsMaterial | null> {
  switch (config.tls) {
    case 'off':
      return null;
    case 'files':
      return readOperatorFiles(config.tlsCert!, config.tlsKey!, logger);
    case 'self-signed':
      return loadOrCreateSelfSigned(config.dataDir, logger);
  }
}

/**
 * Reads --tls-cert and --tls-key and checks them before the server listens: each must parse, and the key must be the
 * certificate's, or every handshake would fail later with an error no client can explain. Any of it is a ConfigError.
 */
async function readOperatorFiles(certPath: string, keyPath: string, logger: TlsLogger): Promise<TlsMaterial> {
  const read = async (file: string, flag: string): Promise<string> => {
    try {
      return await fs.readFile(file, 'utf8');
    } catch (error) {
      throw new ConfigError(`${flag}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  };
  const cert = await read(certPath, '--tls-cert');
  const key = await read(keyPath, '--tls-key');
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch {
    throw new ConfigError(`--tls-cert: ${certPath} holds no PEM certificate`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    throw new ConfigError(`--tls-key: ${keyPath} holds no PEM private key (or it is encrypted)`);
  }
  if (!x509.checkPrivateKey(privateKey)) {
    throw new ConfigError(`--tls-key: ${keyPath} is not the private key of the certificate in ${certPath}`);
  }
  if (Date.parse(x509.validTo) <= Date.now()) {
    logger.warn({ cert: certPath, validTo: x509.validTo }, 'the --tls-cert certificate has expired: clients will refuse it');
  }
  return { key, cert, certPath };
}

async function loadOrCreateSelfSigned(dataDir: string, logger: TlsLogger): Promise<TlsMaterial> {
  const paths = selfSignedPaths(dataDir);
  const existing = await readPair(paths);
  if (existing !== null && Date.parse(new X509Certificate(existing.cert).validTo) - Date.now() > selfSignedRenewalMarginMs) {
    return { ...existing, certPath: paths.cert };
  }
  // Loaded only when a certificate must be made: the library and its ASN.1 stack take a while to import.
  const { generate } = await import('selfsigned');
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notAfterDate: new Date(Date.now() + selfSignedValidityDays * 24 * 3600 * 1000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
          { type: 7, ip: '::1' },
        ],
      },
    ],
  });
  await fs.mkdir(path.dirname(paths.key), { recursive: true, mode: 0o700 });
  // The key first: a crash between the two writes leaves no certificate, and the next start generates a fresh pair.
  await fs.rm(paths.cert, { force: true });
  await writeFileAtomic(paths.key, pems.private, 0o600);
  await writeFileAtomic(paths.cert, pems.cert, 0o644);
  logger.info({ cert: paths.cert, fingerprint: pems.fingerprint }, 'generated self-signed certificate');
  return { key: pems.private, cert: pems.cert, certPath: paths.cert };
}

async function readPair(paths: { key: string; cert: string }): Promise<{ key: string; cert: string } | null> {
  try {
    return { key: await fs.readFile(paths.key, 'utf8'), cert: await fs.readFile(paths.cert, 'utf8') };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}
