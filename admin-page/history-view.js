// A key's history (GET /v1/tables/{t}/rows/{key}/history): every version, oldest first, and a side-by-side diff of
// any two of them (by default the last two).

import { request } from './api.js';
import { sideBySide } from './diff-view.js';
import { badge, compactJson, fill, h, link, table, time, title } from './dom.js';

const opKinds = { put: 'add', patch: 'chg', delete: 'del' };

export async function historyView(view, [name, key]) {
  const heading = () => title(`History of ${key}`);
  fill(view, heading(), h('p', { class: 'hint' }, 'Loading…'));
  const { versions } = await request('GET', `/v1/tables/${encodeURIComponent(name)}/rows/${encodeURIComponent(key)}/history`);
  const label = (v) => `seq ${v.seq} (${v.op})`;
  const picker = (id, text, selected) =>
    h('label', null, text, ' ', h('select', { id }, versions.map((v, i) => h('option', { value: i, selected: i === selected }, label(v)))));
  const left = picker('diff-left', 'Left', Math.max(0, versions.length - 2));
  const right = picker('diff-right', 'Right', versions.length - 1);
  const diffBox = h('div', { id: 'version-diff' });
  const compare = (i, j) => {
    left.querySelector('select').value = String(i);
    right.querySelector('select').value = String(j);
    const a = versions[i];
    const b = versions[j];
    fill(diffBox, sideBySide(label(a), a.doc, label(b), b.doc));
  };
  const selected = () => compare(Number(left.querySelector('select').value), Number(right.querySelector('select').value));
  left.addEventListener('change', selected);
  right.addEventListener('change', selected);

  const rows = versions.map((v, i) => [
    String(v.seq),
    time(v.ts),
    badge(v.op, opKinds[v.op]),
    v.doc === null ? '–' : h('code', { class: 'doc' }, compactJson(v.doc)),
    i === 0 ? '' : h('button', { type: 'button', class: 'small', onclick: () => compare(i - 1, i) }, 'Compare with previous'),
  ]);
  fill(
    view,
    heading(),
    h('p', null, 'In table ', link(name, 'tables', name), `: ${versions.length} version${versions.length === 1 ? '' : 's'}, oldest first.`),
    table(`Versions of ${key}`, ['Seq', 'Committed', 'Op', 'Document after it', 'Compare'], rows),
    h('h2', null, 'Compare two versions'),
    h('div', { class: 'inline-form' }, left, right),
    diffBox,
  );
  compare(Math.max(0, versions.length - 2), versions.length - 1);
}
