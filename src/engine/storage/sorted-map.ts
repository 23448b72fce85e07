// An in-memory B+tree ordered by a caller's comparator: the key order behind row keys and secondary indexes.
//
// Shape: leaves hold parallel `keys`/`values` arrays and are chained left to right for range scans; branches
// hold `children` and `keys.length === children.length - 1` separators, where every key under children[i + 1]
// is >= keys[i] and every key under children[i] is < keys[i]. A separator may outlive the key it was copied
// from (deletes never fix separators up); the two inequalities are all that searches rely on.
//
// Compactness: a node that overflows because a key was appended at its right end splits unevenly — the old
// node stays full and the new one starts with the appended key — so sorted input fills nodes completely;
// any other overflow splits in the middle. A node that falls under a quarter of its capacity after a delete
// borrows from or merges with a sibling. `set` of a key above the current maximum, while the last leaf has
// room, is a push onto that leaf with one comparison and no descent.
//
// Iteration under modification: every insert of a new key and every delete bumps `version`. An iterator
// remembers the last key it returned; when it finds the version changed it re-seeks to the first key after
// that one. Guarantee: each `next()` returns the smallest key in the range greater than the key returned
// before, as the map is at the moment of that call, with that key's current value. So a key present for the
// whole iteration is returned exactly once, keys come out strictly ascending, a key deleted before the cursor
// reaches it is skipped, and a key inserted ahead of the cursor is returned. Nothing is snapshotted; the
// start of the range is sought at the first `next()`, and a re-seek costs one O(log n) descent.

import { assert } from '../../assert.js';

/** Most entries in a leaf and most children of a branch. */
const leafEntriesMax = 128;
const branchChildrenMax = 64;
/** Under these a node borrows from or merges with a sibling (a quarter, so split/merge cannot thrash). */
const leafEntriesMin = leafEntriesMax / 4;
const branchChildrenMin = branchChildrenMax / 4;

export type Compare<K> = (a: K, b: K) => number;

/**
 * A comparator that may name, for a given probe key, a cheaper comparator giving the same sign for every
 * comparison with that probe; a map uses it for the searches of that probe.
 */
export type ProbeComparator<K> = Compare<K> & { forProbe?: (probe: K) => Compare<K> };

export interface RangeOptions<K> {
  /** Start after this key (exclusive). Exclusive with `from`. */
  after?: K;
  /** Start at this key (inclusive). Exclusive with `after`. */
  from?: K;
  /** Stop at this key: exclusive unless `toInclusive` is true. */
  to?: K;
  toInclusive?: boolean;
}

class Leaf<K, V> {
  readonly isLeaf = true;
  next: Leaf<K, V> | null = null;
  constructor(
    public keys: K[],
    public values: V[],
  ) {}
}

class Branch<K, V> {
  readonly isLeaf = false;
  constructor(
    public keys: K[],
    public children: Node<K, V>[],
  ) {}
}

type Node<K, V> = Leaf<K, V> | Branch<K, V>;

export class SortedMap<K, V> {
  private readonly compare: Compare<K>;
  private root: Node<K, V>;
  /** Leftmost leaf; merges always remove the right node, so it stays the same leaf for the map's life. */
  private readonly head: Leaf<K, V>;
  /** Rightmost leaf: the target of the append fast path and of `last()`. */
  private tail: Leaf<K, V>;
  private count = 0;
  /** Bumped on every structural change; iterators compare it to know when to re-seek. */
  private version = 0;
  /** Separator produced by the last split, handed from a child's insert to its parent. */
  private splitKey: K | undefined = undefined;

  /** A cheaper comparator that is exact for one probe key, when the comparator offers one (see ProbeComparator). */
  private readonly forProbe: ((probe: K) => Compare<K>) | null;
  private lastProbe: K | undefined = undefined;
  private lastProbeCompare: Compare<K>;

  constructor(compare: Compare<K>) {
    this.compare = compare;
    this.forProbe = (compare as ProbeComparator<K>).forProbe ?? null;
    this.lastProbeCompare = compare;
    this.head = new Leaf<K, V>([], []);
    this.tail = this.head;
    this.root = this.head;
  }

