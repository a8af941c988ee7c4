/**
 * The state directory: what the SDK keeps between process starts.
 *
 * ```
 * <stateDir>/<ns>/            ns = hash(server origin, license key, fingerprint); mode 0700
 *   jwks.json                 pinned server public keys (trust on first use), sealed
 *   clock.json                latest trusted time, sealed
 *   lease.json                latest online lease token (the laptop that restarts without network), sealed
 *   offline.json              offline lease token until its Offline Expiry Date, sealed
 *   instances/<id>.json       instances this device started and has not checked in (pid, lease)
 * ```
 *
 * Files are replaced atomically (write a temporary file, fsync, rename), so a
 * crash mid-write leaves the old or the new file, never half of one.
 *
 * "Sealed" files carry an HMAC whose key is derived from the fingerprint and the
 * license key: editing one by hand is detected. It is tamper evidence against a
 * casual edit, not a secret (both inputs are on the machine); signatures on the
 * lease tokens inside are what make them unforgeable.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';

export function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

let tmpCounter = 0;

/** Writes `text` to `file` atomically with mode 0600. */
export async function writeFileAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.${++tmpCounter}.${randomBytes(3).toString('hex')}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(text, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** {@link writeFileAtomic} for where nothing async can run (a process `exit` handler). */
export function writeFileAtomicSync(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.${++tmpCounter}.${randomBytes(3).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

export type SealedRead<T> = { kind: 'missing' } | { kind: 'tampered'; reason: string } | { kind: 'ok'; data: T };

/** One namespace of the state directory (one server, license key and device). */
export class StateDir {
  readonly dir: string;
  private readonly macKey: Buffer;

  constructor(stateDir: string, origin: string, licenseKey: string, fingerprint: string) {
    const ns = sha256(`${origin}\n${licenseKey}\n${fingerprint}`).toString('hex').slice(0, 24);
    this.dir = join(stateDir, ns);
    this.macKey = createHmac('sha256', 'floatd-client-state-v1').update(`${fingerprint}\0${licenseKey}`).digest();
  }

  async ensure(): Promise<void> {
    await mkdir(join(this.dir, 'instances'), { recursive: true, mode: 0o700 });
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  private mac(name: string, body: string): string {
    return createHmac('sha256', this.macKey).update(name).update('\0').update(body).digest('base64url');
  }

  private sealed(name: string, data: unknown): string {
    const body = JSON.stringify(data);
    return JSON.stringify({ v: 1, body, mac: this.mac(name, body) }) + '\n';
  }

  /** Writes `data` with an HMAC over the file's name and content. */
  async writeSealed(name: string, data: unknown): Promise<void> {
    await writeFileAtomic(this.path(name), this.sealed(name, data));
  }

  /** {@link writeSealed}, synchronously (for a process `exit` handler). */
  writeSealedSync(name: string, data: unknown): void {
    writeFileAtomicSync(this.path(name), this.sealed(name, data));
  }

  /** Reads a sealed file: missing, tampered (unparsable or wrong HMAC), or its data. */
  async readSealed<T>(name: string): Promise<SealedRead<T>> {
    let text: string;
    try {
      text = await readFile(this.path(name), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' };
      throw err;
    }
    return this.unseal<T>(name, text);
  }

  /** {@link readSealed}, synchronously. */
  readSealedSync<T>(name: string): SealedRead<T> {
    let text: string;
    try {
      text = readFileSync(this.path(name), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' };
      throw err;
    }
    return this.unseal<T>(name, text);
  }

  private unseal<T>(name: string, text: string): SealedRead<T> {
    try {
      const outer = JSON.parse(text) as { v?: unknown; body?: unknown; mac?: unknown };
      if (outer.v !== 1 || typeof outer.body !== 'string' || typeof outer.mac !== 'string')
        return { kind: 'tampered', reason: 'not a sealed state file' };
      const want = Buffer.from(this.mac(name, outer.body));
      const got = Buffer.from(outer.mac);
      if (want.length !== got.length || !timingSafeEqual(want, got))
        return { kind: 'tampered', reason: 'its HMAC does not match (edited by hand?)' };
      return { kind: 'ok', data: JSON.parse(outer.body) as T };
    } catch {
      return { kind: 'tampered', reason: 'not valid JSON' };
    }
  }

  async remove(name: string): Promise<void> {
    await rm(this.path(name), { force: true });
  }

  // --- instance registry ------------------------------------------------------

  async registerInstance(entry: InstanceEntry): Promise<void> {
    await writeFileAtomic(join(this.dir, 'instances', `${entry.instanceId}.json`), JSON.stringify({ host: hostname(), ...entry }) + '\n');
  }

  async unregisterInstance(instanceId: string): Promise<void> {
    await unlink(join(this.dir, 'instances', `${instanceId}.json`)).catch(() => undefined);
  }

  /** Every registered instance, each with whether its process is still alive. */
  async instances(): Promise<(InstanceEntry & { alive: boolean })[]> {
    let names: string[];
    try {
      names = await readdir(join(this.dir, 'instances'));
    } catch {
      return [];
    }
    const out: (InstanceEntry & { alive: boolean })[] = [];
    for (const name of names) {
      if (!name.endsWith('.json')) continue;
      try {
        const e = JSON.parse(await readFile(join(this.dir, 'instances', name), 'utf8')) as InstanceEntry;
        if (typeof e.instanceId !== 'string' || typeof e.pid !== 'number') continue;
        // a pid of another host cannot be checked here: count it alive (the safe side)
        const alive = !e.closedAt && (e.host !== undefined && e.host !== hostname() ? true : processAlive(e.pid));
        out.push({ ...e, alive });
      } catch {
        /* a half-deleted or foreign file: not an instance */
      }
    }
    return out;
  }
}

/** An instance this device started: which process runs it and which lease it joined. */
export interface InstanceEntry {
  instanceId: string;
  pid: number;
  leaseId: string | null;
  startedAt: number;
  /** set when the instance stopped without reaching the server to check in (e.g. the app closed offline) */
  closedAt?: number;
  /** the host whose process table `pid` belongs to (a state dir on a shared volume) */
  host?: string;
}

/**
 * Whether a process id is alive. `EPERM` means it exists but belongs to another
 * user. A recycled pid reads as alive: the instance then lingers until the
 * lease's TTL or a sync, which is the safe side (never drop a running instance).
 */
export function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
