// The admin views (role admin): the audit log with its verification status and counts, the slow queries with their
// stats, and a summary of the engine figures and metrics. A user without the role sees why there is nothing.

import { ApiError, request } from './api.js';
import { badge, compactJson, facts, fill, formatBytes, formatNumber, h, table, time, title } from './dom.js';

/** The figures refresh this often while their view is open. */
const metricsRefreshMs = 5_000;

/** 403: a message instead of the view; any other error goes on up. */
async function asAdmin(view, heading, load) {
  try {
    return await load();
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 403)) throw error;
    fill(view, title(heading), h('p', { class: 'notice' }, 'This view needs the admin role.'));
    return null;
  }
}

export async function auditView(view, _params, query) {
  fill(view, title('Audit log'), h('p', { class: 'hint' }, 'Loading…'));
  const filter = { type: query.get('type'), user: query.get('user'), outcome: query.get('outcome'), limit: query.get('limit') ?? 100 };
  const loaded = await asAdmin(view, 'Audit log', () =>
    Promise.all([request('GET', '/v1/admin/audit', { query: filter }), request('GET', '/v1/admin/audit/stats')]),
  );
  if (loaded === null) return;
  const [{ entries }, stats] = loaded;
  const verifyBox = h('div', { id: 'audit-verify' }, verificationFacts(stats.verificationAtStart, 'At start'));
  const verify = async (button) => {
    button.disabled = true;
    fill(verifyBox, h('p', { class: 'hint' }, 'Verifying every file…'));
    try {
      fill(verifyBox, verificationFacts(await request('GET', '/v1/admin/audit/verify'), 'Now'));
    } finally {
      button.disabled = false;
    }
  };
  const rows = entries.map((e) => [
    String(e.id),
    time(e.ts),
    e.type,
    badge(e.severity, e.severity === 'critical' || e.severity === 'error' ? 'bad' : e.severity === 'warning' ? 'warn' : ''),
    badge(e.outcome, e.outcome === 'success' ? 'ok' : 'bad'),
    e.user ?? '–',
    e.clientIp ?? '–',
    h('code', { class: 'doc' }, compactJson(e.details, 120)),
  ]);
  fill(
    view,
    title('Audit log'),
    h('section', { 'aria-labelledby': 'verify-title' }, h('h2', { id: 'verify-title' }, 'Verification'), verifyBox, h('p', { class: 'actions' }, h('button', { type: 'button', onclick: (event) => void verify(event.currentTarget) }, 'Verify the chain now'))),
    h(
      'section',
      { 'aria-labelledby': 'audit-stats-title' },
      h('h2', { id: 'audit-stats-title' }, 'Counts'),
      facts([
        ['Entries in the chain', formatNumber(stats.entries)],
        ['Held in memory', formatNumber(stats.stored)],
        ['Hashing', stats.hashing ?? '–'],
        ['Outcomes', countsText(stats.byOutcome)],
        ['Severities', countsText(stats.bySeverity)],
        ['Write failures', formatNumber(stats.writeFailures ?? 0)],
      ]),
      h('details', null, h('summary', null, 'By type'), facts(Object.entries(stats.byType).filter(([, n]) => n > 0).map(([type, n]) => [type, formatNumber(n)]))),
    ),
    h('h2', null, 'Newest entries'),
    auditFilter(filter, Object.keys(stats.byType)),
    entries.length === 0 ? h('p', null, 'No entries match.') : table('Audit entries', ['Id', 'When', 'Type', 'Severity', 'Outcome', 'User', 'Client', 'Details'], rows),
  );
}

function verificationFacts(result, when) {
  if (result === null || result === undefined) return h('p', { class: 'hint' }, `${when}: not verified yet.`);
  const status = result.valid ? badge('valid', 'ok') : badge(result.truncated ? 'truncated' : 'invalid', 'bad');
  return facts([
    [when, status],
    ['Entries verified', formatNumber(result.entries)],
    ['Files', formatNumber(result.files)],
    ...(result.firstInvalidId !== undefined && result.firstInvalidId !== null ? [['First invalid entry', String(result.firstInvalidId)]] : []),
    ...(result.reason ? [['Reason', result.reason]] : []),
  ]);
}

function countsText(counts) {
  const parts = Object.entries(counts ?? {}).filter(([, n]) => n > 0).map(([name, n]) => `${name} ${formatNumber(n)}`);
  return parts.length === 0 ? 'none' : parts.join(', ');
}

/** The filter form writes its values into the hash, so a filtered view can be linked and gone back to. */
function auditFilter(filter, types) {
  const select = (name, options, anyLabel = 'any') =>
    h(
      'select',
      { name },
      anyLabel === null ? null : h('option', { value: '' }, anyLabel),
      options.map((option) => h('option', { value: option, selected: String(filter[name]) === option }, option)),
    );
  return h(
    'form',
    {
      class: 'inline-form',
      onsubmit: (event) => {
        event.preventDefault();
        const params = new URLSearchParams();
        for (const [name, value] of new FormData(event.currentTarget)) if (value !== '') params.set(name, String(value));
        location.hash = `#/admin/audit?${params}`;
      },
    },
    h('label', null, 'Type ', select('type', types)),
    h('label', null, 'User ', h('input', { name: 'user', value: filter.user ?? '', autocapitalize: 'none', spellcheck: false })),
    h('label', null, 'Outcome ', select('outcome', ['success', 'failure'])),
    h('label', null, 'Show ', select('limit', ['100', '500', '1000'], null)),
    h('button', { type: 'submit' }, 'Filter'),
  );
}

