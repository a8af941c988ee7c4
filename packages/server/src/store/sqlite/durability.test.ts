/**
 * The order that makes an answered write survive a power cut: a real `floatd serve` on
 * its default settings runs under strace, which records, in the order they happened,
 * every write to and sync of the SQLite WAL file and every answer written to a client
 * socket. For a sequence of acknowledged writes (admin changes, checkouts, check-ins,
 * a force release) each answer must come after a sync of the WAL that holds its commit:
 * no WAL write may be unsynced when a 2xx answer leaves, and each answer must have
 * written something to the WAL since the previous one (it committed).
 *
 * The same checker run against `--sqlite-synchronous NORMAL` must find unsynced answers:
 * this shows it can see the hole it guards against (and gives the syncs-per-write figure
 * of both settings, printed as test diagnostics).
 *
 * Needs Debian's strace and ptrace permission; skipped with a message otherwise.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFloatdProcess, straceUnavailable } from '../../testing/process.js';

interface Event {
  kind: 'wal-write' | 'wal-sync' | 'answer';
  status?: number;
  line: number;
}

/** Reads an `strace -f -y` log into the events the rule is about, in the order they happened. */
export function parseTrace(text: string): Event[] {
  const events: Event[] = [];
  const pending = new Map<string, 'wal-sync'>();
  text.split('\n').forEach((raw, line) => {
    const m = /^(\d+)\s+(.*)$/.exec(raw);
    if (!m) return;
    const [, pid, rest] = m as unknown as [string, string, string];
    const resumed = /^<\.\.\. (\w+) resumed>.*= (-?\d+)/.exec(rest);
    if (resumed) {
      // A blocking sync counts when it returned, not when it began.
      if (pending.get(pid) === 'wal-sync' && resumed[2] === '0') events.push({ kind: 'wal-sync', line });
      pending.delete(pid);
      return;
    }
    const call = /^(\w+)\((\d+)<([^>]*)>(.*)$/.exec(rest);
    if (!call) return;
    const [, name, , path, tail] = call as unknown as [string, string, string, string, string];
    const wal = path.endsWith('-wal');
    const unfinished = tail.includes('<unfinished ...>');
    if ((name === 'fsync' || name === 'fdatasync') && wal) {
      if (unfinished) pending.set(pid, 'wal-sync');
      else if (/= 0$/.test(tail)) events.push({ kind: 'wal-sync', line });
    } else if ((name === 'pwrite64' || name === 'write' || name === 'writev') && wal) {
      events.push({ kind: 'wal-write', line });
    } else if (/^(write|writev|sendto|sendmsg)$/.test(name) && path.startsWith('socket:')) {
      // An answer counts from the moment it starts to leave (stricter than when it returns).
      const status = /"HTTP\/1\.1 (\d{3}) /.exec(tail);
      if (status) events.push({ kind: 'answer', status: Number(status[1]), line });
    }
  });
  return events;
}

/** For each answer: was any WAL write unsynced when it left, did anything reach the WAL since the previous answer, how many syncs. */
export function judge(events: Event[]) {
  const answers: { status: number; unsynced: boolean; wrote: boolean; syncs: number }[] = [];
  let dirty = false;
  let wrote = false;
  let syncs = 0;
  for (const e of events) {
    if (e.kind === 'wal-write') {
      dirty = true;
      wrote = true;
    } else if (e.kind === 'wal-sync') {
      dirty = false;
      syncs++;
    } else {
      answers.push({ status: e.status!, unsynced: dirty, wrote, syncs });
      wrote = false;
      syncs = 0;
    }
  }
  return answers;
}

/** A sequence of acknowledged writes of every kind; returns how many answers it expects to see. */
async function acknowledgedWrites(s: Awaited<ReturnType<typeof startFloatdProcess>>): Promise<string[]> {
  const done: string[] = [];
  const ok = async (what: string, p: Promise<{ status: number; body: any }>) => {
    const r = await p;
    assert.ok(r.status >= 200 && r.status < 300, `${what} → ${r.status} ${JSON.stringify(r.body)}`);
    done.push(what);
    return r.body;
  };
  const product = await ok('create product', s.admin('POST', '/v1/admin/products', { name: 'Durable CAD' }));
  const lic = await ok(
    'create license',
    s.admin('POST', '/v1/admin/licenses', { productId: product.id, seats: 2, leaseTtlSeconds: 120, heartbeatIntervalSeconds: 30 }),
  );
  for (let round = 0; round < 4; round++) {
    const a = await ok(
      'checkout',
      s.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: `durable-a-${round}`, instanceId: 'app' }),
    );
    const b = await ok(
      'checkout',
      s.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: `durable-b-${round}`, instanceId: 'app' }),
    );
    await ok('check-in', s.client(lic.key, 'POST', `/v1/client/leases/${a.lease.id}/checkin`, { instanceId: 'app' }));
    await ok('force release', s.admin('POST', `/v1/admin/leases/${b.lease.id}/release`, {}));
  }
  await ok('update license', s.admin('PATCH', `/v1/admin/licenses/${lic.id}`, { seats: 3 }));
  await ok('suspend', s.admin('POST', `/v1/admin/licenses/${lic.id}/suspend`));
  await ok('resume', s.admin('POST', `/v1/admin/licenses/${lic.id}/resume`));
  return done;
}

