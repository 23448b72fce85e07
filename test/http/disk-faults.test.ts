// Real filesystems that fail: a full tmpfs, and an ext4 image frozen with fsfreeze. A write answered 503 must not be
// there after a restart (the log is cut back to its last acknowledged record before the 503 goes out); a write
// stalled by a frozen disk is answered only once it is durable; every acknowledged write survives a SIGKILL.
// Mounting needs root: CI runs as root (.ci/run); elsewhere the tests say why they cannot run.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { makeTempDir, sleep, startServer, type TestServer } from '../helpers/server.js';

type Test = Parameters<Parameters<typeof t.test>[0]>[0];

const isRoot = process.getuid?.() === 0;
const skip = isRoot ? false : 'mounting a tmpfs or a loop device needs root';

function run(command: string, args: string[]): void {
  execFileSync(command, args, { stdio: 'pipe' });
}

/** A fresh tmpfs of `mib` MiB, unmounted when the test ends (after its server is gone). */
function tmpfs(t: Test, mib: number): string {
  const dir = path.join(makeTempDir('driftdb-tmpfs-'), 'mnt');
  fs.mkdirSync(dir);
  run('mount', ['-t', 'tmpfs', '-o', `size=${mib}m`, 'tmpfs', dir]);
  t.teardown(() => run('umount', ['-l', dir]));
  return dir;
}

interface Outcome {
  acked: Map<string, number>;
  refused: Set<string>;
}

/** `writers` concurrent writers PUT fresh 4 KiB rows until each has been refused `refusalsEach` times. */
async function writeUntilRefused(server: TestServer, writers: number, refusalsEach: number): Promise<Outcome> {
  const outcome: Outcome = { acked: new Map(), refused: new Set() };
  const pad = '.'.repeat(4096);
  await Promise.all(
    Array.from({ length: writers }, async (_, writer) => {
      let refusals = 0;
      for (let i = 0; refusals < refusalsEach && i < 100_000; i++) {
        const key = `w${writer}-${i}`;
        const response = await server.request('PUT', `/v1/tables/d/rows/${key}`, { body: { id: key, pad } });
        if (response.status === 201) outcome.acked.set(key, response.json.seq);
        else if (response.status === 503) {
          outcome.refused.add(key);
          refusals++;
        } else throw new Error(`unexpected ${response.status}: ${response.text}`);
      }
    }),
  );
  return outcome;
}

async function check(t: Test, server: TestServer, outcome: Outcome): Promise<void> {
  let lost = 0;
  let revived = 0;
  for (const [key, seq] of outcome.acked) {
    const response = await server.request('GET', `/v1/tables/d/rows/${key}`);
    if (response.status !== 200 || response.headers.etag !== `"${seq}"`) lost++;
  }
  for (const key of outcome.refused) {
    if ((await server.request('GET', `/v1/tables/d/rows/${key}`)).status !== 404) revived++;
  }
  t.equal(lost, 0, `none of ${outcome.acked.size} acknowledged writes is lost`);
  t.equal(revived, 0, `none of ${outcome.refused.size} writes answered 503 came back`);
}

t.test('a full disk: writes answered 503 are not there after a restart, acknowledged ones are', { skip }, async (t) => {
  for (let round = 1; round <= 3; round++) {
    await t.test(`round ${round}`, async (t) => {
      const mount = tmpfs(t, 48);
      const dataDir = path.join(mount, 'data');
      // Room a restart may need, given back before it.
      const spare = path.join(mount, 'spare');
      fs.writeFileSync(spare, Buffer.alloc(2 * 1024 * 1024));
      const first = await startServer({ dataDir });
      t.teardown(() => first.kill());
      t.equal((await first.request('POST', '/v1/tables', { body: { name: 'd', primaryKey: 'id' } })).status, 201);
      const outcome = await writeUntilRefused(first, 16, 4);
      t.ok(outcome.acked.size > 1000 && outcome.refused.size > 0, `${outcome.acked.size} acknowledged, ${outcome.refused.size} refused`);
      const ready = await first.request('GET', '/readyz', { auth: false });
      t.equal(ready.status, 503, '/readyz says the server refuses writes');
      t.match(ready.json.detail, /log/, 'because the log could not be written');
      await first.kill();
      fs.rmSync(spare);
      const second = await startServer({ dataDir });
      t.teardown(() => second.kill());
      await check(t, second, outcome);
    });
  }
});

t.test('a frozen disk stalls writes, answers none before it is durable, and loses none', { skip }, async (t) => {
  const base = makeTempDir('driftdb-freeze-');
  const image = path.join(base, 'disk.img');
  const mount = path.join(base, 'mnt');
  fs.mkdirSync(mount);
  run('truncate', ['-s', '64M', image]);
  run('mkfs.ext4', ['-q', '-F', image]);
  run('mount', ['-o', 'loop', image, mount]);
  let frozen = false;
  t.teardown(() => {
    if (frozen) run('fsfreeze', ['-u', mount]);
    run('umount', ['-l', mount]);
  });
  const dataDir = path.join(mount, 'data');
  const first = await startServer({ dataDir });
  t.teardown(() => first.kill());
  t.equal((await first.request('POST', '/v1/tables', { body: { name: 'd', primaryKey: 'id' } })).status, 201);
  const before = await writeSome(first, 'before', 20);
  run('fsfreeze', ['-f', mount]);
  frozen = true;
  let answered = 0;
  const stalled = Array.from({ length: 8 }, (_, i) =>
    first.request('PUT', `/v1/tables/d/rows/frozen-${i}`, { body: { id: `frozen-${i}` }, timeoutMs: 60_000 }).then((response) => {
      answered++;
      return response;
    }),
  );
  // However long the disk stays frozen, nothing written meanwhile can be durable, so nothing may be acknowledged.
  await sleep(300);
  t.equal(answered, 0, 'no write is answered while the disk is frozen');
  const read = await first.request('GET', '/v1/tables/d/rows/before-0', { timeoutMs: 30_000 });
  t.equal(read.status, 200, 'reads are answered meanwhile');
  run('fsfreeze', ['-u', mount]);
  frozen = false;
  const answers = await Promise.all(stalled);
  t.same(
    answers.map((response) => response.status),
    answers.map(() => 201),
    'once thawed, the stalled writes are acknowledged',
  );
  const after = new Map(before);
  answers.forEach((response, i) => after.set(`frozen-${i}`, response.json.seq));
  await first.kill();
  const second = await startServer({ dataDir });
  t.teardown(() => second.kill());
  await check(t, second, { acked: after, refused: new Set() });
});

async function writeSome(server: TestServer, prefix: string, count: number): Promise<Map<string, number>> {
  const acked = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    const response = await server.request('PUT', `/v1/tables/d/rows/${prefix}-${i}`, { body: { id: `${prefix}-${i}` } });
    if (response.status !== 201) throw new Error(`${response.status}: ${response.text}`);
    acked.set(`${prefix}-${i}`, response.json.seq);
  }
  return acked;
}
