// The audit log over a real database and real files: entries chain, survive restarts and rotation, and verification
// names the first entry that was edited, removed, inserted or reordered, and reports a cut-off tail.

import fs from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { openDatabase, type Database } from '../../src/engine/index.js';
import { entryHash, genesisHash, type AuditEntry } from '../../src/security/audit-chain.js';
import { listAuditFiles } from '../../src/security/audit-files.js';
import { AuditLog, readAuditHead, readHashRanges, type AuditLogOptions } from '../../src/security/audit-log.js';
import { verifyAuditChain, type VerifyResult } from '../../src/security/audit-verify.js';

const quiet = { info() {}, warn() {}, error() {} };
const who = { user: 'ann', clientIp: '127.0.0.1', requestId: 'r1' };

interface Opened {
  db: Database;
  audit: AuditLog;
  dir: string;
  file: string;
  warnings: string[];
}

async function open(dir: string, options: Partial<AuditLogOptions> = {}): Promise<Opened> {
  const db = await openDatabase({ dataDir: path.join(dir, 'data') });
  const file = path.join(dir, 'audit', 'audit.log');
  const warnings: string[] = [];
  const audit = await AuditLog.open({
    db,
    file,
    rotateBytes: 64 * 1024 * 1024,
    ringEntriesMax: 1000,
    key: null,
    enabled: true,
    logger: { ...quiet, warn: (_obj, msg) => warnings.push(msg) },
    ...options,
  });
  return { db, audit, dir, file, warnings };
}

async function close(opened: Opened): Promise<void> {
  await opened.audit.close();
  await opened.db.close();
}

function lines(file: string): string[] {
  return fs.readFileSync(file, 'utf8').split('\n').filter((line) => line !== '');
}

/** A closed log of `count` entries (so its head is recorded), for tampering. */
async function writtenLog(t: Test, count: number, options: Partial<AuditLogOptions> = {}): Promise<{ dir: string; file: string }> {
  const dir = t.testdir();
  const opened = await open(dir, options);
  for (let i = 0; i < count; i++) opened.audit.record('login_failure', { ...who, user: `u${i}` }, { attempt: i });
  await close(opened);
  return { dir, file: opened.file };
}

/** Verifies the files against the head and ranges the database recorded, as `driftdb audit verify` does. */
async function verify(dir: string, file: string, key: Buffer | null = null): Promise<VerifyResult> {
  const db = await openDatabase({ dataDir: path.join(dir, 'data') });
  try {
    return await verifyAuditChain({ files: await listAuditFiles(file), head: readAuditHead(db), ranges: readHashRanges(db), key });
  } finally {
    await db.close();
  }
}

t.test('entries chain: ids count up, each prevHash is the hash before it, and each hash covers the entry', async (t) => {
  const opened = await open(t.testdir());
  const first = opened.audit.record('login_success', who, { method: 'basic' })!;
  const second = opened.audit.record('access_denied', who, { table: 'orders' })!;
  t.match(first, { id: 1, type: 'login_success', severity: 'info', outcome: 'success', user: 'ann', clientIp: '127.0.0.1', requestId: 'r1', prevHash: genesisHash });
  t.match(second, { id: 2, severity: 'warning', outcome: 'failure', prevHash: first.hash });
  t.equal(entryHash(second, null), second.hash);
  t.not(entryHash({ ...second, details: { table: 'other' } }, null), second.hash, 'details are covered');
  t.not(entryHash({ ...second, extra: 1 } as AuditEntry, null), second.hash, 'an added member is covered');
  await opened.audit.flush();
  t.same(lines(opened.file).map((line) => JSON.parse(line)), [first, second], 'the file holds the entries as recorded');
  t.equal(fs.statSync(opened.file).mode & 0o777, 0o600, 'the file is readable by its owner only');
  t.same(await opened.audit.verify(), { valid: true, entries: 2, files: 1 });
  t.same(readAuditHead(opened.db), { count: 2, hash: second.hash }, 'flush records the head in the database');
  await close(opened);
});

