// Where a cluster keeps its state in etcd, every key under one prefix (--etcd-prefix):
//   head            the seq of the newest record in the log (absent before the first commit)
//   log/<seq>       a batch of records, named by its LAST seq zero-padded to 16 digits, so the batch holding seq S
//                   is the first key at or after log/<S>, and keys sort in log order
//   floor           every batch ending at or below this seq was trimmed from etcd (nodes hold them in their own logs)
//   nodes/<id>      a node's registration, under a lease: url, applied and durable seq, last seen
//   secret          random; peers present it to each other to stream their logs (node to node only)

const seqDigits = 16;

export class ClusterKeys {
  readonly head: string;
  readonly floor: string;
  readonly secret: string;
  readonly logPrefix: string;
  readonly nodesPrefix: string;

  constructor(readonly prefix: string) {
    this.head = `${prefix}head`;
    this.floor = `${prefix}floor`;
    this.secret = `${prefix}secret`;
    this.logPrefix = `${prefix}log/`;
    this.nodesPrefix = `${prefix}nodes/`;
  }

  /** The key of the batch whose last seq is `lastSeq`. */
  log(lastSeq: number): string {
    return `${this.logPrefix}${String(lastSeq).padStart(seqDigits, '0')}`;
  }

  /** Just past every log key. */
  get logEnd(): string {
    return `${this.logPrefix}\u{ff}`;
  }

  node(id: string): string {
    return `${this.nodesPrefix}${id}`;
  }
}
