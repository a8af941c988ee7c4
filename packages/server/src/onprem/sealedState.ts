/**
 * On-premise: the sealed state, so that what bounds enforcement cannot be edited
 * or forgotten without it showing.
 *
 * The customer owns the database, the data directory and the clock. The records
 * that bound what the server may grant — the highest license-file serial ever
 * loaded (and which file it was), the trusted time, the usage per key and day
 * that the signed usage report must not understate, the report sequence — are
 * kept in one document signed with the server's identity key. Each new seal
 * names its sequence number and the hash of the one before (a chain). It is
 * kept in the database (`onprem/state`) and, by every node, in its data
 * directory (`onprem-state.json`).
 *
 * Checked at start and on every state tick: a seal that fails its signature, a
 * database seal older than the data-directory copy (a restored or edited
 * database), a missing seal on a server that has state, or a chain that forks
 * is tampering. Then new grants are refused with `STATE_TAMPERED` (503), held
 * leases keep working, and it is logged, audited, exported as a metric and
 * written into the next signed usage report. The tampered state is itself
 * sealed, so a restart does not clear it; a new vendor-signed license file with
 * a higher serial does (the vendor issued it: its side records it).
 *
 * What it cannot see (docs/security.md): a customer who rolls back the database
 * and every data-directory copy together, or who reads the identity key from
 * disk and signs records himself, or who edits floatd's code. The vendor's side
 * sees the first through the usage report's sequence and previous-report hash.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import type { Clock } from '../domain/clock.js';
import type { Effect } from '../domain/effects.js';
import type { DomainError } from '../domain/result.js';
import type { Store } from '../store/port.js';
import type { Metrics } from '../service/metrics.js';
import { signDocument, verifyDocument, type Envelope, type Signer } from '../keys/documents.js';

export const SEALED_STATE_KV = 'onprem/state';
export const SEALED_STATE_FILE = 'onprem-state.json';
const FORMAT = 'floatd-state/1' as const;
const DAY_MS = 86_400_000;
/** Days of sealed usage kept (a usage report covers at most 366 days). */
const USAGE_DAYS = 400;

/** Per license key and UTC day: [peak seats, checkouts, denials]. */
export type SealedUsage = Record<string, Record<string, [number, number, number]>>;

export interface SealEvent {
  at: string;
  event: 'tampered' | 'repaired';
  reason: string;
}

export interface SealPayload {
  seq: number;
  /** SHA-256 (base64url) of the previous seal's signed text; null for the first */
  prev: string | null;
  sealedAt: string;
  highestSerial: number;
  /** hash of the signature of the file with the highest serial (the same serial with other content is another file) */
  fileHash: string | null;
  trustedTime: number;
  report: { seq: number; hash: string | null };
  usage: SealedUsage;
  /** set while the state is broken: grants are refused until a newer license file is loaded */
  tampered: { since: string; reasons: string[] } | null;
  /** tamper findings and repairs not yet told to the vendor in a usage report */
  events: SealEvent[];
}

export interface SealOptions {
  signer: Signer;
  publicKey: KeyObject;
  dataDir: string;
  logger?: Logger | false | undefined;
}

export function sha(text: string): string {
  return createHash('sha256').update(text).digest('base64url');
}