t.test('tampering is detected and the first bad entry named', async (t) => {
  const { dir, file } = await writtenLog(t, 5);
  const good = lines(file);
  t.same(await verify(dir, file), { valid: true, entries: 5, files: 1 });
  const cases: Array<[string, (l: string[]) => string[], Partial<VerifyResult>, RegExp]> = [
    ['an edited line', (l) => l.map((line, i) => (i === 2 ? line.replace('"u2"', '"mallory"') : line)), { firstInvalidId: 3 }, /edited/],
    ['an edit with its hash recomputed', (l) => l.map((line, i) => (i === 2 ? rehashed(line, { user: 'mallory' }) : line)), { firstInvalidId: 4 }, /does not follow/],
    ['a deleted line', (l) => l.filter((_, i) => i !== 1), { firstInvalidId: 3 }, /entries 2 to 2 are missing/],
    ['an inserted line', (l) => [...l.slice(0, 2), l[1]!, ...l.slice(2)], { firstInvalidId: 2 }, /inserted, repeated or reordered/],
    ['a forged line with the right id', (l) => [...l.slice(0, 2), rehashed(l[2]!, { user: 'forged' }), ...l.slice(2)], { firstInvalidId: 3 }, /inserted, repeated or reordered/],
    ['two lines swapped', (l) => [l[0]!, l[2]!, l[1]!, l[3]!, l[4]!], { firstInvalidId: 3 }, /missing/],
    ['a line that is not JSON', (l) => l.map((line, i) => (i === 3 ? '{"id":4,' : line)), { firstInvalidId: 4 }, /not an audit entry/],
    ['a cut-off tail', (l) => l.slice(0, 3), { firstInvalidId: null, truncated: true, entries: 3 }, /tail was cut off/],
    ['a rewritten tail', (l) => [...l.slice(0, 4), rehashed(l[4]!, { user: 'rewritten' })], { firstInvalidId: 5 }, /not the entry the database recorded/],
  ];
  for (const [label, tamper, expected, reason] of cases) {
    fs.writeFileSync(file, `${tamper(good).join('\n')}\n`);
    const result = await verify(dir, file);
    t.match(result, { valid: false, ...expected }, label);
    t.match(result.reason, reason, `${label}: ${result.reason}`);
  }
  fs.writeFileSync(file, `${good.join('\n')}\n`);
  t.same(await verify(dir, file), { valid: true, entries: 5, files: 1 }, 'the original verifies again');
});

/** The line with members changed and its own hash recomputed (what someone without an HMAC key can do). */
function rehashed(line: string, changes: Partial<AuditEntry>): string {
  const entry = { ...(JSON.parse(line) as AuditEntry), ...changes };
  return JSON.stringify({ ...entry, hash: entryHash(entry, null) });
}

t.test('the chain continues across restarts, and the ring is refilled from the file', async (t) => {
  const dir = t.testdir();
  const first = await open(dir);
  const a = first.audit.record('user_created', who, { username: 'bob' })!;
  await close(first);
  const second = await open(dir);
  t.same(await second.audit.startupVerification, { valid: true, entries: 1, files: 1 });
  const b = second.audit.record('user_deleted', who, { username: 'bob' })!;
  t.match(b, { id: 2, prevHash: a.hash });
  t.same(second.audit.query({ limit: 10 }).map((entry) => entry.id), [2, 1], 'newest first, the old one read back at start');
  t.same(await second.audit.verify(), { valid: true, entries: 2, files: 1 });
  await close(second);
});

t.test('rotation by size: files roll over, the chain runs through them, and tampering in an old file is caught', async (t) => {
  const dir = t.testdir();
  const opened = await open(dir, { rotateBytes: 2048 });
  for (let i = 0; i < 40; i++) {
    opened.audit.record('login_failure', { ...who, user: `user-${i}` }, { attempt: i });
    if (i % 5 === 4) await opened.audit.flush();
  }
  await close(opened);
  const files = await listAuditFiles(opened.file);
  t.ok(files.length >= 3, `${files.length} files`);
  t.same(files.map((file) => path.basename(file.path)).slice(0, 2), ['audit.log.1', 'audit.log.2'], 'rotated files are numbered oldest first');
  for (const file of files) t.ok(fs.statSync(file.path).size <= 2048 + 400, `${path.basename(file.path)} stays near the rotation size`);
  t.same(await verify(dir, opened.file), { valid: true, entries: 40, files: files.length });
  const reopened = await open(dir, { rotateBytes: 2048 });
  t.match(reopened.audit.record('logout', who), { id: 41 }, 'the chain goes on after a restart');
  await close(reopened);
  t.match(await verify(dir, opened.file), { valid: true, entries: 41 });
  const oldest = files[0]!.path;
  fs.writeFileSync(oldest, fs.readFileSync(oldest, 'utf8').replace('"user-1"', '"user-X"'));
  t.match(await verify(dir, opened.file), { valid: false, firstInvalidId: 2 });
  fs.rmSync(oldest);
  t.match(await verify(dir, opened.file), { valid: false, reason: /entries 1 to \d+ are missing/ }, 'a removed old file is caught');
});

