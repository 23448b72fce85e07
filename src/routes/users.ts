// The user administration routes of http-api.md §7 (role admin): list, create and delete users, set roles and grants,
// reset a password, lift a lockout. Thin: the security layer checks, commits, revokes and audits.

import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuditContext } from '../security/audit-log.js';
import type { Security } from '../security/security.js';
import { grantPattern, grantsPerUserMax, roles, usernamePattern, type Role } from '../security/users.js';
import { newPassword } from './auth.js';
import { closedObject, dataValidatorCompiler, problemResponses } from './schemas.js';

interface UserParams {
  username: string;
}

interface AccessBody {
  roles: Role[];
  grants?: string[];
}

const username = { type: 'string', pattern: usernamePattern.source, description: 'Letters, digits and . _ @ -, 1 to 64 of them.' };
const rolesSchema = { type: 'array', minItems: 1, maxItems: roles.length, uniqueItems: true, items: { type: 'string', enum: [...roles] } };
const grantsSchema = {
  type: 'array',
  maxItems: grantsPerUserMax,
  uniqueItems: true,
  items: { type: 'string', pattern: grantPattern.source },
  description: 'Tables the user may touch (existing or not yet); absent = every table. Not for admins.',
};

const userView = {
  type: 'object',
  required: ['username', 'roles', 'createdAt', 'updatedAt'],
  properties: {
    username: { type: 'string' },
    roles: { type: 'array', items: { type: 'string', enum: [...roles] } },
    grants: { type: 'array', items: { type: 'string' } },
    createdAt: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
  },
};

const userParams = { type: 'object', required: ['username'], properties: { username } };
const noBody = (description: string) => ({ type: 'null', description });

function contextOf(req: FastifyRequest): AuditContext {
  return { user: req.principal.username, clientIp: req.ip, requestId: req.id };
}

export async function userRoutes(app: FastifyInstance, opts: { security: () => Security }): Promise<void> {
  const security = opts.security;
  app.setValidatorCompiler(dataValidatorCompiler);

  app.get('/v1/admin/users', {
    config: { permission: 'admin' },
    schema: {
      operationId: 'listUsers',
      tags: ['admin'],
      summary: 'List users',
      description: 'Needs the admin role. Never shows password hashes.',
      response: {
        200: { type: 'object', required: ['users'], properties: { users: { type: 'array', items: userView } } },
        ...problemResponses(),
      },
    },
    handler: async () => ({ users: security().listUsers() }),
  });

  app.post<{ Body: AccessBody & { username: string; password: string } }>('/v1/admin/users', {
    config: { permission: 'admin' },
    schema: {
      operationId: 'createUser',
      tags: ['admin'],
      summary: 'Create a user',
      description: 'Needs the admin role. `grants` narrows a writer or reader to those tables (absent = every table; admins are never narrowed, so grants with role admin are 400). An existing username, or more than 10,000 users: 400 validation_failed. Audited `user_created`. Answers with a Location header.',
      body: closedObject({ username, password: newPassword, roles: rolesSchema, grants: grantsSchema }, ['username', 'password', 'roles']),
      response: { 201: userView, ...problemResponses({ withBody: true }) },
    },
    handler: async (req, reply) => {
      const user = await security().createUser(req.body, contextOf(req));
      return reply.code(201).header('location', `/v1/admin/users/${encodeURIComponent(user.username)}`).send(user);
    },
  });

  app.delete<{ Params: UserParams }>('/v1/admin/users/:username', {
    config: { permission: 'admin' },
    schema: {
      operationId: 'deleteUser',
      tags: ['admin'],
      summary: 'Delete a user',
      description: 'Needs the admin role. Takes effect at once for cached credentials; the user\'s tokens are revoked. The last admin cannot be deleted (400 bad_request). Audited `user_deleted`.',
      params: userParams, response: { 204: noBody('Deleted; the user\'s tokens are revoked.'), ...problemResponses({ extra: [404] }) },
    },
    handler: async (req, reply) => {
      await security().deleteUser(req.params.username, contextOf(req));
      return reply.code(204).send();
    },
  });

  app.put<{ Params: UserParams; Body: { password: string } }>('/v1/admin/users/:username/password', {
    config: { permission: 'admin' },
    schema: {
      operationId: 'resetPassword',
      tags: ['admin'],
      summary: 'Set a user\'s password',
      description: 'Needs the admin role. Cached credentials stop working at once and the user\'s tokens are revoked. Audited `password_changed`.',
      params: userParams,
      body: closedObject({ password: newPassword }, ['password']),
      response: { 204: noBody('Set; the user\'s tokens are revoked.'), ...problemResponses({ extra: [404], withBody: true }) },
    },
    handler: async (req, reply) => {
      await security().resetPassword(req.params.username, req.body.password, contextOf(req));
      return reply.code(204).send();
    },
  });

  app.put<{ Params: UserParams; Body: AccessBody }>('/v1/admin/users/:username/roles', {
    config: { permission: 'admin' },
    schema: {
      operationId: 'setRoles',
      tags: ['admin'],
      summary: 'Set a user\'s roles and grants',
      description: 'Needs the admin role. Replaces both: absent `grants` = every table. Takes effect on the user\'s next request (tokens included). Taking the admin role from the last admin is 400 bad_request. Audited `roles_changed` with before and after.',
      params: userParams,
      body: closedObject({ roles: rolesSchema, grants: grantsSchema }, ['roles']),
      response: { 200: userView, ...problemResponses({ extra: [404], withBody: true }) },
    },
    handler: async (req) => security().setRoles(req.params.username, req.body, contextOf(req)),
  });

  app.post<{ Params: UserParams }>('/v1/admin/users/:username/unlock', {
    config: { permission: 'admin' },
    schema: {
      operationId: 'unlockUser',
      tags: ['admin'],
      summary: 'Lift a lockout',
      description: 'Needs the admin role. Forgets the user\'s failed logins; `wasLocked` says whether it was locked. Audited `user_unlocked`.',
      params: userParams,
      response: {
        200: { type: 'object', required: ['username', 'wasLocked'], properties: { username: { type: 'string' }, wasLocked: { type: 'boolean' } } },
        ...problemResponses({ extra: [404] }),
      },
    },
    handler: async (req) => security().unlock(req.params.username, contextOf(req)),
  });
}
