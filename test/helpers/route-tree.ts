// Test helper: the routes a Fastify server registered, read from its printRoutes tree.

/** "METHOD /path/:param" of every route in Fastify's `printRoutes({ commonPrefix: false })` tree (HEAD left out: every GET has one). */
export function routesOfTree(tree: string): Set<string> {
  const segments: string[] = [];
  const routes = new Set<string>();
  for (const line of tree.split('\n')) {
    const match = /^((?:│ {3}| {4})*)(?:├── |└── )(\S+)(?: \(([^)]*)\))?$/.exec(line);
    if (match === null) continue;
    segments.length = match[1]!.length / 4;
    segments.push(match[2]!);
    for (const method of (match[3] ?? '').split(', ')) {
      if (/^[A-Z]+$/.test(method) && method !== 'HEAD') routes.add(`${method} ${segments.join('')}`);
    }
  }
  return routes;
}
