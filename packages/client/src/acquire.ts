/**
 * The acquire loop behind `checkout()`: a seat this object already holds; an offline
 * lease an earlier run stored (no network needed); the server, retrying network errors
 * and 5xx with back-off (never a 4xx), and with `wait` asking again until a seat frees;
 * the lease token an earlier run stored when the server is unreachable. Every seat taken
 * is adopted through the session (`session.ts`), one step at a time.
 */
import { sleep } from './clock.js';
import { FloatingLicenseError } from './errors.js';
import { backoff } from './retry.js';
import { asError, isCode, type Session } from './session.js';
import { LEASE_FILE, OFFLINE_FILE } from './tokenStore.js';
import type { CheckoutDenied, CheckoutOptions, CheckoutResult } from './types.js';

/** Gets a seat (see `FloatingLicense.checkout`); `waits` holds the waits in progress, which a check-in or close aborts. */
export async function acquire(session: Session, waits: Set<AbortController>, opts: CheckoutOptions): Promise<CheckoutResult> {
  if (opts.features) session.features = [...opts.features];
  if (session.held && session.mode !== 'lost' && session.isValid()) {
    // Held already: other pools asked for are a feature change of the held seat.
    if (opts.features && !samePools(session.status().features, opts.features)) {
      try {
        await session.serial(() => session.changeFeatures(opts.features!));
      } catch (err) {
        const e = asError(err);
        if (e.code === 'NO_FEATURE_SEATS_AVAILABLE') return denialFrom(e, false);
        throw e;
      }
    }
    return { ok: true, source: 'current', created: false, status: session.status() };
  }
  const clockOk = session.time.check();

  // 1. A seat borrowed offline by an earlier run: no network needed.
  let storedError: FloatingLicenseError | undefined;
  try {
    const off = await session.store.load(OFFLINE_FILE);
    if (off) {
      if (!clockOk)
        throw new FloatingLicenseError(
          'CLOCK_TAMPERED',
          'the system clock was set back: the stored offline lease cannot be trusted until it is corrected',
        );
      return await session.serial(async () => {
        session.adoptStored(off, 'offline');
        return { ok: true as const, source: 'offline-token' as const, created: false, status: session.status() };
      });
    }
  } catch (err) {
    if (isCode(err, 'CLOCK_TAMPERED')) throw err;
    storedError = asError(err);
  }

  // 2. The server.
  const ctl = new AbortController();
  waits.add(ctl);
  const onAbort = () => ctl.abort(opts.signal!.reason);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  let timedOut = false;
  const timeout =
    opts.timeoutMs !== undefined
      ? session.clock.setTimeout(() => ((timedOut = true), ctl.abort(new Error('timeout'))), opts.timeoutMs)
      : undefined;
  try {
    let attempt = 0;
    let lastDenial: CheckoutDenied | undefined;
    for (;;) {
      attempt++;
      try {
        const granted = await session.serial(async () => {
          session.assertOpen();
          const { grant, claims, created } = await session.requestCheckout(opts.wait ? { timeoutSeconds: waitSeconds(opts) } : undefined);
          await session.adopt(grant, claims);
          await session.cleanupOrphans();
          session.clearViolations();
          return { ok: true as const, source: 'server' as const, created, status: session.status() };
        });
        return granted;
      } catch (err) {
        const e = asError(err);
        if (e.code === 'NO_SEATS_AVAILABLE' || e.code === 'NO_FEATURE_SEATS_AVAILABLE') {
          lastDenial = denialFrom(e, false);
          if (!opts.wait || timedOut) return { ...lastDenial, timedOut };
          attempt = 0;
          const delay = waitDelay(session, lastDenial);
          const { ok: _ok, timedOut: _t, ...info } = lastDenial;
          await pause(session, delay, ctl, () => session.emitSafe('waiting', { ...info, retryInMs: delay })).catch((r: unknown) => {
            if (!timedOut) throw r;
          });
          if (timedOut) return { ...lastDenial, timedOut: true };
          continue;
        }
        if (!e.transient) throw e;
        if (e.code !== 'RATE_LIMITED') session.reachable = false;
        // The server is unreachable: run on the token an earlier run stored, if it is still valid.
        if (attempt === 1 && !session.held) {
          try {
            const cached = await session.store.load(LEASE_FILE);
            if (cached) {
              if (!clockOk)
                throw new FloatingLicenseError(
                  'CLOCK_TAMPERED',
                  'the system clock was set back: the stored lease cannot be trusted until it is corrected',
                );
              return await session.serial(async () => {
                session.adoptStored(cached, 'cached');
                return { ok: true as const, source: 'cached-token' as const, created: false, status: session.status() };
              });
            }
          } catch (err2) {
            if (isCode(err2, 'CLOCK_TAMPERED')) throw err2;
            storedError ??= asError(err2);
          }
        }
        if (timedOut || (!opts.wait && attempt >= session.retry.maxAttempts)) {
          if (lastDenial) return { ...lastDenial, timedOut };
          throw storedError ?? e;
        }
        const delay = Math.max(backoff(attempt, session.retry, session.random), e.retryAfterMs ?? 0);
        await pause(session, delay, ctl, () =>
          session.emitSafe('retry', { operation: 'checkout', attempt, delayMs: delay, error: e }),
        ).catch((r: unknown) => {
          if (!timedOut) throw r;
        });
        if (timedOut) {
          if (lastDenial) return { ...lastDenial, timedOut: true };
          throw storedError ?? e;
        }
      }
    }
  } finally {
    if (timeout !== undefined) session.clock.clearTimeout(timeout);
    opts.signal?.removeEventListener('abort', onAbort);
    waits.delete(ctl);
  }
}

