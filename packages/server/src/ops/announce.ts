/**
 * DNS-SD on the local network (RFC 6763 over multicast DNS, RFC 6762): `floatd serve --announce [name]`
 * makes the server answer browses for `_floatd._tcp.local` with its instance name, port, address and a
 * TXT record (`txtvers=1`, `scheme=http`, `path=/`). Off by default. Packets and the multicast socket
 * are the `multicast-dns` library's; this file only says which records to send and when.
 *
 * - At start: two unsolicited announcements (1 s apart), then answers to queries for the service type,
 *   the instance and the host name.
 * - A socket that cannot be opened (no multicast route, port 5353 held without SO_REUSEADDR, a
 *   container without multicast) is a warning, never a failed start: the server runs unannounced.
 * - At shutdown: a goodbye (the same records with TTL 0), so browsers drop it at once, then the socket closes.
 */
import { hostname, networkInterfaces } from 'node:os';
import makeMdns from 'multicast-dns';
export { defaultInstanceName, validInstanceName } from './announceName.js';

export const SERVICE_TYPE = '_floatd._tcp.local';

export interface AnnounceOptions {
  /** the DNS-SD instance name (one label: 1–63 bytes, no dot) */
  name: string;
  /** the HTTP port the server listens on */
  port: number;
  /** the address the server listens on: a specific IPv4 address is the only one announced */
  listenHost: string;
  /** the IPv4 address of the one interface to announce on (default: every interface) */
  interface?: string | undefined;
  /** the multicast DNS port (default 5353; another only for tests and isolated labs) */
  mdnsPort?: number | undefined;
  warn(message: string, err?: unknown): void;
  info?(message: string): void;
}

export interface Announcer {
  readonly name: string;
  readonly fqdn: string;
  /** sends the goodbye and closes the socket; safe to call twice */
  stop(): Promise<void>;
}

function addresses(o: AnnounceOptions): string[] {
  if (/^\d+\.\d+\.\d+\.\d+$/.test(o.listenHost) && o.listenHost !== '0.0.0.0') return [o.listenHost];
  if (o.interface) return [o.interface];
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces()))
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) out.push(a.address);
  return out.length ? out : ['127.0.0.1'];
}

const same = (a: string, b: string) => a.replace(/\.$/, '').toLowerCase() === b.replace(/\.$/, '').toLowerCase();

/**
 * Starts announcing. Never throws for a network problem: it warns and the returned announcer does nothing.
 *
 * @example const a = startAnnouncer({ name: 'floatd on build1', port: 7070, listenHost: '0.0.0.0', warn: console.warn }); … await a.stop();
 */
export function startAnnouncer(o: AnnounceOptions): Announcer {
  const fqdn = `${o.name}.${SERVICE_TYPE}`;
  const target = `${(hostname().split('.')[0] || 'floatd').replace(/[^A-Za-z0-9-]/g, '-')}.local`;
  let stopped = false;
  let failed = false;
  let stopping: Promise<void> | undefined;
  const timers: NodeJS.Timeout[] = [];
  const fail = (what: string, err: unknown) => {
    if (failed || stopped) return;
    failed = true;
    o.warn(`DNS-SD announcement off: ${what} (${(err as Error)?.message ?? String(err)}); the server runs unannounced`, err);
  };

  let mdns: ReturnType<typeof makeMdns> | undefined;
  try {
    mdns = makeMdns({
      port: o.mdnsPort ?? 5353,
      ...(o.interface ? { interface: o.interface, bind: '0.0.0.0' } : {}),
      reuseAddr: true,
      loopback: true,
    });
  } catch (err) {
    fail('cannot open the multicast DNS socket', err);
  }

  const records = (ttl: { long: number; short: number }) => {
    const ptr = { name: SERVICE_TYPE, type: 'PTR' as const, ttl: ttl.long, data: fqdn };
    const srv = { name: fqdn, type: 'SRV' as const, ttl: ttl.short, data: { priority: 0, weight: 0, port: o.port, target } };
    const txt = { name: fqdn, type: 'TXT' as const, ttl: ttl.long, data: ['txtvers=1', 'scheme=http', 'path=/'] };
    const a = addresses(o).map((ip) => ({ name: target, type: 'A' as const, ttl: ttl.short, data: ip }));
    return { ptr, srv, txt, a };
  };
  const live = () => records({ long: 4500, short: 120 });
  const send = (answers: unknown[], additionals: unknown[] = [], to?: { address: string; port: number }) =>
    new Promise<void>((resolve) => {
      if (!mdns || failed) return resolve();
      const cb = (err: Error | null) => {
        if (err) fail('cannot send on the multicast DNS socket', err);
        resolve();
      };
      // a one-shot querier (source port not the mDNS port) gets its answer by unicast (RFC 6762 §6.7)
      if (to) mdns.respond({ answers, additionals } as never, to as never, cb);
      else mdns.respond({ answers, additionals } as never, cb);
    });

  if (mdns) {
    mdns.on('error', (err) => fail('cannot open the multicast DNS socket', err));
    mdns.on('warning', () => {
      /* a malformed packet from someone else, or one interface without multicast: not ours to report */
    });
    mdns.on('query', (q, rinfo) => {
      if (stopped || failed) return;
      const r = live();
      const answers: unknown[] = [];
      let additionals: unknown[] = [];
      for (const question of q.questions ?? []) {
        const t = question.type as string;
        if (same(question.name, SERVICE_TYPE) && (t === 'PTR' || t === 'ANY')) {
          answers.push(r.ptr);
          additionals = [r.srv, r.txt, ...r.a];
        } else if (same(question.name, fqdn) && (t === 'SRV' || t === 'TXT' || t === 'ANY')) {
          if (t !== 'TXT') answers.push(r.srv);
          if (t !== 'SRV') answers.push(r.txt);
          additionals = [...r.a];
        } else if (same(question.name, target) && (t === 'A' || t === 'ANY')) answers.push(...r.a);
      }
      if (answers.length) void send(answers, additionals, rinfo.port !== (o.mdnsPort ?? 5353) ? rinfo : undefined);
    });
    mdns.on('ready', () => {
      if (stopped || failed) return;
      const announce = () => {
        const r = live();
        void send([r.ptr, r.srv, r.txt, ...r.a]);
      };
      announce();
      const t = setTimeout(announce, 1000);
      t.unref();
      timers.push(t);
      o.info?.(`announcing "${o.name}" as ${SERVICE_TYPE} (DNS-SD) on port ${o.port}`);
      if (/^127\./.test(o.listenHost) && !(o.interface && /^127\./.test(o.interface)))
        o.warn(`DNS-SD: the server listens on ${o.listenHost}, which only this machine can reach: bind it with --host for other machines`);
    });
  }

  return {
    name: o.name,
    fqdn,
    stop() {
      stopping ??= (async () => {
        for (const t of timers) clearTimeout(t);
        if (!mdns) return;
        if (!failed) {
          const r = records({ long: 0, short: 0 });
          await Promise.race([send([r.ptr, r.srv, r.txt, ...r.a]), new Promise((res) => setTimeout(res, 1000))]);
        }
        stopped = true;
        await new Promise<void>((resolve) => mdns.destroy(() => resolve()));
      })();
      return stopping;
    },
  };
}