  /**
   * A map of `keys` (strictly ascending by `compare`, asserted) and their `values`, built bottom-up in linear time
   * instead of by n inserts: the bulk load behind recovery. Nodes are filled to capacity, except that the last two
   * of each level share their entries when the last would be underfull.
   */
  static fromSorted<K, V>(compare: Compare<K>, keys: K[], values: V[]): SortedMap<K, V> {
    assert(keys.length === values.length, 'a value per key');
    for (let i = 1; i < keys.length; i++) assert(compare(keys[i - 1]!, keys[i]!) < 0, 'bulk keys ascend strictly');
    const map = new SortedMap<K, V>(compare);
    if (keys.length > 0) map.buildFrom(keys, values);
    return map;
  }

  get size(): number {
    return this.count;
  }

  get(key: K): V | undefined {
    const leaf = this.findLeaf(key);
    const i = this.search(leaf.keys, key);
    return i >= 0 ? leaf.values[i] : undefined;
  }

  has(key: K): boolean {
    return this.search(this.findLeaf(key).keys, key) >= 0;
  }

  /** Insert or replace. */
  set(key: K, value: V): void {
    const tail = this.tail;
    const n = tail.keys.length;
    if (n > 0 && n < leafEntriesMax && this.compare(key, tail.keys[n - 1]) > 0) {
      tail.keys.push(key);
      tail.values.push(value);
      this.count++;
      this.version++;
      return;
    }
    const right = this.root.isLeaf ? this.insertLeaf(this.root, key, value) : this.insertBranch(this.root, key, value);
    if (right !== undefined) {
      this.root = new Branch<K, V>([this.takeSplitKey()], [this.root, right]);
    }
  }

  /** Remove `key`; true when it was present. */
  delete(key: K): boolean {
    const root = this.root;
    const found = root.isLeaf ? this.deleteLeaf(root, key) : this.deleteBranch(root, key);
    if (!found) return false;
    this.count--;
    this.version++;
    if (!root.isLeaf && root.children.length === 1) this.root = root.children[0];
    return true;
  }

  first(): [K, V] | undefined {
    const leaf = this.head;
    return leaf.keys.length === 0 ? undefined : [leaf.keys[0], leaf.values[0]];
  }

  /** The largest key, without allocating an entry. */
  lastKey(): K | undefined {
    const leaf = this.tail;
    return leaf.keys.length === 0 ? undefined : leaf.keys[leaf.keys.length - 1];
  }

  last(): [K, V] | undefined {
    const leaf = this.tail;
    const n = leaf.keys.length;
    return n === 0 ? undefined : [leaf.keys[n - 1], leaf.values[n - 1]];
  }

  /** Ascending entries in the range; see the file comment for what holds when the map changes meanwhile. */
  entries(options: RangeOptions<K> = {}): IterableIterator<[K, V]> {
    return this.scan(checkRange(options), entryOf);
  }

  keys(options: RangeOptions<K> = {}): IterableIterator<K> {
    return this.scan(checkRange(options), keyOf);
  }

  values(options: RangeOptions<K> = {}): IterableIterator<V> {
    return this.scan(checkRange(options), valueOf);
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries();
  }

  /** Check every structural invariant (for tests); throws AssertionError on the first violation. */
  assertInvariants(): void {
    const leaves: Leaf<K, V>[] = [];
    const depth = this.checkNode(this.root, undefined, undefined, true, leaves);
    assert(depth >= 1);
    assert(leaves[0] === this.head, 'head is the leftmost leaf');
    assert(leaves[leaves.length - 1] === this.tail, 'tail is the rightmost leaf');
    let total = 0;
    for (let i = 0; i < leaves.length; i++) {
      assert(leaves[i].next === (leaves[i + 1] ?? null), 'leaf chain follows tree order');
      total += leaves[i].keys.length;
      const next = leaves[i + 1];
      if (next !== undefined) {
        const last = leaves[i].keys[leaves[i].keys.length - 1];
        assert(this.compare(last, next.keys[0]) < 0, 'keys ascend across leaves');
      }
    }
    assert(total === this.count, `size ${this.count} matches ${total} stored entries`);
  }

  // ---- private: bulk load ----

