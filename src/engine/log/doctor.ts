// Offline check of a data dir (`driftdb doctor`): every frame of every log segment, seq continuity, and every
// checkpoint file, read only, judged by the same decision table that recovery acts on (segment.ts).

import * as path from 'node:path';
import { limits } from '../../limits.js';
import { nodeFileSystem, type FileSystem } from '../storage/fs.js';
import { listCheckpoints, verifyCheckpointFile } from './checkpoint.js';
import { listSegments, walkLog, type LogProblem } from './segment.js';

/**
 * How bad a finding is:
 * - `corrupt`: the server would refuse to start (damage before the log's tail, a seq gap, a missing segment).
 * - `tail`: a torn write at the very end of the log; the server cuts it off and starts. Nothing acknowledged is lost.
 * - `warning`: a damaged checkpoint file; the server skips it and falls back to an older one or to the log.
 * `healthy` is false only when some finding is `corrupt`: doctor answers "would the server start, losing nothing
 * acknowledged?", which is what an operator deciding whether to restore from a backup needs to know.
 */
export type DoctorSeverity = 'corrupt' | 'tail' | 'warning';

export interface DoctorProblem {
  file: string;
  offset: number;
  reason: string;
  severity: DoctorSeverity;
}

export interface DoctorReport {
  healthy: boolean;
  /** Valid log records found. */
  records: number;
  segments: number;
  /** Checkpoint files found, valid or not. */
  checkpoints: number;
  /** Seq of the newest valid checkpoint, which recovery would load; null without one. */
  checkpointSeq: number | null;
  /** Seq of the last valid log record (0 if none). */
  lastSeq: number;
  problems: DoctorProblem[];
}

/** How far the log walk got: for a progress display of a long log. */
export interface DoctorProgress {
  records: number;
  bytesRead: number;
  bytesTotal: number;
}

/** Checks `<dataDir>/wal` and `<dataDir>/checkpoints` without modifying anything. */
export async function doctor(options: { dataDir: string; fileSystem?: FileSystem; onProgress?(progress: DoctorProgress): void }): Promise<DoctorReport> {
  const fileSystem = options.fileSystem ?? nodeFileSystem;
  const problems: DoctorProblem[] = [];
  if (!(await fileSystem.exists(options.dataDir))) {
    problems.push({ file: options.dataDir, offset: 0, reason: 'data dir does not exist', severity: 'corrupt' });
    return { healthy: false, records: 0, segments: 0, checkpoints: 0, checkpointSeq: null, lastSeq: 0, problems };
  }
  const checkpoints = await listCheckpoints(fileSystem, path.join(options.dataDir, 'checkpoints'));
  let checkpointSeq: number | null = null;
  for (const checkpoint of checkpoints) {
    const verdict = await verifyCheckpointFile({ file: checkpoint.file, fileSystem });
    if (verdict.valid) {
      checkpointSeq ??= verdict.seq;
    } else {
      problems.push({ file: verdict.file, offset: verdict.offset, reason: `checkpoint damaged (${verdict.reason}); the server would skip it`, severity: 'warning' });
    }
  }
  const progress: DoctorProgress = { records: 0, bytesRead: 0, bytesTotal: 0 };
  if (options.onProgress !== undefined) {
    for (const segment of await listSegments(fileSystem, path.join(options.dataDir, 'wal'))) progress.bytesTotal += await fileSystem.size(segment.file);
  }
  const walk = await walkLog({
    fileSystem,
    dir: path.join(options.dataDir, 'wal'),
    // Recovery replays the log after the newest valid checkpoint, so judge the log against that seq too.
    afterSeq: checkpointSeq ?? 0,
    recordBytesMax: limits.recordBytesMax,
    parseAll: true,
    visitor: {
      onRecord(_record, _seq, where) {
        if (options.onProgress === undefined) return;
        progress.records++;
        progress.bytesRead += where.bytes;
        options.onProgress(progress);
      },
      onProblem(problem: LogProblem) {
        problems.push({ ...problem });
        return 'continue';
      },
    },
  });
  return {
    healthy: !problems.some((problem) => problem.severity === 'corrupt'),
    records: walk.records,
    segments: walk.segments.length,
    checkpoints: checkpoints.length,
    checkpointSeq,
    lastSeq: walk.lastSeq,
    problems,
  };
}
