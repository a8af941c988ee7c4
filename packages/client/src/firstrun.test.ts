/**
 * The end user's first run (#22): the message table's exact sentences, the SDK key API against a
 * real server (unknown key, another product, suspended, expired, valid; remember 0700/0600; forget),
 * DNS SRV discovery against a DNS responder this test runs on the loopback range, and floatd-run
 * without a terminal (exit 78, one line) and driven in a real terminal (tmux).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { stat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ManualClock } from '@floatd/server';
import { startTestServer, type TestServer } from '@floatd/server/testing';
import { formatKey } from '@floatd/protocol';
import {
  END_USER_MESSAGES,
  endUserMessage,
  explain,
  FloatingLicenseError,
  validateKey,
  rememberKey,
  rememberedKey,
  forgetKey,
} from './index.js';
import { discoverServer } from './discovery.js';
import { EXIT_NO_KEY, NO_KEY_LINE } from './firstRun.js';
import { Cleanup, RUN_CLI, hasTmux, tempDir, serverProcess, processLicense, srvResponder } from './testsupport.js';
import { FloatingLicense } from './index.js';

let ts: TestServer;
const cleanup = new Cleanup();
before(async () => {
  ts = await startTestServer({ clock: new ManualClock(Date.now()) });
  cleanup.add(() => ts.close());
});
after(() => cleanup.run());

test('every refusal an end user can meet reads as its exact sentence', () => {
  assert.deepEqual(END_USER_MESSAGES, {
    INVALID_LICENSE_KEY:
      'This license key is not known to this server. Check the key (copy it again from the message that gave it to you) or ask your administrator for one.',
    WRONG_PRODUCT: 'This license key is for another product. Ask your administrator for a key for this application.',
    LICENSE_EXPIRED: 'This license has expired. Ask your administrator or vendor to renew it.',
    TRIAL_EXPIRED: 'The trial period of this license is over. Ask your vendor for a full license.',
    LICENSE_SUSPENDED: 'This license is suspended by your administrator. Ask them to reinstate it.',
    NO_SEATS_AVAILABLE: 'Every seat of this license is in use{detail}. Try again later, or ask a colleague to close the application.',
    NETWORK_ERROR:
      'The license server cannot be reached. Check your network connection or VPN, or ask your administrator whether the server is running.',
    CLOCK_TAMPERED:
      "This computer's clock is set earlier than the last time the license was checked. Correct the date and time, then start again.",
    OFFLINE_EXPIRED:
      'The period this license was borrowed for offline has ended. Connect to the network so the license can be checked again.',
  });
  const noSeat = new FloatingLicenseError('NO_SEATS_AVAILABLE', 'x', {
    status: 409,
    details: { seatsTotal: 2, earliestExpiryAt: '2026-12-04T21:00:00.000Z' },
  });
  assert.equal(
    explain(noSeat),
    'Every seat of this license is in use (all 2 seats are in use; the earliest lease expires at 2026-12-04T21:00:00.000Z unless its holder renews it). Try again later, or ask a colleague to close the application.',
  );
  assert.equal(
    explain(new FloatingLicenseError('NO_SEATS_AVAILABLE', 'x', { status: 409, details: { seatsTotal: 1 } })),
    'Every seat of this license is in use (all 1 seats are in use; no lease expires on its own, a seat frees when someone checks in). Try again later, or ask a colleague to close the application.',
  );
  assert.equal(explain(new FloatingLicenseError('SERVICE_UNAVAILABLE', 'HTTP 502', { status: 502 })), END_USER_MESSAGES.NETWORK_ERROR);
  assert.equal(explain(new FloatingLicenseError('CLOCK_TAMPERED', 'x')), END_USER_MESSAGES.CLOCK_TAMPERED);
  assert.equal(explain(new FloatingLicenseError('OFFLINE_EXPIRED' as never, 'x')), END_USER_MESSAGES.OFFLINE_EXPIRED);
  assert.equal(endUserMessage('WRONG_PRODUCT'), END_USER_MESSAGES.WRONG_PRODUCT);
});

test('the key API: each refusal from a real server in its sentence; remember owner-only, forget', { timeout: 30_000 }, async () => {
  const stateDir = join(await tempDir(cleanup), 'state');
  const good = await ts.license({ seats: 3 });
  assert.deepEqual(await validateKey({ serverUrl: ts.url, licenseKey: formatKey('Z'.repeat(24)), stateDir }), {
    ok: false,
    code: 'INVALID_LICENSE_KEY',
    message: END_USER_MESSAGES.INVALID_LICENSE_KEY,
  });
  assert.deepEqual(await validateKey({ serverUrl: ts.url, licenseKey: 'not a key', stateDir }), {
    ok: false,
    code: 'INVALID_LICENSE_KEY',
    message: END_USER_MESSAGES.INVALID_LICENSE_KEY,
  });
  const ok = await validateKey({ serverUrl: ts.url, licenseKey: good.key, productId: good.productId, stateDir });
  assert.equal(ok.ok, true);
  assert.equal(ok.message, 'The license key is valid (0 of 3 seats in use).');
  const other = (await ts.admin('POST', '/v1/admin/products', { name: 'Other product' })).body.id as string;
  assert.deepEqual(await validateKey({ serverUrl: ts.url, licenseKey: good.key, productId: other, stateDir }), {
    ok: false,
    code: 'WRONG_PRODUCT',
    message: END_USER_MESSAGES.WRONG_PRODUCT,
  });
  const susp = await ts.license({ suspended: true });
  assert.deepEqual(await validateKey({ serverUrl: ts.url, licenseKey: susp.key, stateDir }), {
    ok: false,
    code: 'LICENSE_SUSPENDED',
    message: END_USER_MESSAGES.LICENSE_SUSPENDED,
  });
  // expiry on a server of its own, whose clock this test moves (the shared one stays on real time)
  const own = new ManualClock(Date.now());
  const ts2 = await startTestServer({ clock: own });
  cleanup.add(() => ts2.close());
  const sub = await ts2.license({ model: 'subscription', expiresAt: new Date(own.now() + 3_600_000).toISOString() });
  assert.equal((await validateKey({ serverUrl: ts2.url, licenseKey: sub.key, stateDir: join(stateDir, 'other') })).ok, true);
  own.advance(2 * 3_600_000);
  const exp = await validateKey({ serverUrl: ts2.url, licenseKey: sub.key, stateDir: join(stateDir, 'other') });
  assert.deepEqual([exp.ok, (exp as { code: string }).code, exp.message], [false, 'LICENSE_EXPIRED', END_USER_MESSAGES.LICENSE_EXPIRED]);
  assert.deepEqual(await validateKey({ serverUrl: 'http://127.0.0.1:9', licenseKey: good.key, stateDir, timeoutMs: 1000 }), {
    ok: false,
    code: 'NETWORK_ERROR',
    message: END_USER_MESSAGES.NETWORK_ERROR,
  });

  assert.equal(await rememberedKey(stateDir), undefined);
  await rememberKey({ serverUrl: ts.url, licenseKey: good.key }, stateDir);
  assert.equal((await stat(stateDir)).mode & 0o777, 0o700);
  assert.equal((await stat(join(stateDir, 'remembered.json'))).mode & 0o777, 0o600);
  const r = await rememberedKey(stateDir);
  assert.deepEqual([r?.serverUrl, r?.licenseKey], [ts.url, good.key]);
  await forgetKey(stateDir);
  assert.equal(await rememberedKey(stateDir), undefined);
});

test('discovery: a configured URL wins; otherwise the SRV record _floatd._tcp.<domain>, and the key validates through it', {
  timeout: 30_000,
}, async () => {
  const port = Number(new URL(ts.url).port);
  const dns = await srvResponder(cleanup, '_floatd._tcp.site.test', 'localhost', port);
  const stateDir = await tempDir(cleanup);
  assert.deepEqual(
    await discoverServer({ serverUrl: 'https://configured.example', stateDir, domain: 'site.test', dnsServers: [dns.addr] }),
    { url: 'https://configured.example', source: 'configured' },
  );
  assert.equal(dns.queries.length, 0);
  const found = await discoverServer({
    stateDir,
    domain: 'site.test',
    dnsServers: [dns.addr],
    scheme: 'http',
    timeoutMs: 1000,
    browse: false,
  });
  assert.deepEqual(found, { url: `http://localhost:${port}`, source: 'dns-srv', name: '_floatd._tcp.site.test' });
  assert.deepEqual(dns.queries, ['_floatd._tcp.site.test/33']);
  const lic = await ts.license({ seats: 1 });
  const check = await validateKey({ serverUrl: found.url!, licenseKey: lic.key, stateDir: await tempDir(cleanup) });
  assert.equal(check.ok, true, check.message);
  assert.deepEqual(await discoverServer({ stateDir, domain: 'other.test', dnsServers: [dns.addr], timeoutMs: 1000, browse: false }), {
    url: undefined,
    source: 'none',
    tried: ['dns-srv _floatd._tcp.other.test'],
    refused: [],
  });
  // the server remembered with the key comes before any DNS lookup
  await rememberKey({ serverUrl: 'http://remembered.example:7070', licenseKey: lic.key }, stateDir);
  const asked = dns.queries.length;
  assert.deepEqual(await discoverServer({ stateDir, domain: 'site.test', dnsServers: [dns.addr], browse: false }), {
    url: 'http://remembered.example:7070',
    source: 'remembered',
  });
  assert.equal(dns.queries.length, asked);
});

test('floatd-run without a terminal and without a key never prompts: exit 78 and one line', { timeout: 30_000 }, async () => {
  const stateDir = await tempDir(cleanup);
  const child = spawn(process.execPath, [RUN_CLI, '--state-dir', stateDir, '--', 'true'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, FLOATD_SERVER: '', FLOATD_LICENSE_KEY: '' },
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  assert.equal(code, EXIT_NO_KEY);
  assert.equal(stderr, `floatd-run: ${NO_KEY_LINE}\n`);
});

test('floatd-run in a real terminal (tmux): asks once, a wrong key gets its sentence, the right key is remembered, the next run asks nothing, --forget clears it', {
  timeout: 60_000,
  skip: hasTmux ? false : 'tmux is not installed',
}, async () => {
  const dir = await tempDir(cleanup);
  const stateDir = join(dir, 'state');
  const lic = await ts.license({ seats: 2 });
  const session = `floatd-firstrun-${process.pid}`;
  const sock = join(dir, 'tmux.sock');
  const tmux = (...a: string[]) => execFileSync('tmux', ['-S', sock, ...a], { encoding: 'utf8' });
  const marker = join(dir, 'ran');
  const cmd = `env -u FLOATD_SERVER -u FLOATD_LICENSE_KEY FLOATD_DISCOVER=0 ${process.execPath} ${RUN_CLI} --state-dir ${stateDir} -- ${process.execPath} -e "require('fs').appendFileSync('${marker}','x')"; echo EXIT$((++RUNS))=$?`;
  tmux('new-session', '-d', '-s', session, '-x', '200', '-y', '50', 'env RUNS=0 bash --norc --noprofile');
  cleanup.add(() => {
    try {
      tmux('kill-server');
    } catch {
      /* gone */
    }
  });
  const screen = () => tmux('capture-pane', '-p', '-J', '-t', session, '-S', '-200');
  const waitFor = async (re: RegExp, after = 0): Promise<string> => {
    for (let i = 0; i < 300; i++) {
      const s = screen();
      if (re.test(s.slice(after))) return s;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`waited for ${re} on screen:\n${screen()}`);
  };
  const type = (text: string) => {
    tmux('send-keys', '-t', session, '-l', text);
    tmux('send-keys', '-t', session, 'Enter');
  };
  type(cmd);
  await waitFor(/License server URL: $/m);
  type(ts.url);
  await waitFor(/License key: $/m);
  type(formatKey('Z'.repeat(24)));
  let s = await waitFor(/License key: $/m, screen().lastIndexOf(formatKey('Z'.repeat(24))));
  assert.ok(s.includes(END_USER_MESSAGES.INVALID_LICENSE_KEY), s);
  type(lic.key);
  s = await waitFor(/EXIT1=\d+/);
  assert.match(s, /Remembered: later runs will not ask \(floatd-run --forget clears it\)\./);
  assert.match(s, /EXIT1=0/);
  assert.equal(await readFile(marker, 'utf8'), 'x');
  assert.equal((await stat(join(stateDir, 'remembered.json'))).mode & 0o777, 0o600);
  assert.equal((await stat(stateDir)).mode & 0o777, 0o700);

  const before = screen().length;
  type(cmd);
  s = (await waitFor(/EXIT2=\d+/)).slice(before);
  assert.match(s, /EXIT2=0/);
  assert.doesNotMatch(s, /License (key|server URL):/);
  assert.equal(await readFile(marker, 'utf8'), 'xx');

  type(`${process.execPath} ${RUN_CLI} --state-dir ${stateDir} --forget; echo FORGOT=$?`);
  s = await waitFor(/FORGOT=\d+/);
  assert.match(s, /FORGOT=0/);
  assert.equal(await rememberedKey(stateDir), undefined);
});

