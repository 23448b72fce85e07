// The query language's data shapes (http-api.md §5): what a client sends and what the executor answers.

import type { Doc, Json } from '../types.js';

export type AggregateSpec =
  | { $count: true }
  | { $sum: string }
  | { $avg: string }
  | { $min: string }
  | { $max: string };

export interface OrderBy {
  field: string;
  dir?: 'asc' | 'desc';
}

export interface QuerySpec {
  table: string;
  where?: { [key: string]: Json };
  select?: string[];
  orderBy?: OrderBy[];
  limit?: number;
  cursor?: string | null;
  /** A seq or an RFC 3339 instant; resolved to a seq by the database before execution. */
  asOf?: number | string;
  groupBy?: string[];
  aggregates?: Record<string, AggregateSpec>;
  history?: boolean;
}

export interface Plan {
  access: 'primaryKey' | 'index' | 'scan';
  index?: string;
  estimatedRows: number;
  /** Free-form extra facts: the lookup used, whether results are sorted in memory, … */
  [extra: string]: Json | undefined;
}

export interface QueryPage {
  rows: Doc[];
  nextCursor: string | null;
  /** When rows are whole documents (no `select`): each as its stored JSON text, to answer without re-serializing. */
  rowsJson?: string[];
}
