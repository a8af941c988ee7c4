// The conformance suite run with the Node SDK: every scenario of conformance/*.json against a real floatd server
// process (SQLite, or PostgreSQL with FLOATD_TEST_STORE=postgres: scripts/test.mjs runs this file on both).
// The Python runner (conformance/python/test_conformance.py) runs the same scenarios; docs/conformance.md says
// what each step means.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

const ROOT = new URL('../../', import.meta.url).pathname;
const { FloatingLicense, FloatingLicenseError } = await import(join(ROOT, 'packages/client/dist/index.js'));
const { FakeClock } = await import(join(ROOT, 'packages/client/dist/testing.js'));
const { TestProxy } = await import(join(ROOT, 'packages/client/dist/testsupport.js'));
const { startFloatdProcess, libfaketime, fakedClockEnv } = await import(join(ROOT, 'packages/server/dist/testing/process.js'));
const { createTempDatabase, TEST_KEY_ENCRYPTION_KEY } = await import(join(ROOT, 'packages/server/dist/testing/pg.js'));
const { startFaketimePostgres, faketimePostgresUnavailable } = await import(join(ROOT, 'packages/server/dist/testing/pgfaketime.js'));

const STORE = process.env.FLOATD_TEST_STORE === 'postgres' ? 'postgres' : 'sqlite';
const DIR = join(ROOT, 'conformance');
const scenarios = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .sort();

