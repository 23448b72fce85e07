// The row-policy routes of http-api.md §8 (role admin, reads included): create or replace, list and delete a table's
// policies. Thin: the security layer checks, commits and audits; the engine applies policies on every read and write.

import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuditContext } from '../security/audit-log.js';
import { policiesPerTableMax, policyNamePattern, policyRoles, policyUsersMax, type PolicyInput } from '../security/policies.js';
import type { Security } from '../security/security.js';
import { usernamePattern } from '../security/users.js';
import { closedObject, dataValidatorCompiler, problemResponses, tableParams } from './schemas.js';

interface PolicyParams {
  table: string;
  name: string;
}

const tags = ['policies'];
const policyName = { type: 'string', pattern: policyNamePattern.source, description: 'A policy name: the pattern of table names.' };
const policyParams = { type: 'object', required: ['table', 'name'], properties: { ...tableParams.properties, name: policyName } };

const where = (description: string) => ({
  type: 'object',
  additionalProperties: true,
  description: `${description} A where-object of POST /v1/query, in which {"$user":"name"} stands for the caller's username.`,
});

const appliesTo = {
  ...closedObject({
    roles: {
      type: 'array',
      maxItems: policyRoles.length,
      items: { type: 'string', enum: [...policyRoles] },
      description: 'Roles it applies to; admins are never restricted, so only writer and reader.',
    },
    users: {
      type: 'array',
      maxItems: policyUsersMax,
      items: { type: 'string', pattern: usernamePattern.source },
      description: 'Usernames it applies to, whether those users exist yet or not.',
    },
  }),
  description: 'Whom the policy applies to: a user it names, or one holding a role it names. At least one role or user.',
};

const policyView = {
  type: 'object',
  required: ['table', 'name', 'appliesTo', 'seq'],
  properties: {
    table: { type: 'string' },
    name: { type: 'string' },
    appliesTo: {
      type: 'object',
      properties: { roles: { type: 'array', items: { type: 'string', enum: [...policyRoles] } }, users: { type: 'array', items: { type: 'string' } } },
    },
    read: { type: 'object', additionalProperties: true },
    write: { type: 'object', additionalProperties: true },
    seq: { type: 'integer', description: 'Seq of the commit that wrote this version of the policy.' },
  },
};

function contextOf(req: FastifyRequest): AuditContext {
  return { user: req.principal.username, clientIp: req.ip, requestId: req.id };
}

export async function policyRoutes(app: FastifyInstance, opts: { security: () => Security }): Promise<void> {
  const security = opts.security;
  app.setValidatorCompiler(dataValidatorCompiler);

  app.put<{ Params: PolicyParams; Body: PolicyInput }>('/v1/tables/:table/policies/:name', {
    config: { permission: 'admin' },
    schema: {
      operationId: 'putPolicy',
      tags,
      summary: 'Create or replace a row policy',
      description:
        'Needs the admin role. Once a table has a policy, every user but an admin sees a row version only if some ' +
        'policy that applies to them has a `read` the document matches, and may put, patch or delete a row only if some ' +
        "applicable policy's `write` matches the row's current document and some matches the new one (else 403 forbidden, " +
        'nothing written). A policy without `read` grants no reads; one without `write` grants no writes. The policies in ' +
        'force now govern every read, `asOf` and history included. Takes effect on the next request, open transactions ' +
        `included. At most ${policiesPerTableMax} policies per table. 404 table_not_found; a \`where\` the query language ` +
        'refuses: 400 validation_failed. Audited `policy_changed`.',
      params: policyParams,
      body: closedObject(
        {
          appliesTo,
          read: where('The documents the policy lets its users read (a delete is shown when the version before it is).'),
          write: where('The documents the policy lets its users write: the current one (when the row exists) and the new one.'),
        },
        ['appliesTo'],
      ),
      response: {
        200: { ...policyView, description: 'Replaced.' },
        201: { ...policyView, description: 'Created.' },
        ...problemResponses({ extra: [404], withBody: true }),
      },
    },
    handler: async (req, reply) => {
      const { policy, created } = await security().putPolicy(req.params.table, req.params.name, req.body, contextOf(req));
      return reply.code(created ? 201 : 200).send(policy);
    },
  });

  app.get<{ Params: { table: string } }>('/v1/tables/:table/policies', {
    config: { permission: 'admin' },
    schema: {
      operationId: 'listPolicies',
      tags,
      summary: "List a table's row policies",
      description: 'Needs the admin role. The policies by name; an empty list for a table without any (it behaves as before: roles and grants decide). 404 table_not_found.',
      params: tableParams,
      response: {
        200: { type: 'object', required: ['policies'], properties: { policies: { type: 'array', items: policyView } }, description: 'The policies.' },
        ...problemResponses({ extra: [404] }),
      },
    },
    handler: async (req) => ({ policies: security().listPolicies(req.params.table) }),
  });

  app.delete<{ Params: PolicyParams }>('/v1/tables/:table/policies/:name', {
    config: { permission: 'admin' },
    schema: {
      operationId: 'deletePolicy',
      tags,
      summary: 'Delete a row policy',
      description:
        'Needs the admin role. When it was the last, the table behaves as before (roles and grants decide). 404 ' +
        'table_not_found, or not_found when the table has no policy of that name. Audited `policy_changed`.',
      params: policyParams,
      response: { 204: { type: 'null', description: 'Deleted.' }, ...problemResponses({ extra: [404] }) },
    },
    handler: async (req, reply) => {
      await security().deletePolicy(req.params.table, req.params.name, contextOf(req));
      return reply.code(204).send();
    },
  });
}