export class SealedState {
  private known: { payload: SealPayload; text: string } | undefined;
  private readonly pending = new Map<string, Map<string, [number, number, number]>>();
  private reason: string | undefined;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly metrics: Metrics,
    private readonly opts: SealOptions,
  ) {
    metrics.stateTampered.set(0);
  }

  private get file(): string {
    return join(this.opts.dataDir, SEALED_STATE_FILE);
  }

  /**
   * Reads and checks both copies. `firstStart`: the identity was made just now (a new
   * server has no state to protect). `legacy`: a trusted-time record from before seals
   * existed (an upgrade: the first seal is made from what is there).
   */
  async start(ctx: { firstStart: boolean; legacyUpgrade: boolean; trustedTimeMissing: boolean }): Promise<void> {
    const inDatabase = await this.store.getKv(SEALED_STATE_KV);
    const onDisk = await readFile(this.file, 'utf8').catch(() => undefined);
    const databaseSeal = inDatabase ? this.verify(inDatabase.value) : undefined;
    const diskSeal = onDisk !== undefined ? this.verify(onDisk) : undefined;
    const reasons: string[] = [];
    if (databaseSeal && !databaseSeal.ok) reasons.push('the sealed state in the database fails its signature check');
    if (diskSeal && !diskSeal.ok) reasons.push(`the sealed state in ${this.file} fails its signature check`);
    if (!inDatabase) {
      if (diskSeal?.ok)
        reasons.push(`the sealed state is missing from the database (the data directory holds seal ${diskSeal.payload.seq})`);
      else if (!ctx.firstStart && !ctx.legacyUpgrade) reasons.push('the sealed state is missing on a server that has state');
    }
    if (databaseSeal?.ok && diskSeal?.ok) {
      if (databaseSeal.payload.seq < diskSeal.payload.seq)
        reasons.push(
          `the database holds seal ${databaseSeal.payload.seq}, older than seal ${diskSeal.payload.seq} in the data directory: it was restored or edited`,
        );
      else if (databaseSeal.payload.seq === diskSeal.payload.seq && inDatabase!.value !== onDisk)
        reasons.push(`two different seals carry sequence ${databaseSeal.payload.seq}`);
    }
    if (ctx.trustedTimeMissing && !ctx.firstStart) reasons.push('the trusted-time record is missing on a server that has state');
    // The best verified copy is the base: the highest sequence.
    const candidates = [
      databaseSeal?.ok ? { payload: databaseSeal.payload, text: inDatabase!.value } : undefined,
      diskSeal?.ok ? { payload: diskSeal.payload, text: onDisk! } : undefined,
    ].filter((c): c is { payload: SealPayload; text: string } => c !== undefined);
    candidates.sort((a, b) => b.payload.seq - a.payload.seq);
    this.known = candidates[0];
    if (this.known?.payload.tampered) this.enterTampered(this.known.payload.tampered.reasons.join('; '), false);
    if (reasons.length) {
      await this.tamper(reasons);
      return;
    }
    if (!this.known) {
      await this.update(() => undefined); // the first seal (a new server, or an upgrade)
      if (ctx.legacyUpgrade) this.log('warn', 'sealed state created from the existing records (upgrade from a version without seals)');
      return;
    }
    if (onDisk !== this.known.text) await this.writeFile(this.known.text);
  }

  /** The periodic check: the database copy is compared with what this node knows; pending usage and the trusted time are sealed. */
  async tick(trustedTime: number): Promise<void> {
    await this.check();
    const base = this.known?.payload;
    if (this.pending.size > 0 || !base || trustedTime > base.trustedTime) await this.update(() => undefined, trustedTime);
  }

  /** Why no new seat may be granted (the state is broken), if so. No I/O. */
  refusal(): DomainError | undefined {
    if (this.reason === undefined) return undefined;
    return {
      code: 'STATE_TAMPERED',
      message: `this server's sealed state was tampered with (${this.reason}); held seats keep working, new seats are refused until the vendor issues a new license file`,
      details: {},
    };
  }

  get tampered(): boolean {
    return this.reason !== undefined;
  }

  state(): SealPayload | undefined {
    return this.known?.payload;
  }

  /** Counts the usage effects of a committed transaction into the next seal. */
  observe(effects: readonly Effect[]): void {
    for (const effect of effects) {
      if (effect.type !== 'usage') continue;
      const day = new Date(effect.at - (effect.at % DAY_MS)).toISOString().slice(0, 10);
      let days = this.pending.get(effect.licenseId);
      if (!days) this.pending.set(effect.licenseId, (days = new Map()));
      const counts = days.get(day) ?? [0, 0, 0];
      counts[0] = Math.max(counts[0], effect.peak, effect.seatsUsed);
      counts[1] += effect.checkouts;
      counts[2] += effect.denials;
      days.set(day, counts);
    }
  }

  /** A license file was loaded: its serial is the floor from now on; a higher serial than ever repairs a broken state. */
  async fileLoaded(serial: number, signature: string): Promise<void> {
    await this.update((seal) => {
      if (serial < seal.highestSerial) return;
      if (serial > seal.highestSerial && seal.tampered) {
        seal.events.push({
          at: this.iso(),
          event: 'repaired',
          reason: `license file serial ${serial} loaded (was tampered: ${seal.tampered.reasons.join('; ')})`,
        });
        seal.tampered = null;
      }
      seal.highestSerial = serial;
      seal.fileHash = sha(signature);
    });
    if (this.reason !== undefined && !this.known?.payload.tampered) {
      this.reason = undefined;
      this.metrics.stateTampered.set(0);
      this.log('warn', `sealed state repaired by license file serial ${serial}: grants resume`);
      await this.audit('state.repaired', { serial });
    }
  }

  /** Whether a license file may be adopted: never below the sealed serial, and the sealed serial only as the same file. */
  allows(serial: number, signature: string): { ok: true } | { ok: false; reason: string } {
    const seal = this.known?.payload;
    if (!seal) return { ok: true };
    if (serial < seal.highestSerial)
      return { ok: false, reason: `serial ${serial} is lower than serial ${seal.highestSerial}, the highest this server ever loaded` };
    if (serial === seal.highestSerial && seal.fileHash !== null && seal.fileHash !== sha(signature))
      return { ok: false, reason: `serial ${serial} was loaded before with different content` };
    return { ok: true };
  }

  /** Records a tamper finding that another part of the server made (an older license file in the database). */
  async tamper(found: string[]): Promise<void> {
    // A finding already sealed is not sealed again (a poll that sees the same edit every minute).
    const reasons = found.filter((finding) => !this.known?.payload.tampered?.reasons.includes(finding));
    if (reasons.length === 0 && this.reason !== undefined) return;
    const reason = reasons.join('; ');
    await this.update((seal) => {
      seal.tampered = { since: seal.tampered?.since ?? this.iso(), reasons: [...new Set([...(seal.tampered?.reasons ?? []), ...reasons])] };
      for (const finding of reasons) seal.events.push({ at: this.iso(), event: 'tampered', reason: finding });
    });
    this.enterTampered(reason, true);
    await this.audit('state.tampered', { reasons });
  }

  /**
   * Seals pending usage first, then gives the report what the seal knows and takes the
   * report's sequence; `finish` seals the report's hash and clears the events told.
   */
  async forReport(): Promise<{
    seq: number;
    previous: string | null;
    usage: SealedUsage;
    events: SealEvent[];
    tampered: SealPayload['tampered'];
  }> {
    await this.check();
    await this.update(() => undefined);
    const seal = this.known!.payload;
    return { seq: seal.report.seq + 1, previous: seal.report.hash, usage: seal.usage, events: [...seal.events], tampered: seal.tampered };
  }

  async reported(seq: number, hash: string, told: number): Promise<void> {
    await this.update((seal) => {
      if (seq <= seal.report.seq) return;
      seal.report = { seq, hash };
      seal.events = seal.events.slice(told);
    });
  }

  // -------------------------------------------------------------------------

  private verify(text: string): { ok: true; payload: SealPayload } | { ok: false } {
    try {
      const verified = verifyDocument<SealPayload>(FORMAT, JSON.parse(text) as unknown, [this.opts.publicKey]);
      return verified.ok && typeof verified.payload.seq === 'number' ? { ok: true, payload: verified.payload } : { ok: false };
    } catch {
      return { ok: false };
    }
  }

  /** Compares the database copy with the last seal this node knows. */
  private async check(): Promise<void> {
    const inDatabase = await this.store.getKv(SEALED_STATE_KV);
    const known = this.known;
    if (!known) return;
    if (!inDatabase) return this.tamper(['the sealed state was deleted from the database']);
    if (inDatabase.value === known.text) return;
    const stored = this.verify(inDatabase.value);
    if (!stored.ok) return this.tamper(['the sealed state in the database fails its signature check']);
    if (stored.payload.seq < known.payload.seq)
      return this.tamper([
        `the database went back from seal ${known.payload.seq} to seal ${stored.payload.seq}: it was restored or edited`,
      ]);
    if (stored.payload.seq === known.payload.seq) return this.tamper([`two different seals carry sequence ${stored.payload.seq}`]);
    // Another node sealed since: adopt it.
    this.known = { payload: stored.payload, text: inDatabase.value };
    if (stored.payload.tampered && this.reason === undefined) this.enterTampered(stored.payload.tampered.reasons.join('; '), true);
    await this.writeFile(inDatabase.value);
  }

  /**
   * Writes the next seal: read under the record's lock, changed by `change`, pending usage
   * merged, chained to the one before, signed; then the data-directory copy.
   */
  private async update(change: (next: SealPayload) => void, trustedTime = 0): Promise<void> {
    const pending = new Map([...this.pending].map(([licenseId, days]) => [licenseId, new Map(days)]));
    this.pending.clear();
    let written: { payload: SealPayload; text: string } | undefined;
    try {
      written = await this.store.transaction(async (tx) => {
        const held = await tx.lockKv(SEALED_STATE_KV);
        const heldSeal = held ? this.verify(held.value) : undefined;
        // A broken or missing database copy is never the base: what this node knows is.
        const base =
          heldSeal?.ok && (!this.known || heldSeal.payload.seq >= this.known.payload.seq)
            ? { payload: heldSeal.payload, text: held!.value }
            : this.known;
        const next: SealPayload = base
          ? (JSON.parse(JSON.stringify(base.payload)) as SealPayload)
          : {
              seq: 0,
              prev: null,
              sealedAt: '',
              highestSerial: 0,
              fileHash: null,
              trustedTime: 0,
              report: { seq: 0, hash: null },
              usage: {},
              tampered: null,
              events: [],
            };
        // When the base is this node's copy but the database holds a higher (valid) one, the chain still moves forward from the higher.
        if (heldSeal?.ok && heldSeal.payload.seq > next.seq) next.seq = heldSeal.payload.seq;
        mergeUsage(next.usage, pending, this.clock.now());
        next.trustedTime = Math.max(next.trustedTime, trustedTime);
        change(next);
        next.seq += 1;
        next.prev = base ? sha(base.text) : null;
        next.sealedAt = this.iso();
        const text = JSON.stringify(signDocument(FORMAT, next, this.opts.signer) as Envelope<SealPayload>);
        await tx.apply([{ type: 'kv.put', name: SEALED_STATE_KV, value: text, at: this.clock.now() }]);
        return { payload: next, text };
      });
    } catch (err) {
      // Not sealed: the usage goes back into the next attempt.
      for (const [licenseId, days] of pending)
        for (const [day, counts] of days)
          this.observe([
            {
              type: 'usage',
              licenseId: licenseId,
              at: Date.parse(day),
              seatsUsed: counts[0],
              peak: counts[0],
              checkouts: counts[1],
              denials: counts[2],
              peakOverdraft: 0,
              overdraftAtEnd: 0,
              overdraftCheckouts: 0,
            },
          ]);
      throw err;
    }
    this.known = written;
    await this.writeFile(written.text);
  }

  private async writeFile(text: string): Promise<void> {
    const tmp = `${this.file}.${process.pid}.tmp`;
    try {
      await mkdir(this.opts.dataDir, { recursive: true, mode: 0o700 });
      const handle = await open(tmp, 'w', 0o600);
      try {
        await handle.writeFile(text);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(tmp, this.file);
    } catch (err) {
      this.log('error', `could not write the sealed state to ${this.file}: ${(err as Error).message}`);
    }
  }

  private enterTampered(reason: string, log: boolean): void {
    const first = this.reason === undefined;
    this.reason = reason;
    this.metrics.stateTampered.set(1);
    if (log && first)
      this.log(
        'error',
        `sealed state tampered: ${reason}; new grants are refused (STATE_TAMPERED) until the vendor issues a new license file`,
      );
  }

  private async audit(type: 'state.tampered' | 'state.repaired', data: Record<string, unknown>): Promise<void> {
    const at = this.clock.now();
    await this.store
      .transaction((tx) =>
        tx.apply([
          { type: 'audit', entry: { at, type, actor: 'server', licenseId: null, deviceId: null, leaseId: null, reason: null, data } },
        ]),
      )
      .catch((err: unknown) => this.log('error', `could not audit ${type}: ${(err as Error).message}`));
  }

  private iso(): string {
    return new Date(this.clock.now()).toISOString();
  }

  private log(level: 'warn' | 'error', msg: string): void {
    if (this.opts.logger) this.opts.logger[level](msg);
  }
}

function mergeUsage(usage: SealedUsage, pending: Map<string, Map<string, [number, number, number]>>, now: number): void {
  for (const [lic, days] of pending) {
    const into = (usage[lic] ??= {});
    for (const [day, d] of days) {
      const was = into[day] ?? [0, 0, 0];
      into[day] = [Math.max(was[0], d[0]), was[1] + d[1], was[2] + d[2]];
    }
  }
  const oldest = new Date(now - USAGE_DAYS * DAY_MS).toISOString().slice(0, 10);
  for (const days of Object.values(usage)) for (const day of Object.keys(days)) if (day < oldest) delete days[day];
}

/** The store, with every committed transaction's effects handed to `observe` (after commit; never for a rollback). */
export function observedStore(store: Store, observe: (effects: readonly Effect[]) => void): Store {
  const transaction: Store['transaction'] = async (fn, opts) => {
    const applied: Effect[] = [];
    const result = await store.transaction(
      (tx) =>
        fn({
          ...tx,
          apply: async (effects) => {
            await tx.apply(effects);
            applied.push(...effects);
          },
        }),
      opts,
    );
    if (applied.length) observe(applied);
    return result;
  };
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'transaction') return transaction;
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
