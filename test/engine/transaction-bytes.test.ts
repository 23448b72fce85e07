// A transaction's pending writes are bounded by what one commit record can hold, so a client cannot make the
// server buffer gigabytes of writes that could never commit anyway.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { openDatabase } from '../../src/engine/index.js';
import { limits, MiB } from '../../src/limits.js';

t.test('a write that would take pending writes past the record bound is refused; the transaction stays usable', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'driftdb-txbytes-'));
  const db = await openDatabase({ dataDir: dir });
  t.teardown(async () => {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  await db.createTable({ name: 'big', primaryKey: 'id' });
  const doc = { blob: 'x'.repeat(Math.floor(3.9 * MiB)) };
  const fits = Math.floor(limits.recordBytesMax / (3.9 * MiB));
  const tx = db.begin({ isolation: 'read_committed' });
  for (let i = 0; i < fits; i++) await db.put({ table: 'big', key: `k${i}`, doc, tx });
  await t.rejects(db.put({ table: 'big', key: 'one-more', doc, tx }), { code: 'validation_failed', message: /most one commit can hold/ });
  t.equal(tx.state, 'active', 'the refusal leaves the transaction open');
  t.equal(tx.writeCount, fits);

  await db.put({ table: 'big', key: 'k0', doc: { small: true }, tx });
  await db.put({ table: 'big', key: 'one-more', doc, tx });
  t.pass('replacing a pending write frees its bytes');
  tx.savepoint('before');
  await db.put({ table: 'big', key: 'k0', doc, tx }).catch(() => undefined);
  tx.rollbackToSavepoint('before');
  await t.rejects(db.put({ table: 'big', key: 'again', doc, tx }), { code: 'validation_failed' }, 'counted again after a savepoint');

  const { seq } = await tx.commit();
  t.ok(seq !== null && seq > 0, 'what fits commits');
  t.same(db.get({ table: 'big', key: 'k0' }).doc, { id: 'k0', small: true });
});
