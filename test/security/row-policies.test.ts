// Row policies below the routes: {"$user":"name"} binding, the per-caller compiled policies and their cache, the
// store's clean-up of policies a crash left behind a dropped table, and the hook that keeps routes which bypass
// policies (diff, fork, restore) for admins on tables with policies.

import Fastify from 'fastify';
import t from 'tap';
import { openServices } from '../helpers/app.js';
import { basicAuth, adminAuth } from '../helpers/server.js';
import { problemFromError, sendProblem } from '../../src/routes/problem.js';
import { installAuth } from '../../src/security/hooks.js';
import { registerRateLimits } from '../../src/security/rate-limit.js';
import { bindUser, checkPolicyWhere } from '../../src/security/row-policies.js';
import { PolicyStore } from '../../src/security/policies.js';
import { systemTables } from '../../src/security/system-tables.js';

t.test('{"$user":"name"} becomes the username wherever a value stands, and nothing else changes', async (t) => {
  const where = JSON.parse('{"owner":{"$user":"name"},"__proto__":{"$in":[{"$user":"name"},"x"]},"$or":[{"a":1}]}');
  const bound = bindUser(where, 'alice') as Record<string, unknown>;
  t.same(JSON.parse(JSON.stringify(bound)), { owner: 'alice', __proto__: { $in: ['alice', 'x'] }, $or: [{ a: 1 }] });
  t.ok(Object.hasOwn(bound, '__proto__'), '__proto__ stays a member');
  t.equal(Object.getPrototypeOf(bound), Object.prototype);
  t.same(where.owner, { $user: 'name' }, 'the policy itself is not changed');
  t.doesNotThrow(() => checkPolicyWhere({ owner: { $user: 'name' }, team: { $in: ['a', { $user: 'name' }] } }, '/read'));
  t.throws(() => checkPolicyWhere({ owner: { $user: 'name', $ne: 'x' } }, '/read'), { code: 'validation_failed' });
  t.throws(() => checkPolicyWhere({ owner: { $user: 'id' } }, '/write'), { code: 'validation_failed', message: /^\/write\/owner\/\$user/ });
  t.throws(() => checkPolicyWhere({ $user: 'name' }, '/read'), { code: 'validation_failed' });
  t.throws(() => checkPolicyWhere('x', '/read'), { code: 'validation_failed' });
});

t.test("a caller's row policy is compiled once and recompiled when their roles or the table's policies change", async (t) => {
  const { db, security } = await openServices(t);
  await db.createTable({ name: 'docs', primaryKey: 'id' });
  const context = { user: 'admin', clientIp: null, requestId: null };
  const wendy = await security.createUser({ username: 'wendy', password: 'wendy-password', roles: ['writer'] }, context);
  const principal = () => security.authenticator.principalOf(security.users.get(wendy.username)!);
  const policies = security.rowPolicies.forPrincipal(principal());
  t.equal(policies.forTable('docs'), null, 'no policies: nothing restricts her');
  await security.putPolicy('docs', 'mine', { appliesTo: { users: ['wendy'] }, read: { owner: { $user: 'name' } }, write: { owner: { $user: 'name' } } }, context);
  const first = policies.forTable('docs')!;
  t.equal(policies.forTable('docs'), first, 'cached');
  t.ok(first.read({ owner: 'wendy' }));
  t.notOk(first.read({ owner: 'other' }));
  await security.putPolicy('docs', 'team', { appliesTo: { roles: ['writer'] }, read: { team: 'red' } }, context);
  const second = policies.forTable('docs')!;
  t.not(second, first, 'recompiled after a policy change');
  t.ok(second.read({ team: 'red' }), 'reads are ORed');
  t.notOk(second.write({ team: 'red' }), 'a policy without write grants no writes');
  await security.setRoles('wendy', { roles: ['reader'] }, context);
  const third = policies.forTable('docs')!;
  t.notOk(third.read({ team: 'red' }), 'as a reader only the policy naming her applies');
  t.ok(third.read({ owner: 'wendy' }));
  await security.setRoles('wendy', { roles: ['admin'] }, context);
  t.equal(policies.forTable('docs'), null, 'admins are never restricted');
  await security.setRoles('wendy', { roles: ['writer'] }, context);
  await security.deleteUser('wendy', context);
  t.notOk(policies.forTable('docs')!.read({ owner: 'wendy' }), 'a deleted user reads nothing, even through a RowPolicies held by an open transaction');
});

t.test('policies a crash left behind a dropped table are removed at the next start', async (t) => {
  const { db } = await openServices(t);
  await db.createTable({ name: 'docs', primaryKey: 'id' });
  const store = await PolicyStore.open(db);
  await store.put('docs', 'p', { appliesTo: { roles: ['reader'] } });
  // A crash between the drop and the policies' removal: the rows stay, naming the dropped table's createdSeq.
  await db.dropTable('docs');
  await db.createTable({ name: 'docs', primaryKey: 'id' });
  t.equal(db.get({ table: systemTables.policies.name, key: 'docs/p' }).doc.table, 'docs');
  const reopened = await PolicyStore.open(db);
  t.equal(reopened.forTable('docs'), undefined, 'the new table has no policies');
  t.throws(() => db.get({ table: systemTables.policies.name, key: 'docs/p' }), { code: 'row_not_found' });
});

t.test('a route declaring adminWhenRowPolicies is for admins on a table with policies, audited access_denied', async (t) => {
  const { config, db, security } = await openServices(t);
  const context = { user: 'admin', clientIp: null, requestId: null };
  await security.createUser({ username: 'wendy', password: 'wendy-password', roles: ['writer'] }, context);
  await db.createTable({ name: 'guarded', primaryKey: 'id' });
  await db.createTable({ name: 'plain', primaryKey: 'id' });
  await security.putPolicy('guarded', 'p', { appliesTo: { roles: ['writer'] }, read: {} }, context);
  const app = Fastify();
  t.teardown(() => app.close());
  app.setErrorHandler((error, request, reply) => sendProblem(reply, problemFromError(error, request.id)));
  const rateLimits = await registerRateLimits(app, { config, onLimited: () => undefined });
  await app.register(async (scope) => {
    installAuth(scope, { security: () => security, rateLimits });
    scope.post('/t/:table/fork', { config: { permission: 'write', adminWhenRowPolicies: true } }, async () => ({ ok: true }));
  });
  const call = (table: string, authorization: string) => app.inject({ method: 'POST', url: `/t/${table}/fork`, headers: { authorization } });
  const writer = basicAuth('wendy', 'wendy-password');
  t.equal((await call('plain', writer)).statusCode, 200, 'no policies: the permission decides');
  const denied = await call('guarded', writer);
  t.equal(denied.statusCode, 403);
  t.match(denied.json(), { code: 'forbidden', detail: /row policies/ });
  t.equal((await call('guarded', adminAuth)).statusCode, 200);
  t.match(security.audit.query({ limit: 1, type: 'access_denied' })[0], { user: 'wendy', details: { table: 'guarded', permission: 'admin' } });
  t.throws(() => security.requireAdminIfPolicies(security.authenticator.principalOf(security.users.get('wendy')!), 'guarded', context), { code: 'forbidden' });
  t.doesNotThrow(() => security.requireAdminIfPolicies(security.authenticator.principalOf(security.users.get('wendy')!), 'plain', context));
});
