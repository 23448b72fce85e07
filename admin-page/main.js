// The admin page's entry: sign-in and sign-out, a hash router that shows one view at a time (and stops the one it
// leaves), and one status line for errors. Marks itself interactive (performance mark "driftdb:interactive") once
// the sign-in form works.

import { auditView, metricsView, slowQueriesView } from './admin-view.js';
import { ApiError, onSignedOut, signIn, signOut, signedIn } from './api.js';
import { changesView } from './changes-view.js';
import { fill, h, title } from './dom.js';
import { historyView } from './history-view.js';
import { tableDiffView } from './table-diff-view.js';
import { tableView, tablesView } from './tables-view.js';

const $ = (id) => document.getElementById(id);
const statusLine = $('status');
const viewBox = $('view');
const signInView = $('sign-in-view');
const signInForm = $('sign-in');

/** Route patterns, tried in order: `:x` takes one (percent-decoded) segment. */
const routes = [
  ['tables', tablesView],
  ['tables/:t', tableView],
  ['tables/:t/history/:key', historyView],
  ['tables/:t/diff', tableDiffView],
  ['changes', changesView],
  ['admin/audit', auditView],
  ['admin/slow-queries', slowQueriesView],
  ['admin/metrics', metricsView],
];

let leaveView = null;
/** Counts navigations, so a slow view that finishes after the user moved on does not take the screen. */
let navigation = 0;

function showStatus(message, kind = 'info') {
  statusLine.textContent = message;
  statusLine.dataset.kind = kind;
}

function describe(error) {
  if (error instanceof ApiError) return `${error.message} (${error.code})`;
  return error instanceof Error ? error.message : String(error);
}

function match(path) {
  const segments = path.split('/').filter((segment) => segment !== '');
  for (const [pattern, view] of routes) {
    const parts = pattern.split('/');
    if (parts.length !== segments.length) continue;
    const params = [];
    if (parts.every((part, i) => (part.startsWith(':') ? params.push(decodeURIComponent(segments[i])) > 0 : part === segments[i]))) return { view, params };
  }
  return null;
}

async function render() {
  const current = ++navigation;
  leaveView?.();
  leaveView = null;
  showStatus('');
  const [hashPath, search = ''] = location.hash.replace(/^#\/?/, '').split('?');
  const path = hashPath === '' ? 'tables' : hashPath;
  for (const a of document.querySelectorAll('#nav a')) {
    if (path.startsWith(a.getAttribute('href').slice(2))) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  // Each view draws into a box of its own: one that finishes after the user moved on draws into a detached box.
  const box = h('div', { class: 'view' });
  viewBox.replaceChildren(box);
  try {
    const found = match(path);
    if (found === null) {
      fill(box, title('Not found'), h('p', null, 'No such view. ', h('a', { href: '#/tables' }, 'Go to the tables.')));
      focusTitle(box);
      return;
    }
    const pending = found.view(box, found.params, new URLSearchParams(search));
    focusTitle(box);
    const leave = await pending;
    if (current !== navigation) {
      if (typeof leave === 'function') leave();
      return;
    }
    leaveView = typeof leave === 'function' ? leave : null;
    // A view that redrew its heading after loading: keep the keyboard where it was, or start at the heading.
    if (!box.contains(document.activeElement)) focusTitle(box);
  } catch (error) {
    if (current === navigation && !(error instanceof ApiError && error.status === 401)) showStatus(describe(error), 'error');
  }
}

function focusTitle(box) {
  box.querySelector('.view-title')?.focus();
}

function enterSignedIn(username) {
  signInView.hidden = true;
  $('nav').hidden = false;
  $('session').hidden = false;
  $('session-user').textContent = username;
  if (location.hash === '' || location.hash === '#/') location.hash = '#/tables';
  else void render();
}

function enterSignedOut(message) {
  leaveView?.();
  leaveView = null;
  navigation++;
  fill(viewBox);
  $('nav').hidden = true;
  $('session').hidden = true;
  signInView.hidden = false;
  showStatus(message ?? '', message ? 'error' : 'info');
  signInForm.elements.password.value = '';
  $('sign-in-title').focus();
}

signInForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const { username, password, mode } = signInForm.elements;
  if (username.value === '' || password.value === '') {
    showStatus('Enter a user name and a password.', 'error');
    (username.value === '' ? username : password).focus();
    return;
  }
  const button = signInForm.querySelector('button[type=submit]');
  button.disabled = true;
  showStatus('Signing in…');
  try {
    await signIn(username.value, password.value, mode.value);
    password.value = '';
    showStatus('');
    enterSignedIn(username.value);
  } catch (error) {
    showStatus(`Sign-in failed: ${describe(error)}`, 'error');
    password.select();
  } finally {
    button.disabled = false;
  }
});

$('sign-out').addEventListener('click', async () => {
  try {
    await signOut();
  } catch {
    // The token may already be gone; the page forgets it either way.
  }
  enterSignedOut('Signed out.');
  showStatus('Signed out.');
});

onSignedOut((error) => enterSignedOut(`Signed out: ${describe(error)}`));

window.addEventListener('hashchange', () => {
  if (signedIn()) void render();
});

// Errors of actions inside a view (a slider step, a button) that nothing else caught.
window.addEventListener('unhandledrejection', (event) => {
  if (event.reason instanceof ApiError && event.reason.status === 401) return;
  showStatus(describe(event.reason), 'error');
});

signInForm.querySelector('button[type=submit]').disabled = false;
document.documentElement.dataset.ready = 'true';
performance.mark('driftdb:interactive');
