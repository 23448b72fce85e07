// The user store: <data-dir>/users.json, rewritten atomically on every change, held in memory for authentication.
// First start of an empty data dir creates `admin`; its password comes from DRIFTDB_ADMIN_PASSWORD or is generated and shown once.

import { promises as fs } from 'node:fs';
import path from 'node:path';
import { DriftError } from '../errors.js';
import { writeFileAtomic } from './atomic-file.js';
import { decoyPasswordHash, generatePassword, hashPassword, verifyPassword, type PasswordHash } from './password.js';

export const roles = ['admin', 'writer', 'reader'] as const;
export type Role = (typeof roles)[number];

export interface UserRecord {
  username: string;
  roles: Role[];
  /** Tables this user may touch; absent = all tables (per-table grants arrive with the security issue). */
  grants?: string[];
  password: PasswordHash;
  createdAt: string;
}

interface UsersFile {
  version: 1;
  users: UserRecord[];
}

export const usernamePattern = /^[A-Za-z0-9_.@-]{1,64}$/;
const usersFileName = 'users.json';

export interface OpenUserStoreOptions {
  dataDir: string;
  /** Password for the admin created in an empty data dir; absent = generate one and announce it. */
  adminPassword: string | null;
  /** Shows a generated admin password to the operator, once. */
  announce: (line: string) => void;
}

export class UserStore {
  private readonly byName = new Map<string, UserRecord>();
  private generationValue = 0;
  private writes: Promise<void> = Promise.resolve();

  private constructor(private readonly filePath: string) {}

  /** Loads users.json, creating it with the admin user when the data dir has none. */
  static async open(options: OpenUserStoreOptions): Promise<UserStore> {
    await fs.mkdir(options.dataDir, { recursive: true });
    const store = new UserStore(path.join(options.dataDir, usersFileName));
    const file = await readUsersFile(store.filePath);
    if (file === null) {
      await store.createInitialAdmin(options);
    } else {
      for (const user of file.users) store.byName.set(user.username, user);
    }
    return store;
  }

  /** Bumped on every change, so caches of verified credentials can tell they are stale. */
  get generation(): number {
    return this.generationValue;
  }

  get(username: string): UserRecord | undefined {
    return this.byName.get(username);
  }

  list(): UserRecord[] {
    return [...this.byName.values()];
  }

  /** The user when the password is theirs, else null; takes as long for an unknown user as for a wrong password. */
  async verify(username: string, password: string): Promise<UserRecord | null> {
    const user = this.byName.get(username);
    const ok = await verifyPassword(password, user?.password ?? (await decoyPasswordHash()));
    return ok && user !== undefined && this.byName.get(username) === user ? user : null;
  }

  async create(input: { username: string; password: string; roles: Role[]; grants?: string[] }): Promise<UserRecord> {
    if (!usernamePattern.test(input.username)) {
      throw new DriftError('validation_failed', `username must match ${usernamePattern.source}`);
    }
    if (this.byName.has(input.username)) {
      throw new DriftError('validation_failed', `user "${input.username}" already exists`);
    }
    const user: UserRecord = {
      username: input.username,
      roles: [...input.roles],
      ...(input.grants === undefined ? {} : { grants: [...input.grants] }),
      password: await hashPassword(input.password),
      createdAt: new Date().toISOString(),
    };
    await this.change(() => this.byName.set(user.username, user));
    return user;
  }

  async setPassword(username: string, password: string): Promise<void> {
    const user = this.byName.get(username);
    if (user === undefined) throw new DriftError('not_found', `no user "${username}"`);
    const hash = await hashPassword(password);
    await this.change(() => this.byName.set(username, { ...user, password: hash }));
  }

  async remove(username: string): Promise<void> {
    if (!this.byName.has(username)) throw new DriftError('not_found', `no user "${username}"`);
    await this.change(() => this.byName.delete(username));
  }

  private async createInitialAdmin(options: OpenUserStoreOptions): Promise<void> {
    const password = options.adminPassword ?? generatePassword();
    await this.create({ username: 'admin', password, roles: ['admin'] });
    if (options.adminPassword === null) {
      options.announce(
        `driftdb: created user "admin" with password ${password} - shown only this once; ` +
          'set DRIFTDB_ADMIN_PASSWORD on first start to choose it instead',
      );
    }
  }

  /** Applies a change in memory and persists it; writes are serialized so the file always holds a whole state. */
  private async change(apply: () => void): Promise<void> {
    apply();
    this.generationValue++;
    const snapshot: UsersFile = { version: 1, users: this.list() };
    const write = this.writes.then(() => writeFileAtomic(this.filePath, JSON.stringify(snapshot, null, 2) + '\n'));
    this.writes = write.catch(() => undefined);
    await write;
  }
}

async function readUsersFile(filePath: string): Promise<UsersFile | null> {
  let text: string;
  try {
    text = await fs.readFile(filePath, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  const file = JSON.parse(text) as UsersFile;
  if (file.version !== 1 || !Array.isArray(file.users)) {
    throw new Error(`${filePath} is not a DriftDB users file (version ${String(file.version)})`);
  }
  return file;
}
