// Command-line options of `npm run bench`: parsed once, validated, frozen and passed down.

export const scenarioNames = [
  'ceiling',
  'calibration',
  'floor',
  'sqlite',
  'put',
  'get',
  'get-bearer',
  'get-policy',
  'query',
  'tx-distinct',
  'tx-hot',
  'observability',
  'restart',
  'login',
  'feed',
  'idempotency',
  'memory-guard',
  'admin-page',
  'cluster',
  'history',
] as const;
export type ScenarioName = (typeof scenarioNames)[number];

export interface BenchOptions {
  readonly scenarios: ReadonlySet<ScenarioName>;
  readonly durationSeconds: number;
  readonly warmupSeconds: number;
  readonly connections: number;
  readonly txClients: number;
  readonly rows: number;
  readonly restartEvents: number;
  /** Concurrent PUTs (or batches) while preloading rows over HTTP. */
  readonly preloadInFlight: number;
  /** The history scenario's keys, and versions written per key. */
  readonly historyKeys: number;
  readonly historyVersions: number;
  /** The --memory-limit-mb the memory-guard scenario starts its server with. */
  readonly guardLimitMb: number;
  /** Keep the temp dir (server logs, data dirs) for a post-mortem instead of removing it. */
  readonly keepTemp: boolean;
  /** When set, every DriftDB server the bench starts writes a V8 CPU profile (.cpuprofile) into this directory. */
  readonly cpuProfDir: string | null;
}

export const usage = `usage: node dist/bench/run.js [options]
  --only a,b            scenarios to run (default: all): ${scenarioNames.join(', ')}
  --duration N          seconds measured per load or latency run (default 10)
  --warmup N            seconds of discarded warm-up before each load or latency run (default 2)
  --connections N       HTTP connections for ceiling, calibration, put, get, query (default 32)
  --tx-clients N        concurrent transaction clients (default 32)
  --rows N              rows preloaded for get/query/tx and the floor/sqlite peers (default 100000)
  --restart-events N    events in the restart/RSS log (default 1000000)
  --preload-in-flight N concurrent preload requests (default 64)
  --history-keys N      keys of the history scenario (default 100000)
  --history-versions N  versions written per history key (default 200: 20M versions, about 20 minutes
                        and 10 GB of disk; --history-keys 10000 --history-versions 50 takes a few minutes)
  --guard-limit-mb N    --memory-limit-mb of the memory-guard scenario's server (default 256)
  --keep-temp           keep the temp dir (server logs, data dirs) and print its path
  --cpu-prof DIR        servers write V8 CPU profiles into DIR (open them in Chrome DevTools)`;

const defaults = {
  durationSeconds: 10,
  warmupSeconds: 2,
  connections: 32,
  txClients: 32,
  rows: 100_000,
  restartEvents: 1_000_000,
  preloadInFlight: 64,
  historyKeys: 100_000,
  historyVersions: 200,
  guardLimitMb: 256,
};

/** Upper bounds so a typo cannot start a day-long run or exhaust the machine. */
const optionValueMax = {
  durationSeconds: 3600,
  warmupSeconds: 600,
  connections: 1024,
  txClients: 1024,
  rows: 10_000_000,
  restartEvents: 20_000_000,
  preloadInFlight: 1024,
  historyKeys: 10_000_000,
  historyVersions: 10_000,
  guardLimitMb: 1_048_576,
};

/** The history scenario's keys × versions: five times the default scale, about 25 GB of log. */
const historyVersionsTotalMax = 100_000_000;

type NumericOption = keyof typeof defaults;

const numericFlags: Record<string, NumericOption> = {
  '--duration': 'durationSeconds',
  '--warmup': 'warmupSeconds',
  '--connections': 'connections',
  '--tx-clients': 'txClients',
  '--rows': 'rows',
  '--restart-events': 'restartEvents',
  '--preload-in-flight': 'preloadInFlight',
  '--history-keys': 'historyKeys',
  '--history-versions': 'historyVersions',
  '--guard-limit-mb': 'guardLimitMb',
};

export class UsageError extends Error {}

export function parseOptions(argv: readonly string[]): BenchOptions {
  const numbers = { ...defaults };
  let scenarios: Set<ScenarioName> = new Set(scenarioNames);
  let keepTemp = false;
  let cpuProfDir: string | null = null;
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i]!;
    const value = argv[i + 1];
    if (flag === '--help' || flag === '-h') throw new UsageError('');
    if (flag === '--keep-temp') {
      keepTemp = true;
      i--;
      continue;
    }
    if (value === undefined) throw new UsageError(`${flag} needs a value`);
    if (flag === '--only') {
      scenarios = parseScenarios(value);
    } else if (flag === '--cpu-prof') {
      cpuProfDir = value;
    } else if (flag in numericFlags) {
      const name = numericFlags[flag]!;
      numbers[name] = parseCount(flag, value, name === 'warmupSeconds' ? 0 : 1, optionValueMax[name]);
    } else {
      throw new UsageError(`unknown option ${flag}`);
    }
  }
  if (numbers.historyKeys * numbers.historyVersions > historyVersionsTotalMax) {
    throw new UsageError(`--history-keys × --history-versions must be at most ${historyVersionsTotalMax}`);
  }
  return Object.freeze({ ...numbers, scenarios, keepTemp, cpuProfDir });
}

function parseScenarios(value: string): Set<ScenarioName> {
  const names = value.split(',').map((name) => name.trim()).filter((name) => name !== '');
  const known = new Set<string>(scenarioNames);
  const unknown = names.filter((name) => !known.has(name));
  if (unknown.length > 0) throw new UsageError(`unknown scenario(s): ${unknown.join(', ')}`);
  if (names.length === 0) throw new UsageError('--only needs at least one scenario');
  return new Set(names as ScenarioName[]);
}

function parseCount(flag: string, value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value)) throw new UsageError(`${flag} must be a whole number, got ${JSON.stringify(value)}`);
  const n = Number(value);
  if (n < min || n > max) throw new UsageError(`${flag} must be between ${min} and ${max}`);
  return n;
}
