// The Authenticator over real users, tokens and lockout: verified Basic credentials are cached (bounded,
// short-lived, dropped the moment the user changes) so the hot path skips scrypt; concurrent first requests share
// one check; bearer tokens cost a lookup; every failure is counted and audited the same way.

import t, { type Test } from 'tap';
import { rolesAllow } from '../../src/security/access.js';
import { Authenticator, credentialCacheTtlMs, parseBasic, type RequestContext } from '../../src/security/auth.js';
import { hashPassword, verifyPassword } from '../../src/security/password.js';
import { openServices } from '../helpers/app.js';
import { adminPassword } from '../helpers/server.js';

const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** A request context whose auth-limit hits are counted; `limitAfter` hits are allowed. */
function context(limitAfter = Infinity): RequestContext & { hits: () => number } {
  let hits = 0;
  return {
    user: null,
    clientIp: '127.0.0.1',
    requestId: 'test',
    hitAuthLimit: async () => ({ exceeded: ++hits > limitAfter, retryAfterSeconds: 7 }),
    hits: () => hits,
  };
}

/** Real services, an Authenticator over them, and a count of scrypt checks paid. */
async function setUp(t: Test, options: { now?: () => number; cacheEntriesMax?: number; args?: string[] } = {}) {
  const { security } = await openServices(t, options.args);
  let checks = 0;
  const verify = security.users.verify.bind(security.users);
  security.users.verify = (username, password) => {
    checks++;
    return verify(username, password);
  };
  const auth = new Authenticator({
    users: security.users,
    tokens: security.tokens,
    guard: security.guard,
    audit: security.audit,
    ...(options.now ? { now: options.now } : {}),
    ...(options.cacheEntriesMax ? { cacheEntriesMax: options.cacheEntriesMax } : {}),
  });
  const ctx = context();
  const authenticate = (header: string) => auth.authenticate(header, ctx, () => ctx);
  return { security, auth, authenticate, checks: () => checks, ctx };
}

t.test('a second request with the same credentials does not check the password again', async (t) => {
  const { authenticate, checks } = await setUp(t);
  t.match(await authenticate(basic('admin', adminPassword)), { username: 'admin', roles: ['admin'], grants: null });
  const second = authenticate(basic('admin', adminPassword));
  t.notOk(second instanceof Promise, 'a cached header is answered synchronously');
  t.equal(checks(), 1);
});

t.test('concurrent first requests with the same credentials share one check', async (t) => {
  const { authenticate, checks } = await setUp(t);
  await Promise.all(Array.from({ length: 32 }, () => authenticate(basic('admin', adminPassword))));
  t.equal(checks(), 1);
});

t.test('the cache is bounded: past its size the oldest entry is dropped first', async (t) => {
  const { authenticate, checks } = await setUp(t, { cacheEntriesMax: 2 });
  // The same credentials under three spellings of the scheme: three distinct cache keys.
  const encoded = Buffer.from(`admin:${adminPassword}`).toString('base64');
  const [a, b, c] = ['Basic', 'basic', 'BASIC'].map((scheme) => `${scheme} ${encoded}`);
  for (const header of [a, b, c]) await authenticate(header!);
  t.equal(checks(), 3);
  await authenticate(c!);
  await authenticate(b!);
  t.equal(checks(), 3, 'the two newest are cached');
  await authenticate(a!);
  t.equal(checks(), 4, 'the oldest was evicted');
});

t.test('failures are not cached, and each is counted against the address and audited', async (t) => {
  const { authenticate, checks, ctx, security } = await setUp(t, { args: ['--login-failure-threshold', '100'] });
  for (let i = 0; i < 3; i++) await t.rejects(async () => authenticate(basic('admin', 'wrong')), { code: 'unauthorized' });
  t.equal(checks(), 3);
  t.equal(ctx.hits(), 3);
  t.equal(security.audit.query({ type: 'login_failure', limit: 10 }).length, 3);
});

