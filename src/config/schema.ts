// Every setting of `driftdb serve` declared once: its flag, environment variable, default, parser and doc.
// The flag is the kebab-case form of the key and the variable DRIFTDB_ + its upper snake case, so neither can drift.

/** Thrown for a setting that cannot be parsed or a combination that makes no sense; the CLI exits 2 on it. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export interface Setting<T> {
  /** What `--help` and the README show as the value's shape. */
  readonly shape: string;
  readonly default: T;
  /** Shown instead of the literal default when the default is derived at load time. */
  readonly defaultDoc?: string;
  readonly doc: string;
  /** False for secrets: they are read from the environment only, never from argv (visible in `ps`). */
  readonly hasFlag: boolean;
  /** True for boolean switches: `--flag` alone means true. */
  readonly isSwitch: boolean;
  /** The issue that brings the feature using this setting, if it is not live yet. */
  readonly later?: string;
  parse(raw: string): T;
}

interface Common {
  doc: string;
  later?: string;
  defaultDoc?: string;
}

function integer(options: Common & { default: number; min: number; max?: number }): Setting<number>;
function integer(options: Common & { default: null; min: number; max?: number }): Setting<number | null>;
function integer(options: Common & { default: number | null; min: number; max?: number }): Setting<number | null> {
  const max = options.max ?? Number.MAX_SAFE_INTEGER;
  return {
    ...common(options),
    shape: 'N',
    default: options.default,
    isSwitch: false,
    hasFlag: true,
    parse(raw) {
      if (!/^[0-9]+$/.test(raw)) throw new ConfigError(`expected a whole number, got "${raw}"`);
      const value = Number(raw);
      if (value < options.min || value > max) {
        throw new ConfigError(`expected a whole number from ${options.min} to ${max}, got ${raw}`);
      }
      return value;
    },
  };
}

function text(options: Common & { default: string; shape?: string }): Setting<string>;
function text(options: Common & { default: null; shape?: string; hasFlag?: boolean }): Setting<string | null>;
function text(options: Common & { default: string | null; shape?: string; hasFlag?: boolean }): Setting<string | null> {
  return {
    ...common(options),
    shape: options.shape ?? 'FILE',
    default: options.default,
    isSwitch: false,
    hasFlag: options.hasFlag ?? true,
    parse(raw) {
      if (raw === '') throw new ConfigError('expected a non-empty value');
      return raw;
    },
  };
}

function choice<const C extends string>(values: readonly C[], options: Common & { default: C }): Setting<C> {
  return {
    ...common(options),
    shape: values.join('|'),
    default: options.default,
    isSwitch: false,
    hasFlag: true,
    parse(raw) {
      if (!(values as readonly string[]).includes(raw)) {
        throw new ConfigError(`expected one of ${values.join(', ')}, got "${raw}"`);
      }
      return raw as C;
    },
  };
}

function boolean(options: Common): Setting<boolean> {
  return {
    ...common(options),
    shape: '',
    default: false,
    isSwitch: true,
    hasFlag: true,
    parse(raw) {
      const value = raw.toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(value)) return true;
      if (['0', 'false', 'no', 'off'].includes(value)) return false;
      throw new ConfigError(`expected true or false, got "${raw}"`);
    },
  };
}

function common(options: Common): Pick<Setting<unknown>, 'doc' | 'later' | 'defaultDoc'> {
  return { doc: options.doc, later: options.later, defaultDoc: options.defaultDoc };
}

const securityIssue = 'the security issue (tokens, lockout, rate limits, audit log)';

