/**
 * Device fingerprint: a hash of the machine's identity, stable across restarts
 * of the same machine and different between machines. The raw machine id never
 * leaves the process — only `fp1:` + base64url(SHA-256("floatd-device-v1\0" + id)).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { hostname, networkInterfaces, platform } from 'node:os';
import { join } from 'node:path';
import { sha256 } from './state.js';

/** What the server accepts as a fingerprint. @example FINGERPRINT_PATTERN.test(myFingerprint) */
export const FINGERPRINT_PATTERN = /^[A-Za-z0-9_.:+/=-]{8,128}$/;

export interface FingerprintOptions {
  /** Use this machine id instead of reading the operating system's (tests, containers, VDI). */
  machineId?: string;
  /**
   * Where to keep a generated device id when the operating system has none
   * (e.g. a container without /etc/machine-id).
   */
  stateDir?: string;
  /**
   * Skip the OS machine id and use the id kept in `stateDir` — for containers
   * cloned from one image, which share `/etc/machine-id`.
   */
  ignoreOsMachineId?: boolean;
}

/**
 * The device fingerprint the SDK sends. Sources, in order: `opts.machineId`; the
 * OS machine id (Linux `/etc/machine-id`, macOS `IOPlatformUUID`, Windows
 * `MachineGuid`, FreeBSD `/etc/hostid`); a random id generated once and kept in
 * `stateDir/device-id`; the host name and MAC addresses.
 *
 * @example
 * deviceFingerprint()                       // 'fp1:3q2-7w…' (43 base64url characters after the prefix)
 * deviceFingerprint({ machineId: 'vm-42' }) // a fixed id, e.g. for a VDI pool
 * deviceFingerprint({ stateDir: '/data/app', ignoreOsMachineId: true }) // containers cloned from one image
 */
export function deviceFingerprint(opts: FingerprintOptions = {}): string {
  const raw =
    opts.machineId ??
    (opts.ignoreOsMachineId ? undefined : osMachineId()) ??
    (opts.stateDir ? storedDeviceId(opts.stateDir) : undefined) ??
    hardwareHint();
  return hashMachineId(raw);
}

/** Hashes a raw machine id into a fingerprint. @example hashMachineId('4c4c4544-0042') // 'fp1:…' */
export function hashMachineId(raw: string): string {
  return 'fp1:' + sha256(`floatd-device-v1\0${raw.trim().toLowerCase()}`).toString('base64url');
}

function readTrimmed(file: string): string | undefined {
  try {
    const v = readFileSync(file, 'utf8').trim();
    return v.length >= 8 ? v : undefined;
  } catch {
    return undefined;
  }
}

function run(cmd: string, args: string[]): string | undefined {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', timeout: 3000, stdio: ['ignore', 'pipe', 'ignore'], windowsHide: true });
  } catch {
    return undefined;
  }
}

/** The operating system's machine id (raw: never send it), or undefined when there is none. @example const hasId = osMachineId() !== undefined */
export function osMachineId(): string | undefined {
  switch (platform()) {
    case 'linux':
      return readTrimmed('/etc/machine-id') ?? readTrimmed('/var/lib/dbus/machine-id');
    case 'darwin': {
      const out = run('ioreg', ['-rd1', '-c', 'IOPlatformExpertDevice']);
      return out ? /"IOPlatformUUID"\s*=\s*"([^"]+)"/.exec(out)?.[1] : undefined;
    }
    case 'win32': {
      const out = run('reg', ['query', 'HKLM\\SOFTWARE\\Microsoft\\Cryptography', '/v', 'MachineGuid', '/reg:64']);
      return out ? /MachineGuid\s+REG_SZ\s+(\S+)/i.exec(out)?.[1] : undefined;
    }
    case 'freebsd':
    case 'openbsd':
    case 'netbsd':
      return readTrimmed('/etc/hostid') ?? run('kenv', ['-q', 'smbios.system.uuid'])?.trim();
    default:
      return undefined;
  }
}

function storedDeviceId(stateDir: string): string | undefined {
  const file = join(stateDir, 'device-id');
  const existing = readTrimmed(file);
  if (existing) return existing;
  try {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const id = randomBytes(16).toString('hex');
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, id + '\n', { mode: 0o600 });
    renameSync(tmp, file);
    return readTrimmed(file);
  } catch {
    return undefined;
  }
}

function hardwareHint(): string {
  const macs = Object.values(networkInterfaces())
    .flat()
    .filter((i) => i && !i.internal && i.mac && i.mac !== '00:00:00:00:00:00')
    .map((i) => i!.mac)
    .sort();
  return `${hostname()}|${[...new Set(macs)].join(',')}`;
}
