/**
 * DNS-SD on the local network (#22), between real `floatd serve --announce` processes and the SDK's
 * browse, over real multicast on the loopback interface (this machine allows it; the test checks first
 * and skips, saying why, where it does not). Each test uses an mDNS port of its own (FLOATD_MDNS_PORT)
 * on 127.0.0.1 only, so nothing leaves the machine and parallel runs do not hear each other.
 * Also: announcing is off by default, a start without multicast only warns, the goodbye at shutdown,
 * the discovery order, an impostor announcing the same name refused, and floatd-run finding the server
 * by DNS SRV and by DNS-SD (without a terminal, and in a real terminal under tmux).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import makeMdns from 'multicast-dns';
import { startFloatdProcess, type FloatdProcess } from '@floatd/server/testing';
import { browseDnsSd, discoverServer, FloatingLicense, rememberedKey, rememberKey, validateKey } from './index.js';
import { Cleanup, RUN_CLI, SERVER_CLI, hasTmux, tempDir, processLicense, srvResponder } from './testsupport.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

/** A UDP port free right now (the mDNS port of one test). */
async function udpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Whether a multicast datagram sent on 127.0.0.1 comes back to a member socket here. */
async function loopbackMulticast(): Promise<string | undefined> {
  const port = await udpPort();
  const s = createSocket({ type: 'udp4', reuseAddr: true });
  try {
    await new Promise<void>((r) => s.bind(port, r));
    s.addMembership('224.0.0.251', '127.0.0.1');
    s.setMulticastInterface('127.0.0.1');
    s.setMulticastLoopback(true);
    const got = new Promise<boolean>((r) => {
      s.once('message', () => r(true));
      setTimeout(() => r(false), 500);
    });
    s.send('probe', port, '224.0.0.251');
    return (await got) ? undefined : 'multicast on the loopback interface does not come back on this machine';
  } catch (err) {
    return `no multicast on the loopback interface here (${(err as Error).message})`;
  } finally {
    s.close();
  }
}
const noMulticast = await loopbackMulticast();
const skip = noMulticast ?? false;

/** `floatd serve` announcing on 127.0.0.1 at `mdnsPort`; `name` undefined: no --announce. */
async function server(
  mdnsPort: number,
  name: string | undefined,
  dataDir?: string,
  extraEnv: Record<string, string> = {},
): Promise<FloatdProcess & { dataDir: string }> {
  const dir = dataDir ?? (await tempDir(cleanup));
  const p = await startFloatdProcess({
    dataDir: dir,
    logLevel: 'info',
    args: name === undefined ? [] : ['--announce', name, '--announce-interface', '127.0.0.1'],
    env: { FLOATD_MDNS_PORT: String(mdnsPort), ...extraEnv },
  });
  cleanup.add(() => p.kill9());
  return Object.assign(p, { dataDir: dir });
}

const browse = (port: number, timeoutMs = 1000) => ({ interface: '127.0.0.1', port, timeoutMs });

