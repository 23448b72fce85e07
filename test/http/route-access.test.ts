// Walks every route the server registers with every kind of caller and checks the answer against the table below,
// written by hand: a new route that is not classified here fails the suite, and so does a route that lets in a
// role it should not (403 forbidden) or shuts out one it should.

import t from 'tap';
import { startApp } from '../helpers/app.js';
import { routesOfTree } from '../helpers/route-tree.js';
import { adminAuth, basicAuth } from '../helpers/server.js';

type Needs = 'public' | 'authenticated' | 'reader' | 'writer' | 'admin';

/** Who may call each route. Placeholders: table "walk" exists, key "k", a transaction id, user "nobody". */
const needs: Record<string, Needs> = {
  'GET /healthz': 'public',
  'GET /readyz': 'public',
  'GET /openapi.json': 'public',
  'GET /admin': 'public',
  'GET /admin/': 'public',
  'GET /admin/:build/:file': 'public',
  'POST /v1/auth/token': 'public',
  'DELETE /v1/auth/token': 'authenticated',
  'PUT /v1/auth/password': 'authenticated',
  'POST /v1/tables': 'writer',
  'GET /v1/tables': 'reader',
  'GET /v1/tables/:table': 'reader',
  'DELETE /v1/tables/:table': 'admin',
  'POST /v1/tables/:table/indexes': 'writer',
  'DELETE /v1/tables/:table/indexes/:field': 'writer',
  'PUT /v1/tables/:table/rows/:key': 'writer',
  'PATCH /v1/tables/:table/rows/:key': 'writer',
  'DELETE /v1/tables/:table/rows/:key': 'writer',
  'GET /v1/tables/:table/rows/:key': 'reader',
  'GET /v1/tables/:table/rows/:key/history': 'reader',
  'GET /v1/tables/:table/rows': 'reader',
  'POST /v1/query': 'reader',
  'POST /v1/query/explain': 'reader',
  'POST /v1/transactions': 'reader',
  'GET /v1/transactions/:id': 'reader',
  'POST /v1/transactions/:id/commit': 'reader',
  'POST /v1/transactions/:id/rollback': 'reader',
  'POST /v1/transactions/:id/savepoints': 'reader',
  'POST /v1/transactions/:id/savepoints/:name/rollback': 'reader',
  'DELETE /v1/transactions/:id/savepoints/:name': 'reader',
  'POST /v1/batch': 'reader',
  'GET /v1/changes': 'reader',
  'GET /v1/tables/:table/diff': 'reader',
  'POST /v1/tables/:table/fork': 'writer',
  'POST /v1/tables/:table/restore': 'writer',
  'POST /v1/admin/checkpoint': 'admin',
  'GET /v1/admin/stats': 'admin',
  'GET /v1/admin/slow-queries': 'admin',
  'DELETE /v1/admin/slow-queries': 'admin',
  'GET /metrics': 'admin',
  'GET /v1/admin/users': 'admin',
  'POST /v1/admin/users': 'admin',
  'DELETE /v1/admin/users/:username': 'admin',
  'PUT /v1/admin/users/:username/password': 'admin',
  'PUT /v1/admin/users/:username/roles': 'admin',
  'POST /v1/admin/users/:username/unlock': 'admin',
  'GET /v1/admin/audit': 'admin',
  'GET /v1/admin/audit/verify': 'admin',
  'GET /v1/admin/audit/stats': 'admin',
  'GET /v1/admin/cluster': 'admin',
  // Node to node: no user credentials, the cluster's secret (a single node answers 404).
  'GET /v1/cluster/log': 'public',
  'PUT /v1/tables/:table/policies/:name': 'admin',
  'GET /v1/tables/:table/policies': 'admin',
  'DELETE /v1/tables/:table/policies/:name': 'admin',
};

/** Bodies for routes whose body names the tables they touch: without one they would stop at validation (400). */
const bodies: Record<string, unknown> = {
  'POST /v1/tables': { name: 'walk_new', primaryKey: 'id' },
  'POST /v1/query': { table: 'walk' },
  'POST /v1/query/explain': { table: 'walk' },
  'POST /v1/batch': { ops: [{ op: 'get', table: 'walk', key: 'k' }] },
  'POST /v1/tables/:table/fork': { name: 'walk_fork', asOf: 0 },
  'POST /v1/tables/:table/restore': { asOf: 0 },
};

const placeholders: Record<string, string> = {
  table: 'walk',
  key: 'k',
  field: 'city',
  id: '00000000-0000-4000-8000-000000000000',
  name: 'sp1',
  username: 'nobody',
  build: 'b',
  file: 'f.js',
};

const rank: Record<Needs, number> = { public: 0, authenticated: 1, reader: 1, writer: 2, admin: 3 };

interface Caller {
  label: string;
  auth: string | false;
  /** Role rank: 0 none, 1 reader, 2 writer, 3 admin. */
  rank: number;
  /** Narrowed by grants to tables other than "walk". */
  narrowed?: boolean;
}

const callers: Caller[] = [
  { label: 'no credentials', auth: false, rank: 0 },
  { label: 'reader', auth: basicAuth('rita', 'rita-password'), rank: 1 },
  { label: 'writer', auth: basicAuth('wade', 'wade-password'), rank: 2 },
  { label: 'writer granted another table', auth: basicAuth('gwen', 'gwen-password'), rank: 2, narrowed: true },
  // Last: the admin's calls change things (drop the table, …), which changes no one's answer class above.
  { label: 'admin', auth: adminAuth, rank: 3 },
];

t.test('every registered route answers each kind of caller as classified', async (t) => {
  const { app, call } = await startApp(t);
  const routes: string[] = [];
  for (const route of routesOfTree(app.printRoutes({ commonPrefix: false }))) routes.push(route);
  t.ok(routes.length >= 30, `${routes.length} routes registered`);
  t.same(routes.filter((route) => needs[route] === undefined), [], 'every registered route is classified in this test');
  t.same(Object.keys(needs).filter((route) => !routes.includes(route)), [], 'every classified route exists');

  t.equal((await call('POST', '/v1/tables', { body: { name: 'walk', primaryKey: 'id', indexes: ['city'] } })).status, 201);
  for (const [username, roles, grants] of [['rita', ['reader']], ['wade', ['writer']], ['gwen', ['writer'], ['granted']]] as const) {
    const created = await call('POST', '/v1/admin/users', { body: { username, password: `${username}-password`, roles, ...(grants ? { grants } : {}) } });
    t.equal(created.status, 201, `user ${username}`);
  }

  for (const caller of callers) {
    for (const route of routes) {
      const [method, pattern] = route.split(' ') as [string, string];
      const url = pattern.replace(/:(\w+)/g, (_, name: string) => encodeURIComponent(placeholders[name]!));
      const body = bodies[route];
      const res = await call(method, url, { auth: caller.auth, ...(body === undefined ? {} : { body }) });
      const need = needs[route]!;
      const touchesWalk = pattern.includes(':table') || (body !== undefined && JSON.stringify(body).includes('"walk'));
      const label = `${caller.label}: ${route} → ${res.status} ${res.json?.code ?? ''}`;
      if (need === 'public') t.not(res.status, 401, label);
      else if (caller.rank === 0) t.equal(res.status, 401, label);
      else if (caller.rank < rank[need] || (caller.narrowed && touchesWalk && need !== 'admin')) t.equal(res.json?.code, 'forbidden', label);
      else t.ok(res.status !== 401 && res.status !== 403, label);
    }
  }
});
