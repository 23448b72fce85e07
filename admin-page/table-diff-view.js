// A table diff between two points (GET /v1/tables/{t}/diff?from=&to=): the rows added, removed or changed, in key
// order, a page at a time, each change with its two versions side by side.

import { request } from './api.js';
import { sideBySide } from './diff-view.js';
import { badge, fill, h, link, title } from './dom.js';

const diffPageRows = 50;
/** The first changes of a page open their side-by-side view at once; the others open on demand. */
const changesOpenMax = 5;
const changeKinds = { added: 'add', removed: 'del', changed: 'chg' };

export async function tableDiffView(view, [name], query) {
  fill(view, title(`Diff of ${name}`), h('p', { class: 'hint' }, 'Loading…'));
  const tablePath = `/v1/tables/${encodeURIComponent(name)}`;
  const [info, head] = await Promise.all([request('GET', tablePath), request('GET', `${tablePath}/rows`, { query: { limit: 1 } })]);
  const seqInput = (id, value) => h('input', { type: 'number', id, name: id, min: info.createdSeq, max: head.seq, step: 1, value, required: true, class: 'seq-input' });
  const from = seqInput('from', query.get('from') ?? info.createdSeq);
  const to = seqInput('to', query.get('to') ?? head.seq);
  const results = h('div', { id: 'diff-results' });
  const form = h(
    'form',
    {
      class: 'inline-form',
      onsubmit: (event) => {
        event.preventDefault();
        void compare(results, name, Number(from.value), Number(to.value));
      },
    },
    h('label', null, 'From seq ', from),
    h('label', null, 'to seq ', to),
    h('button', { type: 'submit' }, 'Compare'),
  );
  fill(
    view,
    title(`Diff of ${name}`),
    h('p', null, 'Rows of ', link(name, 'tables', name), ` that differ between two points: seqs ${info.createdSeq} (its creation) to ${head.seq} (now).`),
    form,
    results,
  );
  await compare(results, name, Number(from.value), Number(to.value));
}

async function compare(results, name, from, to) {
  fill(results, h('p', { class: 'hint' }, 'Comparing…'));
  const list = h('ol', { class: 'changes', 'aria-label': `Changes from seq ${from} to seq ${to}` });
  const more = h('p', { class: 'actions' });
  let shown = 0;
  const page = async (cursor) => {
    const answer = await request('GET', `/v1/tables/${encodeURIComponent(name)}/diff`, { query: { from, to, limit: diffPageRows, cursor } });
    for (const change of answer.changes) list.append(changeItem(name, change, { from, to, open: shown++ < changesOpenMax }));
    fill(
      more,
      answer.nextCursor === null ? null : h('button', { type: 'button', onclick: () => void page(answer.nextCursor) }, 'More changes'),
    );
    return answer;
  };
  const first = await page(null);
  fill(results, first.changes.length === 0 ? h('p', null, `No row differs between seq ${from} and seq ${to}.`) : list, more);
}

function changeItem(name, change, { from, to, open }) {
  return h(
    'li',
    null,
    h(
      'details',
      { open },
      h('summary', null, badge(change.change, changeKinds[change.change]), ' ', h('code', null, change.key)),
      sideBySide(`seq ${from}`, change.before, `seq ${to}`, change.after),
      h('p', { class: 'actions' }, link('History of this key', 'tables', name, 'history', change.key)),
    ),
  );
}