  /** Fills the empty map: leaves from the sorted entries (the first reuses `head`), then branch levels above them. */
  private buildFrom(keys: K[], values: V[]): void {
    let level: Node<K, V>[] = [];
    let firsts: K[] = [];
    let start = 0;
    for (const size of nodeSizes(keys.length, leafEntriesMax, leafEntriesMin)) {
      const leaf = start === 0 ? this.head : new Leaf<K, V>([], []);
      leaf.keys = keys.slice(start, start + size);
      leaf.values = values.slice(start, start + size);
      const previous = level[level.length - 1];
      if (previous !== undefined) (previous as Leaf<K, V>).next = leaf;
      level.push(leaf);
      firsts.push(keys[start]!);
      start += size;
    }
    this.tail = level[level.length - 1] as Leaf<K, V>;
    while (level.length > 1) {
      const parents: Node<K, V>[] = [];
      const parentFirsts: K[] = [];
      start = 0;
      for (const size of nodeSizes(level.length, branchChildrenMax, branchChildrenMin)) {
        // A separator is the smallest key under the child to its right.
        parents.push(new Branch<K, V>(firsts.slice(start + 1, start + size), level.slice(start, start + size)));
        parentFirsts.push(firsts[start]!);
        start += size;
      }
      level = parents;
      firsts = parentFirsts;
    }
    this.root = level[0]!;
    this.count = keys.length;
    this.version++;
  }

  // ---- private: iteration ----

  /** The cursor behind entries/keys/values: re-seeks after the last key whenever `version` moved. */
  private *scan<T>(range: RangeOptions<K>, project: Project<K, V, T>): Generator<T, undefined, undefined> {
    let version = this.version;
    let { leaf, index } = this.start(range);
    let lastKey = undefined as K;
    for (;;) {
      if (version !== this.version) {
        version = this.version;
        ({ leaf, index } = this.seek(lastKey, true));
      }
      while (index >= leaf.keys.length) {
        if (leaf.next === null) return undefined;
        leaf = leaf.next;
        index = 0;
      }
      const key = leaf.keys[index];
      if (this.pastEnd(key, range)) return undefined;
      lastKey = key;
      yield project(leaf, index++);
    }
  }

  private start(range: RangeOptions<K>): Position<K, V> {
    if (range.after !== undefined) return this.seek(range.after, true);
    if (range.from !== undefined) return this.seek(range.from, false);
    return { leaf: this.head, index: 0 };
  }

  /** The first key >= key (or > key when `exclusive`); the index may be past the leaf's end. */
  private seek(key: K, exclusive: boolean): Position<K, V> {
    const leaf = this.findLeaf(key);
    const i = this.search(leaf.keys, key);
    if (i >= 0) return { leaf, index: exclusive ? i + 1 : i };
    return { leaf, index: ~i };
  }

  private pastEnd(key: K, range: RangeOptions<K>): boolean {
    if (range.to === undefined) return false;
    const c = this.compare(key, range.to);
    return range.toInclusive === true ? c > 0 : c >= 0;
  }

  // ---- private: search ----

