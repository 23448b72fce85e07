// Collects every validation problem of one query, so a client learns all its mistakes from one 400.

import { DriftError } from '../../errors.js';

export interface Problem {
  /** JSON Pointer (RFC 6901) into the query body, ajv-style: `/where/amount/$gte`. */
  instancePath: string;
  message: string;
}

export class Problems {
  readonly list: Problem[] = [];

  add(instancePath: string, message: string): void {
    this.list.push({ instancePath, message });
  }

  get empty(): boolean {
    return this.list.length === 0;
  }

  /** Throws one validation_failed naming the first problem and carrying all of them as `errors`. */
  throwIfAny(): void {
    const first = this.list[0];
    if (first === undefined) return;
    const more = this.list.length > 1 ? ` (and ${this.list.length - 1} more problems)` : '';
    throw new DriftError('validation_failed', `${first.instancePath || '/'} ${first.message}${more}`, {
      errors: this.list,
    });
  }
}

/** Appends one reference token to a JSON Pointer, escaping `~` and `/` as RFC 6901 asks. */
export function pointer(base: string, token: string | number): string {
  return `${base}/${String(token).replaceAll('~', '~0').replaceAll('/', '~1')}`;
}
