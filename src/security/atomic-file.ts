// Replacing a small file so that a crash leaves either the old or the new content, never a mix.

import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';

/** Writes `text` to a temp file, fsyncs it, renames it over `filePath` and fsyncs the directory: all or nothing. */
export async function writeFileAtomic(filePath: string, text: string, mode = 0o600): Promise<void> {
  const tmp = `${filePath}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const handle = await fs.open(tmp, 'w', mode);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(tmp, filePath);
  // Fsync the directory too, or a crash can forget the new name.
  const dir = await fs.open(path.dirname(filePath), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
