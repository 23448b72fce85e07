// Turns argv and the environment into one frozen Config: flags win over DRIFTDB_* variables, which win over defaults.
// Pure: no I/O and no process globals, so tests call it with plain arrays and objects.

import path from 'node:path';
import { ConfigError, envOf, flagOf, settingNames, settings, type Config, type Setting, type SettingName } from './schema.js';

export interface LoadOptions {
  /** Accept only these settings (a subcommand such as `doctor` needs only --data-dir); default all. */
  only?: readonly SettingName[];
}

type Env = Readonly<Record<string, string | undefined>>;

/** Parses `argv` (the arguments after the subcommand) and `env`; throws ConfigError on anything it cannot use. */
export function loadConfig(argv: readonly string[], env: Env, options: LoadOptions = {}): Config {
  const accepted = options.only ?? settingNames;
  const fromFlags = parseFlags(argv, accepted);
  const values: Record<string, unknown> = {};
  for (const name of accepted) {
    values[name] = resolveSetting(name, fromFlags.get(name), env);
  }
  for (const name of settingNames) {
    if (!(name in values)) values[name] = settings[name].default;
  }
  const config = values as { -readonly [K in keyof Config]: Config[K] };
  deriveDefaults(config);
  checkCombinations(config);
  return Object.freeze(config);
}

function resolveSetting(name: SettingName, flagValue: string | undefined, env: Env): unknown {
  const setting: Setting<unknown> = settings[name];
  if (flagValue !== undefined) return parseWith(setting, flagValue, `--${flagOf(name)}`);
  const envValue = env[envOf(name)];
  // An empty variable counts as unset, as shells make `DRIFTDB_PORT=` easy to leave behind.
  if (envValue !== undefined && envValue !== '') return parseWith(setting, envValue, envOf(name));
  return setting.default;
}

function parseWith(setting: Setting<unknown>, raw: string, source: string): unknown {
  try {
    return setting.parse(raw);
  } catch (error) {
    if (error instanceof ConfigError) throw new ConfigError(`${source}: ${error.message}`);
    throw error;
  }
}

/** Maps each given flag to its raw value; a repeated flag keeps its last value, as most CLIs do. */
function parseFlags(argv: readonly string[], accepted: readonly SettingName[]): Map<SettingName, string> {
  const byFlag = new Map<string, SettingName>();
  for (const name of accepted) {
    if (settings[name].hasFlag) byFlag.set(flagOf(name), name);
  }
  const given = new Map<SettingName, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--') || arg === '--') throw new ConfigError(`unexpected argument "${arg}"`);
    const eq = arg.indexOf('=');
    const flag = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const name = byFlag.get(flag);
    if (name === undefined) throw new ConfigError(`unknown flag --${flag} (see --help)`);
    if (eq !== -1) {
      given.set(name, arg.slice(eq + 1));
    } else if (settings[name].isSwitch) {
      given.set(name, 'true');
    } else {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) throw new ConfigError(`--${flag} needs a value`);
      given.set(name, next);
      i++;
    }
  }
  return given;
}

function deriveDefaults(config: { -readonly [K in keyof Config]: Config[K] }): void {
  if (config.auditLogPath === null) config.auditLogPath = path.join(config.dataDir, 'audit.log');
}

const nodeIdPattern = /^[A-Za-z0-9_-]{1,64}$/;

function checkCombinations(config: Config): void {
  if (config.cluster === 'etcd' && (config.etcdEndpoints === null || config.nodeId === null)) {
    throw new ConfigError('--cluster etcd needs --etcd-endpoints and --node-id');
  }
  if (config.cluster === 'off' && (config.etcdEndpoints !== null || config.clusterAdvertiseUrl !== null)) {
    throw new ConfigError('--etcd-endpoints and --cluster-advertise-url apply only with --cluster etcd');
  }
  if (config.nodeId !== null && !nodeIdPattern.test(config.nodeId)) {
    throw new ConfigError('--node-id must be 1 to 64 letters, digits, "-" or "_"');
  }
  if (config.tls === 'files' && (config.tlsCert === null || config.tlsKey === null)) {
    throw new ConfigError('--tls files needs both --tls-cert and --tls-key');
  }
  if (config.tls !== 'files' && (config.tlsCert !== null || config.tlsKey !== null)) {
    throw new ConfigError(`--tls-cert and --tls-key apply only with --tls files, not --tls ${config.tls}`);
  }
}
