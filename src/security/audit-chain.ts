// The audit log's entries and their hash chain, pure: which event types exist and how severe they are, the canonical
// form an entry is hashed in, and SHA-256 (or HMAC-SHA256 under a key) over that form and the previous entry's hash.

import { createHash, createHmac } from 'node:crypto';

export type Severity = 'info' | 'warning' | 'critical';
export type Outcome = 'success' | 'failure';

/** Every event type of http-api.md §7 (and §8's policy_changed), with its severity and outcome. */
export const auditEventTypes = {
  login_success: { severity: 'info', outcome: 'success' },
  login_failure: { severity: 'warning', outcome: 'failure' },
  logout: { severity: 'info', outcome: 'success' },
  token_expired: { severity: 'info', outcome: 'failure' },
  access_denied: { severity: 'warning', outcome: 'failure' },
  user_created: { severity: 'info', outcome: 'success' },
  user_deleted: { severity: 'warning', outcome: 'success' },
  password_changed: { severity: 'info', outcome: 'success' },
  user_locked: { severity: 'critical', outcome: 'failure' },
  user_unlocked: { severity: 'info', outcome: 'success' },
  roles_changed: { severity: 'warning', outcome: 'success' },
  brute_force_detected: { severity: 'critical', outcome: 'failure' },
  rate_limited: { severity: 'warning', outcome: 'failure' },
  table_created: { severity: 'info', outcome: 'success' },
  table_dropped: { severity: 'warning', outcome: 'success' },
  table_forked: { severity: 'info', outcome: 'success' },
  table_restored: { severity: 'warning', outcome: 'success' },
  config_changed: { severity: 'warning', outcome: 'success' },
  policy_changed: { severity: 'warning', outcome: 'success' },
} as const satisfies Record<string, { severity: Severity; outcome: Outcome }>;

export type AuditType = keyof typeof auditEventTypes;
export const auditTypeNames = Object.keys(auditEventTypes) as AuditType[];
export const severities: readonly Severity[] = ['info', 'warning', 'critical'];
export const outcomes: readonly Outcome[] = ['success', 'failure'];

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** One line of the audit log, members in this order. */
export interface AuditEntry {
  /** Position in the chain: 1, 2, 3, … across files and restarts. */
  id: number;
  ts: string;
  type: AuditType;
  severity: Severity;
  outcome: Outcome;
  /** The authenticated user, or for events without one the attempted username, or null. */
  user: string | null;
  clientIp: string | null;
  requestId: string | null;
  details: { [key: string]: JsonValue };
  prevHash: string;
  hash: string;
}

/** The prevHash of entry 1. */
export const genesisHash = '0'.repeat(64);

export type HashAlgorithm = 'sha256' | 'hmac-sha256';

/** How entries from `fromId` on are hashed; HMAC ranges name their key by a fingerprint, never the key. */
export interface HashRange {
  fromId: number;
  alg: HashAlgorithm;
  keyId?: string;
}

/** JSON with object members sorted by name at every level: the one text an entry's hash covers. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const names = Object.keys(value).filter((name) => (value as Record<string, unknown>)[name] !== undefined).sort();
  return `{${names.map((name) => `${JSON.stringify(name)}:${canonicalJson((value as Record<string, unknown>)[name])}`).join(',')}}`;
}

/**
 * The hash of an entry: over the canonical form of every member but `hash` itself (so an added, removed or edited
 * member changes it), prevHash included, which chains each entry to the one before.
 */
export function entryHash(entry: Omit<AuditEntry, 'hash'> & { hash?: string }, key: Buffer | null): string {
  const { hash: _hash, ...content } = entry;
  const text = canonicalJson(content);
  return key === null ? createHash('sha256').update(text).digest('hex') : createHmac('sha256', key).update(text).digest('hex');
}

/** A key's public name: lets verification say "keyed with another key" without storing anything secret. */
export function keyFingerprint(key: Buffer): string {
  return createHash('sha256').update('driftdb audit key id\0').update(key).digest('hex').slice(0, 16);
}

/** The range that covers entry `id` (ranges ascend by fromId; before the first, plain SHA-256). */
export function rangeFor(ranges: readonly HashRange[], id: number): HashRange {
  let found: HashRange = { fromId: 1, alg: 'sha256' };
  for (const range of ranges) if (range.fromId <= id) found = range;
  return found;
}
