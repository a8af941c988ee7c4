/**
 * What the SDK can tell about the machine it runs on without privileges, for the server's sharing rule,
 * clone policy and VM policy: whether it runs in a virtual machine or a container, and the operating
 * system's boot id. Each is a claim (docs/security.md): a patched client can say anything.
 *
 * - VM: the `hypervisor` CPU flag (Linux /proc/cpuinfo), or a DMI vendor or product naming a hypervisor
 *   (/sys/class/dmi/id); macOS: `kern.hv_vmm_present`. Windows: not detected (undefined).
 * - Container: /.dockerenv, /run/.containerenv (podman), the `container` environment variable (systemd,
 *   podman, LXC), or docker / kubepods / containerd / lxc / libpod in /proc/1/cgroup.
 * - Boot id: Linux /proc/sys/kernel/random/boot_id; macOS `kern.bootsessionuuid`.
 *
 * Never throws; what cannot be read is left undefined.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface MachineEnvironment {
  vm?: boolean;
  container?: boolean;
  bootId?: string;
}

/** Where detection reads from: the real machine by default; tests pass a directory of fixture files. */
export interface EnvironmentSources {
  /** root of the file system to read (`/` for the real machine) */
  root: string;
  env: Record<string, string | undefined>;
  platform: NodeJS.Platform;
  /** runs `sysctl -n <name>` (macOS); undefined when it cannot */
  sysctl?: (name: string) => string | undefined;
}

/** DMI vendor or product names of hypervisors and clouds' virtual machines. */
const HYPERVISOR_NAMES =
  /\b(QEMU|KVM|VMware|VirtualBox|innotek|Xen|HVM domU|Microsoft Corporation Virtual Machine|Virtual Machine|Amazon EC2|Google Compute Engine|Parallels|Bochs|BHYVE|OpenStack|DigitalOcean|Hetzner vServer)\b/i;
const CONTAINER_CGROUP = /(docker|kubepods|containerd|lxc|libpod|podman)/;

export function detectEnvironment(src: EnvironmentSources): MachineEnvironment {
  const read = (path: string): string | undefined => {
    try {
      return readFileSync(join(src.root, path), 'utf8');
    } catch {
      return undefined;
    }
  };
  const exists = (path: string) => read(path) !== undefined;
  const out: MachineEnvironment = {};
  if (src.platform === 'linux') {
    const cpuinfo = read('proc/cpuinfo');
    const dmi = ['sys/class/dmi/id/sys_vendor', 'sys/class/dmi/id/product_name', 'sys/class/dmi/id/board_vendor']
      .map(read)
      .filter((x): x is string => x !== undefined)
      .join(' ');
    if (cpuinfo !== undefined || dmi) {
      out.vm = (cpuinfo !== undefined && /^flags\s*:.*\bhypervisor\b/m.test(cpuinfo)) || HYPERVISOR_NAMES.test(dmi);
    }
    const cgroup = read('proc/1/cgroup') ?? '';
    out.container = exists('.dockerenv') || exists('run/.containerenv') || !!src.env.container || CONTAINER_CGROUP.test(cgroup);
    const boot = read('proc/sys/kernel/random/boot_id')?.trim();
    if (boot && /^[A-Za-z0-9_.:-]{1,64}$/.test(boot)) out.bootId = boot;
  } else if (src.platform === 'darwin' && src.sysctl) {
    const hv = src.sysctl('kern.hv_vmm_present');
    if (hv !== undefined) out.vm = hv.trim() === '1';
    out.container = false;
    const boot = src.sysctl('kern.bootsessionuuid')?.trim();
    if (boot && /^[A-Za-z0-9_.:-]{1,64}$/.test(boot)) out.bootId = boot;
  } else if (src.env.container) {
    out.container = true;
  }
  return out;
}

function sysctl(name: string): string | undefined {
  try {
    return execFileSync('sysctl', ['-n', name], { encoding: 'utf8', timeout: 2000, stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return undefined;
  }
}

let cached: MachineEnvironment | undefined;

/** This machine's environment, read once per process. */
export function machineEnvironment(): MachineEnvironment {
  cached ??= detectEnvironment({ root: '/', env: process.env, platform: process.platform, sysctl });
  return cached;
}
