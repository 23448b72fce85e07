// Where the files shipped with the package (openapi.yaml, the admin page) are found at run time, from src/ or dist/src/.

import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let root: Promise<string> | undefined;

/** The package root: the nearest directory above this file whose package.json names driftdb. */
export function packageRoot(): Promise<string> {
  root ??= findPackageRoot();
  return root;
}

async function findPackageRoot(): Promise<string> {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(await fs.readFile(path.join(dir, 'package.json'), 'utf8')) as { name?: string };
      if (pkg.name === 'driftdb') return dir;
    } catch {
      // No package.json here; keep climbing.
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('cannot find the driftdb package root');
    dir = parent;
  }
}
