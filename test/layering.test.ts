// Guards the one-way layering of docs/engine.md: the engine imports only itself and the small kernel, its JSON
// home (engine/json/) only itself and the kernel, everything outside the engine reaches it through
// src/engine/index.ts alone, and nothing under src imports from test/.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const rootDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const srcDir = path.join(rootDir, 'src');
const testDir = path.join(rootDir, 'test') + path.sep;
const kernel = new Set(['errors.ts', 'assert.ts', 'limits.ts'].map((f) => path.join(srcDir, f)));

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

// Static imports and re-exports (with or without `from`, so `import './x.js'` counts) and dynamic `import('./x.js')`.
const importPatterns = [/^(?:import|export)\b(?:[^'"]*?\bfrom)?\s*'(\.[^']+)'/gm, /\bimport\(\s*'(\.[^']+)'\s*\)/g];

function relativeImports(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  return importPatterns.flatMap((pattern) =>
    [...text.matchAll(pattern)].map((m) => path.resolve(path.dirname(file), m[1]!).replace(/\.js$/, '.ts')),
  );
}

const engineDir = path.join(srcDir, 'engine') + path.sep;
const engineIndex = path.join(srcDir, 'engine', 'index.ts');
const jsonDir = path.join(srcDir, 'engine', 'json') + path.sep;

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

t.test('the JSON home imports nothing of the engine but itself', async (t) => {
  const files = sourceFiles(jsonDir);
  t.ok(files.length > 0, 'src/engine/json/ holds the JSON helpers');
  for (const file of files) {
    for (const target of relativeImports(file)) {
      if (!target.startsWith(jsonDir) && !kernel.has(target)) t.fail(`${path.relative(srcDir, file)} imports ${path.relative(srcDir, target)}`);
    }
  }
  t.pass('JSON home imports checked');
});

t.test('nothing under src imports from test/', async (t) => {
  for (const file of sourceFiles(srcDir)) {
    for (const target of relativeImports(file)) {
      if (target.startsWith(testDir)) t.fail(`${path.relative(srcDir, file)} imports ${path.relative(rootDir, target)}`);
    }
  }
  t.pass('src imports checked');
});
