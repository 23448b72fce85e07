// The user store: one row per user in the system table `_users` (so users are in the log, survive crashes and
// show up in checkpoints), mirrored in memory for authentication. Every change is committed before memory shows it.
// An empty store is bootstrapped from an older <data-dir>/users.json, or with the `admin` user.

import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Database, Doc } from '../engine/index.js';
import { DriftError, isDriftError } from '../errors.js';
import { decoyPasswordHash, generatePassword, hashPassword, verifyPassword, type PasswordHash } from './password.js';
import { allRows, ensureSystemTable, systemTables } from './system-tables.js';

export const roles = ['admin', 'writer', 'reader'] as const;
export type Role = (typeof roles)[number];

export interface UserRecord {
  readonly username: string;
  readonly roles: readonly Role[];
  /** Tables this user may touch; absent = every table. Admins are never narrowed. */
  readonly grants?: readonly string[];
  readonly password: PasswordHash;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** A user as the admin routes show it: never the hash. */
export interface UserView {
  username: string;
  roles: Role[];
  grants?: string[];
  createdAt: string;
  updatedAt: string;
}

export const usernamePattern = /^[A-Za-z0-9_.@-]{1,64}$/;
export const grantPattern = /^[A-Za-z][A-Za-z0-9_]{0,62}$/;
export const usersMax = 10_000;
export const grantsPerUserMax = 1_000;

/** The file earlier versions kept users in; migrated into `_users` on the first start that finds it. */
export const legacyUsersFileName = 'users.json';
export const migratedUsersFileName = 'users.json.migrated';

export interface OpenUserStoreOptions {
  db: Database;
  dataDir: string;
  /** Password for the admin created in an empty store; null = generate one and announce it. */
  adminPassword: string | null;
  /** Shows a generated admin password to the operator, once. */
  announce: (line: string) => void;
  logger: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

/** What opening the store did, for the audit log. */
export interface OpenedUsers {
  store: UserStore;
  /** Users created by the bootstrap (the first admin); migrated users are not new. */
  created: UserRecord[];
  migrated: number;
}

/** Cluster mode: how long a node that lost the race to create the first admin waits to see the winner's row. */
const adminRaceWaitMs = 10_000;

export class UserStore {
  private readonly byName = new Map<string, UserRecord>();
  /** Changes run one at a time, so a check and the write it guards see the same state. */
  private changes: Promise<unknown> = Promise.resolve();

  private constructor(private readonly db: Database) {}

  static async open(options: OpenUserStoreOptions): Promise<OpenedUsers> {
    await ensureSystemTable(options.db, systemTables.users);
    const store = new UserStore(options.db);
    for (const doc of allRows(options.db, systemTables.users.name)) {
      const user = userFromDoc(doc);
      store.byName.set(user.username, user);
    }
    if (store.byName.size > 0) {
      await renameLegacyFile(options);
      return { store, created: [], migrated: 0 };
    }
    const legacy = await readLegacyFile(path.join(options.dataDir, legacyUsersFileName));
    if (legacy !== null) {
      await store.putAll(legacy);
      await renameLegacyFile(options);
      options.logger.info({ module: 'users', users: legacy.length }, `migrated ${legacyUsersFileName} into the database`);
      return { store, created: [], migrated: legacy.length };
    }
    let admin: UserRecord;
    try {
      admin = await store.createInitialAdmin(options);
    } catch (error) {
      // Cluster mode: another node, starting at the same time, created the first admin (its put came first).
      if (!isDriftError(error) || error.code !== 'precondition_failed' || typeof error.fields.currentSeq !== 'number') throw error;
      await options.db.waitForSeq(error.fields.currentSeq, adminRaceWaitMs);
      for (const doc of allRows(options.db, systemTables.users.name)) store.applyReplicated(String(doc.username), doc);
      return { store, created: [], migrated: 0 };
    }
    return { store, created: [admin], migrated: 0 };
  }