t.test('after a cut-off tail the chain resumes after the recorded head, so the gap stays visible', async (t) => {
  const { dir, file } = await writtenLog(t, 6);
  fs.writeFileSync(file, `${lines(file).slice(0, 4).join('\n')}\n`);
  const reopened = await open(dir);
  t.match(await reopened.audit.startupVerification, { valid: false, truncated: true, entries: 4 }, 'the start says so');
  t.ok(reopened.warnings.some((warning) => /FAILED verification/.test(warning)), 'and logs a warning');
  t.match(reopened.audit.record('logout', who), { id: 7 }, 'the next entry takes the id after the recorded head');
  t.match(await reopened.audit.verify(), { valid: false, firstInvalidId: 7, reason: /entries 5 to 6 are missing/ });
  t.match(reopened.audit.stats().verificationAtStart, { truncated: true });
  await close(reopened);
});

t.test('a line a crash cut short at the end is cut off at start, and the chain goes on from the entry before', async (t) => {
  const { dir, file } = await writtenLog(t, 3);
  fs.appendFileSync(file, '{"id":4,"ts":"2030-01-');
  const reopened = await open(dir);
  t.ok(reopened.warnings.some((warning) => /half-written/.test(warning)));
  t.match(reopened.audit.record('logout', who), { id: 4 });
  t.same(await reopened.audit.verify(), { valid: true, entries: 4, files: 1 });
  await close(reopened);
});

t.test('with an HMAC key entries cannot be rehashed without it, and verification needs the key', async (t) => {
  const key = Buffer.from('k'.repeat(40));
  // Entry 1 is the config_changed that records the switch to HMAC-SHA256; then three more.
  const { dir, file } = await writtenLog(t, 3, { key });
  t.same(await verify(dir, file, key), { valid: true, entries: 4, files: 1 });
  t.match(await verify(dir, file, null), { valid: false, firstInvalidId: 1, reason: /needs the key/ });
  t.match(await verify(dir, file, Buffer.from('x'.repeat(40))), { valid: false, firstInvalidId: 1, reason: /another HMAC key/ });
  const good = lines(file);
  fs.writeFileSync(file, `${[good[0], good[1], rehashed(good[2]!, { user: 'mallory' }), good[3]].join('\n')}\n`);
  t.match(await verify(dir, file, key), { valid: false, firstInvalidId: 3, reason: /edited/ }, 'a plain SHA-256 rehash does not pass');
});

t.test('turning the key on later starts an HMAC range at the next entry, audited config_changed', async (t) => {
  const { dir, file } = await writtenLog(t, 2);
  const key = Buffer.from('z'.repeat(32));
  const keyed = await open(dir, { key });
  t.match(keyed.audit.stats(), { hashing: 'hmac-sha256' });
  t.match(keyed.audit.query({ limit: 1, type: 'config_changed' })[0], { id: 3, details: { auditHashing: { from: 'sha256', to: 'hmac-sha256' } } });
  keyed.audit.record('logout', who);
  await close(keyed);
  t.same(await verify(dir, file, key), { valid: true, entries: 4, files: 1 });
  t.match(await verify(dir, file, null), { valid: false, firstInvalidId: 3 }, 'the plain part alone verifies up to the range');
});

t.test('the ring answers filters newest first, keeps at most its capacity, and counts what it holds', async (t) => {
  const opened = await open(t.testdir(), { ringEntriesMax: 5 });
  opened.audit.record('login_failure', { ...who, user: 'eve' });
  opened.audit.record('login_success', who);
  opened.audit.record('access_denied', { ...who, user: 'eve' });
  for (let i = 0; i < 4; i++) opened.audit.record('table_created', who, { table: `t${i}` });
  t.same(opened.audit.query({ limit: 100 }).map((entry) => entry.id), [7, 6, 5, 4, 3], 'the five newest');
  t.same(opened.audit.query({ limit: 100, user: 'eve' }).map((entry) => entry.id), [3]);
  t.same(opened.audit.query({ limit: 100, outcome: 'failure' }).map((entry) => entry.type), ['access_denied']);
  t.same(opened.audit.query({ limit: 2, type: 'table_created' }).map((entry) => entry.id), [7, 6]);
  t.same(opened.audit.query({ limit: 100, sinceId: 5 }).map((entry) => entry.id), [7, 6]);
  const stats = opened.audit.stats();
  t.match(stats, { enabled: true, entries: 7, stored: 5, byType: { table_created: 4, access_denied: 1, login_failure: 0 }, byOutcome: { success: 4, failure: 1 } });
  t.equal(stats.bySeverity.info + stats.bySeverity.warning + stats.bySeverity.critical, 5);
  await close(opened);
});

t.test('with the log off nothing is recorded or written, and turning it on again continues the chain', async (t) => {
  const { dir, file } = await writtenLog(t, 2);
  const off = await open(dir, { enabled: false });
  t.equal(off.audit.record('logout', who), null);
  await close(off);
  t.equal(lines(file).length, 2);
  const on = await open(dir);
  t.match(on.audit.record('logout', who), { id: 3 });
  await close(on);
  t.match(await verify(dir, file), { valid: true, entries: 3 });
});
