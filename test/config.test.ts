// loadConfig: defaults, flags over environment, derived values, and a clear ConfigError for every bad value.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { ConfigError, envOf, flagOf, formatFlagsMarkdown, loadConfig, settingNames, settings } from '../src/config/index.js';

t.test('with no flags and no environment every setting has its documented default', async (t) => {
  const config = loadConfig([], {});
  t.equal(config.dataDir, './data');
  t.equal(config.host, '127.0.0.1');
  t.equal(config.port, 8443);
  t.equal(config.tls, 'self-signed');
  t.equal(config.tlsCert, null);
  t.equal(config.slowQueryThresholdMs, 1000);
  t.equal(config.lockTimeoutMs, 5000);
  t.equal(config.txIdleTimeoutMs, 30000);
  t.equal(config.checkpointIntervalMb, 256);
  t.equal(config.metricsPublic, false);
  t.equal(config.loginFailureThreshold, 5);
  t.equal(config.lockoutMs, 15 * 60 * 1000);
  t.equal(config.rateLimitMax, null, 'data routes are not rate limited unless asked');
  t.equal(config.authRateLimitMax, 100);
  t.equal(config.adminPassword, null);
  t.equal(config.auditLogPath, path.join('./data', 'audit.log'), 'audit log defaults into the data dir');
});

t.test('the result is frozen', async (t) => {
  const config = loadConfig([], {});
  t.ok(Object.isFrozen(config));
  t.throws(() => {
    (config as { port: number }).port = 1;
  });
});

t.test('the environment sets values and flags win over it', async (t) => {
  const env = { DRIFTDB_PORT: '9000', DRIFTDB_HOST: '0.0.0.0', DRIFTDB_DATA_DIR: '/env/dir' };
  const fromEnv = loadConfig([], env);
  t.equal(fromEnv.port, 9000);
  t.equal(fromEnv.host, '0.0.0.0');
  const both = loadConfig(['--port', '9100', '--data-dir=/flag/dir'], env);
  t.equal(both.port, 9100);
  t.equal(both.dataDir, '/flag/dir');
  t.equal(both.host, '0.0.0.0', 'a setting without a flag keeps its environment value');
  t.equal(both.auditLogPath, path.join('/flag/dir', 'audit.log'));
});

t.test('an empty environment variable counts as unset', async (t) => {
  t.equal(loadConfig([], { DRIFTDB_PORT: '' }).port, 8443);
});

t.test('switches are true alone, and accept explicit values from flags and environment', async (t) => {
  t.equal(loadConfig(['--metrics-public'], {}).metricsPublic, true);
  t.equal(loadConfig(['--metrics-public=false'], { DRIFTDB_METRICS_PUBLIC: 'true' }).metricsPublic, false);
  t.equal(loadConfig([], { DRIFTDB_SLOW_QUERY_STDOUT: '1' }).slowQueryStdout, true);
  t.throws(() => loadConfig([], { DRIFTDB_METRICS_PUBLIC: 'maybe' }), /DRIFTDB_METRICS_PUBLIC: expected true or false/);
});

t.test('a repeated flag keeps its last value', async (t) => {
  t.equal(loadConfig(['--tls', 'off', '--tls', 'self-signed'], {}).tls, 'self-signed');
});

t.test('every setting has a flag named from its key and a DRIFTDB_ variable in upper snake case', async (t) => {
  t.equal(flagOf('checkpointIntervalMb'), 'checkpoint-interval-mb');
  t.equal(envOf('dataDir'), 'DRIFTDB_DATA_DIR');
  t.equal(envOf('authRateLimitWindowMs'), 'DRIFTDB_AUTH_RATE_LIMIT_WINDOW_MS');
  for (const flag of [
    'data-dir', 'host', 'port', 'tls', 'tls-cert', 'tls-key', 'slow-query-threshold-ms', 'slow-query-max-stored',
    'slow-query-log-path', 'slow-query-stdout', 'audit-log-path', 'audit-max-entries', 'login-failure-threshold',
    'lockout-ms', 'rate-limit-max', 'rate-limit-window-ms', 'auth-rate-limit-max', 'auth-rate-limit-window-ms',
    'tx-idle-timeout-ms', 'lock-timeout-ms', 'metrics-public', 'checkpoint-interval-mb',
  ]) {
    t.ok(settingNames.some((name) => settings[name].hasFlag && flagOf(name) === flag), `--${flag} exists`);
  }
});

t.test('the admin password is read from the environment only, never from argv', async (t) => {
  t.equal(loadConfig([], { DRIFTDB_ADMIN_PASSWORD: 's3cret' }).adminPassword, 's3cret');
  t.throws(() => loadConfig(['--admin-password', 'x'], {}), /unknown flag --admin-password/);
});

t.test('bad values are refused with a ConfigError naming the flag or variable', async (t) => {
  const cases: Array<[string[], Record<string, string>, RegExp]> = [
    [['--port', '70000'], {}, /--port: expected a whole number from 0 to 65535, got 70000/],
    [['--port', '-1'], {}, /--port: expected a whole number/],
    [['--port', '80.5'], {}, /--port: expected a whole number/],
    [[], { DRIFTDB_PORT: 'http' }, /DRIFTDB_PORT: expected a whole number/],
    [['--lock-timeout-ms', '0'], {}, /--lock-timeout-ms: expected a whole number from 1/],
    [['--tls', 'maybe'], {}, /--tls: expected one of self-signed, off, files, got "maybe"/],
    [['--rate-limit-max', 'lots'], {}, /--rate-limit-max/],
    [['--checkpoint-interval-mb', '0'], {}, /--checkpoint-interval-mb/],
    [['--data-dir', ''], {}, /--data-dir: expected a non-empty value/],
    [['--port'], {}, /--port needs a value/],
    [['--port', '--host', 'x'], {}, /--port needs a value/],
    [['--no-such-flag', '1'], {}, /unknown flag --no-such-flag/],
    [['stray'], {}, /unexpected argument "stray"/],
    [['--tls', 'files'], {}, /--tls files needs both --tls-cert and --tls-key/],
    [['--tls', 'files', '--tls-cert', 'c.pem'], {}, /needs both/],
    [['--tls-cert', 'c.pem', '--tls-key', 'k.pem'], {}, /apply only with --tls files/],
  ];
  for (const [argv, env, message] of cases) {
    t.throws(() => loadConfig(argv, env), { name: 'ConfigError', message }, `${argv.join(' ')} ${JSON.stringify(env)}`);
  }
  t.type(new ConfigError('x'), Error);
});

t.test('--tls files with both files is accepted', async (t) => {
  const config = loadConfig(['--tls', 'files', '--tls-cert', 'c.pem', '--tls-key', 'k.pem'], {});
  t.same([config.tls, config.tlsCert, config.tlsKey], ['files', 'c.pem', 'k.pem']);
});

t.test('`only` limits the accepted flags (doctor takes just --data-dir) and leaves the rest at defaults', async (t) => {
  const config = loadConfig(['--data-dir', '/d'], { DRIFTDB_PORT: '1' }, { only: ['dataDir'] });
  t.equal(config.dataDir, '/d');
  t.equal(config.port, 8443, 'the environment of settings not asked for is ignored');
  t.throws(() => loadConfig(['--port', '1'], {}, { only: ['dataDir'] }), /unknown flag --port/);
});

t.test('the README flags table is the one the schema generates', async (t) => {
  const readme = fs.readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../README.md'), 'utf8');
  t.ok(readme.includes(formatFlagsMarkdown()), 'README.md holds formatFlagsMarkdown() verbatim; regenerate it after changing settings');
});
