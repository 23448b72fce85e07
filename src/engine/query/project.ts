// Projection (`select`): builds answer rows holding only the selected paths of a document.
//
// A selected path keeps its nesting: selecting `a.b` from {"a":{"b":1,"c":2},"d":3} gives {"a":{"b":1}}.
// A path missing from the document is left out (never written as null). Selecting both `a` and `a.b` gives the
// whole of `a`. Paths walk objects only, as everywhere in the query language.

import type { Doc, Json } from '../types.js';
import { getSegments, setOwn, type PathSegments } from '../json/index.js';

export type Projection = (doc: Doc) => Doc;

export function compileProjection(select: PathSegments[] | null): Projection {
  if (select === null) return (doc) => doc;
  // Shorter paths first: once a whole value is copied, deeper paths under it are already inside it.
  const paths = [...select].sort((a, b) => a.length - b.length);
  return (doc) => {
    const out: Doc = {};
    // The objects this projection built, as opposed to values copied from the document (never modified).
    const built = new Set<Json>([out]);
    for (const segments of paths) {
      const value = getSegments(doc, segments);
      if (value !== undefined) place(out, segments, value, built);
    }
    return out;
  };
}

function place(out: Doc, segments: PathSegments, value: Json, built: Set<Json>): void {
  let target = out;
  for (let i = 0; i < segments.length - 1; i++) {
    const segment = segments[i] as string;
    if (!Object.hasOwn(target, segment)) {
      const next: Doc = {};
      built.add(next);
      setOwn(target, segment, next);
      target = next;
      continue;
    }
    const next = target[segment] as Json;
    if (!built.has(next)) return; // A shorter selected path already copied this whole value.
    target = next as Doc;
  }
  const last = segments[segments.length - 1] as string;
  if (!Object.hasOwn(target, last)) setOwn(target, last, value);
}
