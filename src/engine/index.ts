// The engine's only public surface: open a database, and the types to talk to it.

export { openDatabase, type EngineLogger, type OpenDatabaseOptions } from './database.js';
export type { ConflictCode, EngineObserver } from './observer.js';
export type * from './api.js';
export { isolationLevels } from './api.js';
export type { QuerySpec, Plan, QueryPage } from './query/spec.js';
export { compileWhere, type Predicate } from './query/index.js';
export type { Doc, Json, TableDef, HistoryEntry, RowOp } from './types.js';
export { CorruptLogError } from './log/wal.js';
export { doctor, type DoctorProgress } from './log/doctor.js';
export type { ProposalOutcome, ReplicaSink, ReplicatedLog } from './replicated-log.js';
export { batchHeader } from './log/batch.js';
export { HeapReclaimer, type HeapReclaim } from './heap-reclaimer.js';
