// Scenario results, their check against the targets of issues #2 and #3, the printed table and the JSON report.

import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import type { BenchOptions } from './options.js';
import { round2 } from './stats.js';

export const MiB = 1024 * 1024;

export type Unit = 'req/s' | 'commits/s' | 'versions/s' | 'writes/s' | 's' | 'ms' | 'MiB' | 'kB' | 'rows';

/** A target is either on the ratio to the ceiling or on the value itself. */
export interface Target {
  on: 'ratio' | 'value';
  op: '>=' | '<=';
  limit: number;
}

export interface ScenarioResult {
  name: string;
  status: 'measured' | 'skipped' | 'failed';
  /** Why it was skipped or failed. */
  reason?: string;
  value?: number;
  unit?: Unit;
  /** Hello-world req/s at the same connection count, measured right before. */
  ceiling?: number;
  ratio?: number;
  target?: Target;
  pass?: boolean;
  latencyMs?: { p50: number; p99: number };
  /** Non-2xx answers (other than the expected retryable 409s of transactions) plus transport errors and timeouts. */
  errors?: number;
  notes: string[];
  details?: Record<string, unknown>;
}

export function measured(result: Omit<ScenarioResult, 'status' | 'pass' | 'ratio'> & { ratio?: number }): ScenarioResult {
  const out: ScenarioResult = { ...result, status: 'measured' };
  if (out.ratio === undefined && out.value !== undefined && out.ceiling !== undefined && out.ceiling > 0) {
    out.ratio = out.value / out.ceiling;
  }
  if (out.target !== undefined) out.pass = meets(out, out.target);
  return out;
}

export function skipped(name: string, reason: string): ScenarioResult {
  return { name, status: 'skipped', reason, notes: [] };
}

export function failed(name: string, error: unknown): ScenarioResult {
  const reason = error instanceof Error ? error.message : String(error);
  return { name, status: 'failed', reason, notes: [] };
}

function meets(result: ScenarioResult, target: Target): boolean | undefined {
  const x = target.on === 'ratio' ? result.ratio : result.value;
  if (x === undefined) return undefined;
  return target.op === '>=' ? x >= target.limit : x <= target.limit;
}

function describeTarget(target: Target | undefined): string {
  if (target === undefined) return '-';
  const op = target.op === '>=' ? '≥' : '≤';
  return target.on === 'ratio' ? `ratio ${op} ${target.limit}` : `${op} ${target.limit}`;
}

function verdict(result: ScenarioResult): string {
  if (result.status !== 'measured') return result.status.toUpperCase();
  const base = result.pass === undefined ? '-' : result.pass ? 'PASS' : 'FAIL';
  return (result.errors ?? 0) > 0 ? `${base} (ERRORS)` : base;
}

function fmt(x: number | undefined, digits = 0): string {
  if (x === undefined) return '-';
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function valueText(result: ScenarioResult): string {
  if (result.value === undefined) return '-';
  const digits = result.unit === 's' || result.unit === 'ms' ? 2 : result.unit === 'kB' ? 1 : 0;
  return `${fmt(result.value, digits)} ${result.unit ?? ''}`.trim();
}

export function renderTable(results: ScenarioResult[]): string {
  const header = ['scenario', 'result', 'ceiling req/s', 'ratio', 'target', 'verdict', 'p50 ms', 'p99 ms', 'errors'];
  const rows = results.map((r) => [
    r.name,
    valueText(r),
    fmt(r.ceiling),
    r.ratio === undefined ? '-' : r.ratio.toFixed(3),
    describeTarget(r.target),
    verdict(r),
    fmt(r.latencyMs?.p50, 2),
    fmt(r.latencyMs?.p99, 2),
    r.errors === undefined ? '-' : String(r.errors),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]): string => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  const out = [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
  const remarks = results.flatMap((r) => [
    ...(r.reason !== undefined ? [`${r.name}: ${r.reason}`] : []),
    ...r.notes.map((note) => `${r.name}: ${note}`),
  ]);
  if (remarks.length > 0) out.push('', ...remarks.map((remark) => `  - ${remark}`));
  return out.join('\n');
}

function gitCommit(repoRoot: string): string | null {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

export interface ReportInput {
  repoRoot: string;
  resultsDir: string;
  options: BenchOptions;
  startedAt: Date;
  /** os.loadavg() when the run started: other work on the machine makes every figure noisier. */
  loadAverageAtStart: number[];
  results: ScenarioResult[];
}

/** Writes bench-<timestamp>.json and answers its path. */
export function writeReport(input: ReportInput): string {
  mkdirSync(input.resultsDir, { recursive: true });
  const stamp = input.startedAt.toISOString().replace(/[:.]/g, '-');
  const file = join(input.resultsDir, `bench-${stamp}.json`);
  const report = {
    startedAt: input.startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    commit: gitCommit(input.repoRoot),
    machine: { node: process.version, platform: process.platform, arch: process.arch, cpus: cpus().length, cpuModel: cpus()[0]?.model ?? null, totalMemMiB: round2(totalmem() / MiB),
      loadAverageAtStart: input.loadAverageAtStart.map(round2),
      loadAverageAtEnd: loadavg().map(round2),
    },
    options: { ...input.options, scenarios: [...input.options.scenarios] },
    results: input.results,
  };
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  return file;
}
