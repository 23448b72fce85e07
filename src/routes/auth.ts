// The auth routes of http-api.md §2: trade a username and password for a bearer token, revoke the token in use, and
// change one's own password. Thin: every decision is the security layer's.

import type { FastifyInstance } from 'fastify';
import { requestContext } from '../security/hooks.js';
import type { RateLimits } from '../security/rate-limit.js';
import type { Security } from '../security/security.js';
import { addSharedSchemas, closedObject, dataValidatorCompiler, problemResponses } from './schemas.js';

export interface AuthRouteDeps {
  security: () => Security;
  rateLimits: RateLimits;
}

/** Longest password accepted (bytes are hashed with scrypt; a body of megabytes must not be). */
export const passwordLengthMax = 1024;
/** Shortest new password (NIST SP 800-63B's floor); the first admin's DRIFTDB_ADMIN_PASSWORD is the operator's choice. */
export const passwordLengthMin = 8;

const password = { type: 'string', minLength: 1, maxLength: passwordLengthMax };
export const newPassword = { type: 'string', minLength: passwordLengthMin, maxLength: passwordLengthMax, description: `${passwordLengthMin} to ${passwordLengthMax} characters.` };

const tokenBody = closedObject({ username: { type: 'string', minLength: 1, maxLength: 1024 }, password }, ['username', 'password']);

const tokenAnswer = {
  type: 'object',
  required: ['token', 'expiresAt'],
  properties: {
    token: { type: 'string', description: 'Send as Authorization: Bearer <token>. Shown once: DriftDB keeps only its hash.' },
    expiresAt: { type: 'string', format: 'date-time' },
  },
};

const passwordBody = closedObject({ currentPassword: password, newPassword }, ['currentPassword', 'newPassword']);

/** POST /v1/auth/token: public (it is how one authenticates), but limited per client address. */
export async function tokenRoutes(app: FastifyInstance, opts: AuthRouteDeps): Promise<void> {
  // In the public scope: its problem responses need the shared schemas too.
  addSharedSchemas(app);
  // Bodies are checked as sent: a password given as a number is refused, not turned into text.
  app.setValidatorCompiler(dataValidatorCompiler);
  app.post<{ Body: { username: string; password: string } }>('/v1/auth/token', {
    config: { permission: 'public' },
    schema: {
      body: tokenBody,
      response: { 200: tokenAnswer, ...problemResponses({ withBody: true }) },
    },
    handler: async (req) => opts.security().issueToken(req.body, requestContext(req, opts.rateLimits)),
  });
}

/** DELETE /v1/auth/token and PUT /v1/auth/password: any authenticated user, for themselves. */
export async function selfRoutes(app: FastifyInstance, opts: AuthRouteDeps): Promise<void> {
  app.setValidatorCompiler(dataValidatorCompiler);
  app.delete('/v1/auth/token', {
    config: { permission: 'authenticated' },
    schema: { response: { 204: { type: 'null', description: 'Revoked.' }, ...problemResponses() } },
    handler: async (req, reply) => {
      await opts.security().revokeToken(req.principal, requestContext(req, opts.rateLimits));
      return reply.code(204).send();
    },
  });

  app.put<{ Body: { currentPassword: string; newPassword: string } }>('/v1/auth/password', {
    config: { permission: 'authenticated' },
    schema: {
      body: passwordBody,
      response: { 204: { type: 'null', description: 'Changed; every token of the user is revoked.' }, ...problemResponses({ withBody: true }) },
    },
    handler: async (req, reply) => {
      await opts.security().changeOwnPassword(req.principal, req.body, requestContext(req, opts.rateLimits));
      return reply.code(204).send();
    },
  });
}
