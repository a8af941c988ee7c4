/**
 * `Leadership` (store/cluster.ts) in PostgreSQL: the node holding a session advisory lock on a dedicated
 * connection; if that node dies, its connection closes, the lock is released,
 * and another node takes it at its next try (every `retryMs`, 2 s by default).
 */
import type postgres from 'postgres';
import type { Leadership } from '../cluster.js';

/**
 * `sql` is a client of its own with a pool of one connection (the lock belongs to
 * that connection's session). Not a `reserve()`d connection of the main pool:
 * postgres.js 3.4.9 throws an uncatchable TypeError (`socket.write` on null,
 * porsager/postgres#1208) when a query is written on a reserved connection whose
 * socket has closed, which killed the leader node whenever its database
 * connection dropped. A pooled connection is replaced instead; the lock died with
 * the old session, which the backend pid tells.
 */
/** How long a leadership query may hear nothing before its connection is taken for half-open. */
const TICK_DEADLINE_MS = 5_000;

export function pgLeadership(
  connectOne: () => postgres.Sql,
  name: string,
  opts: { retryMs?: number; onChange?: (leader: boolean) => void } = {},
): Leadership {
  let leader = false;
  let stopped = false;
  /** the backend (session) that holds the lock */
  let holder: number | undefined;
  const set = (v: boolean) => {
    if (v !== leader) {
      leader = v;
      opts.onChange?.(v);
    }
  };
  let sql = connectOne();
  let running = false;
  /** A query that hears nothing for this long is on a half-open connection: the client is replaced. */
  const answerWithin = <T>(query: Promise<T>): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('the leader lock connection did not answer')), TICK_DEADLINE_MS);
    });
    query.catch(() => undefined);
    return Promise.race([query, late]).finally(() => clearTimeout(timer));
  };
  const tick = async () => {
    if (running || stopped) return;
    running = true;
    try {
      if (leader) {
        const [r] = await answerWithin(sql`SELECT pg_backend_pid() AS pid`);
        if (Number(r?.pid) === holder) return; // same session, so still holding the lock
        set(false); // reconnected: the lock went with the old session
      }
      const [r] = await answerWithin(sql`SELECT pg_try_advisory_lock(hashtext(${name})) AS ok, pg_backend_pid() AS pid`);
      holder = r?.ok ? Number(r.pid) : undefined;
      set(Boolean(r?.ok));
    } catch {
      holder = undefined;
      set(false);
      // A new client: the old one may be stuck on a silent connection (its session, and the lock, end on the
      // database's side when the database notices); the next tick asks for the lock on a fresh connection.
      const old = sql;
      sql = connectOne();
      void old.end({ timeout: 0 }).catch(() => undefined);
    } finally {
      running = false;
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
      if (leader) await sql`SELECT pg_advisory_unlock(hashtext(${name}))`.catch(() => undefined);
      set(false);
      await sql.end({ timeout: 2 }).catch(() => undefined);
    },
  };
}
