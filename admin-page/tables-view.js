// The tables list, and one table: its primary key, indexes and schema, and its rows under a time slider over seqs
// that re-reads the table as of the chosen point (GET /v1/tables/{t}/rows?asOf=).

import { request } from './api.js';
import { compactJson, facts, fill, formatNumber, h, link, prettyJson, route, table, title } from './dom.js';

/** Rows per page under the slider: enough to see, few enough to re-read at every step of a drag. */
const pageRows = 50;

export async function tablesView(view) {
  fill(view, title('Tables'), h('p', { class: 'hint' }, 'Loading…'));
  const { tables } = await request('GET', '/v1/tables');
  const rows = tables.map((t) => [link(t.name, 'tables', t.name), t.primaryKey, t.indexes.join(', ') || '–', formatNumber(t.rowCount), String(t.createdSeq)]);
  fill(
    view,
    title('Tables'),
    tables.length === 0 ? h('p', null, 'No tables yet (or none your grants reach).') : table('Tables', ['Name', 'Primary key', 'Indexes', 'Rows', 'Created at seq'], rows),
    newTableForm(),
  );
}

/** POST /v1/tables with a name, a primary key and indexes; then opens the new table. */
function newTableForm() {
  const name = h('input', { name: 'name', required: true, pattern: '[A-Za-z][A-Za-z0-9_]{0,62}', autocapitalize: 'none', spellcheck: false });
  const primaryKey = h('input', { name: 'primaryKey', required: true, value: 'id', autocapitalize: 'none', spellcheck: false });
  const indexes = h('input', { name: 'indexes', placeholder: 'e.g. city, address.zip', autocapitalize: 'none', spellcheck: false });
  const create = async (event) => {
    event.preventDefault();
    const fields = indexes.value.split(',').map((field) => field.trim()).filter((field) => field !== '');
    const created = await request('POST', '/v1/tables', { body: { name: name.value.trim(), primaryKey: primaryKey.value.trim(), indexes: fields } });
    location.hash = route('tables', created.name);
  };
  return h(
    'section',
    { 'aria-labelledby': 'new-table-title' },
    h('h2', { id: 'new-table-title' }, 'New table'),
    h(
      'form',
      { class: 'inline-form', id: 'new-table', onsubmit: (event) => void create(event) },
      h('label', null, 'Name ', name),
      h('label', null, 'Primary key ', primaryKey),
      h('label', null, 'Indexes ', indexes),
      h('button', { type: 'submit' }, 'Create'),
    ),
  );
}

export async function tableView(view, [name]) {
  fill(view, title(`Table ${name}`), h('p', { class: 'hint' }, 'Loading…'));
  const [info, first] = await Promise.all([request('GET', `/v1/tables/${encodeURIComponent(name)}`), readRows(name, null, null)]);
  const rowsSection = h('section', { 'aria-labelledby': 'rows-title' });
  fill(
    view,
    title(`Table ${name}`),
    h('p', { class: 'actions' }, link('Diff between two points', 'tables', name, 'diff'), ' ', h('a', { href: `${route('changes')}?tables=${encodeURIComponent(name)}` }, 'Live changes')),
    facts([
      ['Primary key', info.primaryKey],
      ['Live rows', formatNumber(info.rowCount)],
      ['Created at seq', String(info.createdSeq)],
      ['Indexes', info.indexes.length === 0 ? 'none' : h('ul', { class: 'plain' }, info.indexes.map((field) => h('li', null, h('code', null, field))))],
      ['Schema', info.schema === undefined ? 'none (any JSON object)' : h('details', null, h('summary', null, 'JSON Schema'), h('pre', { class: 'json' }, prettyJson(info.schema)))],
    ]),
    rowsSection,
    keyLookup(name),
  );
  const slider = timeSlider(rowsSection, info, first);
  view.append(writeForm(info, () => slider.refresh()));
  return slider.leave;
}

function readRows(name, asOf, cursor) {
  return request('GET', `/v1/tables/${encodeURIComponent(name)}/rows`, { query: { asOf, cursor, limit: pageRows } });
}

/**
 * The rows under a slider from the table's creation to the newest seq. Dragging re-reads as of the slider's seq;
 * reads never overlap: while one is in flight, only the latest position is kept and read next.
 */
