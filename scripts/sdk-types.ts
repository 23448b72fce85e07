// The TypeScript SDK's types (clients/typescript/src/schema.d.ts), made by openapi-typescript from openapi.yaml.

import openapiTS, { astToString, COMMENT_HEADER } from 'openapi-typescript';

export async function sdkTypes(openApiYaml: string): Promise<string> {
  // A member with a default may be left out of a request (the server fills it in): not required in the types.
  const ast = await openapiTS(openApiYaml, { defaultNonNullable: false });
  return COMMENT_HEADER + astToString(ast);
}
