/**
 * Finding the site's license server. Order (each step only when the one before found nothing):
 *   1. the configured URL (the `serverUrl` option; floatd-run: --server or FLOATD_SERVER);
 *   2. the remembered server (`rememberKey`, in the state directory);
 *   3. DNS SRV `_floatd._tcp.<domain>` (lowest priority, then highest weight), time limit `timeoutMs`
 *      (default 2 s); the URL is `https://<target>:<port>` (`http` when `scheme: 'http'`). The domain is
 *      `domain`, else the system's (`domain`/first `search` line of /etc/resolv.conf);
 *   4. DNS-SD on the local network: a multicast browse for `_floatd._tcp.local` (servers started with
 *      `floatd serve --announce`), answers gathered for `browse.timeoutMs` (default 1 s); the URL is
 *      `<TXT scheme>://<address>:<port><TXT path>`.
 * Steps 3 and 4 only return a server that answers: the candidate's public keys (/.well-known/jwks.json,
 * time limit 2 s) are fetched and pinned under the discovered name (`<stateDir>/discovered.json`, 0600) on
 * first use; a later candidate for the same name (SRV name or DNS-SD instance name) whose keys share none
 * with the pinned ones is refused, wherever it answers from, and so are several servers with different
 * keys announcing one name that nothing was pinned for yet. The SDK itself pins per server URL (trust.ts)
 * when it is used, exactly as for a configured URL.
 */
import { readFileSync } from 'node:fs';
import { chmod, mkdir, readFile } from 'node:fs/promises';
import { Resolver } from 'node:dns/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import makeMdns from 'multicast-dns';
import { rememberedKey } from './keyStore.js';
import { writeFileAtomic } from './state.js';
import { parseKeys, type ServerPublicKey } from './trust.js';

/** The DNS-SD service type floatd announces and browses for. */
export const DNS_SD_TYPE = '_floatd._tcp.local';

export interface BrowseOptions {
  /** only this instance name (as given to `floatd serve --announce <name>`) */
  name?: string;
  /** the IPv4 address of the one interface to browse on (default: every interface) */
  interface?: string;
  /** the multicast DNS port (default 5353; another only for tests and isolated labs) */
  port?: number;
  /** how long answers are gathered, ms (default 1000) */
  timeoutMs?: number;
}

export interface DiscoveryOptions {
  /** a configured URL wins outright */
  serverUrl?: string;
  /** the state directory: the remembered server, and the pins of discovered servers (default ~/.floatd) */
  stateDir?: string;
  /** use the server remembered by `rememberKey` (default true) */
  remembered?: boolean;
  /** the DNS domain to look `_floatd._tcp.<domain>` up in (default: the system's search domain); false: no SRV step */
  domain?: string | false;
  /** DNS servers to ask (`'127.0.0.53'`, `'[::1]:5353'`, `'127.0.0.2:5300'`); default: the system's */
  dnsServers?: string[];
  /** scheme of the URL built from a SRV record (default https) */
  scheme?: 'https' | 'http';
  /** time limit of the DNS SRV step, ms (default 2000) */
  timeoutMs?: number;
  /** the DNS-SD step (default on, 1 s); false: no browse */
  browse?: BrowseOptions | false;
  /** time limit of each candidate's key fetch, ms (default 2000) */
  verifyTimeoutMs?: number;
}

export type DiscoverySource = 'configured' | 'remembered' | 'dns-srv' | 'dns-sd';

export type DiscoveryResult =
  | { url: string; source: 'configured' | 'remembered' }
  | { url: string; source: 'dns-srv' | 'dns-sd'; name: string }
  | { url: undefined; source: 'none'; tried: string[]; refused: string[] };

/** The SRV owner name for a domain. @example srvName('example.com') // '_floatd._tcp.example.com' */
export function srvName(domain: string): string {
  return `_floatd._tcp.${domain.replace(/\.$/, '')}`;
}

/** The system's DNS domain: the `domain` line, else the first `search` entry of /etc/resolv.conf. */
export function systemDomain(file = '/etc/resolv.conf'): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  let search: string | undefined;
  for (const line of text.split('\n')) {
    const [word, first] = line.trim().split(/\s+/);
    if (word === 'domain' && first) return first.replace(/\.$/, '');
    if (word === 'search' && first && !search) search = first.replace(/\.$/, '');
  }
  return search && search !== '.' ? search : undefined;
}

interface Candidate {
  /** `dns-srv:<srv name>` or `dns-sd:<instance name>`: what the pin is kept under */
  pinName: string;
  name: string;
  url: string;
}

