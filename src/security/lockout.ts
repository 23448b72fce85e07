// Brute-force protection per username: failed logins within a window lock the name for a while (423 user_locked),
// whether or not such a user exists, so a lock reveals nothing. Kept in memory: a restart lifts every lock.

export interface LoginGuardOptions {
  /** Failures within `windowMs` that lock the name; the one that reaches it locks. */
  threshold: number;
  windowMs: number;
  lockoutMs: number;
  now?: () => number;
  /** Usernames tracked at once (failures or locks); past it the least recently failed is forgotten. */
  trackedMax?: number;
}

interface Tracked {
  /** Times of the failures inside the window, oldest first; never longer than the threshold. */
  failures: number[];
  lockedUntil: number;
}

export const trackedUsernamesMax = 100_000;

export class LoginGuard {
  private readonly tracked = new Map<string, Tracked>();
  private readonly now: () => number;
  private readonly trackedMax: number;

  constructor(private readonly options: LoginGuardOptions) {
    this.now = options.now ?? Date.now;
    this.trackedMax = options.trackedMax ?? trackedUsernamesMax;
  }

  /** When the name is locked now, the time (ms) the lock ends; else null. On every Basic request: one map lookup. */
  lockedUntil(username: string): number | null {
    const entry = this.tracked.get(username);
    if (entry === undefined || entry.lockedUntil <= this.now()) return null;
    return entry.lockedUntil;
  }

  /** Counts a failure; answers true when this failure locked the name. */
  recordFailure(username: string): boolean {
    const now = this.now();
    const entry = this.tracked.get(username) ?? { failures: [], lockedUntil: 0 };
    // Re-inserted so the map's order is least recently failed first: that one is forgotten when it is full.
    this.tracked.delete(username);
    this.tracked.set(username, entry);
    if (this.tracked.size > this.trackedMax) this.tracked.delete(this.tracked.keys().next().value!);
    while (entry.failures.length > 0 && entry.failures[0]! <= now - this.options.windowMs) entry.failures.shift();
    entry.failures.push(now);
    if (entry.failures.length < this.options.threshold) return false;
    entry.failures = [];
    entry.lockedUntil = now + this.options.lockoutMs;
    return true;
  }

  /** A successful login forgets earlier failures. */
  recordSuccess(username: string): void {
    const entry = this.tracked.get(username);
    if (entry !== undefined && entry.lockedUntil <= this.now()) this.tracked.delete(username);
  }

  /** Lifts a lock (and forgets failures); answers whether the name was locked. */
  unlock(username: string): boolean {
    const wasLocked = this.lockedUntil(username) !== null;
    this.tracked.delete(username);
    return wasLocked;
  }
}