test('a real server announces itself with --announce; the SDK browses, finds it, pins it; the goodbye at shutdown', {
  timeout: 60_000,
  skip,
}, async () => {
  const mdnsPort = await udpPort();
  const name = `site ${process.pid}`;
  const a = await server(mdnsPort, name);
  const started = Date.now();
  assert.deepEqual(await browseDnsSd(browse(mdnsPort)), [{ name, url: a.url }]);
  assert.ok(Date.now() - started < 1800, `the browse keeps to its time limit (${Date.now() - started} ms)`);
  assert.match(a.output(), new RegExp(`announcing \\\\"${name}\\\\" as _floatd._tcp.local \\(DNS-SD\\) on port ${a.port}`));

  const stateDir = await tempDir(cleanup);
  const found = await discoverServer({ stateDir, domain: false, browse: browse(mdnsPort) });
  assert.deepEqual(found, { url: a.url, source: 'dns-sd', name });
  const pins = JSON.parse(await readFile(join(stateDir, 'discovered.json'), 'utf8'));
  assert.deepEqual(Object.keys(pins), [`dns-sd:${name}`]);
  assert.equal(pins[`dns-sd:${name}`].url, a.url);
  assert.equal((await stat(join(stateDir, 'discovered.json'))).mode & 0o777, 0o600);
  const lic = await processLicense(a, { seats: 1 });
  const check = await validateKey({ serverUrl: found.url!, licenseKey: lic.key, stateDir });
  assert.equal(check.ok, true, check.message);

  // shutdown: the same records with TTL 0 (a goodbye), then nothing answers
  const listener = makeMdns({ port: mdnsPort, interface: '127.0.0.1', bind: '0.0.0.0', reuseAddr: true });
  cleanup.add(() => new Promise<void>((r) => listener.destroy(() => r())));
  const goodbye = new Promise<{ name: string; type: string; ttl?: number }[]>((resolve) =>
    listener.on('response', (res) => {
      const ptr = res.answers.find((r) => r.type === 'PTR' && r.name === '_floatd._tcp.local') as { ttl?: number } | undefined;
      if (ptr && ptr.ttl === 0) resolve(res.answers as never);
    }),
  );
  await new Promise((r) => listener.once('ready', r));
  await a.stop();
  assert.equal(a.child.exitCode, 0, a.output());
  const bye = await goodbye;
  assert.deepEqual(bye.map((r) => [r.type, r.ttl]).sort(), [
    ['A', 0],
    ['PTR', 0],
    ['SRV', 0],
    ['TXT', 0],
  ]);
  assert.deepEqual(await browseDnsSd(browse(mdnsPort, 600)), []);
});