test('examples/electron-like: the key dialog shows the sentence for a wrong key, remembers the right one, and asks nothing next start', {
  timeout: 30_000,
}, async () => {
  const main = join(import.meta.dirname, '..', '..', '..', 'examples', 'electron-like', 'main.mjs');
  const lic = await ts.license({ seats: 2 });
  const dataDir = await tempDir(cleanup);
  const run = (input: string) => {
    const child = spawn(process.execPath, [main, '--seconds', '0'], {
      env: { ...process.env, FLOATD_SERVER: ts.url, LICENSE_KEY: '', APP_DATA_DIR: dataDir },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    cleanup.add(() => child.kill('SIGKILL'));
    child.stdin.end(input);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    return new Promise<{ code: number | null; out: string }>((resolve) => child.once('close', (code) => resolve({ code, out })));
  };
  const first = await run(`${formatKey('Z'.repeat(24))}\n${lic.key}\n`);
  assert.equal(first.code, 0, first.out);
  assert.ok(
    first.out.startsWith(
      `[app] License key:\n[app] ${END_USER_MESSAGES.INVALID_LICENSE_KEY}\n[app] License key:\n[app] The license key is valid (0 of 2 seats in use).\n[app] licensed: online`,
    ),
    first.out,
  );
  const second = await run('');
  assert.equal(second.code, 0, second.out);
  assert.doesNotMatch(second.out, /License key:/);
  assert.match(second.out, /licensed: online/);
});

test('a discovered server is pinned on first use: another server answering for the same SRV name later is refused', {
  timeout: 60_000,
}, async () => {
  const first = await serverProcess(cleanup, await tempDir(cleanup));
  const dns = await srvResponder(cleanup, '_floatd._tcp.pinned.test', '127.0.0.1', first.port);
  const stateDir = await tempDir(cleanup);
  const ask = () =>
    discoverServer({ stateDir, domain: 'pinned.test', dnsServers: [dns.addr], scheme: 'http', timeoutMs: 1000, browse: false });
  const found = await ask();
  assert.equal(found.url, `http://127.0.0.1:${first.port}`);
  // pinned under the SRV name, owner-only
  const pins = JSON.parse(await readFile(join(stateDir, 'discovered.json'), 'utf8'));
  assert.equal(pins['dns-srv:_floatd._tcp.pinned.test'].url, found.url);
  assert.equal((await stat(join(stateDir, 'discovered.json'))).mode & 0o777, 0o600);
  const lic = await processLicense(first, { seats: 1 });
  const a = new FloatingLicense({ serverUrl: found.url!, licenseKey: lic.key, stateDir });
  assert.equal((await a.checkout()).ok, true);
  await a.checkin();
  await a.close();
  await first.stop();
  // the impostor: a floatd of its own (its own keys) on the same address, the SRV record unchanged
  const impostor = await serverProcess(cleanup, await tempDir(cleanup), first.port);
  await processLicense(impostor, { seats: 1 });
  // discovery refuses it under the pinned name ...
  assert.deepEqual(await ask(), {
    url: undefined,
    source: 'none',
    tried: ['dns-srv _floatd._tcp.pinned.test'],
    refused: [`${found.url} (dns-srv:_floatd._tcp.pinned.test): its keys are not the ones pinned for this name (an impostor?)`],
  });
  // ... and the SDK, given the URL anyway, refuses it under the URL's own pin
  const b = new FloatingLicense({ serverUrl: found.url!, licenseKey: lic.key, stateDir, retry: { maxAttempts: 1 } });
  await assert.rejects(b.checkout(), (err: FloatingLicenseError) => {
    assert.equal(err.code, 'INVALID_SIGNATURE', err.message);
    return true;
  });
  await b.close({ checkin: false });
});