export const settings = {
  dataDir: text({
    default: './data',
    shape: 'DIR',
    doc: 'Directory holding the log (wal/), checkpoints, users.json and the TLS files.',
  }),
  host: text({ default: '127.0.0.1', shape: 'HOST', doc: 'Address to listen on.' }),
  port: integer({
    default: 8443,
    min: 0,
    max: 65535,
    doc: 'TCP port to listen on; 0 picks a free port (see the "listening" log line).',
  }),
  tls: choice(['self-signed', 'off', 'files'] as const, {
    default: 'self-signed',
    doc:
      'self-signed: generate a certificate for localhost/127.0.0.1/::1 once into <data-dir>/tls/ and reuse it; ' +
      'files: use --tls-cert/--tls-key; off: plain HTTP (behind a TLS proxy, tests).',
  }),
  tlsCert: text({ default: null, doc: 'PEM certificate (chain) for --tls files.' }),
  tlsKey: text({ default: null, doc: 'PEM private key for --tls files.' }),
  txIdleTimeoutMs: integer({ default: 30_000, min: 1, doc: 'An open transaction idle this long is rolled back.' }),
  txPerUserMax: integer({
    default: 64,
    min: 1,
    max: 100_000,
    doc: 'Open transactions one user may hold at once; past it a begin answers 503 unavailable with Retry-After.',
  }),
  txTotalMax: integer({
    default: 1024,
    min: 1,
    max: 1_000_000,
    doc: 'Open transactions of all users at once; past it a begin answers 503 unavailable with Retry-After.',
  }),
  txLifetimeMsMax: integer({
    default: 600_000,
    min: 1,
    doc: 'Longest a transaction may stay open, however active; then it is rolled back (timeoutMs at begin may shorten it).',
  }),
  lockTimeoutMs: integer({
    default: 5_000,
    min: 1,
    doc: 'A writer waits this long for a row lock, then fails with 409 lock_timeout.',
  }),
  checkpointIntervalMb: integer({
    default: 256,
    min: 1,
    max: 1_048_576,
    doc: 'Write a checkpoint after this many MiB of log since the last one.',
  }),
  slowQueryThresholdMs: integer({
    default: 1_000,
    min: 0,
    doc: 'Data-route requests taking at least this long (failed ones included) are recorded as slow queries.',
  }),
  slowQueryMaxStored: integer({
    default: 1_000,
    min: 1,
    max: 1_000_000,
    doc: 'Slow-query entries kept in memory for GET /v1/admin/slow-queries; the oldest goes first.',
  }),
  slowQueryLogPath: text({
    default: null,
    doc: 'Also append slow-query entries to this file (JSON lines); past 64 MiB it rotates to FILE.1 … FILE.4.',
  }),
  slowQueryStdout: boolean({ doc: 'Also log slow-query entries on stdout (whatever --log-level says).' }),
  slowQueryRedact: boolean({
    doc: 'Record slow-query statements with their literal values (keys, documents, compared values, query-string values) as ?.',
  }),
  metricsPublic: boolean({ doc: 'Serve GET /metrics without authentication (else it needs role admin).' }),
  observability: choice(['on', 'off'] as const, {
    default: 'on',
    doc: 'off: no metrics and no slow-query log are recorded (GET /metrics answers 404); for measuring their cost, as npm run bench does.',
  }),
  auditLogPath: text({
    default: null,
    defaultDoc: '<data-dir>/audit.log',
    doc: 'The hash-chained audit log file.',
    later: securityIssue,
  }),
  auditMaxEntries: integer({
    default: 100_000,
    min: 1,
    doc: 'Audit entries per log file; past it the file rotates and the hash chain continues in the next.',
    later: securityIssue,
  }),
  loginFailureThreshold: integer({
    default: 5,
    min: 1,
    doc: 'Failed logins for one username within 15 minutes that lock it.',
    later: securityIssue,
  }),
  lockoutMs: integer({ default: 900_000, min: 1, doc: 'How long a locked user stays locked.', later: securityIssue }),
  rateLimitMax: integer({
    default: null,
    min: 1,
    defaultDoc: 'off',
    doc: 'Data-route requests per window per user (else per client address); unset = unlimited.',
    later: securityIssue,
  }),
  rateLimitWindowMs: integer({ default: 60_000, min: 1, doc: 'Window of --rate-limit-max.', later: securityIssue }),
  authRateLimitMax: integer({
    default: 100,
    min: 1,
    doc: 'Token requests and failed authentications per window per client address.',
    later: securityIssue,
  }),
  authRateLimitWindowMs: integer({
    default: 60_000,
    min: 1,
    doc: 'Window of --auth-rate-limit-max.',
    later: securityIssue,
  }),
  logLevel: choice(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, {
    default: 'info',
    doc: 'Least severe level written to the JSON log on stdout.',
  }),
  adminPassword: text({
    default: null,
    shape: 'PASSWORD',
    hasFlag: false,
    defaultDoc: 'random, printed once',
    doc: 'Password of the admin user created on the first start of an empty data dir. Environment only.',
  }),
} as const;

export type Settings = typeof settings;
export type SettingName = keyof Settings;

/** The loaded configuration: one value per setting, frozen. */
export type Config = { readonly [K in SettingName]: Settings[K] extends Setting<infer T> ? T : never };

/** `checkpointIntervalMb` → `checkpoint-interval-mb`. */
export function flagOf(name: SettingName): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** `checkpointIntervalMb` → `DRIFTDB_CHECKPOINT_INTERVAL_MB`. */
export function envOf(name: SettingName): string {
  return `DRIFTDB_${flagOf(name).replace(/-/g, '_').toUpperCase()}`;
}

export const settingNames = Object.keys(settings) as SettingName[];