test('announcing is off by default, and a start where multicast is unavailable only warns', { timeout: 60_000, skip }, async () => {
  const mdnsPort = await udpPort();
  const quiet = await server(mdnsPort, undefined);
  assert.deepEqual(await browseDnsSd(browse(mdnsPort, 700)), []);
  assert.doesNotMatch(quiet.output(), /DNS-SD/);
  await quiet.stop();

  // the mDNS port held by a socket that does not share it: the announcer cannot open its socket
  const holder: Socket = createSocket({ type: 'udp4', reuseAddr: false });
  await new Promise<void>((r) => holder.bind(mdnsPort, r));
  cleanup.add(() => holder.close());
  const warned = await server(mdnsPort, 'cannot announce');
  for (let i = 0; i < 40 && !/DNS-SD announcement off/.test(warned.output()); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(
    warned.output(),
    /"level":40,.*DNS-SD announcement off: cannot open the multicast DNS socket \(.*EADDRINUSE.*\); the server runs unannounced/,
  );
  const lic = await processLicense(warned, { seats: 1 });
  assert.equal((await warned.client(lic.key, 'GET', '/v1/client/license')).status, 200);
  await warned.stop();
  assert.equal(warned.child.exitCode, 0, warned.output());

  // a bad name or interface is a configuration error at start (exit 2), not a warning
  for (const args of [
    ['--announce', 'a.b'],
    ['--announce', 'x', '--announce-interface', 'eth0'],
  ]) {
    const child = spawn(process.execPath, [SERVER_CLI, 'serve', '--port', '0', '--data-dir', await tempDir(cleanup), ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d));
    assert.equal(await new Promise((r) => child.once('close', r)), 2, err);
    assert.match(
      err,
      /floatd: invalid configuration: (FLOATD_ANNOUNCE \/ --announce: the name "a\.b" must not contain a dot|FLOATD_ANNOUNCE_INTERFACE)/,
    );
  }
});

test('discovery order: configured, remembered, DNS SRV, then DNS-SD', { timeout: 60_000, skip }, async () => {
  const mdnsPort = await udpPort();
  const bySd = await server(mdnsPort, 'order');
  const bySrv = await server(mdnsPort, undefined);
  const dns = await srvResponder(cleanup, '_floatd._tcp.order.test', '127.0.0.1', bySrv.port);
  const stateDir = await tempDir(cleanup);
  const o = { stateDir, dnsServers: [dns.addr], scheme: 'http' as const, timeoutMs: 1000, browse: browse(mdnsPort) };
  assert.deepEqual(await discoverServer({ ...o, domain: 'order.test' }), {
    url: bySrv.url,
    source: 'dns-srv',
    name: '_floatd._tcp.order.test',
  });
  assert.deepEqual(await discoverServer({ ...o, domain: 'nothing.test' }), { url: bySd.url, source: 'dns-sd', name: 'order' });
  assert.deepEqual(dns.queries, ['_floatd._tcp.order.test/33', '_floatd._tcp.nothing.test/33']);
  assert.deepEqual(await discoverServer({ ...o, domain: 'order.test', serverUrl: 'http://configured.example' }), {
    url: 'http://configured.example',
    source: 'configured',
  });
  // a remembered server comes before both
  await rememberKey({ serverUrl: 'http://remembered.example:7070', licenseKey: 'K' }, stateDir);
  assert.deepEqual(await discoverServer({ ...o, domain: 'order.test' }), { url: 'http://remembered.example:7070', source: 'remembered' });
  assert.equal(dns.queries.length, 2);
  // only a given instance name
  assert.deepEqual(await discoverServer({ ...o, remembered: false, domain: false, browse: { ...browse(mdnsPort), name: 'another' } }), {
    url: undefined,
    source: 'none',
    tried: ['dns-sd _floatd._tcp.local'],
    refused: [],
  });
});

test('an impostor announcing the same DNS-SD name is refused; the real server, back on another port, is accepted', {
  timeout: 90_000,
  skip,
}, async () => {
  const mdnsPort = await udpPort();
  const dataDir = await tempDir(cleanup);
  const real = await server(mdnsPort, 'licenses', dataDir);
  const stateDir = await tempDir(cleanup);
  const ask = () => discoverServer({ stateDir, domain: false, browse: browse(mdnsPort) });
  const first = await ask();
  assert.deepEqual(first, { url: real.url, source: 'dns-sd', name: 'licenses' });
  const lic = await processLicense(real, { seats: 1 });
  const sdk = new FloatingLicense({ serverUrl: first.url!, licenseKey: lic.key, stateDir });
  assert.equal((await sdk.checkout()).ok, true);
  await sdk.checkin();
  await sdk.close();
  await real.stop();

  // a floatd of its own (its own keys) takes the name, on another port: a URL the SDK never pinned
  const impostor = await server(mdnsPort, 'licenses');
  await processLicense(impostor, { seats: 1 });
  assert.deepEqual(await ask(), {
    url: undefined,
    source: 'none',
    tried: ['dns-sd _floatd._tcp.local'],
    refused: [`${impostor.url} (dns-sd:licenses): its keys are not the ones pinned for this name (an impostor?)`],
  });

  // both at once: the impostor is refused, the real one (its data directory, so its keys) is chosen
  const back = await server(mdnsPort, 'licenses', dataDir);
  const again = await ask();
  assert.deepEqual(again, { url: back.url, source: 'dns-sd', name: 'licenses' });

  // a client that pinned nothing yet trusts neither when two servers with different keys share the name
  const fresh = await discoverServer({ stateDir: await tempDir(cleanup), domain: false, browse: browse(mdnsPort) });
  assert.equal(fresh.source, 'none');
  assert.deepEqual(
    (fresh as { refused: string[] }).refused.sort(),
    [back.url, impostor.url].sort().map((u) => `${u} (dns-sd:licenses): servers with different keys answer for this name`),
  );
});

/** Runs floatd-run without a terminal; resolves with its exit code and stderr. */
function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [RUN_CLI, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, FLOATD_SERVER: '', ...env },
  });
  cleanup.add(() => child.kill('SIGKILL'));
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stderr })));
}

