/**
 * Throwaway PostgreSQL databases for tests: each test server gets its own,
 * created from FLOATD_TEST_PG_URL's server (default postgres://postgres@127.0.0.1:5432/postgres)
 * and dropped afterwards.
 */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';

export const PG_ADMIN_URL = process.env.FLOATD_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const TEST_KEY_ENCRYPTION_KEY = Buffer.alloc(32, 7).toString('base64');

export interface TempDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

export async function createTempDatabase(): Promise<TempDatabase> {
  const name = `floatd_test_${randomBytes(6).toString('hex')}`;
  const admin = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => undefined });
  try {
    await admin.unsafe(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    async drop() {
      const a = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => undefined });
      try {
        await a.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await a.end();
      }
    },
  };
}

/** Whether PostgreSQL answers; in CI (CI=true) a missing PostgreSQL is an error, not a skip. */
export async function postgresAvailable(): Promise<boolean> {
  // FLOATD_TEST_PG=0 (`npm run test:fast`, local runs): suites that reach PostgreSQL on their own skip it too.
  if (process.env.FLOATD_TEST_PG === '0') return false;
  const sql = postgres(PG_ADMIN_URL, { max: 1, connect_timeout: 3, onnotice: () => undefined });
  try {
    await sql`SELECT 1`;
    return true;
  } catch {
    return false;
  } finally {
    await sql.end({ timeout: 1 }).catch(() => undefined);
  }
}
