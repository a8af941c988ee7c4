/**
 * What the SDK says about its machine (VM, container, boot id) and how sharing rules reach it: detection
 * from fixture files for each kind of machine, the real detection on this machine, and against a real
 * server: one user on two devices shares a seat, a VM is refused under `deny`, floatd-run's share key.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { detectEnvironment, machineEnvironment } from './environment.js';
import type { FloatingLicenseError } from './errors.js';
import { ManualClock } from '@floatd/server';
import { startTestServer } from '@floatd/server/testing';
import { closeSharedServer, floatdRuns, withWorld } from './testsupport.js';

after(() => closeSharedServer());

async function machine(files: Record<string, string>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'floatd-machine-'));
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), text);
  }
  return root;
}

const CPU_VM = 'processor\t: 0\nflags\t\t: fpu vme de pse tsc msr hypervisor lahf_lm\n';
const CPU_METAL = 'processor\t: 0\nflags\t\t: fpu vme de pse tsc msr lahf_lm\n';
const BOOT = '0f8e6b52-5f7e-4a5b-9d4e-2c3b1a0f9e8d\n';

test('detection from the files a machine shows: VM by CPU flag or DMI vendor, containers by their markers, the boot id', async () => {
  const cases: [string, Record<string, string>, Record<string, string | undefined>, { vm?: boolean; container?: boolean }][] = [
    ['bare metal', { 'proc/cpuinfo': CPU_METAL, 'proc/1/cgroup': '0::/init.scope\n' }, {}, { vm: false, container: false }],
    ['VM by the hypervisor flag', { 'proc/cpuinfo': CPU_VM, 'proc/1/cgroup': '0::/\n' }, {}, { vm: true, container: false }],
    [
      'VM by DMI (flag hidden)',
      { 'proc/cpuinfo': CPU_METAL, 'sys/class/dmi/id/sys_vendor': 'QEMU\n', 'sys/class/dmi/id/product_name': 'Standard PC\n' },
      {},
      { vm: true, container: false },
    ],
    ['Hyper-V by DMI', { 'proc/cpuinfo': CPU_METAL, 'sys/class/dmi/id/product_name': 'Virtual Machine\n' }, {}, { vm: true }],
    ['docker', { 'proc/cpuinfo': CPU_METAL, '.dockerenv': '' }, {}, { vm: false, container: true }],
    ['podman', { 'proc/cpuinfo': CPU_METAL, 'run/.containerenv': 'engine="podman"\n' }, {}, { container: true }],
    [
      'kubernetes (cgroup v1)',
      { 'proc/cpuinfo': CPU_METAL, 'proc/1/cgroup': '11:pids:/kubepods/burstable/pod1/abc\n' },
      {},
      { container: true },
    ],
    ['systemd-nspawn / LXC (env)', { 'proc/cpuinfo': CPU_METAL }, { container: 'lxc' }, { container: true }],
  ];
  for (const [name, files, env, want] of cases) {
    const root = await machine({ ...files, 'proc/sys/kernel/random/boot_id': BOOT });
    try {
      const got = detectEnvironment({ root, env, platform: 'linux' });
      for (const [k, v] of Object.entries(want)) assert.equal(got[k as 'vm' | 'container'], v, `${name}: ${k}`);
      assert.equal(got.bootId, BOOT.trim(), `${name}: boot id`);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  }
  // Nothing readable: nothing claimed (not "false").
  const empty = await machine({});
  assert.deepEqual(detectEnvironment({ root: empty, env: {}, platform: 'linux' }), { container: false });
  await rm(empty, { recursive: true, force: true });
  // macOS: sysctl answers
  const mac = detectEnvironment({
    root: '/nonexistent',
    env: {},
    platform: 'darwin',
    sysctl: (n) =>
      n === 'kern.hv_vmm_present' ? '1\n' : n === 'kern.bootsessionuuid' ? 'A1B2C3D4-0000-1111-2222-333344445555\n' : undefined,
  });
  assert.deepEqual(mac, { vm: true, container: false, bootId: 'A1B2C3D4-0000-1111-2222-333344445555' });
  // Windows: not detected, unless the environment says container
  assert.deepEqual(detectEnvironment({ root: '/nonexistent', env: {}, platform: 'win32' }), {});
});

test('this machine: its CPU shows the hypervisor flag and it runs in a container, and the SDK reports both', async (c) => {
  const cpu = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const docker = await readFile('/.dockerenv', 'utf8').then(
    () => true,
    () => false,
  );
  const env = machineEnvironment();
  c.diagnostic(`this machine: ${JSON.stringify(env)}`);
  if (process.platform !== 'linux') return;
  assert.equal(env.vm, /^flags\s*:.*\bhypervisor\b/m.test(cpu));
  if (docker) assert.equal(env.container, true);
  assert.equal(env.bootId, (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim());
  // On the CI and development machines of this project both are true (a VM's CPU, a container): say so when not.
  if (!env.vm || !env.container)
    c.diagnostic('!!! this machine is not a VM in a container: the claims above were checked against its files only !!!');
});

test('a rule by user: two devices of one user share a seat through the SDK; another user is refused', { timeout: 30_000 }, () =>
  withWorld(async (w) => {
    const l = await w.license({ seats: 1, sharing: { by: ['user'], cap: null }, leaseTtlSeconds: 60, heartbeatIntervalSeconds: 20 });
    const a = w.client({ licenseKey: l.key, fingerprint: 'user-share-device-a', user: 'lee', hostname: 'ws-a' });
    const b = w.client({ licenseKey: l.key, fingerprint: 'user-share-device-b', user: 'lee', hostname: 'ws-b' });
    const ra = await a.checkout();
    const rb = await b.checkout();
    assert.ok(ra.ok && rb.ok);
    assert.equal(rb.status.leaseId, ra.status.leaseId, 'one seat');
    assert.equal(rb.status.shareGroup, 'user=lee');
    assert.equal(rb.status.instances, 2);
    assert.equal(rb.created, false);
    const other = w.client({ licenseKey: l.key, fingerprint: 'user-share-device-c', user: 'max' });
    const rc = await other.checkout();
    assert.equal(rc.ok, false);
    assert.equal(!rc.ok && rc.code, 'NO_SEATS_AVAILABLE');
    // each use heartbeats on its own: both keep the seat
    await w.clock.advance(40_000);
    assert.equal(a.status().valid, true);
    assert.equal(b.status().valid, true);
    const [seat] = await w.leases(l.id);
    assert.equal(seat.instances.length, 2);
    assert.deepEqual(seat.instances.map((i: { meta: { user: string } }) => i.meta.user).sort(), ['lee', 'lee']);
  }),
);

test(
  'the SDK sends its VM and container claims and boot id; a license that denies VMs refuses it with VM_NOT_ALLOWED',
  { timeout: 30_000 },
  () =>
    withWorld(async (w) => {
      const env = machineEnvironment();
      const l = await w.license({ seats: 2, vmPolicy: 'deny' });
      const lic = w.client({ licenseKey: l.key, fingerprint: 'vm-claims-device-1' });
      if (env.vm || env.container) {
        // a refusal other than a full pool is thrown, with the server's code
        await assert.rejects(lic.checkout(), (err: FloatingLicenseError) => err.code === 'VM_NOT_ALLOWED');
      } else {
        assert.ok((await lic.checkout()).ok);
      }
      // with reporting off, nothing is claimed: the same machine gets a seat
      const quiet = w.client({ licenseKey: l.key, fingerprint: 'vm-claims-device-2', reportEnvironment: false });
      assert.ok((await quiet.checkout()).ok);
      const allow = await w.license({ seats: 2 });
      const shown = w.client({ licenseKey: allow.key, fingerprint: 'vm-claims-device-3' });
      assert.ok((await shown.checkout()).ok);
      const [seat] = await w.leases(allow.id);
      const meta = seat.instances[0].meta;
      assert.equal(meta.vm, env.vm ?? null);
      assert.equal(meta.container, env.container ?? null);
      assert.equal(meta.bootId, env.bootId ?? null);
    }),
);

test('floatd-run --share-key (or FLOATD_SHARE_KEY): two runs with one key share a seat under a rule by key; another key gets none', {
  timeout: 60_000,
}, async () => {
  // floatd-run runs on the system clock: a server of its own on the real time
  const ts = await startTestServer({ clock: new ManualClock(Date.now()) });
  const l = await ts.license({ seats: 1, sharing: { by: ['key'], cap: null } });
  const runs = await floatdRuns(ts.url, l.key);
  const run = runs.run;
  try {
    // The first run holds its seat until the test says stop (a fixed time ended it early on a loaded machine: CI saw the third run get a seat).
    const first = await run(['--share-key', 'render-job-7'], runs.holdUntilStopped);
    await first.started;
    const second = await run([], 'console.log(process.env.FLOATD_LEASE_ID)', { FLOATD_SHARE_KEY: 'render-job-7' });
    const r2 = await second.done;
    assert.equal(r2.code, 0, r2.err);
    const third = await run(['--share-key', 'render-job-8'], 'process.exit(0)');
    const r3 = await third.done;
    assert.equal(r3.code, 75, 'no seat for another share key');
    await runs.stop();
    const r1 = await first.done;
    assert.equal(r1.code, 0, r1.err);
    const groups = (await ts.admin('GET', `/v1/admin/audit?licenseId=${l.id}&type=join`)).body.items.map(
      (e: { data: { shareGroup: string } }) => e.data.shareGroup,
    );
    assert.deepEqual(groups, ['key=render-job-7'], "the second run joined the first run's seat");
  } finally {
    await ts.close();
    await runs.cleanup();
  }
});