function pause(session: Session, ms: number, ctl: AbortController, announce: () => void): Promise<void> {
  const p = sleep(session.clock, ms, ctl.signal);
  announce(); // after the timer exists, so a test clock advanced from the event fires it
  return p;
}

/** How long to wait before asking again for a seat: the poll interval, or sooner when the earliest lease expires. */
/**
 * How long a waiting checkout may stay in the server's queue: its own timeout (at least a minute: a wait given up
 * sooner stops asking, and the server drops it after its claim window anyway), or the longest the server allows.
 */
function waitSeconds(opts: CheckoutOptions): number {
  return opts.timeoutMs === undefined ? 86_400 : Math.min(86_400, Math.max(60, Math.ceil(opts.timeoutMs / 1000)));
}

function waitDelay(session: Session, d: CheckoutDenied): number {
  // In a queue: ask again well within the window that keeps the place (a third of it).
  const window = d.queue ? (d.queue.pollWithinSeconds * 1000) / 3 : Number.POSITIVE_INFINITY;
  const poll = Math.min((session.options.waitIntervalSeconds ?? 15) * 1000, window);
  let delay = poll;
  if (d.earliestExpiryAt) delay = Math.min(poll, Math.max(1000, d.earliestExpiryAt.getTime() - session.time.effectiveNow() + 500));
  return Math.round(delay * (0.8 + 0.2 * session.random()));
}

function queueOf(q: unknown): CheckoutDenied['queue'] {
  if (!q || typeof q !== 'object') return undefined;
  const { pool, position, length, pollWithinSeconds } = q as Record<string, unknown>;
  if (typeof pool !== 'string' || typeof position !== 'number' || typeof length !== 'number' || typeof pollWithinSeconds !== 'number')
    return undefined;
  return { pool, position, length, pollWithinSeconds };
}

function samePools(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().join() === [...b].sort().join();
}

function denialFrom(e: FloatingLicenseError, timedOut: boolean): CheckoutDenied {
  const d = e.details;
  const num = (v: unknown) => (typeof v === 'number' ? v : null);
  const earliest = typeof d.earliestExpiryAt === 'string' ? new Date(d.earliestExpiryAt) : null;
  const total = num(d.seatsTotal);
  const used = num(d.seatsUsed);
  const feature = typeof d.feature === 'string' ? d.feature : undefined;
  const message =
    (total !== null ? `all ${total} seats${feature ? ` of feature ${feature}` : ''} are in use` : 'all seats are in use') +
    // Worded as the server words it: the earliest lease expiry, which a holder that still runs renews.
    (earliest
      ? `; the earliest lease expires at ${earliest.toISOString()} unless its holder renews it`
      : '; no lease expires on its own, a seat frees when someone checks in');
  return {
    ok: false,
    code: feature ? 'NO_FEATURE_SEATS_AVAILABLE' : 'NO_SEATS_AVAILABLE',
    ...(feature ? { feature } : {}),
    message,
    seatsTotal: total,
    seatsUsed: used,
    earliestExpiryAt: earliest,
    ...(Array.isArray(d.holders) ? { holders: d.holders } : {}),
    ...(queueOf(d.queue) ? { queue: queueOf(d.queue)! } : {}),
    timedOut,
  };
}