  /** Index of `key` in sorted `keys`, or ~(insertion point) when absent. */
  private search(keys: K[], key: K): number {
    let lo = 0;
    let hi = keys.length - 1;
    const compare = this.compareFor(key);
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const c = compare(keys[mid], key);
      if (c < 0) lo = mid + 1;
      else if (c > 0) hi = mid - 1;
      else return mid;
    }
    return ~lo;
  }

  /** The comparator for searches of `key`; one descent asks several times for the same probe, so it is cached. */
  private compareFor(key: K): Compare<K> {
    if (this.forProbe === null) return this.compare;
    if (key !== this.lastProbe) {
      this.lastProbe = key;
      this.lastProbeCompare = this.forProbe(key);
    }
    return this.lastProbeCompare;
  }

  /** Child of a branch whose subtree may hold `key`: the number of separators <= key. */
  private childIndex(keys: K[], key: K): number {
    const i = this.search(keys, key);
    return i >= 0 ? i + 1 : ~i;
  }

  private findLeaf(key: K): Leaf<K, V> {
    let node = this.root;
    while (!node.isLeaf) node = node.children[this.childIndex(node.keys, key)];
    return node;
  }

  private takeSplitKey(): K {
    const key = this.splitKey as K;
    this.splitKey = undefined;
    return key;
  }

  // ---- private: insert ----

  /** Insert into a leaf; returns the new right sibling when the leaf split (separator in `splitKey`). */
  private insertLeaf(leaf: Leaf<K, V>, key: K, value: V): Leaf<K, V> | undefined {
    const found = this.search(leaf.keys, key);
    if (found >= 0) {
      leaf.values[found] = value;
      return undefined;
    }
    const i = ~found;
    this.count++;
    this.version++;
    if (leaf.keys.length < leafEntriesMax) {
      leaf.keys.splice(i, 0, key);
      leaf.values.splice(i, 0, value);
      return undefined;
    }
    return this.splitLeaf(leaf, i, key, value);
  }

  private splitLeaf(leaf: Leaf<K, V>, i: number, key: K, value: V): Leaf<K, V> {
    let right: Leaf<K, V>;
    if (i === leaf.keys.length) {
      right = new Leaf<K, V>([key], [value]);
    } else {
      const at = leaf.keys.length >>> 1;
      right = new Leaf<K, V>(leaf.keys.splice(at), leaf.values.splice(at));
      const target = i <= at ? leaf : right;
      const j = i <= at ? i : i - at;
      target.keys.splice(j, 0, key);
      target.values.splice(j, 0, value);
    }
    right.next = leaf.next;
    leaf.next = right;
    if (this.tail === leaf) this.tail = right;
    this.splitKey = right.keys[0];
    return right;
  }

  /** Insert below a branch; returns the new right sibling when the branch split (separator in `splitKey`). */
  private insertBranch(branch: Branch<K, V>, key: K, value: V): Branch<K, V> | undefined {
    const ci = this.childIndex(branch.keys, key);
    const child = branch.children[ci];
    const right = child.isLeaf ? this.insertLeaf(child, key, value) : this.insertBranch(child, key, value);
    if (right === undefined) return undefined;
    branch.keys.splice(ci, 0, this.takeSplitKey());
    branch.children.splice(ci + 1, 0, right);
    if (branch.children.length <= branchChildrenMax) return undefined;
    return this.splitBranch(branch, ci + 1 === branch.children.length - 1);
  }

  /** Split a branch holding one child too many; `appended` keeps the left full (sorted input). */
  private splitBranch(branch: Branch<K, V>, appended: boolean): Branch<K, V> {
    const children = branch.children.length;
    // Appending leaves two children on the right, never one, so every non-root branch has a sibling to
    // borrow from or merge with and no leaf below it can be left empty.
    const leftChildren = appended ? children - 2 : Math.ceil(children / 2);
    const right = new Branch<K, V>(branch.keys.splice(leftChildren), branch.children.splice(leftChildren));
    this.splitKey = branch.keys.pop();
    return right;
  }

  // ---- private: delete ----

  private deleteLeaf(leaf: Leaf<K, V>, key: K): boolean {
    const i = this.search(leaf.keys, key);
    if (i < 0) return false;
    leaf.keys.splice(i, 1);
    leaf.values.splice(i, 1);
    return true;
  }

  private deleteBranch(branch: Branch<K, V>, key: K): boolean {
    const ci = this.childIndex(branch.keys, key);
    const child = branch.children[ci];
    const found = child.isLeaf ? this.deleteLeaf(child, key) : this.deleteBranch(child, key);
    if (found && isUnderfull(child)) this.rebalance(branch, ci);
    return found;
  }

  /** Refill the underfull children[i] from a sibling, or merge it with one. */
  private rebalance(parent: Branch<K, V>, i: number): void {
    const left = i > 0 ? parent.children[i - 1] : undefined;
    const right = parent.children[i + 1];
    if (left !== undefined && canLend(left)) this.borrowFromLeft(parent, i);
    else if (right !== undefined && canLend(right)) this.borrowFromRight(parent, i);
    else if (left !== undefined) this.merge(parent, i - 1);
    else if (right !== undefined) this.merge(parent, i);
  }

  private borrowFromLeft(parent: Branch<K, V>, i: number): void {
    const node = parent.children[i];
    const left = parent.children[i - 1];
    if (node.isLeaf) {
      assert(left.isLeaf);
      node.keys.unshift(left.keys.pop() as K);
      node.values.unshift(left.values.pop() as V);
      parent.keys[i - 1] = node.keys[0];
    } else {
      assert(!left.isLeaf);
      node.keys.unshift(parent.keys[i - 1]);
      node.children.unshift(left.children.pop() as Node<K, V>);
      parent.keys[i - 1] = left.keys.pop() as K;
    }
  }

  private borrowFromRight(parent: Branch<K, V>, i: number): void {
    const node = parent.children[i];
    const right = parent.children[i + 1];
    if (node.isLeaf) {
      assert(right.isLeaf);
      node.keys.push(right.keys.shift() as K);
      node.values.push(right.values.shift() as V);
      parent.keys[i] = right.keys[0];
    } else {
      assert(!right.isLeaf);
      node.keys.push(parent.keys[i]);
      node.children.push(right.children.shift() as Node<K, V>);
      parent.keys[i] = right.keys.shift() as K;
    }
  }

  /** Merge children[i + 1] into children[i] and drop it; the right node goes, so `head` never changes. */
  private merge(parent: Branch<K, V>, i: number): void {
    const left = parent.children[i];
    const right = parent.children[i + 1];
    if (left.isLeaf) {
      assert(right.isLeaf);
      for (let j = 0; j < right.keys.length; j++) {
        left.keys.push(right.keys[j]);
        left.values.push(right.values[j]);
      }
      left.next = right.next;
      if (this.tail === right) this.tail = left;
    } else {
      assert(!right.isLeaf);
      left.keys.push(parent.keys[i]);
      for (const key of right.keys) left.keys.push(key);
      for (const child of right.children) left.children.push(child);
    }
    parent.keys.splice(i, 1);
    parent.children.splice(i + 1, 1);
  }

  // ---- private: invariants ----

  /** Returns the subtree depth; checks bounds, occupancy and separators; collects leaves in order. */
  private checkNode(node: Node<K, V>, low: K | undefined, high: K | undefined, isRoot: boolean, leaves: Leaf<K, V>[]): number {
    const keys = node.keys;
    for (let i = 0; i < keys.length; i++) {
      if (i > 0) assert(this.compare(keys[i - 1], keys[i]) < 0, 'keys ascend within a node');
      if (low !== undefined) assert(this.compare(keys[i], low) >= 0, 'key >= lower separator');
      if (high !== undefined) assert(this.compare(keys[i], high) < 0, 'key < upper separator');
    }
    if (node.isLeaf) {
      assert(node.values.length === keys.length, 'a value per key');
      assert(keys.length <= leafEntriesMax, 'leaf within capacity');
      assert(isRoot || keys.length > 0, 'no empty leaf below the root');
      leaves.push(node);
      return 1;
    }
    assert(node.children.length === keys.length + 1, 'one separator between each two children');
    assert(node.children.length <= branchChildrenMax, 'branch within capacity');
    assert(node.children.length >= 2, 'a branch has a sibling pair of children');
    let depth = -1;
    for (let i = 0; i < node.children.length; i++) {
      const childLow = i === 0 ? low : keys[i - 1];
      const childHigh = i === keys.length ? high : keys[i];
      const d = this.checkNode(node.children[i], childLow, childHigh, false, leaves);
      assert(depth === -1 || d === depth, 'all leaves at the same depth');
      depth = d;
    }
    return depth + 1;
  }
}

