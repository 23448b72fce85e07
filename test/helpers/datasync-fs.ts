// A FileSystem whose handles' fdatasync goes through a hook (tests hold syncs back, delay or count them); every
// other call goes straight to the inner file system.

import type { FileHandle, FileSystem } from '../../src/engine/storage/fs.js';

/** `inner`, with each handle's datasync() replaced by `datasync(sync)`, where `sync` is the handle's own. */
export function withDatasync(inner: FileSystem, datasync: (sync: () => Promise<void>) => Promise<void>): FileSystem {
  const wrap = (handle: FileHandle): FileHandle => ({
    ...handle,
    read: (o) => handle.read(o),
    writev: (b, p) => handle.writev(b, p),
    truncate: (l) => handle.truncate(l),
    size: () => handle.size(),
    close: () => handle.close(),
    sync: () => handle.sync(),
    datasync: () => datasync(() => handle.datasync()),
  });
  return { ...inner, open: async (file, flags) => wrap(await inner.open(file, flags)) };
}