  /** Cluster mode: a user row as another node wrote it (null: deleted), so every node authenticates alike. */
  applyReplicated(username: string, doc: Doc | null): void {
    if (doc === null) this.byName.delete(username);
    else this.byName.set(username, userFromDoc(doc));
  }

  get(username: string): UserRecord | undefined {
    return this.byName.get(username);
  }

  list(): UserRecord[] {
    return [...this.byName.values()].sort((a, b) => (a.username < b.username ? -1 : a.username > b.username ? 1 : 0));
  }

  /**
   * The user when the password is theirs, else null. An unknown user is checked against a decoy hash with the same
   * cost, so a failure takes as long whether the user exists or not.
   */
  async verify(username: string, password: string): Promise<UserRecord | null> {
    const user = this.byName.get(username);
    const ok = await verifyPassword(password, user?.password ?? (await decoyPasswordHash()));
    return ok && user !== undefined && this.byName.get(username) === user ? user : null;
  }

  async create(input: { username: string; password: string; roles: Role[]; grants?: string[] }): Promise<UserRecord> {
    checkUsername(input.username);
    checkAccess(input.roles, input.grants);
    const password = await hashPassword(input.password);
    return this.change(async () => {
      if (this.byName.has(input.username)) throw new DriftError('validation_failed', `user "${input.username}" already exists`);
      if (this.byName.size >= usersMax) throw new DriftError('validation_failed', `at most ${usersMax} users may exist`);
      const now = new Date().toISOString();
      const user = freezeUser({ username: input.username, roles: input.roles, grants: input.grants, password, createdAt: now, updatedAt: now });
      await this.db.put({ table: systemTables.users.name, key: user.username, doc: user, ifNoneMatch: true });
      this.byName.set(user.username, user);
      return user;
    });
  }

  async setPassword(username: string, password: string): Promise<UserRecord> {
    const hash = await hashPassword(password);
    return this.update(username, (user) => ({ ...user, password: hash }));
  }

  /** Replaces roles and grants together: absent grants = every table. */
  async setAccess(username: string, access: { roles: Role[]; grants?: string[] }): Promise<{ before: UserRecord; after: UserRecord }> {
    checkAccess(access.roles, access.grants);
    let before!: UserRecord;
    const after = await this.update(username, (user) => {
      before = user;
      if (user.roles.includes('admin') && !access.roles.includes('admin')) this.checkAnotherAdmin(username);
      return { ...user, roles: access.roles, grants: access.grants };
    });
    return { before, after };
  }

  async remove(username: string): Promise<UserRecord> {
    return this.change(async () => {
      const user = this.require(username);
      if (user.roles.includes('admin')) this.checkAnotherAdmin(username);
      await this.db.delete({ table: systemTables.users.name, key: username });
      this.byName.delete(username);
      return user;
    });
  }

  private update(username: string, edit: (user: UserRecord) => Omit<UserRecord, 'updatedAt'>): Promise<UserRecord> {
    return this.change(async () => {
      const next = freezeUser({ ...edit(this.require(username)), updatedAt: new Date().toISOString() });
      await this.db.put({ table: systemTables.users.name, key: username, doc: next });
      this.byName.set(username, next);
      return next;
    });
  }

  private require(username: string): UserRecord {
    const user = this.byName.get(username);
    if (user === undefined) throw new DriftError('not_found', `no user "${username}"`);
    return user;
  }

  /** Nobody could administer the server again without an admin: the last one may not go. */
  private checkAnotherAdmin(username: string): void {
    const others = [...this.byName.values()].some((user) => user.username !== username && user.roles.includes('admin'));
    if (!others) throw new DriftError('bad_request', `"${username}" is the last admin: make another admin first`);
  }

  private change<T>(work: () => Promise<T>): Promise<T> {
    const run = this.changes.then(work);
    this.changes = run.catch(() => undefined);
    return run;
  }

