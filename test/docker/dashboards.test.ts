// The Grafana dashboard and the Prometheus alert rules refer only to metrics a live server really exports: the test
// scrapes one after some traffic and checks every metric name in every expression.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { parse } from 'yaml';
import { declaredMetricNames } from '../helpers/metrics.js';
import { startServer } from '../helpers/server.js';

const dockerDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../docker');
/** Series Prometheus makes itself, not DriftDB. */
const prometheusOwn = new Set(['up']);
const histogramSuffixes = ['_bucket', '_sum', '_count'];

interface Expression {
  where: string;
  expr: string;
}

function dashboardExpressions(): Expression[] {
  const dashboard = JSON.parse(readFileSync(path.join(dockerDir, 'grafana', 'driftdb.json'), 'utf8')) as {
    panels: Array<{ title: string; type: string; targets?: Array<{ expr: string }> }>;
  };
  return dashboard.panels.filter((p) => p.type !== 'row').flatMap((p) => (p.targets ?? []).map((target) => ({ where: `panel "${p.title}"`, expr: target.expr })));
}

function alertExpressions(): Expression[] {
  const rules = parse(readFileSync(path.join(dockerDir, 'prometheus', 'alerts.yml'), 'utf8')) as { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> };
  return rules.groups.flatMap((group) => group.rules.map((rule) => ({ where: `alert ${rule.alert}`, expr: rule.expr })));
}

/** Metric names in a PromQL expression: identifiers followed by a selector, a range or an operator, not functions. */
function metricNames(expr: string): string[] {
  // Strings, label matchers and range selectors ([5m], [$__rate_interval]) hold no metric names.
  const withoutStrings = expr.replace(/"[^"]*"/g, '""').replace(/\{[^}]*\}/g, '{}').replace(/\[[^\]]*\]/g, '[]');
  const names = [...withoutStrings.matchAll(/\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()/g)].map((m) => m[1]!);
  const keywords = new Set(['by', 'without', 'and', 'or', 'unless', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset']);
  const aggregations = ['sum', 'avg', 'min', 'max', 'count', 'group', 'stddev', 'stdvar', 'topk', 'bottomk', 'quantile', 'count_values'];
  for (const name of aggregations) keywords.add(name);
  // Label names inside by(...) are identifiers too: drop what follows `by (` up to `)`.
  const grouped = new Set([...withoutStrings.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)].flatMap((m) => m[1]!.split(',').map((s) => s.trim())));
  return names.filter((name) => !keywords.has(name) && !grouped.has(name) && !/^\$/.test(name) && !/^[0-9]/.test(name) && /[a-z]/.test(name) && name !== 'e');
}

t.test('every metric the dashboard and the alerts name is one a live server exports', async (t) => {
  const server = await startServer();
  t.teardown(() => server.stop());
  // Traffic first, so labelled series and histograms have samples.
  await server.request('POST', '/v1/tables', { body: { name: 'kv', primaryKey: 'id' } });
  await server.request('PUT', '/v1/tables/kv/rows/a', { body: { v: 1 } });
  await server.request('GET', '/v1/tables/kv/rows/a');
  await server.request('POST', '/v1/admin/checkpoint');
  const exposition = (await server.request('GET', '/metrics')).text;
  const declared = declaredMetricNames(exposition);
  const exported = (name: string): boolean =>
    declared.has(name) || histogramSuffixes.some((suffix) => name.endsWith(suffix) && declared.has(name.slice(0, -suffix.length)));

  const expressions = [...dashboardExpressions(), ...alertExpressions()];
  t.ok(dashboardExpressions().length >= 20, 'the dashboard has its panels');
  t.ok(alertExpressions().length >= 6, 'the alerts are there');
  const referenced = new Set<string>();
  for (const { where, expr } of expressions) {
    const names = metricNames(expr);
    t.ok(names.length > 0, `${where} names a metric`);
    for (const name of names) {
      referenced.add(name);
      if (!prometheusOwn.has(name)) t.ok(exported(name), `${where}: ${name} is exported`);
    }
  }
  for (const name of ['driftdb_http_request_duration_seconds_bucket', 'driftdb_fsync_duration_seconds_bucket', 'driftdb_heap_used_bytes', 'driftdb_serialization_failures_total', 'up']) {
    t.ok(referenced.has(name), `something watches ${name}`);
  }
});

t.test('the metric-name reader finds names and skips functions, labels and keywords', async (t) => {
  t.same(
    metricNames('histogram_quantile(0.99, sum by (le, route) (rate(driftdb_x_bucket{status_code=~"5.."}[5m]))) / clamp_min(driftdb_y, 1e-9)'),
    ['driftdb_x_bucket', 'driftdb_y'],
  );
  t.same(metricNames('up{job="driftdb"} == 0'), ['up']);
});

t.test('each alert has a severity, a summary and a duration', async (t) => {
  const rules = parse(readFileSync(path.join(dockerDir, 'prometheus', 'alerts.yml'), 'utf8')) as {
    groups: Array<{ rules: Array<{ alert: string; for?: string; labels?: { severity?: string }; annotations?: { summary?: string } }> }>;
  };
  for (const rule of rules.groups.flatMap((g) => g.rules)) {
    t.match(rule.labels?.severity, /^(critical|warning)$/, `${rule.alert}: severity`);
    t.type(rule.annotations?.summary, 'string', `${rule.alert}: summary`);
    t.match(rule.for, /^\d+[smh]$/, `${rule.alert}: for`);
  }
});
