/**
 * Which node runs the background jobs (reclaimer). SQLite: the one process.
 * PostgreSQL: the node holding a session advisory lock on a dedicated
 * connection; if that node dies, its connection closes, the lock is released,
 * and another node takes it at its next try (every `retryMs`, 2 s by default).
 */
import type postgres from 'postgres';

export interface Leadership {
  isLeader(): boolean;
  stop(): Promise<void>;
}

export const alwaysLeader: Leadership = { isLeader: () => true, stop: async () => undefined };

export function pgLeadership(sql: postgres.Sql, name: string, opts: { retryMs?: number; onChange?: (leader: boolean) => void } = {}): Leadership {
  let leader = false;
  let stopped = false;
  let conn: postgres.ReservedSql | undefined;
  const set = (v: boolean) => {
    if (v !== leader) {
      leader = v;
      opts.onChange?.(v);
    }
  };
  const tick = async () => {
    try {
      conn ??= await sql.reserve();
      if (leader) {
        await conn`SELECT 1`; // still connected, so still holding the lock
      } else {
        const [r] = await conn`SELECT pg_try_advisory_lock(hashtext(${name})) AS ok`;
        set(Boolean(r?.ok));
      }
    } catch {
      set(false);
      conn?.release();
      conn = undefined;
    }
  };
  const timer = setInterval(() => void tick(), opts.retryMs ?? 2000);
  timer.unref();
  void tick();
  return {
    isLeader: () => leader && !stopped,
    async stop() {
      stopped = true;
      clearInterval(timer);
      if (conn) {
        if (leader) await conn`SELECT pg_advisory_unlock(hashtext(${name}))`.catch(() => undefined);
        conn.release();
      }
      set(false);
    },
  };
}