export async function slowQueriesView(view) {
  fill(view, title('Slow queries'), h('p', { class: 'hint' }, 'Loading…'));
  const answer = await asAdmin(view, 'Slow queries', () => request('GET', '/v1/admin/slow-queries', { query: { limit: 100 } }));
  if (answer === null) return;
  const { thresholdMs, entries, stats } = answer;
  const ms = (n) => (n === null ? '–' : `${formatNumber(Math.round(n * 10) / 10)} ms`);
  const rows = entries.map((e) => [
    time(e.ts),
    ms(e.durationMs),
    h('code', { class: 'doc' }, e.statement),
    e.user ?? '–',
    String(e.rows),
    badge(String(e.status), e.status < 400 ? 'ok' : 'bad'),
    e.error ?? '',
  ]);
  fill(
    view,
    title('Slow queries'),
    facts([
      ['Threshold', `${formatNumber(thresholdMs)} ms`],
      ['Stored', formatNumber(stats.count)],
      ['p50', ms(stats.p50)],
      ['p95', ms(stats.p95)],
      ['p99', ms(stats.p99)],
      ['Max', ms(stats.max)],
    ]),
    entries.length === 0
      ? h('p', null, `No data-route request has taken ${formatNumber(thresholdMs)} ms or more.`)
      : table('Slow queries', ['When', 'Duration', 'Statement', 'User', 'Rows', 'Status', 'Error'], rows),
  );
}

export async function metricsView(view) {
  fill(view, title('Metrics'), h('p', { class: 'hint' }, 'Loading…'));
  const box = h('div', { id: 'metrics' });
  let timer = null;
  let live = true;
  const refresh = async () => {
    const loaded = await asAdmin(view, 'Metrics', () => Promise.all([request('GET', '/v1/admin/stats'), request('GET', '/metrics').catch(() => null)]));
    if (loaded === null || !live) return false;
    fill(box, metricsFacts(loaded[0], loaded[1] === null ? null : parsePrometheus(loaded[1])), h('p', { class: 'hint' }, 'Refreshed every 5 s while this view is open.'));
    return true;
  };
  fill(view, title('Metrics'), box);
  if (await refresh()) {
    timer = setInterval(() => void refresh(), metricsRefreshMs);
  }
  return () => {
    live = false;
    clearInterval(timer);
  };
}

function metricsFacts(stats, prom) {
  const metric = (name) => (prom?.get(name) === undefined ? undefined : prom.get(name));
  const uptime = metric('driftdb_process_start_time_seconds');
  const heapUsed = metric('driftdb_heap_used_bytes');
  const heapLimit = metric('driftdb_heap_limit_bytes');
  return h(
    'div',
    { class: 'cards' },
    facts([
      ['Seq', formatNumber(stats.seq)],
      ['Tables', formatNumber(stats.tables)],
      ['Live rows', formatNumber(stats.rows)],
      ['Versions held', formatNumber(stats.versions)],
      ['Log size', formatBytes(stats.logBytes)],
      ['Last checkpoint at seq', stats.checkpointSeq === null ? 'none' : formatNumber(stats.checkpointSeq)],
    ]),
    facts([
      ['Commits', formatNumber(stats.commits)],
      ['Open transactions', formatNumber(stats.openTransactions)],
      ['Conflicts', formatNumber(stats.conflicts)],
      ['Deadlocks', formatNumber(stats.deadlocks)],
      ['HTTP requests', prom === null ? '–' : formatNumber(metric('driftdb_http_requests') ?? 0)],
      ['Slow queries', prom === null ? '–' : formatNumber(metric('driftdb_slow_queries_total') ?? 0)],
    ]),
    facts([
      ['Heap in use', heapUsed === undefined ? '–' : `${formatBytes(heapUsed)}${heapLimit ? ` of ${formatBytes(heapLimit)}` : ''}`],
      ['Resident memory', formatBytes(metric('driftdb_process_resident_memory_bytes'))],
      ['Up since', uptime === undefined ? '–' : time(new Date(uptime * 1000).toISOString())],
    ]),
  );
}

/**
 * The Prometheus text format, summed over labels: name → value. The request histogram's `_count` series are summed
 * into `driftdb_http_requests`.
 */
export function parsePrometheus(text) {
  const values = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)/.exec(line);
    if (match === null) continue;
    const name = match[1] === 'driftdb_http_request_duration_seconds_count' ? 'driftdb_http_requests' : match[1];
    const value = Number(match[3]);
    if (Number.isFinite(value)) values.set(name, (values.get(name) ?? 0) + value);
  }
  return values;
}
