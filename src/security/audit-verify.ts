// Verification of the audit chain across every file, oldest first: each entry's id follows the one before, its
// prevHash is that entry's hash, its hash covers its content, and the chain reaches the head the database recorded.
// The first entry that fails is named; a chain that is sound but shorter than the recorded head is "truncated".

import path from 'node:path';
import { entryHash, genesisHash, keyFingerprint, rangeFor, type AuditEntry, type HashRange } from './audit-chain.js';
import { forEachLine, type AuditFile } from './audit-files.js';

/** The newest entry the database log recorded (after the file holding it was synced). */
export interface AuditHead {
  count: number;
  hash: string;
}

export interface VerifyResult {
  valid: boolean;
  /** Entries that verified, in order from the first. */
  entries: number;
  /** The first entry that fails; null when only the tail is missing (then `truncated`). Absent when valid. */
  firstInvalidId?: number | null;
  truncated?: boolean;
  reason?: string;
  files: number;
}

export interface VerifyInput {
  files: readonly AuditFile[];
  /** Bytes of each file to read (its size when verification began); whole files when absent. */
  endOffsets?: ReadonlyMap<string, number>;
  head: AuditHead | null;
  ranges: readonly HashRange[];
  key: Buffer | null;
  /** Sees every entry that verified, in order (to fill the in-memory ring at start). */
  onEntry?: (entry: AuditEntry) => void;
}

class ChainBroken extends Error {
  constructor(
    readonly id: number,
    readonly reason: string,
  ) {
    super(reason);
  }
}

export async function verifyAuditChain(input: VerifyInput): Promise<VerifyResult> {
  const state = { expectedId: 1, prevHash: genesisHash };
  const keyId = input.key === null ? null : keyFingerprint(input.key);
  try {
    for (const [fileIndex, file] of input.files.entries()) {
      const lastFile = fileIndex === input.files.length - 1;
      let lineNumber = 0;
      await forEachLine(
        file.path,
        (line, complete) => {
          lineNumber++;
          // A line a crash cut short at the very end is not an entry yet: the head comparison below judges it.
          if (!complete && lastFile) return;
          // The file's name only: verification results reach clients, and no answer carries a server path.
          const where = `${path.basename(file.path)} line ${lineNumber}`;
          const entry = line === null ? null : parseEntry(line);
          if (entry === null) throw new ChainBroken(state.expectedId, `${where} is not an audit entry`);
          checkEntry(entry, state, { input, keyId, where });
          state.prevHash = entry.hash;
          state.expectedId++;
          input.onEntry?.(entry);
        },
        input.endOffsets?.get(file.path),
      );
    }
  } catch (error) {
    if (!(error instanceof ChainBroken)) throw error;
    return { valid: false, entries: state.expectedId - 1, firstInvalidId: error.id, reason: error.reason, files: input.files.length };
  }
  const entries = state.expectedId - 1;
  if (input.head !== null && entries < input.head.count) {
    return {
      valid: false,
      entries,
      firstInvalidId: null,
      truncated: true,
      reason: `the log ends at entry ${entries}, but the database recorded entry ${input.head.count}: its tail was cut off`,
      files: input.files.length,
    };
  }
  return { valid: true, entries, files: input.files.length };
}

function checkEntry(
  entry: AuditEntry,
  state: { expectedId: number; prevHash: string },
  context: { input: VerifyInput; keyId: string | null; where: string },
): void {
  const { input, keyId, where } = context;
  if (entry.id !== state.expectedId) {
    const reason =
      entry.id > state.expectedId
        ? `entries ${state.expectedId} to ${entry.id - 1} are missing before ${where}`
        : `${where} holds entry ${entry.id} where entry ${state.expectedId} belongs (inserted, repeated or reordered)`;
    throw new ChainBroken(entry.id, reason);
  }
  if (entry.prevHash !== state.prevHash) {
    throw new ChainBroken(entry.id, `entry ${entry.id} does not follow the entry before it (prevHash differs)`);
  }
  const range = rangeFor(input.ranges, entry.id);
  if (range.alg === 'hmac-sha256' && input.key === null) {
    throw new ChainBroken(entry.id, `entries from ${range.fromId} are chained with HMAC-SHA256: verifying them needs the key (--audit-hmac-key-file)`);
  }
  if (range.alg === 'hmac-sha256' && range.keyId !== keyId) {
    throw new ChainBroken(entry.id, `entries from ${range.fromId} were chained under another HMAC key (key id ${range.keyId}, given ${keyId})`);
  }
  if (entryHash(entry, range.alg === 'hmac-sha256' ? input.key : null) !== entry.hash) {
    throw new ChainBroken(entry.id, `entry ${entry.id}'s hash does not match its content (edited)`);
  }
  if (input.head !== null && entry.id === input.head.count && entry.hash !== input.head.hash) {
    throw new ChainBroken(entry.id, `entry ${entry.id} is not the entry the database recorded (the chain was rewritten)`);
  }
}

function parseEntry(line: string): AuditEntry | null {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return null;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return null;
  const entry = value as Partial<AuditEntry>;
  const ok = Number.isSafeInteger(entry.id) && typeof entry.hash === 'string' && typeof entry.prevHash === 'string';
  return ok ? (entry as AuditEntry) : null;
}
