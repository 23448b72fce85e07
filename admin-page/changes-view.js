// The live change feed (GET /v1/changes as Server-Sent Events, read with fetch so it can carry the Authorization
// header): one entry per commit, newest first, resumed after the last event seen when the stream drops.

import { readEventStream, request } from './api.js';
import { badge, compactJson, fill, h, link, time, title } from './dom.js';

/** Commits kept on screen; older ones are dropped from the page (the feed itself can be resumed from any seq). */
const commitsShownMax = 200;
/** Wait before reconnecting after the stream ended or failed. */
const reconnectMs = 3_000;
const opKinds = { put: 'add', patch: 'chg', delete: 'del' };

export async function changesView(view, _params, query) {
  const tables = query.get('tables') ?? '';
  const fromSeq = query.get('since') ?? '';
  const filter = h('input', { name: 'tables', value: tables, placeholder: 'all tables', autocapitalize: 'none', spellcheck: false });
  const since = h('input', { name: 'since', type: 'number', min: 0, step: 1, value: fromSeq, placeholder: 'now', class: 'seq-input' });
  const state = h('p', { id: 'feed-state', class: 'hint', role: 'status' }, 'Connecting…');
  const list = h('ol', { id: 'feed', class: 'feed', 'aria-label': 'Commits, newest first' });
  const watch = (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    if (filter.value.trim() !== '') params.set('tables', filter.value.trim());
    if (since.value !== '') params.set('since', since.value);
    location.hash = `#/changes${params.size > 0 ? `?${params}` : ''}`;
  };
  const pause = h('button', { type: 'button', disabled: true }, 'Pause');
  fill(
    view,
    title('Changes'),
    h(
      'form',
      { class: 'inline-form', onsubmit: watch },
      h('label', null, 'Tables (comma-separated) ', filter),
      h('label', null, 'After seq ', since),
      h('button', { type: 'submit' }, 'Watch'),
      pause,
    ),
    state,
    list,
  );
  // Without a seq to start after, the feed starts now: /readyz names the newest durable seq (a replay from 0 could
  // be the whole history).
  const start = fromSeq !== '' ? Number(fromSeq) : (await request('GET', '/readyz')).seq;
  const feed = startFeed({ tables, start, state, list });
  pause.disabled = false;
  pause.addEventListener('click', () => feed.toggle(pause));
  return () => feed.stop();
}

/** Reads the stream until stopped; on an end or a failure, waits and resumes after the last event it saw. */
function startFeed({ tables, start, state, list }) {
  let controller = null;
  let lastId = String(start);
  let running = true;
  let timer = null;

  const connect = async () => {
    controller = new AbortController();
    try {
      await readEventStream('/v1/changes', {
        query: { tables: tables === '' ? null : tables },
        headers: { 'last-event-id': lastId },
        signal: controller.signal,
        onOpen: () => fill(state, `Live: commits after seq ${lastId} appear here as they are made.`),
        onEvent: (event) => {
          if (event.event === 'change') {
            lastId = event.id;
            show(list, JSON.parse(event.data));
          } else if (event.event === 'error') {
            const detail = parseOr(event.data);
            if (detail?.lastEventId !== undefined) lastId = String(detail.lastEventId);
            fill(state, `The server ended the stream: ${detail?.detail ?? event.data}`);
          }
        },
      });
      if (running) fill(state, 'The stream ended; reconnecting…');
    } catch (error) {
      if (!running) return;
      fill(state, `The stream failed (${error.message}); reconnecting…`);
      // A refusal (403 for a table outside the grants, 404 for an unknown one) will not heal by itself.
      if (error.status >= 400 && error.status < 500) {
        fill(state, `The feed was refused: ${error.message} (${error.code})`);
        running = false;
        return;
      }
    }
    if (running) timer = setTimeout(() => void connect(), reconnectMs);
  };
  void connect();
  return {
    stop() {
      running = false;
      clearTimeout(timer);
      controller?.abort();
    },
    toggle(button) {
      if (running) {
        this.stop();
        button.textContent = 'Resume';
        fill(state, `Paused after seq ${lastId}.`);
      } else {
        running = true;
        button.textContent = 'Pause';
        void connect();
      }
    },
  };
}

function parseOr(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function show(list, commit) {
  const item = h(
    'li',
    { class: 'commit' },
    h('div', { class: 'commit-head' }, h('strong', null, `seq ${commit.seq}`), ' ', time(commit.ts)),
    h(
      'ul',
      { class: 'plain' },
      commit.changes.map((change) =>
        h(
          'li',
          null,
          badge(change.op, opKinds[change.op]),
          ' ',
          link(change.table, 'tables', change.table),
          ' / ',
          link(change.key, 'tables', change.table, 'history', change.key),
          ' ',
          change.doc === null ? '' : h('code', { class: 'doc' }, compactJson(change.doc)),
        ),
      ),
    ),
  );
  list.prepend(item);
  while (list.children.length > commitsShownMax) list.lastElementChild.remove();
}
