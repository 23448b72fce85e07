// Every bound on input and on in-memory structures, in one place, named with the qualifier last.

const KiB = 1024;
const MiB = 1024 * KiB;

export const limits = {
  /** Largest HTTP request body. */
  requestBodyBytesMax: 8 * MiB,
  /** Largest serialized document stored under one key. */
  documentBytesMax: 4 * MiB,
  /** Deepest nesting of objects/arrays in a document or a query. */
  documentDepthMax: 64,
  /** Longest primary key, in UTF-16 code units. */
  keyLengthMax: 1024,
  /** Table and field-path segment names. */
  tableNameLengthMax: 63,
  fieldPathLengthMax: 256,
  tablesMax: 10_000,
  indexesPerTableMax: 32,
  /** Rows per page / query answer. */
  pageLimitMax: 1000,
  pageLimitDefault: 100,
  /**
   * JSON text of the rows of one page or query answer (whole documents count their stored text, projected rows
   * the stored text they came from, history rows their own text). A page ends early, with a nextCursor, rather
   * than pass it; it always holds at least one row, so it may reach this plus one documentBytesMax.
   */
  pageBytesMax: 16 * MiB,
  /** JSON text of all results of one batch (a get its document, a query its page's rows); past it, a 400. */
  batchAnswerBytesMax: 32 * MiB,
  /**
   * A key's whole history as GET …/history answers it (the stored text of every version, plus the seq, ts and op
   * around it). That route has no pages: past this, a 400 that points to history queries, which do.
   */
  historyBytesMax: 32 * MiB,
  /** Rows one query may examine before it is refused (protects the event loop). */
  queryRowsExaminedMax: 5_000_000,
  /** Groups one aggregate query may build. */
  queryGroupsMax: 100_000,
  /** Versions returned by a history query in one page. */
  historyVersionsMax: 100_000,
  /** Operations in one batch or writes in one transaction. */
  batchOpsMax: 1000,
  transactionWritesMax: 10_000,
  /** Log segments roll over past this size. */
  segmentBytesMax: 64 * MiB,
  /** One log record (one commit) may not exceed this. */
  recordBytesMax: 32 * MiB,
  /** An automatic checkpoint is written after this much log since the last one. */
  checkpointIntervalBytes: 256 * MiB,
  /** Records written together by one group-commit fsync. */
  groupCommitRecordsMax: 4096,
  groupCommitBytesMax: 16 * MiB,
  /** Group fdatasyncs that may run at once (each group is acknowledged only after every earlier one). */
  walSyncsInFlightMax: 2,
  /** A group starts while another group's sync runs only once it holds this many records. */
  walOverlapGroupRecordsMin: 8,
  /** Schema JSON size. */
  schemaBytesMax: 256 * KiB,
  /** Where-clause nodes. */
  queryNodesMax: 1000,
  inListMax: 10_000,
  /** Writers queued for row locks at once, across all rows. */
  lockWaitersMax: 10_000,
  /** Committed row changes kept for serializable validation; older snapshots then fail validation. */
  recentCommitRowsMax: 1_000_000,
  /**
   * Characters of old versions' documents kept decoded in memory (the version store reads the past from the log;
   * this cache serves the versions read again soon, such as a hot row's previous version).
   */
  versionCacheCharsMax: 16 * MiB,
  /** Newest durable commits the change feed keeps in memory (older ones it reads back from the log), and their characters. */
  feedRecentCommitsMax: 1024,
  feedRecentCharsMax: 16 * MiB,
  /** Commits one change-feed page looks at, shown or not: a filter that matches rarely ends its page early. */
  feedScanCommitsMax: 10_000,
  /** Commits per change-feed page (`limit`), and its default. */
  feedPageCommitsMax: 1000,
  feedPageCommitsDefault: 100,
  /**
   * Bytes of Server-Sent Event text a change stream writes at once (a single larger commit goes alone): what a client
   * that stopped reading can hold in the server beyond its socket's buffer. A block sent to many streams is one
   * Buffer, held once however many sockets still queue it.
   */
  feedEventBlockBytesMax: 64 * KiB,
  /**
   * Times a restore looks again for rows that changed while it waited for locks, before it gives up with a retryable
   * serialization_failure (writers that keep changing its rows would otherwise hold it forever).
   */
  restoreRoundsMax: 100,
  /** Longest a change-feed page waits for a commit (`waitMs`). */
  feedWaitMsMax: 30_000,
  /**
   * Idempotency keys kept (with their answers), and the characters of their answers: past either, the oldest entry
   * goes before it expires (a retry of it then runs again).
   */
  idempotencyEntriesMax: 100_000,
  idempotencyAnswerCharsMax: 64 * MiB,
  /** Log segment files held open for reads of old versions at once. */
  readFilesOpenMax: 64,
  /** One checkpoint chunk (one frame of a checkpoint file); the engine splits its state into chunks below this. */
  checkpointChunkBytesMax: 64 * MiB,
  /** Checkpoint files kept on disk: the newest, and older ones to fall back to if it turns out damaged. */
  checkpointFilesKept: 2,
} as const;

export { KiB, MiB };