class Server {
  constructor({ faketime = false, store = STORE } = {}) {
    this.dir = mkdtempSync(join(tmpdir(), 'floatd-conf-srv-'));
    this.dataDir = join(this.dir, 'data');
    this.offsetFile = join(this.dir, 'faketime');
    writeFileSync(this.offsetFile, '+0\n');
    this.offset = 0;
    this.faketime = faketime;
    this.store = store;
  }
  async start() {
    const env = {};
    if (this.store === 'postgres' && this.faketime) {
      // A node fences itself when its clock leaves the database's (service/clockFence.ts): a moved server clock
      // needs a database on the same moved clock, a private cluster under the same libfaketime timestamp file.
      if (!this.cluster) {
        this.cluster = await startFaketimePostgres();
        this.offsetFile = this.cluster.timestampFile;
        this.advance(0);
      }
      Object.assign(env, this.cluster.serverEnv, {
        FLOATD_DATABASE_URL: this.cluster.url,
        FLOATD_KEY_ENCRYPTION_KEY: TEST_KEY_ENCRYPTION_KEY,
      });
    } else {
      if (this.store === 'postgres') {
        this.db ??= await createTempDatabase();
        Object.assign(env, { FLOATD_DATABASE_URL: this.db.url, FLOATD_KEY_ENCRYPTION_KEY: TEST_KEY_ENCRYPTION_KEY });
      }
      // the server's monotonic clock moves with its wall clock: time passed, not a step (domain/clock.ts, SilenceWatch)
      if (this.faketime) Object.assign(env, fakedClockEnv(this.offsetFile));
    }
    this.p = await startFloatdProcess({ dataDir: this.dataDir, env, adminToken: this.p?.adminToken ?? true });
    this.url = this.p.url;
    return this;
  }
  async kill() {
    const c = this.p?.child;
    if (c && c.exitCode === null && c.signalCode === null) {
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await exited;
    }
  }
  async stop() {
    await this.kill();
    await this.db?.drop();
    await this.cluster?.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
  advance(seconds) {
    this.offset += seconds;
    // Replaced, never rewritten in place: libfaketime reads the file at every clock read (FAKETIME_NO_CACHE), and
    // a read between the truncation and the write would see no offset (the real time) for an instant.
    writeFileSync(`${this.offsetFile}.new`, `+${Math.round(this.offset)}\n`);
    renameSync(`${this.offsetFile}.new`, this.offsetFile);
  }
  /**
   * After the harness moved the server's clock: waits until the server is done with what the move set off. Its
   * timers run on its moved monotonic clock, so a move fires at once every timer it passed: keep-alive sockets
   * close, background work (reclaimer sweep, clock sample) starts, and on PostgreSQL a query in flight across
   * moves can time out (the driver's connect timeout, the transaction deadline) and be retried. /readyz answers
   * 200 once the database answers, the node is not fenced and its storage is healthy.
   */
  async settle() {
    await new Promise((r) => setTimeout(r, 100));
    const until = Date.now() + 30_000;
    for (;;) {
      const r = await fetch(`${this.url}/readyz`, { signal: AbortSignal.timeout(5000) }).catch((e) => ({ status: 0, e }));
      if (r.status === 200) return;
      if (Date.now() > until) throw new Error(`the server is not ready after its clock moved: ${r.status} ${r.e ?? ''}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  }
  admin(method, path, body) {
    return this.p.admin(method, path, body);
  }
  async makeLicense(policy) {
    const product = await this.admin('POST', '/v1/admin/products', { name: 'Conformance CAD' });
    assert.equal(product.status, 201, JSON.stringify(product.body));
    const lic = await this.admin('POST', '/v1/admin/licenses', { productId: product.body.id, ...policy });
    assert.equal(lic.status, 201, JSON.stringify(lic.body));
    return lic.body;
  }
}

function deadPid() {
  return spawnSync('true').pid;
}

/** Repeats of one event count once, and renewals right after a reacquire are part of it. */
function collapse(xs) {
  const out = [];
  for (const x of xs) {
    const last = out[out.length - 1];
    if (last === x || (x === 'renewed' && last === 'reacquired')) continue;
    out.push(x);
  }
  return out;
}

class World {
  constructor(scenario) {
    this.scenario = scenario;
    this.root = mkdtempSync(join(tmpdir(), 'floatd-conf-'));
    this.devices = new Map();
    this.clients = new Map();
    this.impostor = undefined;
    this.forgeMode = 'off';
    this.genuine = new Map();
  }
  async init() {
    this.server = await new Server({ faketime: !!this.scenario.serverClock }).start();
    this.license = await this.server.makeLicense(this.scenario.policy);
  }
  point(proxy) {
    proxy.target = (this.impostor ?? this.server).url;
    proxy.rewrite = (req, res) => this.rewrite(req, res);
  }
  rewrite(req, res) {
    if (!req.path.startsWith('/v1/client/')) return undefined;
    const key = `${req.method} ${req.path}`;
    const previous = this.genuine.get(key);
    this.genuine.set(key, { status: res.status, body: res.body, headers: { ...res.headers } });
    const forged = { error: { code: 'LICENSE_SUSPENDED', message: 'forged' } };
    if (this.forgeMode === 'refusal') return { status: 403, body: forged };
    if (this.forgeMode === 'unsigned-refusal')
      return {
        status: 403,
        body: forged,
        headers: { 'floatd-signature': null, signature: null, 'signature-input': null, 'floatd-date': null, 'content-digest': null },
      };
    if (this.forgeMode === 'replay' && previous) return previous;
    return undefined;
  }
  async client(name, deviceName = 'main') {
    let c = this.clients.get(name);
    if (c) return c;
    let d = this.devices.get(deviceName);
    if (!d) {
      d = {
        name: deviceName,
        fingerprint: `conformance-${deviceName}-${randomBytes(4).toString('hex')}`,
        stateDir: join(this.root, deviceName),
        clock: new FakeClock(Date.now()),
      };
      d.proxy = await new TestProxy(this.server.url).start();
      this.point(d.proxy);
      this.devices.set(deviceName, d);
    }
    c = { name, device: d, events: [], retries: [] };
    c.lic = this.make(c);
    this.clients.set(name, c);
    return c;
  }
  make(c) {
    const d = c.device;
    const lic = new FloatingLicense({
      serverUrl: d.proxy.url,
      licenseKey: this.license.key,
      stateDir: d.stateDir,
      fingerprint: d.fingerprint,
      clock: d.clock,
      handleExit: false,
      random: () => 0.5,
      requestTimeoutMs: 5000,
      hostname: 'conformance',
      user: 'tester',
    });
    lic.on('renewed', () => c.events.push('renewed'));
    lic.on('reacquired', () => c.events.push('reacquired'));
    lic.on('violation', (v) => c.events.push(`violation:${v.code}`));
    lic.on('retry', (r) => c.retries.push(r.error.code));
    return lic;
  }
  async close() {
    for (const c of this.clients.values()) await c.lic.close({ checkin: false }).catch(() => undefined);
    for (const d of this.devices.values()) await d.proxy.close();
    await this.impostor?.stop();
    await this.server?.stop();
    rmSync(this.root, { recursive: true, force: true });
  }
}

function checkFields(actual, expect, what) {
  for (const [k, v] of Object.entries(expect ?? {}))
    assert.deepEqual(
      actual[k],
      v,
      `${what}: ${k} is ${JSON.stringify(actual[k])}, expected ${JSON.stringify(v)} (all: ${JSON.stringify(actual)})`,
    );
}

function statusOf(lic) {
  const s = lic.status();
  return {
    state: s.state,
    valid: s.valid,
    offline: s.offline,
    serverReachable: s.serverReachable,
    violations: s.violations,
    instances: s.instances,
    seatsUsed: s.seatsUsed,
  };
}

/**
 * Runs an SDK call; when it waits on a timer of its own (a checkout's retry back-off, a wait for a seat: the
 * `retry` and `waiting` events come once that timer exists), the device's clock moves on by that delay, as the
 * Python SDK's FakeClock.sleep does.
 */
async function drive(c, fn) {
  const moveOn = (ms) => setImmediate(() => void c.device.clock.advance(ms));
  const onRetry = (r) => r.operation === 'checkout' && moveOn(r.delayMs);
  const onWaiting = (wi) => moveOn(wi.retryInMs);
  c.lic.on('retry', onRetry);
  c.lic.on('waiting', onWaiting);
  try {
    return await fn();
  } finally {
    c.lic.off('retry', onRetry);
    c.lic.off('waiting', onWaiting);
  }
}

async function step(w, st, label) {
  const c = st.client ? await w.client(st.client, st.device) : undefined;
  const expectError = async (fn) => {
    if (!('expectError' in st)) return fn();
    await assert.rejects(fn, (e) => {
      assert.ok(e instanceof FloatingLicenseError, `${label}: ${e}`);
      assert.equal(e.code, st.expectError, `${label}: raised ${e.code} (${e.message})`);
      return true;
    });
    return undefined;
  };
  switch (st.do) {
    case 'checkout': {
      const r = await expectError(() => drive(c, () => c.lic.checkout()));
      if (r) checkFields(r.ok ? { ok: true, source: r.source, created: r.created } : { ok: false, code: r.code }, st.expect, label);
      break;
    }
    case 'checkout_offline': {
      const r = await expectError(() => drive(c, () => c.lic.checkoutOffline({ durationSeconds: st.seconds })));
      if (r) checkFields(statusOf(c.lic), st.expect, label);
      break;
    }
    case 'return_offline':
      checkFields(await c.lic.returnOffline(), st.expect, label);
      break;
    case 'checkin':
      checkFields(await c.lic.checkin(), st.expect, label);
      break;
    case 'sync': {
      const r = await c.lic.syncInstances();
      checkFields({ dropped: r.dropped.length, instances: r.instances }, st.expect, label);
      break;
    }
    case 'status':
      checkFields(statusOf(c.lic), st.expect, label);
      break;
    case 'events':
      assert.deepEqual(
        collapse(c.events),
        st.expect,
        `${label}: events ${JSON.stringify(c.events)} retries ${JSON.stringify(c.retries)} requests ${JSON.stringify(c.device.proxy.requests.slice(-6))}`,
      );
      if (st.retries)
        assert.deepEqual([...new Set(c.retries)].sort(), [...new Set(st.retries)].sort(), `${label}: retries ${JSON.stringify(c.retries)}`);
      c.events.length = 0;
      c.retries.length = 0;
      break;
    case 'advance':
      for (let left = st.seconds; left > 0; left -= 5) {
        const s = Math.min(5, left);
        if (w.server.faketime) w.server.advance(s);
        for (const d of w.devices.values()) await d.clock.advance(s * 1000);
      }
      if (w.server.faketime && w.server.p?.child.exitCode === null && w.server.p.child.signalCode === null) await w.server.settle();
      break;
    case 'set_clock':
      c.device.clock.setWall(c.device.clock.now() + st.seconds * 1000);
      break;
    case 'network':
      for (const d of w.devices.values()) st.up ? d.proxy.up() : d.proxy.down();
      break;
    case 'partition':
      st.cut ? c.device.proxy.down() : c.device.proxy.up();
      break;
    case 'kill_server':
      await w.server.kill();
      break;
    case 'start_server':
      await w.server.start();
      for (const d of w.devices.values()) w.point(d.proxy);
      break;
    case 'crash': {
      // the program ends without a word (kill -9, a closed laptop): no check-in, and its process is gone
      await c.lic.close({ checkin: false });
      // the SDK's state directory (private: FloatingLicense → session → token store → StateDir)
      const entry = join(c.lic.session.store.state.dir, 'instances', `${c.lic.instanceId}.json`);
      if (existsSync(entry)) writeFileSync(entry, JSON.stringify({ ...JSON.parse(readFileSync(entry, 'utf8')), pid: deadPid() }));
      break;
    }
    case 'restart':
      await c.lic.close({ checkin: false });
      c.lic = w.make(c);
      break;
    case 'seats': {
      const r = await w.server.admin('GET', `/v1/admin/licenses/${w.license.id}`);
      checkFields({ used: r.body.seatsUsed }, st.expect, label);
      break;
    }
    case 'reclaim':
      {
        let r = await w.server.admin('POST', '/v1/admin/reclaim');
        // A reclaim joins the sweep already running (service/reclaim.ts): after the harness raced the server's clock,
        // that may be a background sweep whose queries the race timed out (on PostgreSQL). One more, on a settled server.
        if (r.status >= 500 && w.server.faketime) r = await w.server.admin('POST', '/v1/admin/reclaim');
        assert.equal(r.status, 200, `${label}: ${JSON.stringify(r.body)}`);
      }
      break;
    case 'admin': {
      const id = w.license.id;
      let r;
      if (st.action === 'suspend' || st.action === 'resume') r = await w.server.admin('POST', `/v1/admin/licenses/${id}/${st.action}`);
      else if (st.action === 'expire')
        r = await w.server.admin('PATCH', `/v1/admin/licenses/${id}`, { expiresAt: new Date(Date.now() - 60_000).toISOString() });
      else if (st.action === 'release') {
        const leases = await w.server.admin('GET', `/v1/admin/licenses/${id}/leases`);
        for (const l of leases.body.items) r = await w.server.admin('POST', `/v1/admin/leases/${l.id}/release`, { force: true });
      } else assert.fail(`${label}: unknown admin action ${st.action}`);
      assert.ok(r.status < 300, `${label}: ${r.status} ${JSON.stringify(r.body)}`);
      break;
    }
    case 'forge':
      w.forgeMode = st.mode;
      break;
    case 'impostor':
      if (st.on) {
        w.impostor = await new Server({ store: 'sqlite' }).start();
        await w.impostor.makeLicense({ seats: 5 });
      } else {
        await w.impostor.stop();
        w.impostor = undefined;
      }
      for (const d of w.devices.values()) w.point(d.proxy);
      break;
    default:
      assert.fail(`${label}: unknown step ${st.do}`);
  }
}

for (const file of scenarios) {
  const scenario = JSON.parse(readFileSync(join(DIR, file), 'utf8'));
  // A scenario that moves the server's clock needs libfaketime; on PostgreSQL also a private cluster under it
  // (PostgreSQL 15 binaries, root to run them as the postgres user): testing/pgfaketime.ts.
  const cannot = !scenario.serverClock
    ? undefined
    : STORE === 'postgres'
      ? faketimePostgresUnavailable()
      : libfaketime()
        ? undefined
        : 'libfaketime is not installed (apt-get install faketime)';
  if (cannot && process.env.CI === 'true') throw new Error(`${scenario.name} moves the server's clock: ${cannot} (required in CI)`);
  test(`conformance (${STORE}): ${scenario.name}`, {
    timeout: 180_000,
    skip: cannot ? `!!! ${scenario.name} moves the server's clock and cannot run here: ${cannot} !!!` : false,
  }, async () => {
    const w = new World(scenario);
    try {
      await w.init();
      for (const [i, st] of scenario.steps.entries()) await step(w, st, `${scenario.name} step ${i + 1} (${st.do})`);
      for (const d of w.devices.values()) assert.deepEqual(d.clock.errors, [], 'timer errors');
    } catch (e) {
      // the server's own log says why it answered what it did
      if (e.cause) e.message += ` (cause: ${e.cause.code ?? ''} ${e.cause.message ?? e.cause})`;
      const log = w.server?.p?.output() ?? '';
      if (log) e.message += `\n--- server output (last 4000 characters) ---\n${log.slice(-4000)}`;
      throw e;
    } finally {
      await w.close();
    }
  });
}
