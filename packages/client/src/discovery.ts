/**
 * Finding the site's license server. Order (each step only when the one before found nothing):
 *   1. the configured URL (option, FLOATD_SERVER, or the remembered one);
 *   2. DNS SRV `_floatd._tcp.<domain>` (lowest priority, then highest weight), time limit `timeoutMs`
 *      (default 2 s); the URL is `https://<target>:<port>` (`http` when `scheme: 'http'`).
 * A discovered server is trusted only as a configured one: the SDK pins its identity on first
 * use (trust.ts) under the state directory, exactly as for a configured URL.
 */
import { Resolver } from 'node:dns/promises';

export interface DiscoveryOptions {
  /** a configured URL wins outright */
  serverUrl?: string;
  /** the DNS domain to look `_floatd._tcp.<domain>` up in */
  domain?: string;
  /** DNS servers to ask (`'127.0.0.53'`, `'[::1]:5353'`, `'127.0.0.2:5300'`); default: the system's */
  dnsServers?: string[];
  /** scheme of the URL built from a SRV record (default https) */
  scheme?: 'https' | 'http';
  /** time limit of the DNS step, ms (default 2000) */
  timeoutMs?: number;
}

export type DiscoveryResult = { url: string; source: 'configured' | 'dns-srv' } | { url: undefined; source: 'none'; tried: string[] };

/** The SRV owner name for a domain. @example srvName('example.com') // '_floatd._tcp.example.com' */
export function srvName(domain: string): string {
  return `_floatd._tcp.${domain.replace(/\.$/, '')}`;
}

/**
 * Finds the server in the documented order.
 *
 * @example const found = await discoverServer({ domain: 'corp.example' }); if (found.url) lic = new FloatingLicense({ serverUrl: found.url, licenseKey });
 */
export async function discoverServer(options: DiscoveryOptions): Promise<DiscoveryResult> {
  if (options.serverUrl) return { url: options.serverUrl, source: 'configured' };
  const tried: string[] = [];
  if (options.domain) {
    const name = srvName(options.domain);
    tried.push(`dns-srv ${name}`);
    const resolver = new Resolver({ timeout: options.timeoutMs ?? 2000, tries: 1 });
    if (options.dnsServers?.length) resolver.setServers(options.dnsServers);
    try {
      const records = await resolver.resolveSrv(name);
      records.sort((a, b) => a.priority - b.priority || b.weight - a.weight);
      const best = records[0];
      if (best && best.name && best.name !== '.') {
        const host = best.name.replace(/\.$/, '');
        return { url: `${options.scheme ?? 'https'}://${host.includes(':') ? `[${host}]` : host}:${best.port}`, source: 'dns-srv' };
      }
    } catch {
      /* not found, or timed out: fall through */
    }
  }
  return { url: undefined, source: 'none', tried };
}