t.test('a cached entry expires once unused for the TTL, and each use extends it', async (t) => {
  let now = Date.now();
  const { authenticate, checks } = await setUp(t, { now: () => now });
  await authenticate(basic('admin', adminPassword));
  now += credentialCacheTtlMs - 1;
  await authenticate(basic('admin', adminPassword));
  t.equal(checks(), 1, 'still cached just before the TTL');
  now += credentialCacheTtlMs - 1;
  await authenticate(basic('admin', adminPassword));
  t.equal(checks(), 1, 'the use before renewed it: a client under steady load is not checked again');
  now += credentialCacheTtlMs + 1;
  await authenticate(basic('admin', adminPassword));
  t.equal(checks(), 2, 'checked again once unused for longer than the TTL');
});

t.test('a password change makes cached credentials fail at once, and revokes the tokens', async (t) => {
  const { authenticate, security, ctx } = await setUp(t);
  await authenticate(basic('admin', adminPassword));
  const { token } = await security.issueToken({ username: 'admin', password: adminPassword }, ctx);
  t.match(await authenticate(`Bearer ${token}`), { username: 'admin' });
  await security.resetPassword('admin', 'new-password-1', ctx);
  await t.rejects(async () => authenticate(basic('admin', adminPassword)), { code: 'unauthorized' });
  await t.rejects(async () => authenticate(`Bearer ${token}`), { code: 'unauthorized' });
  t.match(await authenticate(basic('admin', 'new-password-1')), { username: 'admin' });
});

t.test('a deleted user is refused at once, cached or by token', async (t) => {
  const { authenticate, security, ctx } = await setUp(t);
  await security.createUser({ username: 'temp', password: 'temp-password', roles: ['reader'] }, ctx);
  await authenticate(basic('temp', 'temp-password'));
  const { token } = await security.issueToken({ username: 'temp', password: 'temp-password' }, ctx);
  await security.deleteUser('temp', ctx);
  await t.rejects(async () => authenticate(basic('temp', 'temp-password')), { code: 'unauthorized' });
  await t.rejects(async () => authenticate(`Bearer ${token}`), { code: 'unauthorized' });
});

t.test('a role change takes effect on the next request, cached or not', async (t) => {
  const { authenticate, security, ctx } = await setUp(t);
  await security.createUser({ username: 'rob', password: 'rob-password', roles: ['reader'] }, ctx);
  t.same((await authenticate(basic('rob', 'rob-password'))).roles, ['reader']);
  await security.setRoles('rob', { roles: ['writer'], grants: ['orders'] }, ctx);
  const after = await authenticate(basic('rob', 'rob-password'));
  t.same(after.roles, ['writer']);
  t.same([...after.grants!], ['orders']);
});

t.test('past the address limit a failure answers 429 rate_limited, while good credentials still pass', async (t) => {
  const { security } = await setUp(t, { args: ['--login-failure-threshold', '100'] });
  const auth = new Authenticator({ users: security.users, tokens: security.tokens, guard: security.guard, audit: security.audit });
  const limited = context(2);
  const attempt = (header: string) => auth.authenticate(header, limited, () => limited);
  await t.rejects(async () => attempt(basic('admin', 'wrong')), { code: 'unauthorized' });
  await t.rejects(async () => attempt(basic('admin', 'wrong')), { code: 'unauthorized' });
  await t.rejects(async () => attempt(basic('admin', 'wrong')), { code: 'rate_limited', fields: { retryAfterSeconds: 7 } });
  t.match(await attempt(basic('admin', adminPassword)), { username: 'admin' });
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
  t.throws(() => parseBasic('Basic'), { code: 'unauthorized' });
});

t.test('roles grant permissions: admin all, writer read and write, reader read', async (t) => {
  t.ok(rolesAllow(['admin'], 'admin'));
  t.ok(rolesAllow(['writer'], 'write'));
  t.notOk(rolesAllow(['writer'], 'admin'));
  t.ok(rolesAllow(['reader'], 'read'));
  t.ok(rolesAllow(['reader'], 'authenticated'));
  t.notOk(rolesAllow(['reader'], 'write'));
  t.notOk(rolesAllow(['unknown-role'], 'read'));
  t.ok(rolesAllow(['reader', 'writer'], 'write'), 'the union of roles');
});
