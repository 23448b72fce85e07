// Password hashing with scrypt from node:crypto: a random salt per hash, parameters stored beside it, constant-time compare.

import { randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/** A stored password hash; the parameters travel with it so they can be raised later without breaking old hashes. */
export interface PasswordHash {
  algorithm: 'scrypt';
  /** CPU/memory cost, block size and parallelism, as scrypt names them. */
  N: number;
  r: number;
  p: number;
  /** base64 */
  salt: string;
  /** base64 */
  hash: string;
}

// 2^14 with r=8 (16 MiB, Node's default): slow for guessing, fine at login (results are cached). 2^15 costs several
// times that on small machines (32 MiB no longer fits the caches), which a login flood would feel (measured: see
// README.md, Performance).
const scryptCostDefault = { N: 1 << 14, r: 8, p: 1 };
const hashBytes = 32;
const saltBytes = 16;
const scryptMemoryBytesMax = 128 * 1024 * 1024;

function scrypt(password: string, salt: Buffer, params: { N: number; r: number; p: number }): Promise<Buffer> {
  const options: ScryptOptions = { ...params, maxmem: scryptMemoryBytesMax };
  return new Promise((resolve, reject) => {
    scryptCallback(password.normalize('NFC'), salt, hashBytes, options, (error, key) => (error ? reject(error) : resolve(key)));
  });
}

export async function hashPassword(password: string): Promise<PasswordHash> {
  const salt = randomBytes(saltBytes);
  const hash = await scrypt(password, salt, scryptCostDefault);
  return { algorithm: 'scrypt', ...scryptCostDefault, salt: salt.toString('base64'), hash: hash.toString('base64') };
}

export async function verifyPassword(password: string, stored: PasswordHash): Promise<boolean> {
  const expected = Buffer.from(stored.hash, 'base64');
  const actual = await scrypt(password, Buffer.from(stored.salt, 'base64'), stored);
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

let decoy: Promise<PasswordHash> | undefined;

/** A hash of a random password: checking against it costs what a real check costs, so unknown users take as long as known ones. */
export function decoyPasswordHash(): Promise<PasswordHash> {
  decoy ??= hashPassword(randomBytes(16).toString('hex'));
  return decoy;
}

/** A password to print once for a new admin: 144 random bits, URL-safe. */
export function generatePassword(): string {
  return randomBytes(18).toString('base64url');
}
