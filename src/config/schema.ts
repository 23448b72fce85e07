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


export const settings = {
  dataDir: text({
    default: './data',
    shape: 'DIR',
    doc: 'Directory holding the log (wal/), checkpoints, the TLS files and the audit log.',
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
  tlsMinVersion: choice(['TLSv1.2', 'TLSv1.3'] as const, {
    default: 'TLSv1.2',
    doc: 'Oldest TLS version a client may connect with.',
  }),
  requestTimeoutMs: integer({
    default: 30_000,
    min: 100,
    doc: 'A request (headers and body) must arrive whole within this long, or it is answered 400 and its connection closed (slow clients).',
  }),
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
  memoryLimitMb: integer({
    default: null,
    min: 16,
    max: 1_048_576,
    defaultDoc: 'half the heap limit',
    doc:
      'As the V8 heap in use reaches this many MiB, writes answer 503 unavailable (reads go on, /readyz says why). ' +
      'serve runs Node with a heap limit of twice this (restarting itself with --max-old-space-size if needed), so ' +
      'a restart can always load what the server held.',
  }),
  heapReclaimIdleMs: integer({
    default: 500,
    min: 0,
    max: 3_600_000,
    doc:
      'Once the server has been idle this long after its heap grew by 64 MiB or more (recovery, a load, a burst of ' +
      'writes), a compacting garbage collection hands the free heap back to the OS, so RSS follows the live data. ' +
      '0 turns it off.',
  }),
  changesBufferCommits: integer({
    default: 10_000,
    min: 1,
    max: 10_000_000,
    doc:
      'A change-feed stream (Server-Sent Events) whose client takes nothing while more than this many commits arrive ' +
      '(its socket stays full) is sent an error event naming the seq to resume after, and closed.',
  }),
  changesFlushMs: integer({
    default: 5,
    min: 0,
    max: 1000,
    doc:
      'While commits keep coming, change-feed streams (Server-Sent Events) are sent their new events at most this ' +
      'often, so one write to each client carries many commits; the first commit after a quiet spell goes out at ' +
      'once. 0 sends after every group commit.',
  }),
  idempotencyTtlMs: integer({
    default: 86_400_000,
    min: 1,
    doc:
      'How long the first answer to a write sent with an Idempotency-Key is kept (with its commit) for replay; at ' +
      'most 100,000 keys or 64 MiB of answers are kept, the oldest going first.',
  }),
  cluster: choice(['off', 'etcd'] as const, {
    default: 'off',
    doc:
      'etcd: join a cluster whose commit log is kept in etcd (needs --etcd-endpoints and --node-id); every node serves ' +
      'the whole API and keeps the full history in its own log. off: a single node.',
  }),
  etcdEndpoints: text({
    default: null,
    shape: 'URLS',
    doc: 'Comma-separated client URLs of the etcd members (3.4+, three or five), e.g. http://10.0.0.1:2379,http://10.0.0.2:2379.',
  }),
  etcdPrefix: text({ default: 'driftdb/', shape: 'PREFIX', doc: 'Every key the cluster keeps in etcd starts with this, so one etcd can hold several clusters.' }),
  nodeId: text({
    default: null,
    shape: 'NAME',
    doc: 'This node\'s name in the cluster: letters, digits, "-" and "_", unique among the nodes and kept across restarts.',
  }),
  clusterAdvertiseUrl: text({
    default: null,
    shape: 'URL',
    defaultDoc: 'the URL it listens on',
    doc: 'The URL other nodes reach this one at (to stream its log when they catch up), when it differs from the one it listens on.',
  }),
  clusterTrimKeepRecords: integer({
    default: 100_000,
    min: 0,
    max: 100_000_000,
    doc:
      'etcd keeps this many records behind the slowest live node (and trims what is older, once at least two nodes hold ' +
      'it durably); a node away for longer catches up from a peer\'s log instead.',
  }),
  minSeqWaitMs: integer({
    default: 5_000,
    min: 0,
    max: 60_000,
    doc: 'A read with minSeq waits this long for the node to apply that seq, then answers 503 unavailable with Retry-After.',
  }),
  clusterWriteTimeoutMs: integer({
    default: 10_000,
    min: 100,
    max: 600_000,
    doc:
      'Cluster mode: a commit etcd has not confirmed within this long answers 503 unavailable (when it was sent, it may ' +
      'still be applied: retry with the same Idempotency-Key). Writes are refused at once after 5 s without an etcd quorum.',
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
  auditLog: choice(['on', 'off'] as const, {
    default: 'on',
    doc:
      'off records no audit entries at all (the chain resumes where it stopped when turned on again, and the change ' +
      'is audited as config_changed); for benchmarks and throwaway servers, not for production.',
  }),
  auditLogPath: text({
    default: null,
    defaultDoc: '<data-dir>/audit.log',
    doc: 'The hash-chained audit log (JSON lines, mode 0600); rotated files sit beside it as FILE.1, FILE.2, … (oldest first).',
  }),
  auditLogRotateMb: integer({
    default: 64,
    min: 1,
    max: 1_048_576,
    doc: 'Rotate the audit log file once it passes this many MiB; the hash chain continues in the next file. Rotated files are kept.',
  }),
  auditMaxEntries: integer({
    default: 100_000,
    min: 1,
    max: 10_000_000,
    doc: 'Newest audit entries kept in memory for GET /v1/admin/audit and /stats (the file keeps them all).',
  }),
  auditHmacKeyFile: text({
    default: null,
    doc:
      'Chain the audit log with HMAC-SHA256 under the key in this file (at least 32 bytes) instead of plain SHA-256, so ' +
      'entries cannot be forged without it. Keep it outside the data dir (refused inside it).',
  }),
  tokenTtlMs: integer({
    default: 86_400_000,
    min: 1_000,
    doc: 'Lifetime of a bearer token from POST /v1/auth/token; past it the token answers 401 (audited token_expired).',
  }),
  loginFailureThreshold: integer({
    default: 5,
    min: 1,
    max: 1_000_000,
    doc: 'Failed logins for one username within --login-failure-window-ms that lock it (the last one locks).',
  }),
  loginFailureWindowMs: integer({
    default: 900_000,
    min: 1,
    doc: 'Window in which failed logins for one username are counted towards --login-failure-threshold.',
  }),
  lockoutMs: integer({ default: 900_000, min: 1, doc: 'How long a locked user stays locked (423 user_locked), unless an admin unlocks it.' }),
  rateLimitMax: integer({
    default: null,
    min: 1,
    defaultDoc: 'off',
    doc: 'Data-route requests per window per user (else per client address); unset = unlimited.',
  }),
  rateLimitWindowMs: integer({ default: 60_000, min: 1, doc: 'Window of --rate-limit-max.' }),
  authRateLimitMax: integer({
    default: 100,
    min: 1,
    doc: 'Token requests and failed authentications per window per client address; past it they answer 429.',
  }),
  authRateLimitWindowMs: integer({ default: 60_000, min: 1, doc: 'Window of --auth-rate-limit-max.' }),
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