  /** Writes many users in one commit (the migration): all of them or none survive a crash. */
  private async putAll(users: UserRecord[]): Promise<void> {
    const tx = this.db.begin({ isolation: 'read_committed' });
    try {
      for (const user of users) await this.db.put({ table: systemTables.users.name, key: user.username, doc: user, tx });
      await tx.commit();
    } finally {
      if (tx.state === 'active') tx.rollback();
    }
    for (const user of users) this.byName.set(user.username, user);
  }

  private async createInitialAdmin(options: OpenUserStoreOptions): Promise<UserRecord> {
    const password = options.adminPassword ?? generatePassword();
    const admin = await this.create({ username: 'admin', password, roles: ['admin'] });
    if (options.adminPassword === null) {
      options.announce(
        `driftdb: created user "admin" with password ${password} - shown only this once; ` +
          'set DRIFTDB_ADMIN_PASSWORD on first start to choose it instead',
      );
    }
    return admin;
  }
}

export function viewOf(user: UserRecord): UserView {
  return {
    username: user.username,
    roles: [...user.roles],
    ...(user.grants === undefined ? {} : { grants: [...user.grants] }),
    createdAt: user.createdAt,
    updatedAt: user.updatedAt,
  };
}

function checkUsername(username: string): void {
  if (!usernamePattern.test(username)) throw new DriftError('validation_failed', `username must match ${usernamePattern.source}`);
}

function checkAccess(userRoles: readonly string[], grants: readonly string[] | undefined): void {
  if (userRoles.length === 0 || userRoles.some((role) => !(roles as readonly string[]).includes(role))) {
    throw new DriftError('validation_failed', `roles must be a non-empty list of ${roles.join(', ')}`);
  }
  if (grants === undefined) return;
  if (userRoles.includes('admin')) throw new DriftError('validation_failed', 'grants narrow writers and readers; an admin may touch every table');
  if (grants.length > grantsPerUserMax) throw new DriftError('validation_failed', `at most ${grantsPerUserMax} grants per user`);
  const bad = grants.find((grant) => !grantPattern.test(grant));
  if (bad !== undefined) throw new DriftError('validation_failed', `grant "${bad.slice(0, 80)}" is not a table name a client may use`);
}

function freezeUser(user: Omit<UserRecord, 'grants'> & { grants?: readonly string[] | undefined }): UserRecord {
  const { grants, ...rest } = user;
  return Object.freeze({
    ...rest,
    roles: Object.freeze([...new Set(user.roles)]),
    ...(grants === undefined ? {} : { grants: Object.freeze([...new Set(grants)].sort()) }),
    password: Object.freeze({ ...user.password }),
  });
}

function userFromDoc(doc: Doc): UserRecord {
  const user = doc as unknown as UserRecord;
  return freezeUser({ ...user, updatedAt: user.updatedAt ?? user.createdAt });
}

interface LegacyUsersFile {
  version: 1;
  users: Array<Omit<UserRecord, 'updatedAt'> & { updatedAt?: string }>;
}

async function readLegacyFile(filePath: string): Promise<UserRecord[] | null> {
  let text: string;
  try {
    text = await fs.readFile(filePath, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  const file = JSON.parse(text) as LegacyUsersFile;
  if (file.version !== 1 || !Array.isArray(file.users)) {
    throw new Error(`${filePath} is not a DriftDB users file (version ${String(file.version)})`);
  }
  return file.users.map((user) => freezeUser({ ...user, updatedAt: user.updatedAt ?? user.createdAt }));
}

/** users.json stays beside the data, renamed, so a downgrade can still find it and nobody mistakes it for live. */
async function renameLegacyFile(options: OpenUserStoreOptions): Promise<void> {
  const from = path.join(options.dataDir, legacyUsersFileName);
  const to = path.join(options.dataDir, migratedUsersFileName);
  try {
    await fs.rename(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  options.logger.warn({ module: 'users', from, to }, `${legacyUsersFileName} is no longer read: users live in the database`);
}
