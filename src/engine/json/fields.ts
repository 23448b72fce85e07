// Reading a few fields out of stored JSON text without parsing the whole document. Recovery replays a million
// documents only to learn their indexed values; a full JSON.parse of each built every object just to drop it.

import type { Json, PathSegments } from './value.js';

const quote = 0x22;
const backslash = 0x5c;
const colon = 0x3a;
const comma = 0x2c;
const openBrace = 0x7b;
const closeBrace = 0x7d;
const openBracket = 0x5b;
const closeBracket = 0x5d;

function isSpace(code: number): boolean {
  return code === 0x20 || code === 0x0a || code === 0x0d || code === 0x09;
}

function skipSpace(text: string, at: number): number {
  while (at < text.length && isSpace(text.charCodeAt(at))) at++;
  return at;
}

/** The index just past the string that opens at `at` (a quote). */
function skipString(text: string, at: number): number {
  for (let i = at + 1; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === backslash) i++;
    else if (code === quote) return i + 1;
  }
  return text.length;
}

/** The index just past the JSON value that starts at `at`. */
function skipValue(text: string, at: number): number {
  const first = text.charCodeAt(at);
  if (first === quote) return skipString(text, at);
  if (first !== openBrace && first !== openBracket) {
    let i = at;
    while (i < text.length) {
      const code = text.charCodeAt(i);
      if (code === comma || code === closeBrace || code === closeBracket || isSpace(code)) break;
      i++;
    }
    return i;
  }
  let depth = 0;
  for (let i = at; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === quote) i = skipString(text, i) - 1;
    else if (code === openBrace || code === openBracket) depth++;
    else if ((code === closeBrace || code === closeBracket) && --depth === 0) return i + 1;
  }
  return text.length;
}

/**
 * The value at a dot path of the JSON document `text`, like getSegments(JSON.parse(text), segments): undefined
 * when a step is missing or is not an object. `text` must be valid JSON without duplicate member names (as
 * JSON.stringify writes it; documents are stored that way), so the first member with a name is the only one.
 */
export function extractPath(text: string, segments: PathSegments): Json | undefined {
  let at = skipSpace(text, 0);
  for (let depth = 0; depth < segments.length; depth++) {
    if (text.charCodeAt(at) !== openBrace) return undefined;
    const wanted = segments[depth]!;
    at = skipSpace(text, at + 1);
    let found = -1;
    while (at < text.length && text.charCodeAt(at) === quote) {
      const nameEnd = skipString(text, at);
      const raw = text.slice(at + 1, nameEnd - 1);
      // Escapes are rare in names: only then is the name decoded.
      const name = raw.includes('\\') ? (JSON.parse(text.slice(at, nameEnd)) as string) : raw;
      at = skipSpace(text, nameEnd);
      if (text.charCodeAt(at) !== colon) throw new SyntaxError(`expected ':' at ${at} of a stored document`);
      at = skipSpace(text, at + 1);
      if (name === wanted) {
        found = at;
        break;
      }
      at = skipSpace(text, skipValue(text, at));
      if (text.charCodeAt(at) === comma) at = skipSpace(text, at + 1);
    }
    if (found === -1) return undefined;
    at = found;
  }
  return JSON.parse(text.slice(at, skipValue(text, at))) as Json;
}
