/**
 * `floatd backup <file>` and `floatd restore <file>` for the embedded SQLite store.
 *
 * A backup is one SQLite file: the database copied with SQLite's online backup API
 * (better-sqlite3 `db.backup`, a consistent snapshot while the server keeps serving:
 * SQLite restarts the copy if a write lands between two of its steps), plus every other
 * file of the data directory (signing keys, admin token, on-prem license file…) stored
 * in a table `floatd_backup_files` of the copy, so that a restore brings back everything
 * the server needs and the tokens it signed still verify.
 *
 * A restore refuses while a server has the database open (it asks SQLite for exclusive
 * use: leaving WAL mode needs it), checks the file first (integrity, a floatd schema this
 * build knows, the embedded files), then swaps the database in with a rename and writes
 * the files back with mode 0600. PostgreSQL databases are backed up with PostgreSQL's
 * own tools (docs/operations.md).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync } from 'node:fs';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { SEALED_STATE_FILE } from '../onprem/sealedState.js';
import { basename, dirname, join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import type { Config } from '../config.js';
import { SQLITE_MIGRATIONS } from '../store/sqlite/migrations.js';

export class BackupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackupError';
  }
}

const FILES_TABLE = 'floatd_backup_files';
const REQUIRED_TABLES = ['licenses', 'leases', 'devices', 'products', 'schema_migrations', 'admin_tokens'];

function sqlitePath(config: Config): string {
  if (config.database.kind !== 'sqlite') {
    throw new BackupError(
      'the database is PostgreSQL: back it up with pg_dump (or a base backup with WAL archiving) and FLOATD_KEY_ENCRYPTION_KEY; see docs/operations.md#backup-and-restore',
    );
  }
  return config.database.path;
}

/** Files of the data directory that go with the database (not the database, its WAL, or leftovers of a restore). */
async function dataFiles(dataDir: string, dbPath: string): Promise<string[]> {
  const names = await readdir(dataDir).catch(() => [] as string[]);
  const db = basename(dbPath);
  const out: string[] = [];
  for (const n of names) {
    if (dirname(resolve(dataDir, n)) === dirname(dbPath) && (n === db || n.startsWith(`${db}-`) || n.startsWith(`${db}.restore-`)))
      continue;
    if (n.includes('.restore-') || n.includes('.tmp-')) continue;
    if ((await stat(join(dataDir, n))).isFile()) out.push(n);
  }
  return out.sort();
}

export interface BackupResult {
  file: string;
  bytes: number;
  files: string[];
  leases: number;
}

