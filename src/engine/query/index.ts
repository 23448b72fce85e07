// The query layer's public surface (http-api.md §5): compile a query, plan it, execute it one page at a time
// against a RowSource. The JSON helpers (paths, equality, ordering) it shares with other layers live in engine/json/.

export * from './spec.js';
export * from './source.js';
export { compileQuery } from './compile.js';
export { planQuery } from './planner.js';
export { executeQuery } from './executor.js';
export { compileWhere, matchesWhere } from './where.js';
export type { Predicate } from './where.js';

import { decodeCursor } from './cursor.js';

/** The snapshot seq a query cursor was made at; throws validation_failed for a malformed or foreign cursor. */
export function cursorSeq(cursor: string): number {
  return decodeCursor(cursor).seq;
}
