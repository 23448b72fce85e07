// The Authenticator on its own: verified Basic credentials are cached (bounded, short-lived, dropped when users
// change) so the hot path skips scrypt, and concurrent first requests share one check.

import fs from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { Authenticator, credentialCacheTtlMs, parseBasic, rolesAllow } from '../../src/security/auth.js';
import { hashPassword, verifyPassword } from '../../src/security/password.js';
import { UserStore } from '../../src/security/users.js';

const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** A real store whose verify calls are counted: the count is how many scrypt checks were paid for. */
async function countingStore(t: Test): Promise<{ users: UserStore; checks: () => number }> {
  const users = await UserStore.open({ dataDir: t.testdir(), adminPassword: 'right', announce: () => undefined });
  let checks = 0;
  const verify = users.verify.bind(users);
  users.verify = (username, password) => {
    checks++;
    return verify(username, password);
  };
  return { users, checks: () => checks };
}

t.test('a second request with the same credentials does not check the password again', async (t) => {
  const { users, checks } = await countingStore(t);
  const auth = new Authenticator({ users });
  t.same(await auth.authenticate(basic('admin', 'right')), { username: 'admin', roles: ['admin'] });
  await auth.authenticate(basic('admin', 'right'));
  await auth.authenticate(basic('admin', 'right'));
  t.equal(checks(), 1);
});

t.test('concurrent first requests with the same credentials share one check', async (t) => {
  const { users, checks } = await countingStore(t);
  const auth = new Authenticator({ users });
  await Promise.all(Array.from({ length: 32 }, () => auth.authenticate(basic('admin', 'right'))));
  t.equal(checks(), 1);
});

t.test('the cache is bounded: past its size the oldest entry is dropped first', async (t) => {
  const { users, checks } = await countingStore(t);
  const auth = new Authenticator({ users, cacheEntriesMax: 2 });
  // The same credentials under three spellings of the scheme: three distinct cache keys.
  const encoded = Buffer.from('admin:right').toString('base64');
  const [a, b, c] = ['Basic', 'basic', 'BASIC'].map((scheme) => `${scheme} ${encoded}`);
  for (const header of [a, b, c]) await auth.authenticate(header);
  t.equal(checks(), 3);
  await auth.authenticate(c!);
  await auth.authenticate(b!);
  t.equal(checks(), 3, 'the two newest are cached');
  await auth.authenticate(a!);
  t.equal(checks(), 4, 'the oldest was evicted');
});

t.test('failures are not cached, so each wrong attempt is checked (and can be counted for lockout)', async (t) => {
  const { users, checks } = await countingStore(t);
  const auth = new Authenticator({ users });
  for (let i = 0; i < 3; i++) await t.rejects(async () => auth.authenticate(basic('admin', 'wrong')), { code: 'unauthorized' });
  t.equal(checks(), 3);
});

t.test('a cached entry expires after the TTL', async (t) => {
  const { users, checks } = await countingStore(t);
  let now = 1_000_000;
  const auth = new Authenticator({ users, now: () => now });
  await auth.authenticate(basic('admin', 'right'));
  now += credentialCacheTtlMs - 1;
  await auth.authenticate(basic('admin', 'right'));
  t.equal(checks(), 1, 'still cached just before the TTL');
  now += 2;
  await auth.authenticate(basic('admin', 'right'));
  t.equal(checks(), 2, 'checked again after it');
});

t.test('a password change makes the old credentials fail at once, cache or not', async (t) => {
  const { users } = await countingStore(t);
  const auth = new Authenticator({ users });
  await auth.authenticate(basic('admin', 'right'));
  await users.setPassword('admin', 'new-one');
  await t.rejects(async () => auth.authenticate(basic('admin', 'right')), { code: 'unauthorized' });
  t.same(await auth.authenticate(basic('admin', 'new-one')), { username: 'admin', roles: ['admin'] });
});

t.test('a removed user is refused at once', async (t) => {
  const { users } = await countingStore(t);
  await users.create({ username: 'temp', password: 'pw', roles: ['reader'] });
  const auth = new Authenticator({ users });
  await auth.authenticate(basic('temp', 'pw'));
  await users.remove('temp');
  await t.rejects(async () => auth.authenticate(basic('temp', 'pw')), { code: 'unauthorized' });
});

t.test('users.json survives a reopen, holds only scrypt hashes, and is written atomically (no temp files left)', async (t) => {
  const dataDir = t.testdir();
  const users = await UserStore.open({ dataDir, adminPassword: 'right', announce: () => undefined });
  await users.create({ username: 'wendy', password: 'wpw', roles: ['writer'], grants: ['orders'] });
  const reopened = await UserStore.open({ dataDir, adminPassword: 'ignored-now', announce: () => undefined });
  t.same(reopened.list().map((u) => [u.username, u.roles, u.grants]), [['admin', ['admin'], undefined], ['wendy', ['writer'], ['orders']]]);
  t.ok(await reopened.verify('admin', 'right'), 'the first password stays');
  t.equal(await reopened.verify('admin', 'ignored-now'), null, 'DRIFTDB_ADMIN_PASSWORD matters only on the first start');
  const text = fs.readFileSync(path.join(dataDir, 'users.json'), 'utf8');
  t.notMatch(text, /"right"|"wpw"/);
  t.match(JSON.parse(text).users[0].password, { algorithm: 'scrypt', N: Number, r: Number, p: Number, salt: String, hash: String });
  t.same(fs.readdirSync(dataDir).sort(), ['users.json']);
});

t.test('password hashes are salted: the same password hashes differently and verifies only itself', async (t) => {
  const a = await hashPassword('same');
  const b = await hashPassword('same');
  t.not(a.hash, b.hash);
  t.ok(await verifyPassword('same', a));
  t.notOk(await verifyPassword('Same', a));
});

t.test('parseBasic splits at the first colon, so passwords may contain colons', async (t) => {
  t.same(parseBasic(basic('u', 'a:b:c')), { username: 'u', password: 'a:b:c' });
  t.same(parseBasic(basic('ü', 'pässwörd')), { username: 'ü', password: 'pässwörd' });
});

t.test('roles grant permissions: admin all, writer read and write, reader read', async (t) => {
  t.ok(rolesAllow(['admin'], 'admin'));
  t.ok(rolesAllow(['writer'], 'write'));
  t.notOk(rolesAllow(['writer'], 'admin'));
  t.ok(rolesAllow(['reader'], 'read'));
  t.notOk(rolesAllow(['reader'], 'write'));
  t.notOk(rolesAllow(['unknown-role'], 'read'));
  t.ok(rolesAllow(['reader', 'writer'], 'write'), 'the union of roles');
});
