// Registers every route plugin in a named scope, so load order and who may call what are visible in one place:
// public (health, OpenAPI, POST /v1/auth/token, the admin page's static files), authenticated (/v1 data routes,
// one's own token and password), admin (/v1/admin and the row-policy routes, role admin by route permission). Every
// route declares its permission; hooks enforce it.

import type { FastifyInstance } from 'fastify';
import type { Database } from '../engine/index.js';
import { installAuth, requirePermissionDeclarations } from '../security/hooks.js';
import type { RateLimits } from '../security/rate-limit.js';
import type { Security } from '../security/security.js';
import type { Observability } from '../observability/observability.js';
import type { ChangeService } from '../service/changes.js';
import type { IdempotencyService } from '../service/idempotency.js';
import type { TransactionService } from '../service/transactions.js';
import { adminRoutes } from './admin.js';
import { adminPageRoutes } from './admin-page.js';
import { auditRoutes } from './audit.js';
import { selfRoutes, tokenRoutes } from './auth.js';
import { batchRoutes } from './batch.js';
import { changesRoutes } from './changes.js';
import { clusterAdminRoutes, clusterPeerRoutes, type ClusterRouteSource } from './cluster.js';
import { healthRoutes } from './health.js';
import { installMinSeqWait } from './min-seq.js';
import { metricsRoutes } from './metrics.js';
import { openApiRoutes } from './openapi.js';
import { policyRoutes } from './policies.js';
import { queryRoutes } from './query.js';
import { rowsRoutes } from './rows.js';
import { addSharedSchemas } from './schemas.js';
import { tablesRoutes } from './tables.js';
import { timeTravelRoutes } from './time-travel.js';
import { transactionRoutes } from './transactions.js';
import { userRoutes } from './users.js';

export interface RouteDeps {
  db: () => Database;
  /** The security services; throws DriftError('unavailable') until the database is open. */
  security: () => Security;
  rateLimits: RateLimits;
  transactions: TransactionService;
  changes: ChangeService;
  idempotency: IdempotencyService;
  /** Loads openapi.yaml as JSON text (null when absent); called once, on the first GET /openapi.json. */
  loadOpenApi: () => Promise<string | null>;
  observability: Observability;
  /** The configuration the admin and metrics routes read. */
  config: { metricsPublic: boolean; slowQueryThresholdMs: number; slowQueryMaxStored: number; minSeqWaitMs: number };
  /** Cluster mode's state and peer log stream; null on a single node. */
  cluster: ClusterRouteSource | null;
}

export async function registerRoutes(app: FastifyInstance, deps: RouteDeps): Promise<void> {
  requirePermissionDeclarations(app);
  const auth = { security: deps.security, rateLimits: deps.rateLimits };

  await app.register(async function publicScope(scope) {
    addSharedSchemas(scope);
    await scope.register(healthRoutes, { db: deps.db });
    await scope.register(openApiRoutes, { load: deps.loadOpenApi });
    await scope.register(tokenRoutes, auth);
    await scope.register(adminPageRoutes);
    // --metrics-public: Prometheus scrapes without credentials.
    if (deps.config.metricsPublic) await scope.register(metricsRoutes, { metrics: deps.observability.metrics, permission: 'public' });
    // Node to node: a peer proves itself with the cluster's secret, not with a user's credentials.
    await scope.register(clusterPeerRoutes, { db: deps.db, cluster: deps.cluster });
  });

  await app.register(async function authenticatedScope(scope) {
    installAuth(scope, auth);
    // Shared schemas ($id) once, at the scope every data plugin inherits from.
    addSharedSchemas(scope);
    installMinSeqWait(scope, { db: deps.db, waitMs: deps.config.minSeqWaitMs });
    // One options object for every data plugin: each takes the members it needs (db, transactions, security).
    const data = { db: deps.db, transactions: deps.transactions, security: deps.security, idempotency: deps.idempotency };
    await scope.register(selfRoutes, auth);
    await scope.register(tablesRoutes, data);
    await scope.register(rowsRoutes, data);
    await scope.register(queryRoutes, data);
    await scope.register(transactionRoutes, data);
    await scope.register(batchRoutes, data);
    await scope.register(changesRoutes, { db: deps.db, changes: deps.changes, security: deps.security });
    await scope.register(timeTravelRoutes, data);

    await scope.register(async function adminScope(admin) {
      await admin.register(adminRoutes, {
        db: deps.db,
        slowQueries: deps.observability.slowQueries,
        slowQueryThresholdMs: deps.config.slowQueryThresholdMs,
        slowQueryMaxStored: deps.config.slowQueryMaxStored,
      });
      if (!deps.config.metricsPublic) await admin.register(metricsRoutes, { metrics: deps.observability.metrics, permission: 'admin' });
      await admin.register(userRoutes, { security: deps.security });
      await admin.register(auditRoutes, { security: deps.security });
      await admin.register(clusterAdminRoutes, { db: deps.db, cluster: deps.cluster });
      await admin.register(policyRoutes, { security: deps.security });
    });
  });
}