async function traced(t: { diagnostic(m: string): void }, args: string[]) {
  const dir = await mkdtemp(join(tmpdir(), 'floatd-strace-'));
  try {
    const trace = join(dir, 'trace');
    const wrapper = [
      'strace',
      '-f',
      '-y',
      '-qq',
      '-s',
      '24',
      '-o',
      trace,
      '-e',
      'trace=fsync,fdatasync,write,writev,pwrite64,sendto,sendmsg',
    ];
    const s = await startFloatdProcess({ dataDir: join(dir, 'data'), args, wrapper });
    let writes: string[];
    try {
      writes = await acknowledgedWrites(s);
    } finally {
      await s.stop();
    }
    const answers = judge(parseTrace(await readFile(trace, 'utf8')));
    assert.equal(answers.length, writes.length, 'one traced answer per request');
    const syncs = answers.slice(1).reduce((n, a) => n + a.syncs, 0);
    return { answers, writes, syncsPerWrite: syncs / (answers.length - 1) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const skip = straceUnavailable();

test('default server (synchronous FULL): every acknowledged write is answered after a sync of the WAL holding its commit', {
  skip,
  timeout: 60_000,
}, async (t) => {
  const { answers, writes, syncsPerWrite } = await traced(t, []);
  answers.forEach((a, i) => {
    assert.ok(a.wrote, `answer ${i} (${writes[i]}) wrote nothing to the WAL since the previous answer`);
    assert.ok(!a.unsynced, `answer ${i} (${writes[i]}, ${a.status}) left before the WAL holding its commit was synced`);
    assert.ok(a.syncs >= 1, `no WAL sync before answer ${i} (${writes[i]})`);
  });
  t.diagnostic(
    `FULL: ${answers.length} acknowledged writes, ${syncsPerWrite.toFixed(2)} WAL syncs per write, 0 answered before their sync`,
  );
});

test('the checker sees the hole: with --sqlite-synchronous NORMAL answers leave before any WAL sync', {
  skip,
  timeout: 60_000,
}, async (t) => {
  const { answers, syncsPerWrite } = await traced(t, ['--sqlite-synchronous', 'NORMAL']);
  const unsynced = answers.filter((a) => a.unsynced).length;
  assert.ok(unsynced >= answers.length / 2, `only ${unsynced} of ${answers.length} answers were unsynced under NORMAL`);
  t.diagnostic(
    `NORMAL: ${answers.length} acknowledged writes, ${syncsPerWrite.toFixed(2)} WAL syncs per write, ${unsynced} answered before any sync of their commit`,
  );
});

if (skip) test(`strace order test skipped: ${skip}`, () => {});
