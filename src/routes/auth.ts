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
      operationId: 'issueToken',
      tags: ['auth'],
      summary: 'Trade a username and password for a bearer token',
      description: 'No credentials needed (this is how one gets them). Answers a random 256-bit token (`ddb_` + 43 base64url characters), shown once: DriftDB keeps only its SHA-256, in the database log, so tokens survive restarts. It expires after --token-ttl-ms; a user holds at most 100 live tokens (one more revokes their oldest). Every request counts against the client address\'s auth rate limit (--auth-rate-limit-max, 429 past it); a wrong password counts towards the username\'s lockout (423 once locked). A failure answers the same whether the user exists or not.',
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
    schema: {
      operationId: 'revokeToken',
      tags: ['auth'],
      summary: 'Revoke the bearer token of this request',
      description: 'Send it as Authorization: Bearer <token>; with Basic credentials: 400 bad_request. Audited `logout`.',
      response: { 204: { type: 'null', description: 'Revoked.' }, ...problemResponses() },
    },
    handler: async (req, reply) => {
      await opts.security().revokeToken(req.principal, requestContext(req, opts.rateLimits));
      return reply.code(204).send();
    },
  });

  app.put<{ Body: { currentPassword: string; newPassword: string } }>('/v1/auth/password', {
    config: { permission: 'authenticated' },
    schema: {
      operationId: 'changePassword',
      tags: ['auth'],
      summary: 'Change one\'s own password',
      description: '`currentPassword` must be right: a wrong one is 403 forbidden and counts as a failed login (towards lockout), so a stolen token cannot guess the password. Cached Basic credentials stop working at once and every token of the user is revoked. Audited `password_changed`.',
      body: passwordBody,
      response: { 204: { type: 'null', description: 'Changed; every token of the user is revoked.' }, ...problemResponses({ withBody: true }) },
    },
    handler: async (req, reply) => {
      await opts.security().changeOwnPassword(req.principal, req.body, requestContext(req, opts.rateLimits));
      return reply.code(204).send();
    },
  });
}
