// Guards the one-way layering of docs/engine.md: the engine imports only itself and the small kernel, and
// everything outside the engine reaches it through src/engine/index.ts alone.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const srcDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src');
const kernel = new Set(['errors.ts', 'assert.ts', 'limits.ts'].map((f) => path.join(srcDir, f)));

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

function relativeImports(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  return [...text.matchAll(/^(?:import|export)[^'"]*?from '(\.[^']+)'/gm)].map((m) =>
    path.resolve(path.dirname(file), m[1]!).replace(/\.js$/, '.ts'),
  );
}

const engineDir = path.join(srcDir, 'engine') + path.sep;
const engineIndex = path.join(srcDir, 'engine', 'index.ts');

t.test('the engine imports nothing from HTTP, security, services or config', async (t) => {
  for (const file of sourceFiles(engineDir)) {
    for (const target of relativeImports(file)) {
      if (!target.startsWith(engineDir) && !kernel.has(target)) t.fail(`${path.relative(srcDir, file)} imports ${path.relative(srcDir, target)}`);
    }
  }
  t.pass('engine imports checked');
});

t.test('code outside the engine uses only src/engine/index.ts', async (t) => {
  for (const file of sourceFiles(srcDir).filter((f) => !f.startsWith(engineDir))) {
    for (const target of relativeImports(file)) {
      if (target.startsWith(engineDir) && target !== engineIndex) t.fail(`${path.relative(srcDir, file)} imports ${path.relative(srcDir, target)}`);
    }
  }
  t.pass('imports into the engine checked');
});
