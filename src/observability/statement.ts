// The `statement` of a slow-query entry: a request told as text, with its literal values replaced by `?` when the
// operator asked for redaction (--slow-query-redact), so the log can be shared without the data it names.

/** A statement longer than this is cut (with an ellipsis): a batch body may hold megabytes. */
export const statementCharsMax = 2048;

/** Routes whose body is the statement itself (a query, a plan, a batch); other bodies are documents, left out. */
const statementBodyRoutes = new Set(['/v1/query', '/v1/query/explain', '/v1/batch']);

/** Body members that hold data rather than names: always `?` when redacted. */
const literalMembers = new Set(['key', 'doc', 'patch', 'cursor', 'asOf', 'ifSeq']);

export interface StatementInput {
  method: string;
  /** The URL as received (path and query string). */
  url: string;
  /** The route template, e.g. /v1/tables/:table/rows/:key. */
  route: string;
  params: Record<string, string>;
  query: Record<string, unknown>;
  body: unknown;
  redact: boolean;
}

export function describeStatement(input: StatementInput): string {
  const target = input.redact ? redactedUrl(input) : input.url;
  let statement = `${input.method} ${target}`;
  if (statementBodyRoutes.has(input.route) && input.body !== undefined && input.body !== null) {
    statement += ` ${JSON.stringify(input.redact ? redactBody(input.body) : input.body)}`;
  }
  return statement.length > statementCharsMax ? `${statement.slice(0, statementCharsMax - 1)}…` : statement;
}

/** The route template with table names kept and every other parameter and query-string value as `?`. */
function redactedUrl(input: StatementInput): string {
  const path = input.route.replace(/:(\w+)/g, (_, name: string) => (name === 'table' ? encodeURIComponent(input.params[name] ?? '?') : '?'));
  const names = Object.keys(input.query);
  return names.length === 0 ? path : `${path}?${names.map((name) => `${name}=?`).join('&')}`;
}

/** Keeps names (tables, fields, operators, options) and replaces data (keys, documents, compared values) by `?`. */
export function redactBody(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactBody);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [name, member] of Object.entries(value)) {
    if (name === 'where') out[name] = redactWhere(member);
    else if (literalMembers.has(name)) out[name] = '?';
    else out[name] = redactBody(member);
  }
  return out;
}

/** A where-object: field paths and operators stay, compared values become `?` ($exists keeps its boolean). */
function redactWhere(node: unknown): unknown {
  if (node === null || typeof node !== 'object' || Array.isArray(node)) return '?';
  const out: Record<string, unknown> = {};
  for (const [name, member] of Object.entries(node)) {
    if (name === '$and' || name === '$or') out[name] = Array.isArray(member) ? member.map(redactWhere) : '?';
    else if (name === '$not') out[name] = redactWhere(member);
    else if (name === '$exists') out[name] = member;
    else if (name.startsWith('$')) out[name] = Array.isArray(member) ? member.map(() => '?') : '?';
    else out[name] = isOperatorObject(member) ? redactWhere(member) : '?';
  }
  return out;
}

function isOperatorObject(value: unknown): boolean {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const names = Object.keys(value);
  return names.length > 0 && names.every((name) => name.startsWith('$'));
}
