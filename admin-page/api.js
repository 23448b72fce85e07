// The admin page's only way to the server: JSON requests with the signed-in user's credentials, which live in this
// module's memory alone (never localStorage, sessionStorage or a cookie: a reload signs out).

/** The Authorization header value, or null when signed out. */
let authorization = null;
/** 'token' (revoked at sign-out) or 'basic'. */
let mode = null;
let signedOutListener = () => {};

/** A problem answer (RFC 9457) or a network failure, with the fields the page shows. */
export class ApiError extends Error {
  constructor(status, problem) {
    const code = problem?.code ?? (status === 0 ? 'network' : `http_${status}`);
    super(problem?.detail ?? problem?.title ?? (status === 0 ? 'The server cannot be reached.' : `HTTP ${status}`));
    this.status = status;
    this.code = code;
    this.problem = problem;
  }
}

/** Called when the server stops accepting the credentials (expired or revoked token, changed password). */
export function onSignedOut(listener) {
  signedOutListener = listener;
}

export function signedIn() {
  return authorization !== null;
}

/**
 * Signs in with a bearer token from POST /v1/auth/token (mode 'token') or with Basic credentials checked by one
 * request (mode 'basic'); throws ApiError on refusal.
 */
export async function signIn(username, password, how) {
  if (how === 'token') {
    const answer = await request('POST', '/v1/auth/token', { body: { username, password }, anonymous: true });
    authorization = `Bearer ${answer.token}`;
  } else {
    // Checked by one request before they are kept: a refusal is a failed sign-in, not a sign-out.
    const basic = `Basic ${base64Utf8(`${username}:${password}`)}`;
    await request('GET', '/v1/tables', { headers: { authorization: basic }, anonymous: true });
    authorization = basic;
  }
  mode = how;
}

/** Revokes the token (best effort: the credentials are forgotten either way). */
export async function signOut() {
  const wasToken = mode === 'token' && authorization !== null;
  try {
    if (wasToken) await request('DELETE', '/v1/auth/token');
  } finally {
    authorization = null;
    mode = null;
  }
}

/**
 * One request: `query` members that are null or undefined are left out, `body` is sent as JSON. Answers the parsed
 * JSON (or the text for other types, null for no content); throws ApiError for any answer of 400 or more.
 */
export async function request(method, path, options = {}) {
  const response = await send(method, path, options);
  if (response.status === 204 || response.status === 304) return null;
  const type = response.headers.get('content-type') ?? '';
  return type.includes('json') ? response.json() : response.text();
}

/** `anonymous`: without the signed-in user's credentials (a 401 then signs nobody out). */
async function send(method, path, { query, body, headers = {}, anonymous = false, signal } = {}) {
  const url = new URL(path, location.origin);
  for (const [name, value] of Object.entries(query ?? {})) if (value !== null && value !== undefined && value !== '') url.searchParams.set(name, String(value));
  const init = { method, headers: { accept: 'application/json', ...headers }, signal, cache: 'no-store', credentials: 'omit' };
  if (!anonymous && authorization !== null) init.headers.authorization = authorization;
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    // credentials: 'omit' also keeps the browser from prompting for a password on a 401 with a Basic challenge.
    response = await fetch(url, init);
  } catch (error) {
    if (error?.name === 'AbortError') throw error;
    throw new ApiError(0, null);
  }
  if (response.status < 400) return response;
  const problem = await response.json().catch(() => null);
  if (response.status === 401 && !anonymous && authorization !== null) {
    authorization = null;
    mode = null;
    signedOutListener(new ApiError(401, problem));
  }
  throw new ApiError(response.status, problem);
}

/**
 * Reads a Server-Sent Events stream with fetch (EventSource cannot send an Authorization header). Calls onEvent with
 * {id, event, data} for each event until the stream ends or `signal` aborts; throws ApiError when the request is
 * refused. Answers when the server closes the stream.
 */
export async function readEventStream(path, { query, headers, signal, onOpen, onEvent }) {
  const response = await send('GET', path, { query, headers: { accept: 'text/event-stream', ...headers }, signal });
  onOpen?.();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  const parser = eventStreamParser(onEvent);
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    parser(value);
  }
}

/** The text/event-stream format (HTML Living Standard §9.2.6): fields up to a blank line make one event. */
export function eventStreamParser(onEvent) {
  let buffer = '';
  let event = { id: null, event: 'message', data: [] };
  return (chunk) => {
    buffer += chunk;
    let end;
    while ((end = buffer.search(/\r\n|\r|\n/)) !== -1) {
      // A lone \r at the end of a chunk may be the first half of \r\n: wait for more.
      if (buffer[end] === '\r' && end === buffer.length - 1) break;
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + (buffer.startsWith('\r\n', end) ? 2 : 1));
      if (line === '') {
        if (event.data.length > 0) onEvent({ id: event.id, event: event.event, data: event.data.join('\n') });
        event = { id: event.id, event: 'message', data: [] };
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'data') event.data.push(value);
      else if (field === 'event') event.event = value;
      else if (field === 'id' && !value.includes('\0')) event.id = value;
    }
  };
}

function base64Utf8(text) {
  let binary = '';
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}
