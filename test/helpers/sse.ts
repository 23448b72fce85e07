// Test helper: a Server-Sent Events client over real HTTP, as a browser's EventSource reads a stream (events split at
// blank lines; `id:`, `event:`, `data:` fields; comment lines kept apart), that a test can pause to play a slow client.

import http from 'node:http';
import { adminAuth } from './server.js';

export interface SseEvent {
  id: string | undefined;
  event: string;
  data: string;
}

export interface SseStream {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The body when the answer is not a stream (a problem), else ''. */
  text: string;
  events: SseEvent[];
  comments: string[];
  /** Resolves when the response ends or its connection closes. */
  ended: Promise<void>;
  /** Resolves once `predicate` holds for the events received; rejects after `timeoutMs` or if the stream ends first. */
  waitFor(predicate: (events: SseEvent[]) => boolean, timeoutMs?: number): Promise<void>;
  /** Stops reading from the socket (the server sees a client that does not keep up), or reads again. */
  pause(): void;
  resume(): void;
  close(): void;
}

export interface SseOptions {
  auth?: string;
  headers?: Record<string, string>;
}

/** Opens `path` with `Accept: text/event-stream`; resolves once the response head is in. */
export function openSse(baseUrl: string, path: string, options: SseOptions = {}): Promise<SseStream> {
  const url = new URL(path, baseUrl);
  // An agent of its own: a paused stream must not hold a socket another request of the test is waiting for.
  const agent = new http.Agent({ keepAlive: false });
  const headers = { authorization: options.auth ?? adminAuth, accept: 'text/event-stream', ...options.headers };
  return new Promise((resolve, reject) => {
    const request = http.get(url, { headers, agent }, (response) => {
      const events: SseEvent[] = [];
      const comments: string[] = [];
      const watchers = new Set<() => void>();
      let buffer = '';
      let text = '';
      let done = false;
      const streaming = /^text\/event-stream/.test(String(response.headers['content-type']));
      const ended = new Promise<void>((resolveEnd) => {
        const finish = (): void => {
          done = true;
          for (const watcher of [...watchers]) watcher();
          resolveEnd();
        };
        response.on('end', finish);
        response.on('close', finish);
        response.on('error', finish);
      });
      response.setEncoding('utf8').on('data', (chunk: string) => {
        if (!streaming) {
          text += chunk;
          return;
        }
        buffer += chunk;
        for (let split = buffer.indexOf('\n\n'); split !== -1; split = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, split);
          buffer = buffer.slice(split + 2);
          const event: SseEvent = { id: undefined, event: 'message', data: '' };
          let fields = 0;
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) {
              comments.push(line.slice(1).trim());
              continue;
            }
            const colon = line.indexOf(':');
            const name = colon === -1 ? line : line.slice(0, colon);
            const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
            fields++;
            if (name === 'id') event.id = value;
            else if (name === 'event') event.event = value;
            else if (name === 'data') event.data = event.data === '' ? value : `${event.data}\n${value}`;
          }
          if (fields > 0) events.push(event);
        }
        for (const watcher of [...watchers]) watcher();
      });
      const stream: SseStream = {
        status: response.statusCode!,
        headers: response.headers,
        get text() {
          return text;
        },
        events,
        comments,
        ended,
        waitFor(predicate, timeoutMs = 20_000) {
          return new Promise((resolveWait, rejectWait) => {
            const check = (): void => {
              if (predicate(events)) settle(null);
              else if (done) settle(new Error(`the stream ended first (${events.length} events)`));
            };
            const timer = setTimeout(() => settle(new Error(`no such events within ${timeoutMs} ms (${events.length} events)`)), timeoutMs);
            const settle = (error: Error | null): void => {
              clearTimeout(timer);
              watchers.delete(check);
              if (error === null) resolveWait();
              else rejectWait(error);
            };
            watchers.add(check);
            check();
          });
        },
        pause: () => response.pause(),
        resume: () => response.resume(),
        close: () => {
          request.destroy();
          agent.destroy();
        },
      };
      resolve(stream);
    });
    request.on('error', reject);
  });
}

/** The commit an event carries. */
export function commitOf(event: SseEvent): { seq: number; ts: string; changes: Array<{ table: string; key: string; op: string; doc: unknown }> } {
  return JSON.parse(event.data);
}