async function srvCandidates(o: DiscoveryOptions, domain: string): Promise<Candidate[]> {
  const name = srvName(domain);
  const r = new Resolver({ timeout: o.timeoutMs ?? 2000, tries: 1 });
  if (o.dnsServers?.length) r.setServers(o.dnsServers);
  try {
    const recs = await r.resolveSrv(name);
    recs.sort((a, b) => a.priority - b.priority || b.weight - a.weight);
    return recs
      .filter((rec) => rec.name && rec.name !== '.')
      .map((rec) => {
        const host = rec.name.replace(/\.$/, '');
        return {
          pinName: `dns-srv:${name}`,
          name,
          url: `${o.scheme ?? 'https'}://${host.includes(':') ? `[${host}]` : host}:${rec.port}`,
        };
      });
  } catch {
    return []; // not found, or timed out
  }
}

const same = (a: string, b: string) => a.replace(/\.$/, '').toLowerCase() === b.replace(/\.$/, '').toLowerCase();

/**
 * Browses the local network for floatd servers (DNS-SD, `_floatd._tcp.local`) for `timeoutMs`.
 * Never throws: a network without multicast finds nothing.
 *
 * @example const found = await browseDnsSd({ timeoutMs: 1000 }); // [{ name: 'floatd on build1', url: 'http://192.0.2.7:7070' }]
 */
export async function browseDnsSd(b: BrowseOptions = {}): Promise<{ name: string; url: string }[]> {
  const port = b.port ?? 5353;
  let mdns: ReturnType<typeof makeMdns>;
  try {
    mdns = makeMdns({ port, reuseAddr: true, loopback: true, ...(b.interface ? { interface: b.interface, bind: '0.0.0.0' } : {}) });
  } catch {
    return [];
  }
  type Rec = { name: string; type: string; data: unknown };
  const instances = new Set<string>();
  // per responder (address:port of the answer) and instance: SRV, TXT; A records per responder
  const srv = new Map<string, { port: number; target: string; from: string; instance: string }>();
  const txt = new Map<string, Record<string, string>>();
  const a = new Map<string, string>();
  const asked = new Set<string>();
  mdns.on('error', () => undefined);
  mdns.on('warning', () => undefined);
  mdns.on('response', (res, rinfo) => {
    const from = rinfo.address;
    for (const r of [...(res.answers ?? []), ...(res.additionals ?? [])] as Rec[]) {
      if (r.type === 'PTR' && same(r.name, DNS_SD_TYPE) && typeof r.data === 'string') instances.add(r.data);
      else if (r.type === 'SRV') {
        const d = r.data as { port: number; target: string };
        srv.set(`${from}|${r.name.toLowerCase()}|${d.port}`, { port: d.port, target: d.target, from, instance: r.name });
      } else if (r.type === 'TXT') {
        const kv: Record<string, string> = {};
        for (const item of ([] as unknown[]).concat(r.data)) {
          const s = Buffer.isBuffer(item) ? item.toString('utf8') : String(item);
          const i = s.indexOf('=');
          if (i > 0) kv[s.slice(0, i).toLowerCase()] = s.slice(i + 1);
        }
        txt.set(`${from}|${r.name.toLowerCase()}`, kv);
      } else if (r.type === 'A' && typeof r.data === 'string') a.set(`${from}|${r.name.toLowerCase()}`, r.data);
    }
    // an instance named without its SRV record: ask for it
    for (const inst of instances)
      if (![...srv.values()].some((s) => same(s.instance, inst)) && !asked.has(inst.toLowerCase())) {
        asked.add(inst.toLowerCase());
        mdns.query({ questions: [{ name: inst, type: 'SRV' }] } as never, () => undefined);
      }
  });
  const ask = () => mdns.query({ questions: [{ name: DNS_SD_TYPE, type: 'PTR' }] } as never, () => undefined);
  ask();
  const again = setTimeout(ask, Math.min(400, (b.timeoutMs ?? 1000) / 2));
  await new Promise((resolve) => setTimeout(resolve, b.timeoutMs ?? 1000));
  clearTimeout(again);
  await new Promise<void>((resolve) => mdns.destroy(() => resolve()));

  const out: { name: string; url: string }[] = [];
  const seen = new Set<string>();
  for (const s of srv.values()) {
    if (!s.instance.toLowerCase().endsWith(`.${DNS_SD_TYPE}`)) continue;
    const label = s.instance.slice(0, -DNS_SD_TYPE.length - 1);
    if (b.name && label.toLowerCase() !== b.name.toLowerCase()) continue;
    const kv = txt.get(`${s.from}|${s.instance.toLowerCase()}`) ?? {};
    const scheme = kv.scheme === 'https' ? 'https' : 'http';
    const path = kv.path && kv.path.startsWith('/') ? kv.path.replace(/\/+$/, '') : '';
    // https needs the name its certificate is for; http goes to the address the target resolves to
    const host = scheme === 'https' ? s.target.replace(/\.$/, '') : (a.get(`${s.from}|${s.target.toLowerCase()}`) ?? s.from);
    const url = `${scheme}://${host.includes(':') ? `[${host}]` : host}:${s.port}${path}`;
    if (seen.has(`${label}|${url}`)) continue;
    seen.add(`${label}|${url}`);
    out.push({ name: label, url });
  }
  return out.sort((x, y) => x.name.localeCompare(y.name) || x.url.localeCompare(y.url));
}

