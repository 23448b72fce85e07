// DOM helpers of the admin page: elements are built with h() and text is always set as text, never as HTML, so a
// document read from the database is shown and can never run.

/**
 * h('a', { href: '#/x', class: 'k' }, 'text', child): an element with attributes (`on*` members become listeners,
 * `false`/null/undefined ones are left out) and children (strings become text nodes; null, false and arrays are
 * flattened away).
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
    else if (name in el && typeof value !== 'string') el[name] = value;
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces everything in `el` with `children`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A table in a keyboard-scrollable box: `columns` are header labels, `rows` arrays of cells (text or nodes). */
export function table(label, columns, rows) {
  return h(
    'div',
    { class: 'scroll', tabindex: 0, role: 'region', 'aria-label': label },
    h(
      'table',
      null,
      h('thead', null, h('tr', null, columns.map((column) => h('th', { scope: 'col' }, column)))),
      h('tbody', null, rows.map((cells) => h('tr', null, cells.map((cell) => h('td', null, cell))))),
    ),
  );
}

/** A heading the router moves focus to, so a screen reader or keyboard user starts at the new view. */
export function title(text) {
  return h('h1', { tabindex: -1, class: 'view-title' }, text);
}

/** Label/value pairs as a definition list. */
export function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.map(([label, value]) => h('div', null, h('dt', null, label), h('dd', null, value))));
}

/** A JSON value on one line, cut at `max` characters. */
export function compactJson(value, max = 160) {
  const text = JSON.stringify(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export function prettyJson(value) {
  return JSON.stringify(value, null, 2);
}

export function formatBytes(n) {
  if (typeof n !== 'number') return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export function formatNumber(n) {
  return typeof n === 'number' ? n.toLocaleString('en-US') : n === null || n === undefined ? '–' : String(n);
}

/** An RFC 3339 instant as the browser's local date and time, keeping the original as a tooltip. */
export function time(ts) {
  const date = new Date(ts);
  if (Number.isNaN(date.getTime())) return String(ts);
  return h('time', { datetime: ts, title: ts }, date.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' }));
}

/** A small labelled badge; `kind` picks its colour (ok, bad, warn, add, del, chg). */
export function badge(text, kind) {
  return h('span', { class: `badge ${kind ?? ''}` }, text);
}

/** A hash-route link; segments are percent-encoded, so keys with "/" or "#" stay one segment. */
export function link(text, ...segments) {
  return h('a', { href: route(...segments) }, text);
}

export function route(...segments) {
  return `#/${segments.map((segment) => encodeURIComponent(String(segment))).join('/')}`;
}
