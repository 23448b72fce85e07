// The TypeScript SDK's types (clients/typescript/src/schema.d.ts), made by openapi-typescript from openapi.yaml.

import openapiTS, { astToString, COMMENT_HEADER } from 'openapi-typescript';

export async function sdkTypes(openApiYaml: string): Promise<string> {
  const ast = await openapiTS(openApiYaml);
  return COMMENT_HEADER + astToString(ast);
}
