// Response serializers compiled on first use. Fastify builds a fast-json-stringify function for every response
// schema of every route when it starts, which was about a third of the server's start-up time (and so of every
// restart); each is now built the first time a route answers with that status.

import { createRequire } from 'node:module';

interface RouteResponseSchema {
  method: string;
  url: string;
  httpStatus: string;
  schema?: unknown;
}
type Serialize = (data: unknown) => string;
type RouteSerializerCompiler = (route: RouteResponseSchema) => Serialize;
/** Fastify's `schemaController.compilersFactory.buildSerializer`: shared schemas and options in, a compiler out. */
export type SerializerFactory = (externalSchemas?: unknown, options?: object) => RouteSerializerCompiler;

// Fastify's own default compiler, resolved from Fastify's location so it is the exact version Fastify uses.
const requireFromFastify = createRequire(createRequire(import.meta.url).resolve('fastify'));
const defaultSerializerFactory = (requireFromFastify('@fastify/fast-json-stringify-compiler') as { SerializerSelector: () => SerializerFactory })
  .SerializerSelector();

export const lazySerializerFactory: SerializerFactory = (externalSchemas, options) => {
  const compile = defaultSerializerFactory(externalSchemas, options);
  return (route) => {
    let serialize: Serialize | undefined;
    return (data) => (serialize ??= compile(route))(data);
  };
};
