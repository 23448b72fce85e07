// The one JSON body parser: native JSON.parse (so a "__proto__" key is plain own data, never a prototype), plus the
// checks JSON.parse cannot make: nesting depth, and integer literals that would not survive as IEEE-754 doubles.

import { DriftError } from '../errors.js';

const maxSafeDigits = String(Number.MAX_SAFE_INTEGER);

/** Parses a request body; an empty body is no body. Throws 400 bad_request or validation_failed. */
export function parseJsonBody(text: string, depthMax: number): unknown {
  if (text === '') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new DriftError('bad_request', `request body is not valid JSON: ${(error as Error).message}`);
  }
  checkJsonText(text, depthMax);
  return value;
}

/**
 * Scans valid JSON text once, outside strings, for nesting beyond `depthMax`, for integer literals (number tokens
 * without fraction or exponent) beyond ±(2^53−1), and for numbers beyond a double's range (`1e400` would become
 * Infinity, then null). `1e21` is a double and passes.
 */
export function checkJsonText(text: string, depthMax: number): void {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      i = closingQuote(text, i);
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > depthMax) {
        throw new DriftError('validation_failed', `body nests deeper than ${depthMax} levels`, { depthMax });
      }
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      i = checkNumberToken(text, i);
    }
  }
}

/** Index of the quote closing the string that opens at `open` (the text is valid JSON, so there is one). */
function closingQuote(text: string, open: number): number {
  let from = open + 1;
  for (;;) {
    const quote = text.indexOf('"', from);
    let backslashes = 0;
    while (text.charCodeAt(quote - 1 - backslashes) === 0x5c) backslashes++;
    if (backslashes % 2 === 0) return quote;
    from = quote + 1;
  }
}

/** Checks the number token starting at `start`; returns the index of its last character. */
function checkNumberToken(text: string, start: number): number {
  let end = start + 1;
  let integer = true;
  for (; end < text.length; end++) {
    const c = text.charCodeAt(end);
    if (c >= 0x30 && c <= 0x39) continue;
    if (c === 0x2e || c === 0x65 || c === 0x45 || c === 0x2b || c === 0x2d) integer = false;
    else break;
  }
  if (!integer) {
    if (!Number.isFinite(Number(text.slice(start, end)))) {
      throw new DriftError('validation_failed', `number ${text.slice(start, Math.min(end, start + 40))} is beyond the range of a double`);
    }
  } else {
    const digits = text.charCodeAt(start) === 0x2d ? text.slice(start + 1, end) : text.slice(start, end);
    if (digits.length > maxSafeDigits.length || (digits.length === maxSafeDigits.length && digits > maxSafeDigits)) {
      const token = text.slice(start, Math.min(end, start + 40));
      throw new DriftError(
        'validation_failed',
        `integer ${token}${end - start > 40 ? '…' : ''} is beyond ±(2^53−1) and would lose precision; send such values as strings`,
      );
    }
  }
  return end - 1;
}
