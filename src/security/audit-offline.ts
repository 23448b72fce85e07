// `driftdb audit verify`: the audit chain checked with the server stopped, against the head and hashing ranges the
// database recorded. Opening the database recovers it as a start would (a torn log tail is cut), and writes nothing else.

import type { Config } from '../config/index.js';
import { openDatabase } from '../engine/index.js';
import { listAuditFiles } from './audit-files.js';
import { readAuditHead, readHashRanges } from './audit-log.js';
import { verifyAuditChain, type VerifyResult } from './audit-verify.js';
import { loadAuditHmacKey } from './security.js';

export async function verifyAuditOffline(
  config: Pick<Config, 'dataDir' | 'auditLogPath' | 'auditHmacKeyFile'> & Partial<Pick<Config, 'nodeId'>>,
): Promise<VerifyResult> {
  const key = await loadAuditHmacKey(config);
  const db = await openDatabase({ dataDir: config.dataDir });
  let head;
  let ranges;
  try {
    // A cluster node's chain is recorded under its id (audit-log.ts): --node-id names it.
    const nodeId = config.nodeId ?? null;
    head = readAuditHead(db, nodeId);
    ranges = readHashRanges(db, nodeId);
  } finally {
    await db.close();
  }
  return verifyAuditChain({ files: await listAuditFiles(config.auditLogPath!), head, ranges, key });
}
