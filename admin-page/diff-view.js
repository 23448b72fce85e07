// Side-by-side diffs of two JSON documents: both are pretty-printed with their members in one order, then compared
// line by line (a longest common subsequence over the lines between the common head and tail), and shown as aligned
// rows: unchanged, removed (left only), added (right only) or changed (both).

import { h } from './dom.js';

/**
 * The middle part (what lies between the common first and last lines) is compared cell by cell: this many cells at
 * most (about 16 MB of the browser's memory), else it is shown as one changed block, without alignment.
 */
const diffCellsMax = 4_000_000;

/** Documents as lines, members sorted so that the same content in another member order compares equal. */
export function jsonLines(value) {
  if (value === null || value === undefined) return [];
  return JSON.stringify(sortMembers(value), null, 2).split('\n');
}

function sortMembers(value) {
  if (Array.isArray(value)) return value.map(sortMembers);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.keys(value).sort().map((name) => [name, sortMembers(value[name])]));
}

/**
 * Aligned rows for lines `a` (left) and `b` (right): [{kind: 'same'|'del'|'add'|'chg', left, right}], where left or
 * right is null on the side that has no line.
 */
export function diffLines(a, b) {
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const midA = a.slice(head, a.length - tail);
  const midB = b.slice(head, b.length - tail);
  const ops = [
    ...a.slice(0, head).map((line) => ({ op: '=', a: line, b: line })),
    ...(midA.length * midB.length > diffCellsMax ? blockOps(midA, midB) : lcsOps(midA, midB)),
    ...a.slice(a.length - tail).map((line) => ({ op: '=', a: line, b: line })),
  ];
  return pairRows(ops);
}

function blockOps(a, b) {
  return [...a.map((line) => ({ op: '-', a: line })), ...b.map((line) => ({ op: '+', b: line }))];
}

/** The classic dynamic programme: lengths of common subsequences of every pair of suffixes, then one walk. */
function lcsOps(a, b) {
  const width = b.length + 1;
  const lengths = new Uint32Array((a.length + 1) * width);
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lengths[i * width + j] = a[i] === b[j] ? lengths[(i + 1) * width + j + 1] + 1 : Math.max(lengths[(i + 1) * width + j], lengths[i * width + j + 1]);
    }
  }
  const ops = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) ops.push({ op: '=', a: a[i++], b: b[j++] });
    else if (lengths[(i + 1) * width + j] >= lengths[i * width + j + 1]) ops.push({ op: '-', a: a[i++] });
    else ops.push({ op: '+', b: b[j++] });
  }
  while (i < a.length) ops.push({ op: '-', a: a[i++] });
  while (j < b.length) ops.push({ op: '+', b: b[j++] });
  return ops;
}

/** A run of removals followed by additions becomes changed rows, side by side, as far as both sides go. */
function pairRows(ops) {
  const rows = [];
  for (let k = 0; k < ops.length; ) {
    if (ops[k].op === '=') {
      rows.push({ kind: 'same', left: ops[k].a, right: ops[k].b });
      k++;
      continue;
    }
    const removed = [];
    const added = [];
    while (k < ops.length && ops[k].op !== '=') {
      if (ops[k].op === '-') removed.push(ops[k].a);
      else added.push(ops[k].b);
      k++;
    }
    for (let n = 0; n < Math.max(removed.length, added.length); n++) {
      const left = removed[n] ?? null;
      const right = added[n] ?? null;
      rows.push({ kind: left === null ? 'add' : right === null ? 'del' : 'chg', left, right });
    }
  }
  return rows;
}

/**
 * The side-by-side view of two documents (null: the row did not exist or was deleted), with headings for each side.
 * Unchanged runs longer than a few lines are folded, so the changes stay in sight.
 */
export function sideBySide(leftLabel, left, rightLabel, right) {
  const rows = diffLines(jsonLines(left), jsonLines(right));
  const changed = rows.filter((row) => row.kind !== 'same').length;
  const summary = left === right || changed === 0 ? 'No difference.' : `${changed} line${changed === 1 ? '' : 's'} differ.`;
  return h(
    'div',
    { class: 'diff', role: 'group', 'aria-label': `${leftLabel} compared with ${rightLabel}` },
    h('div', { class: 'diff-head' }, h('span', null, leftLabel, left === null ? ' (absent)' : ''), h('span', null, rightLabel, right === null ? ' (absent)' : '')),
    h('p', { class: 'hint' }, summary),
    h('div', { class: 'diff-body' }, foldSame(rows).map(renderRow)),
  );
}

/** Keeps 2 unchanged lines of context around changes; longer unchanged runs become one "n unchanged lines" row. */
function foldSame(rows) {
  const context = 2;
  const near = rows.map((_, i) => rows.slice(Math.max(0, i - context), i + context + 1).some((row) => row.kind !== 'same'));
  const out = [];
  for (let i = 0; i < rows.length; ) {
    if (near[i] || rows.length <= 8) {
      out.push(rows[i++]);
      continue;
    }
    let j = i;
    while (j < rows.length && !near[j]) j++;
    out.push({ kind: 'fold', count: j - i });
    i = j;
  }
  return out;
}

const marks = { same: ['', ''], del: ['−', ''], add: ['', '+'], chg: ['−', '+'] };

function renderRow(row) {
  if (row.kind === 'fold') return h('div', { class: 'diff-row fold' }, h('span', null, `… ${row.count} unchanged line${row.count === 1 ? '' : 's'}`));
  const [leftMark, rightMark] = marks[row.kind];
  return h(
    'div',
    { class: `diff-row ${row.kind}` },
    h('pre', { class: row.left === null ? 'empty' : 'left' }, row.left === null ? '' : `${leftMark} ${row.left}`),
    h('pre', { class: row.right === null ? 'empty' : 'right' }, row.right === null ? '' : `${rightMark} ${row.right}`),
  );
}