/** Copies the live database and the data directory's files into `target` (a new file). */
export async function backup(config: Config, target: string): Promise<BackupResult> {
  const dbPath = sqlitePath(config);
  const file = resolve(target);
  if (
    await stat(file).then(
      () => true,
      () => false,
    )
  )
    throw new BackupError(`${file} already exists: give a new file name`);
  if (dirname(file) === resolve(config.dataDir))
    throw new BackupError(`${file} is inside the data directory: keep backups elsewhere (the next backup would copy this one)`);
  await stat(dbPath).catch(() => {
    throw new BackupError(`no database at ${dbPath}`);
  });
  const tmp = `${file}.tmp-${randomBytes(4).toString('hex')}`;
  const src = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    src.pragma('busy_timeout = 5000');
    await src.backup(tmp);
  } finally {
    src.close();
  }
  try {
    const copy = new Database(tmp);
    try {
      copy.pragma('journal_mode = DELETE');
      copy.exec(`CREATE TABLE ${FILES_TABLE} (name TEXT PRIMARY KEY, content BLOB NOT NULL)`);
      const put = copy.prepare(`INSERT INTO ${FILES_TABLE} (name, content) VALUES (?, ?)`);
      const names = await dataFiles(config.dataDir, dbPath);
      const contents = await Promise.all(names.map((n) => readFile(join(config.dataDir, n))));
      copy.transaction(() => names.forEach((n, i) => put.run(n, contents[i])))();
      const leases = Number((copy.prepare('SELECT COUNT(*) AS n FROM leases').get() as { n: number }).n);
      copy.close();
      await chmod(tmp, 0o600);
      fsyncFile(tmp);
      await rename(tmp, file);
      fsyncFile(dirname(file));
      return { file, bytes: (await stat(file)).size, files: names, leases };
    } finally {
      if (copy.open) copy.close();
    }
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

function fsyncFile(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export interface Checked {
  schemaVersion: number;
  files: string[];
  leases: number;
  licenses: number;
}

/** Checks that `file` is a complete floatd backup this build can restore; throws BackupError saying what is wrong. */
export function checkBackup(file: string): Checked {
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch (err) {
    throw new BackupError(`${file} cannot be opened: ${(err as Error).message}`);
  }
  try {
    let integrity: unknown;
    try {
      integrity = db.pragma('integrity_check', { simple: true });
    } catch (err) {
      throw new BackupError(`${file} is not a floatd backup (not a SQLite database: ${(err as Error).message})`);
    }
    if (integrity !== 'ok') throw new BackupError(`${file} is damaged: integrity_check says ${String(integrity)}`);
    const tables = new Set(
      (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name),
    );
    const missing = REQUIRED_TABLES.filter((t) => !tables.has(t));
    if (missing.length) throw new BackupError(`${file} is not a floatd database (no ${missing.join(', ')} table)`);
    if (!tables.has(FILES_TABLE))
      throw new BackupError(
        `${file} is a floatd database but not a backup made by \`floatd backup\` (it lacks the data directory's files)`,
      );
    const schemaVersion = Number((db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number }).v);
    const known = Math.max(...SQLITE_MIGRATIONS.map((m) => m.version));
    if (schemaVersion > known)
      throw new BackupError(
        `${file} has schema version ${schemaVersion}, newer than this floatd knows (${known}): restore it with a newer floatd`,
      );
    const files = (db.prepare(`SELECT name FROM ${FILES_TABLE} ORDER BY name`).all() as { name: string }[]).map((r) => r.name);
    if (files.some((n) => n.includes('/') || n.includes('\\') || n === '..' || n === '.'))
      throw new BackupError(`${file} holds a file name that is not a plain name`);
    if (!files.includes('signing-keys.json')) {
      // A cluster keeps its keys in PostgreSQL; an embedded server always has this file.
      throw new BackupError(`${file} holds no signing-keys.json: tokens signed before it would no longer verify`);
    }
    const leases = Number((db.prepare('SELECT COUNT(*) AS n FROM leases').get() as { n: number }).n);
    const licenses = Number((db.prepare('SELECT COUNT(*) AS n FROM licenses').get() as { n: number }).n);
    return { schemaVersion, files, leases, licenses };
  } finally {
    db.close();
  }
}

/** Is a server using the database at `dbPath`? (A running server holds it open in WAL mode; leaving WAL needs exclusive use.) */
function assertNotServing(dbPath: string): void {
  let db: Database.Database;
  try {
    db = new Database(dbPath, { fileMustExist: true });
  } catch {
    return; // no database yet: nothing can be serving it
  }
  try {
    db.pragma('busy_timeout = 0');
    const mode = db.pragma('journal_mode = DELETE', { simple: true });
    if (String(mode).toLowerCase() !== 'delete') throw new BackupError(`a server is running on ${dbPath}: stop it first`);
  } catch (err) {
    if (err instanceof BackupError) throw err;
    const code = (err as { code?: string }).code ?? '';
    if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'))
      throw new BackupError(`a server is running on ${dbPath} (the database is in use): stop it first`);
    throw err;
  } finally {
    db.close();
  }
}

/** Replaces the database and the data directory's files with those of `file`. The server must be stopped. */
export async function restore(config: Config, file: string): Promise<Checked> {
  const dbPath = sqlitePath(config);
  const source = resolve(file);
  const checked = checkBackup(source);
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  await mkdir(dirname(dbPath), { recursive: true, mode: 0o700 });
  assertNotServing(dbPath);

  // The new database is prepared beside the old one, then renamed over it: a crash leaves one or the other.
  const tmp = `${dbPath}.restore-${randomBytes(4).toString('hex')}`;
  const files: { name: string; content: Buffer }[] = [];
  try {
    const src = new Database(source, { readonly: true });
    try {
      await src.backup(tmp);
    } finally {
      src.close();
    }
    const db = new Database(tmp);
    try {
      for (const r of db.prepare(`SELECT name, content FROM ${FILES_TABLE}`).all() as { name: string; content: Buffer }[]) files.push(r);
      db.exec(`DROP TABLE ${FILES_TABLE}`);
      db.pragma('journal_mode = DELETE');
    } finally {
      db.close();
    }
    await chmod(tmp, 0o600);
    fsyncFile(tmp);
    // The old WAL belongs to the old database: never let SQLite replay it onto the restored one.
    assertNotServing(dbPath);
    await rm(`${dbPath}-wal`, { force: true });
    await rm(`${dbPath}-shm`, { force: true });
    await rename(tmp, dbPath);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  for (const f of files) {
    const path = join(config.dataDir, f.name);
    // On-premise, the sealed state in the data directory is newer than the backup's: it stays, so the server sees the
    // restore for the rollback of its enforcement state that it is (STATE_TAMPERED until the vendor's next file).
    if (f.name === SEALED_STATE_FILE && existsSync(path)) continue;
    const t = `${path}.restore-${randomBytes(4).toString('hex')}`;
    await writeFile(t, f.content, { mode: 0o600 });
    fsyncFile(t);
    await rename(t, path);
  }
  fsyncFile(config.dataDir);
  if (dirname(dbPath) !== config.dataDir) fsyncFile(dirname(dbPath));
  return checked;
}