// ---------------------------------------------------------------- pins of discovered servers

interface Pin {
  url: string;
  keys: { kid: string; x: string }[];
  pinnedAt: string;
}
const PINS = 'discovered.json';

async function readPins(dir: string): Promise<Record<string, Pin>> {
  try {
    const doc = JSON.parse(await readFile(join(dir, PINS), 'utf8')) as unknown;
    return doc && typeof doc === 'object' ? (doc as Record<string, Pin>) : {};
  } catch {
    return {};
  }
}

async function writePins(dir: string, pins: Record<string, Pin>): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  await writeFileAtomic(join(dir, PINS), `${JSON.stringify(pins, null, 2)}\n`);
}

async function fetchKeys(url: string, timeoutMs: number): Promise<ServerPublicKey[] | undefined> {
  try {
    const res = await fetch(`${url.replace(/\/+$/, '')}/.well-known/jwks.json`, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) return undefined;
    const keys = parseKeys(await res.json());
    return keys.length ? keys : undefined;
  } catch {
    return undefined;
  }
}

const overlap = (a: { x: string }[], b: { x: string }[]) => a.some((k) => b.some((p) => p.x === k.x));

/**
 * Of the candidates (in preference order), the first that answers and is the server pinned under its
 * name (pinning it when nothing is), or undefined; every refusal is added to `refused`.
 */
async function choose(candidates: Candidate[], dir: string, timeoutMs: number, refused: string[]): Promise<Candidate | undefined> {
  if (!candidates.length) return undefined;
  const pins = await readPins(dir);
  const answering: (Candidate & { keys: ServerPublicKey[] })[] = [];
  for (const c of candidates) {
    const keys = await fetchKeys(c.url, timeoutMs);
    if (!keys) refused.push(`${c.url} (${c.pinName}): no answer with the server's keys`);
    else answering.push({ ...c, keys });
  }
  const byName = new Map<string, (Candidate & { keys: ServerPublicKey[] })[]>();
  for (const c of answering) byName.set(c.pinName, [...(byName.get(c.pinName) ?? []), c]);
  // names already pinned first: a site's server, once used, keeps being preferred
  const names = [...byName.keys()].sort((x, y) => Number(!!pins[y]) - Number(!!pins[x]));
  for (const name of names) {
    const list = byName.get(name)!;
    const pin = pins[name];
    let ok: typeof list;
    if (pin) {
      ok = list.filter((c) => overlap(c.keys, pin.keys));
      for (const c of list)
        if (!ok.includes(c)) refused.push(`${c.url} (${name}): its keys are not the ones pinned for this name (an impostor?)`);
    } else {
      // nothing pinned yet: every server announcing the name must be one (the same keys), else none is trusted
      const first = list[0]!;
      if (list.every((c) => overlap(c.keys, first.keys))) ok = list;
      else {
        ok = [];
        for (const c of list) refused.push(`${c.url} (${name}): servers with different keys answer for this name`);
      }
    }
    const chosen = ok[0];
    if (!chosen) continue;
    pins[name] = {
      url: chosen.url,
      keys: chosen.keys.map((k) => ({ kid: k.kid, x: k.x })),
      pinnedAt: pin?.pinnedAt ?? new Date().toISOString(),
    };
    await writePins(dir, pins);
    return chosen;
  }
  return undefined;
}

/**
 * Finds the server in the documented order.
 *
 * @example const found = await discoverServer({ domain: 'corp.example' }); if (found.url) lic = new FloatingLicense({ serverUrl: found.url, licenseKey });
 */
export async function discoverServer(options: DiscoveryOptions = {}): Promise<DiscoveryResult> {
  if (options.serverUrl) return { url: options.serverUrl, source: 'configured' };
  const dir = options.stateDir ?? join(homedir(), '.floatd');
  if (options.remembered !== false) {
    const saved = await rememberedKey(dir);
    if (saved) return { url: saved.serverUrl, source: 'remembered' };
  }
  const tried: string[] = [];
  const refused: string[] = [];
  const verifyMs = options.verifyTimeoutMs ?? 2000;
  const domain = options.domain === false ? undefined : (options.domain ?? systemDomain());
  if (domain) {
    tried.push(`dns-srv ${srvName(domain)}`);
    const c = await choose(await srvCandidates(options, domain), dir, verifyMs, refused);
    if (c) return { url: c.url, source: 'dns-srv', name: c.name };
  }
  if (options.browse !== false) {
    tried.push(`dns-sd ${DNS_SD_TYPE}`);
    const found = await browseDnsSd(options.browse ?? {});
    const c = await choose(
      found.map((f) => ({ pinName: `dns-sd:${f.name.toLowerCase()}`, name: f.name, url: f.url })),
      dir,
      verifyMs,
      refused,
    );
    if (c) return { url: c.url, source: 'dns-sd', name: c.name };
  }
  return { url: undefined, source: 'none', tried, refused };
}
