// Request loggers: made lazily (no pino child unless a line is written), yet every line carries the request id.

import t from 'tap';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { lazyChildLogger, requestIdFrom } from '../../src/observability/logger.js';

function memoryLogger(level: string): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level }, stream), lines };
}

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

t.test('a request logger writes lines bound to its request id, at the parent level', async (t) => {
  const { logger, lines } = memoryLogger('info');
  const log = lazyChildLogger(logger, { reqId: 'req-1' }, {});
  log.debug('below the level: dropped');
  log.warn({ code: 'x' }, 'refused');
  log.child({ module: 'm' }).info('from a grandchild');
  await flush();
  t.same(lines.map((line) => [line['msg'], line['reqId']]), [['refused', 'req-1'], ['from a grandchild', 'req-1']]);
  t.equal(lines[0]!['code'], 'x');
  t.equal(log.level, 'info');
  t.equal((log as unknown as pino.Logger).isLevelEnabled('debug'), false);
});

t.test('a per-request level overrides the parent level', async (t) => {
  const { logger, lines } = memoryLogger('warn');
  const log = lazyChildLogger(logger, { reqId: 'req-2' }, { level: 'debug' });
  log.debug('now visible');
  await flush();
  t.same(lines.map((line) => [line['msg'], line['reqId']]), [['now visible', 'req-2']]);
  t.equal(log.level, 'debug');
});

t.test('generated request ids are UUID-shaped and distinct; sane client ids are kept', async (t) => {
  const ids = new Set(Array.from({ length: 1000 }, () => requestIdFrom(undefined)));
  t.equal(ids.size, 1000);
  for (const id of ids) t.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/) || t.bailout();
  t.equal(requestIdFrom('client-7'), 'client-7');
  t.not(requestIdFrom('has space'), 'has space');
});
