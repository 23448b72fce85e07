// The log layer's public surface: the write-ahead log, checkpoint files and the offline doctor.

export { openLog, CorruptLogError, type OpenLogOptions, type WriteAheadLog } from './wal.js';
export { writeCheckpoint, loadCheckpoint, verifyCheckpointFile, listCheckpoints, type CheckpointVerdict } from './checkpoint.js';
export { doctor, type DoctorReport, type DoctorProblem, type DoctorSeverity } from './doctor.js';
export type { LogLayerLogger } from './logger.js';
