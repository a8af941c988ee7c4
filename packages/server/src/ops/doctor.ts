/**
 * `floatd migrate` and `floatd doctor`: operator checks that do not need a running server.
 */
import { access, mkdir, stat } from 'node:fs/promises';
import { constants } from 'node:fs';
import { dirname } from 'node:path';
import type { Config } from '../config.js';
import { fileKeyPersistence, KeyRing } from '../keys/ring.js';
import type { KeyPersistence } from '../store/cluster.js';
import { MAX_CLOCK_OFFSET_MS } from '../service/clockFence.js';
import { PostgresStore } from '../store/postgres/store.js';
import { PG_MIGRATIONS } from '../store/postgres/migrations.js';
import { SQLITE_MIGRATIONS } from '../store/sqlite/migrations.js';
import { SqliteStore } from '../store/sqlite/store.js';
import { FD_LIMIT_LOW, fileDescriptorLimit, totalCapFor } from '../http/connections.js';

export interface Check {
  name: string;
  status: 'ok' | 'warn' | 'fail';
  detail: string;
}

/** Clock offsets beyond this (ms) between a node and the database are reported as a problem. */
/** The clock fence's bound: a node past it is fenced (grants, renews and reclaims nothing). */
export const MAX_SKEW_MS = MAX_CLOCK_OFFSET_MS;

/** Applies pending migrations and returns the schema version reached. */
export async function runMigrate(config: Config): Promise<{ store: string; version: number }> {
  if (config.database.kind === 'sqlite') {
    await mkdir(dirname(config.database.path), { recursive: true, mode: 0o700 });
    const s = new SqliteStore({ path: config.database.path }); // migrates on open
    await s.close();
    return { store: 'sqlite', version: Math.max(...SQLITE_MIGRATIONS.map((m) => m.version)) };
  }
  const s = await PostgresStore.open({ url: config.database.url, max: 2 }); // migrates on open
  try {
    return { store: 'postgres', version: (await s.versions()).schema };
  } finally {
    await s.close();
  }
}

export async function runDoctor(config: Config): Promise<Check[]> {
  const checks: Check[] = [];
  const add = (name: string, status: Check['status'], detail: string) => checks.push({ name, status, detail });

  try {
    await access(config.dataDir, constants.W_OK);
    const mode = (await stat(config.dataDir)).mode & 0o777;
    add(
      'data directory',
      mode & 0o077 ? 'warn' : 'ok',
      `${config.dataDir} (mode ${mode.toString(8)}${mode & 0o077 ? ': readable by others, use 0700' : ''})`,
    );
  } catch {
    add('data directory', 'fail', `${config.dataDir} is missing or not writable`);
  }

  // The connection caps are sized from this limit when the server starts (http/connections.ts).
  const fdLimit = fileDescriptorLimit();
  const poolSize = config.database.kind === 'postgres' ? config.database.poolSize + 1 : 4;
  const cap = config.connections.total ?? totalCapFor(fdLimit, poolSize);
  if (fdLimit === undefined)
    add('open files', 'warn', `cannot read the open-file limit here; at most ${cap} connections (FLOATD_MAX_CONNECTIONS)`);
  else
    add(
      'open files',
      fdLimit < FD_LIMIT_LOW ? 'warn' : 'ok',
      `soft limit ${fdLimit}: at most ${cap} connections, ${config.connections.perAddress || 'no cap'} per address` +
        (fdLimit < FD_LIMIT_LOW ? `; low: raise it (systemd LimitNOFILE=65536, docker --ulimit nofile=65536:65536)` : ''),
    );

  if (config.database.kind === 'sqlite') {
    try {
      const st = await stat(config.database.path);
      const mode = st.mode & 0o777;
      add(
        'database',
        mode & 0o077 ? 'warn' : 'ok',
        `SQLite ${config.database.path}, ${(st.size / 1e6).toFixed(1)} MB, mode ${mode.toString(8)}`,
      );
      const store = new SqliteStore({ path: config.database.path });
      await store.ping();
      await store.close();
      add('schema', 'ok', `version ${Math.max(...SQLITE_MIGRATIONS.map((m) => m.version))}`);
    } catch (err) {
      add('database', 'fail', `cannot open ${config.database.path}: ${(err as Error).message}`);
    }
    try {
      const ring = await KeyRing.open(readOnly(fileKeyPersistence(config.dataDir)), Date.now());
      add('signing keys', 'ok', `signing with kid ${ring.currentKid}; ${ring.jwks(Date.now()).keys.length} key(s) published`);
    } catch (err) {
      add('signing keys', 'fail', (err as Error).message);
    }
    add('clock', 'ok', 'single node: the server clock decides');
    return checks;
  }

  let store: PostgresStore | undefined;
  try {
    store = await PostgresStore.open({ url: config.database.url, max: 2 });
    const v = await store.versions();
    const latest = Math.max(...PG_MIGRATIONS.map((m) => m.version));
    add('database', 'ok', `PostgreSQL ${v.server}`);
    add('schema', v.schema === latest ? 'ok' : 'fail', `version ${v.schema} (this floatd knows ${latest})`);
    try {
      const ring = await KeyRing.open(readOnly(store.keyPersistence(config.database.keyEncryptionKey)), Date.now());
      add('signing keys', 'ok', `in the database, decrypted with FLOATD_KEY_ENCRYPTION_KEY; signing with kid ${ring.currentKid}`);
    } catch (err) {
      add('signing keys', 'fail', (err as Error).message);
    }
    const offset = await store.clockOffset();
    add('clock (this machine)', Math.abs(offset) > MAX_SKEW_MS ? 'fail' : 'ok', `${offset} ms from the database clock`);
    const now = Date.now();
    for (const n of await store.listNodes()) {
      const stale = now - n.lastSeenAt > 30_000;
      const skewed = Math.abs(n.clockOffsetMs) > MAX_SKEW_MS;
      add(
        `node ${n.id}`,
        skewed ? 'fail' : stale ? 'warn' : 'ok',
        `${n.host}, v${n.version}${n.leader ? ', runs the reclaimer' : ''}, clock ${n.clockOffsetMs} ms from the database${skewed ? ` (past ±${MAX_SKEW_MS} ms: fenced, it grants, renews and reclaims nothing until its clock is corrected)` : ''}, last seen ${Math.round((now - n.lastSeenAt) / 1000)} s ago`,
      );
    }
  } catch (err) {
    add('database', 'fail', `cannot reach PostgreSQL: ${(err as Error).message}`);
  } finally {
    await store?.close();
  }
  return checks;
}

/** The doctor only reads: it must never create the first key of an empty ring. */
function readOnly(p: KeyPersistence): KeyPersistence {
  return {
    update: (change) =>
      p.update((keys) => {
        if (keys.length === 0) throw new Error('no signing key yet (it is created on the first start of the server)');
        change(keys);
        return keys;
      }),
  };
}