/** Sizes of the nodes one level holds `total` items in: full nodes, the last two evened out if the last is under `min`. */
function nodeSizes(total: number, max: number, min: number): number[] {
  const sizes: number[] = [];
  for (let left = total; left > 0; left -= max) sizes.push(Math.min(left, max));
  const last = sizes.length - 1;
  if (last > 0 && sizes[last]! < min) {
    const pair = sizes[last - 1]! + sizes[last]!;
    sizes[last - 1] = Math.ceil(pair / 2);
    sizes[last] = Math.floor(pair / 2);
  }
  return sizes;
}

function isUnderfull<K, V>(node: Node<K, V>): boolean {
  return node.isLeaf ? node.keys.length < leafEntriesMin : node.children.length < branchChildrenMin;
}

function canLend<K, V>(node: Node<K, V>): boolean {
  return node.isLeaf ? node.keys.length > leafEntriesMin : node.children.length > branchChildrenMin;
}

type Project<K, V, T> = (leaf: Leaf<K, V>, index: number) => T;
const entryOf = <K, V>(leaf: Leaf<K, V>, i: number): [K, V] => [leaf.keys[i], leaf.values[i]];
const keyOf = <K, V>(leaf: Leaf<K, V>, i: number): K => leaf.keys[i];
const valueOf = <K, V>(leaf: Leaf<K, V>, i: number): V => leaf.values[i];

interface Position<K, V> {
  leaf: Leaf<K, V>;
  index: number;
}

function checkRange<K>(range: RangeOptions<K>): RangeOptions<K> {
  assert(range.after === undefined || range.from === undefined, 'a range starts `after` or `from` a key, not both');
  return range;
}
