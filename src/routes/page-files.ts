// The admin page's static files, read once from their folder into memory with their gzip forms, and the HTTP
// negotiation around them (Accept-Encoding, If-None-Match). Only the files found here can ever be served: a request
// names a file by a map key, never by a path on disk.

import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { constants as zlibConstants, gzipSync } from 'node:zlib';

export interface PageFile {
  /** The Content-Type answered. */
  type: string;
  body: Buffer;
  /** The gzip form, or null when compressing does not make it smaller. */
  gzip: Buffer | null;
  /** A weak validator: one content, whichever encoding carries it. */
  etag: string;
}

export interface PageFiles {
  /** A hash of every file: assets are served under /admin/<build>/, so a new build never meets a cached old file. */
  build: string;
  index: PageFile;
  /** Every other file, by name. */
  assets: ReadonlyMap<string, PageFile>;
}

const pageIndexName = 'index.html';

const contentTypes: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** Plain names only: no dot segments, no separators, an extension served above. */
const fileNamePattern = /^[a-z0-9][a-z0-9-]*\.(html|js|css|svg)$/;
/** Bounds on the folder: the page is held in memory twice (plain and gzip), and its first load must stay small. */
const pageFilesCountMax = 64;
const pageFilesBytesMax = 2 * 1024 * 1024;
const buildHashHexLength = 12;

/**
 * Reads the folder: its index.html and every asset beside it (subfolders and other names are ignored). index.html
 * names its assets as `./{{build}}/name` and gets the module preloads of every script but the entry at
 * `{{modulepreload}}`, so the browser fetches all modules at once instead of discovering them import by import.
 */
export async function loadPageFiles(dir: string): Promise<PageFiles> {
  const sources = await readSources(dir);
  const indexSource = sources.get(pageIndexName);
  if (indexSource === undefined) throw new Error(`the admin page has no ${pageIndexName} in ${dir}`);
  const hash = createHash('sha256');
  for (const name of [...sources.keys()].sort()) hash.update(name).update('\0').update(sources.get(name)!).update('\0');
  const build = hash.digest('hex').slice(0, buildHashHexLength);

  const assets = new Map<string, PageFile>();
  for (const [name, body] of sources) if (name !== pageIndexName) assets.set(name, pageFile(name, body));
  const preloads = [...assets.keys()]
    .filter((name) => name.endsWith('.js') && name !== 'main.js')
    .sort()
    .map((name) => `<link rel="modulepreload" href="./${build}/${name}">`)
    .join('\n  ');
  const html = indexSource.toString('utf8').replaceAll('{{modulepreload}}', preloads).replaceAll('{{build}}', build);
  return { build, index: pageFile(pageIndexName, Buffer.from(html)), assets };
}

async function readSources(dir: string): Promise<Map<string, Buffer>> {
  const sources = new Map<string, Buffer>();
  let bytes = 0;
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    if (!entry.isFile() || !fileNamePattern.test(entry.name)) continue;
    if (sources.size === pageFilesCountMax) throw new Error(`the admin page has more than ${pageFilesCountMax} files in ${dir}`);
    const body = await fs.readFile(path.join(dir, entry.name));
    bytes += body.length;
    if (bytes > pageFilesBytesMax) throw new Error(`the admin page's files pass ${pageFilesBytesMax} bytes in ${dir}`);
    sources.set(entry.name, body);
  }
  return sources;
}

function pageFile(name: string, body: Buffer): PageFile {
  // Compressed once, at the best level: the cost is paid once per process, the bytes saved on every load.
  const gzip = gzipSync(body, { level: zlibConstants.Z_BEST_COMPRESSION });
  return {
    type: contentTypes[path.extname(name)]!,
    body,
    gzip: gzip.length < body.length ? gzip : null,
    etag: `W/"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
  };
}

/** Whether an Accept-Encoding header admits gzip (by name or by `*`, with a q above 0). */
export function acceptsGzip(header: string | undefined): boolean {
  if (header === undefined) return false;
  let gzip: number | null = null;
  let any: number | null = null;
  for (const part of header.split(',')) {
    const [coding, ...params] = part.split(';').map((piece) => piece.trim().toLowerCase());
    const q = qualityOf(params);
    if (coding === 'gzip' || coding === 'x-gzip') gzip = q;
    else if (coding === '*') any = q;
  }
  return (gzip ?? any ?? 0) > 0;
}

function qualityOf(params: string[]): number {
  for (const param of params) {
    const match = /^q\s*=\s*([01](?:\.\d{0,3})?)$/.exec(param);
    if (match !== null) return Number(match[1]);
  }
  return 1;
}

/** If-None-Match against a weak validator (RFC 9110 §13.1.2: weak comparison): `*` or any listed tag. */
export function clientHasFile(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  const opaque = etag.replace(/^W\//, '');
  return header.split(',').some((tag) => {
    const trimmed = tag.trim();
    return trimmed === '*' || trimmed.replace(/^W\//, '') === opaque;
  });
}