function timeSlider(section, info, first) {
  let head = first.seq;
  let live = true;
  let wanted = head;
  let reading = false;
  const slider = h('input', { type: 'range', id: 'as-of', min: info.createdSeq, max: head, step: 1, value: head, 'aria-describedby': 'as-of-note' });
  const exact = h('input', { type: 'number', id: 'as-of-exact', min: info.createdSeq, max: head, step: 1, value: head, 'aria-label': 'As of seq (exact)', class: 'seq-input' });
  const note = h('output', { id: 'as-of-note', for: 'as-of', 'aria-live': 'polite' });
  const rowsBox = h('div', { id: 'rows' });
  const nowButton = h('button', { type: 'button', onclick: () => void refreshHead() }, 'Now');

  const show = (page, seq, cursor) => {
    if (!live) return;
    note.value = seq === head ? `seq ${seq} (now)` : `seq ${seq} (${head - seq} commit${head - seq === 1 ? '' : 's'} before now)`;
    renderRows(rowsBox, info, page, seq, cursor, (next) => void readPage(seq, next));
  };
  const readPage = async (seq, cursor) => show(await readRows(info.name, seq, cursor), seq, cursor);
  const goTo = async (seq) => {
    wanted = seq;
    slider.value = String(seq);
    exact.value = String(seq);
    if (reading) return;
    reading = true;
    try {
      for (let read = null; live && read !== wanted; ) {
        read = wanted;
        const page = await readRows(info.name, read, null);
        if (read === wanted) show(page, read, null);
      }
    } finally {
      reading = false;
    }
  };
  // "Now" also learns of commits made since the page was opened, and moves the slider's end to them.
  const refreshHead = async () => {
    const page = await readRows(info.name, null, null);
    head = page.seq;
    slider.max = String(head);
    exact.max = String(head);
    wanted = head;
    slider.value = exact.value = String(head);
    show(page, head, null);
  };
  slider.addEventListener('input', () => void goTo(Number(slider.value)));
  exact.addEventListener('change', () => {
    const seq = Math.min(head, Math.max(info.createdSeq, Math.trunc(Number(exact.value))));
    if (Number.isFinite(seq)) void goTo(seq);
  });

  fill(
    section,
    h('h2', { id: 'rows-title' }, 'Rows'),
    h(
      'div',
      { class: 'slider' },
      h('label', { for: 'as-of' }, 'As of'),
      slider,
      h('span', { class: 'slider-exact' }, exact, nowButton),
    ),
    h('p', { class: 'hint' }, note, ' — drag or use the arrow keys to travel back; every position re-reads the table as it was then.'),
    rowsBox,
  );
  show(first, head, null);
  return {
    refresh: refreshHead,
    leave: () => {
      live = false;
    },
  };
}

function renderRows(box, info, page, seq, cursor, readNext) {
  const key = (doc) => String(doc[info.primaryKey]);
  const rows = page.rows.map((doc) => [link(key(doc), 'tables', info.name, 'history', key(doc)), h('code', { class: 'doc' }, compactJson(doc))]);
  fill(
    box,
    page.rows.length === 0 ? h('p', null, `No rows as of seq ${seq}.`) : table(`Rows as of seq ${seq}`, ['Key', 'Document'], rows),
    h(
      'p',
      { class: 'actions' },
      cursor !== null ? h('button', { type: 'button', onclick: () => readNext(null) }, 'First page') : null,
      page.nextCursor !== null ? h('button', { type: 'button', onclick: () => readNext(page.nextCursor) }, 'Next page') : null,
    ),
  );
}

/** A key's history is reachable for keys the current rows no longer show (deleted ones). */
function keyLookup(name) {
  const input = h('input', { name: 'key', required: true, autocapitalize: 'none', spellcheck: false });
  return h(
    'form',
    {
      class: 'inline-form',
      onsubmit: (event) => {
        event.preventDefault();
        if (input.value !== '') location.hash = route('tables', name, 'history', input.value);
      },
    },
    h('label', null, "A key's history ", input),
    h('button', { type: 'submit' }, 'Show'),
  );
}

/**
 * Writes one row: PUT the JSON document under its key (the key may be left out when the document holds its primary
 * key), or DELETE the key (a soft delete: the history keeps every version). Then the slider moves to now.
 */
function writeForm(info, written) {
  const key = h('input', { name: 'key', autocapitalize: 'none', spellcheck: false });
  const doc = h('textarea', { name: 'doc', rows: 4, spellcheck: false, placeholder: `{"${info.primaryKey}": "…", …}` });
  const result = h('p', { class: 'hint', role: 'status' });
  const rowPath = (k) => `/v1/tables/${encodeURIComponent(info.name)}/rows/${encodeURIComponent(k)}`;
  const write = async (method) => {
    let body;
    if (method === 'PUT') {
      try {
        body = JSON.parse(doc.value);
      } catch (error) {
        fill(result, `The document is not JSON: ${error.message}`);
        return;
      }
    }
    const k = key.value !== '' ? key.value : body?.[info.primaryKey];
    if (k === undefined || k === null || k === '') {
      fill(result, `Give a key, or a document with its "${info.primaryKey}".`);
      return;
    }
    const answer = await request(method, rowPath(String(k)), body === undefined ? {} : { body });
    fill(result, `${method === 'PUT' ? 'Wrote' : 'Deleted'} `, link(String(answer.key), 'tables', info.name, 'history', answer.key), ` at seq ${answer.seq}.`);
    await written();
  };
  return h(
    'section',
    { 'aria-labelledby': 'write-title' },
    h('h2', { id: 'write-title' }, 'Write a row'),
    h(
      'form',
      { class: 'write-form', id: 'write-row', onsubmit: (event) => (event.preventDefault(), void write('PUT')) },
      h('label', null, 'Key ', key),
      h('label', null, 'Document (JSON) ', doc),
      h(
        'p',
        { class: 'actions' },
        h('button', { type: 'submit' }, 'Put'),
        h('button', { type: 'button', onclick: () => void write('DELETE') }, 'Delete the key'),
      ),
    ),
    result,
  );
}