test('floatd-run with no server configured finds it by DNS SRV, else by DNS-SD, and runs the command', {
  timeout: 60_000,
  skip,
}, async () => {
  const mdnsPort = await udpPort();
  const a = await server(mdnsPort, 'run');
  const lic = await processLicense(a, { seats: 1 });
  const dns = await srvResponder(cleanup, '_floatd._tcp.run.test', '127.0.0.1', a.port);
  const env = {
    FLOATD_LICENSE_KEY: lic.key,
    FLOATD_DNS_SERVERS: dns.addr,
    FLOATD_SRV_SCHEME: 'http',
    FLOATD_MDNS_INTERFACE: '127.0.0.1',
    FLOATD_MDNS_PORT: String(mdnsPort),
  };
  const bySrv = await runCli(['--state-dir', await tempDir(cleanup), '--domain', 'run.test', '--', 'true'], env);
  assert.equal(bySrv.code, 0, bySrv.stderr);
  assert.deepEqual(dns.queries, ['_floatd._tcp.run.test/33']);
  const bySd = await runCli(['--state-dir', await tempDir(cleanup), '--', 'true'], { ...env, FLOATD_DOMAIN: 'none.test' });
  assert.equal(bySd.code, 0, bySd.stderr);
  assert.deepEqual(dns.queries, ['_floatd._tcp.run.test/33', '_floatd._tcp.none.test/33']);
  // nothing to find (and discovery off): the one line, exit 78
  const none = await runCli(['--state-dir', await tempDir(cleanup), '--no-discover', '--', 'true'], env);
  assert.equal(none.code, 78);
  assert.equal(
    none.stderr,
    'floatd-run: no license server configured and none found (DNS SRV, DNS-SD): pass --server (or FLOATD_SERVER), or run once on a terminal to enter it\n',
  );
});

test('floatd-run in a real terminal (tmux) with no server known: finds it by DNS-SD, asks only for the key, remembers both', {
  timeout: 60_000,
  skip: skip || (hasTmux ? false : 'tmux is not installed'),
}, async () => {
  const mdnsPort = await udpPort();
  const a = await server(mdnsPort, 'terminal');
  const lic = await processLicense(a, { seats: 1 });
  const dir = await tempDir(cleanup);
  const stateDir = join(dir, 'state');
  const session = `floatd-dnssd-${process.pid}`;
  const sock = join(dir, 'tmux.sock');
  const tmux = (...args: string[]) => execFileSync('tmux', ['-S', sock, ...args], { encoding: 'utf8' });
  tmux('new-session', '-d', '-s', session, '-x', '200', '-y', '50', 'bash --norc --noprofile');
  cleanup.add(() => {
    try {
      tmux('kill-server');
    } catch {
      /* gone */
    }
  });
  const screen = () => tmux('capture-pane', '-p', '-J', '-t', session, '-S', '-200');
  const waitFor = async (re: RegExp): Promise<string> => {
    for (let i = 0; i < 300; i++) {
      const s = screen();
      if (re.test(s)) return s;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`waited for ${re} on screen:\n${screen()}`);
  };
  const type = (text: string) => {
    tmux('send-keys', '-t', session, '-l', text);
    tmux('send-keys', '-t', session, 'Enter');
  };
  type(
    `env -u FLOATD_SERVER -u FLOATD_LICENSE_KEY FLOATD_DOMAIN=none.test FLOATD_DNS_SERVERS=127.0.0.1:9 FLOATD_MDNS_INTERFACE=127.0.0.1 FLOATD_MDNS_PORT=${mdnsPort} ${process.execPath} ${RUN_CLI} --state-dir ${stateDir} -- true; echo EXIT=$?`,
  );
  let s = await waitFor(/License key: $/m);
  assert.ok(s.includes(`Found the license server ${a.url} (dns-sd "terminal").`), s);
  assert.doesNotMatch(s, /License server URL:/);
  type(lic.key);
  s = await waitFor(/EXIT=\d+/);
  assert.match(s, /EXIT=0/);
  const saved = await rememberedKey(stateDir);
  assert.deepEqual([saved?.serverUrl, saved?.licenseKey], [a.url, lic.key]);
});
