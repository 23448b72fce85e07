// `driftdb export` and `driftdb import`: open a data dir offline (holding its lock), move one table's rows to or from
// NDJSON (src/service/table-transfer.ts), and report progress on stderr; stdout carries only the exported lines.

import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { pino } from 'pino';
import { ConfigError, loadConfig } from './config/index.js';
import { openDatabase, type Database } from './engine/index.js';
import { DriftError } from './errors.js';
import { Progress } from './observability/progress.js';
import { lockDataDir } from './service/data-dir-lock.js';
import { exportTable, ImportError, importBatchRowsDefault, importBatchRowsMax, importTable } from './service/table-transfer.js';

export const exportImportUsage = `Usage:
  driftdb export --data-dir DIR --table T [--as-of SEQ|TIME] [--history] [--out FILE]
  driftdb import --data-dir DIR --table T [--file FILE] [--history] [--primary-key FIELD] [--batch-rows N]
Both open the data dir offline: stop the server first.`;

/** When not on a terminal, a progress line this often (a long import in a log file still shows it is alive). */
const plainProgressIntervalMs = 10_000;

interface CommandFlags {
  values: Map<string, string>;
  switches: Set<string>;
  /** What is left for loadConfig (--data-dir, or DRIFTDB_DATA_DIR in the environment). */
  rest: string[];
}

/** Takes the command's own flags out of `args`; `valued` take a value, `switches` do not. */
function commandFlags(args: string[], valued: string[], switches: string[]): CommandFlags {
  const flags: CommandFlags = { values: new Map(), switches: new Set(), rest: [] };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const [name, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    if (switches.includes(name)) {
      flags.switches.add(name);
    } else if (valued.includes(name)) {
      const value = inline ?? args[++i];
      if (value === undefined || value === '' || (inline === undefined && value.startsWith('--'))) throw new ConfigError(`${name} needs a value`);
      flags.values.set(name, value);
    } else {
      flags.rest.push(arg);
    }
  }
  return flags;
}

function required(flags: CommandFlags, name: string): string {
  const value = flags.values.get(name);
  if (value === undefined) throw new ConfigError(`${name} is required`);
  return value;
}

/** The database of `dataDir`, opened offline with warnings on stderr (stdout may be the export). */
async function openOffline(dataDir: string, command: 'export' | 'import'): Promise<{ db: Database; done: () => Promise<void> }> {
  // An import may start a new data dir; an export of one that does not exist is an error, not an empty database.
  const lock = lockDataDir(dataDir, command, { createDir: command === 'import' });
  if (lock === null) throw new DriftError('not_found', `the data dir ${dataDir} does not exist`);
  const logger = pino({ level: 'warn' }, pino.destination(2));
  const db = await openDatabase({ dataDir, logger }).catch((error: unknown) => {
    lock.release();
    throw error;
  });
  return {
    db,
    done: async () => {
      await db.close();
      lock.release();
    },
  };
}

export async function runExport(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) return usage();
  const flags = commandFlags(args, ['--table', '--as-of', '--out'], ['--history']);
  const table = required(flags, '--table');
  const config = loadConfig(flags.rest, process.env, { only: ['dataDir'] });
  const out = flags.values.get('--out');
  const { db, done } = await openOffline(config.dataDir, 'export');
  const stream: NodeJS.WritableStream | WriteStream = out === undefined ? process.stdout : createWriteStream(out, { mode: 0o600 });
  const progress = new Progress({ stream: process.stderr, plainIntervalMs: out === undefined ? null : plainProgressIntervalMs });
  try {
    const asOf = flags.values.get('--as-of');
    const lines = await exportTable(db, {
      table,
      history: flags.switches.has('--history'),
      ...(asOf === undefined ? {} : { asOf }),
      write: async (line) => {
        // Respect backpressure: a slow reader of stdout must not make the export buffer the table in memory.
        if (!stream.write(`${line}\n`)) await once(stream, 'drain');
      },
      onProgress: (p) => progress.update(() => `export: ${p.lines} lines`),
    });
    progress.end();
    if (out !== undefined) await new Promise<void>((resolve, reject) => (stream as WriteStream).end((error?: Error | null) => (error ? reject(error) : resolve())));
    process.stderr.write(`driftdb: exported ${lines} ${flags.switches.has('--history') ? 'versions' : 'rows'} of ${table}\n`);
    return 0;
  } catch (error) {
    progress.end();
    if (error instanceof DriftError) return failWith(error.message);
    throw error;
  } finally {
    await done();
  }
}

export async function runImport(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) return usage();
  const flags = commandFlags(args, ['--table', '--file', '--primary-key', '--batch-rows'], ['--history']);
  const table = required(flags, '--table');
  const batchRows = batchRowsOf(flags.values.get('--batch-rows'));
  const config = loadConfig(flags.rest, process.env, { only: ['dataDir'] });
  const file = flags.values.get('--file');
  const { db, done } = await openOffline(config.dataDir, 'import');
  const progress = new Progress({ stream: process.stderr, plainIntervalMs: plainProgressIntervalMs });
  const started = Date.now();
  try {
    await ensureTable(db, table, flags.values.get('--primary-key'));
    const input = file === undefined ? process.stdin : createReadStream(file);
    const lines = createInterface({ input, crlfDelay: Infinity });
    const written = await importTable(db, {
      table,
      history: flags.switches.has('--history'),
      batchRows,
      lines,
      onProgress: (p) =>
        progress.update(() => `import: ${p.lines} ${flags.switches.has('--history') ? 'versions' : 'rows'} committed, ${Math.round(p.lines / Math.max((Date.now() - started) / 1000, 0.001))}/s`),
    });
    progress.end();
    process.stderr.write(`driftdb: imported ${written} ${flags.switches.has('--history') ? 'versions' : 'rows'} into ${table}\n`);
    return 0;
  } catch (error) {
    progress.end();
    if (error instanceof ImportError) {
      const kept = error.committedLines === 0 ? 'nothing was imported' : `the ${error.committedLines} rows of the lines before it are imported`;
      return failWith(`${error.message}. Nothing of its batch (from line ${error.batchFirstLine}) was written; ${kept}.`);
    }
    if (error instanceof DriftError) return failWith(error.message);
    throw error;
  } finally {
    await done();
  }
}

/** The table must exist, unless --primary-key says how to create it. */
async function ensureTable(db: Database, table: string, primaryKey: string | undefined): Promise<void> {
  try {
    db.getTable(table);
  } catch (error) {
    if (!(error instanceof DriftError && error.code === 'table_not_found') || primaryKey === undefined) throw error;
    await db.createTable({ name: table, primaryKey });
  }
}

function batchRowsOf(raw: string | undefined): number {
  if (raw === undefined) return importBatchRowsDefault;
  const value = Number(raw);
  if (!/^[0-9]+$/.test(raw) || value < 1 || value > importBatchRowsMax) {
    throw new ConfigError(`--batch-rows: expected a whole number from 1 to ${importBatchRowsMax}, got ${raw}`);
  }
  return value;
}

function usage(): number {
  process.stdout.write(`${exportImportUsage}\n`);
  return 0;
}

function failWith(message: string): number {
  process.stderr.write(`driftdb: ${message}\n`);
  return 1;
}
