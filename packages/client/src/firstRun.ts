/**
 * floatd-run's first run: with no key configured, ask on the terminal for the key (and
 * the server when none is known), check it with the server, remember both; `--forget`
 * clears them. Without a terminal it never prompts (EXIT.NO_KEY and one line).
 */
import { createInterface } from 'node:readline/promises';
import type { DiscoveryResult } from './discovery.js';
import { forgetKey, rememberKey, rememberedKey, validateKey } from './keyStore.js';

/** floatd-run's exit code when no key is configured and there is no terminal to ask on (sysexits EX_CONFIG). */
export const EXIT_NO_KEY = 78;
export const NO_KEY_LINE =
  'no license key configured and no terminal to ask on: pass --key (or FLOATD_LICENSE_KEY), or run once on a terminal to enter it';

export const NO_SERVER_LINE =
  'no license server configured and none found (DNS SRV, DNS-SD): pass --server (or FLOATD_SERVER), or run once on a terminal to enter it';

export type FirstRunOutcome = { ok: true; serverUrl: string; licenseKey: string } | { ok: false; exit: number; line: string };

/** Fills in the key and server from what was remembered, or asks for them on a terminal. */
export async function resolveKey(a: {
  server?: string;
  key?: string;
  stateDir?: string;
  tty: boolean;
  input?: NodeJS.ReadableStream;
  output?: NodeJS.WritableStream;
  /** finds the server when none is configured or remembered (discoverServer: DNS SRV, then DNS-SD) */
  discover?: () => Promise<DiscoveryResult>;
}): Promise<FirstRunOutcome> {
  if (a.server && a.key) return { ok: true, serverUrl: a.server, licenseKey: a.key };
  const out = a.output ?? process.stderr;
  const saved = await rememberedKey(a.stateDir);
  let server0 = a.server ?? saved?.serverUrl;
  const key0 = a.key ?? (saved && (!a.server || a.server === saved.serverUrl) ? saved.licenseKey : undefined);
  if (!server0 && (a.tty || key0) && a.discover) {
    const found = await a.discover();
    if (found.source === 'none') for (const r of found.refused) out.write(`floatd-run: not used: ${r}\n`);
    else {
      server0 = found.url;
      if (a.tty && 'name' in found) out.write(`Found the license server ${found.url} (${found.source} "${found.name}").\n`);
    }
  }
  if (server0 && key0) return { ok: true, serverUrl: server0, licenseKey: key0 };
  if (!a.tty) return { ok: false, exit: EXIT_NO_KEY, line: key0 ? NO_SERVER_LINE : NO_KEY_LINE };
  const rl = createInterface({ input: a.input ?? process.stdin, output: out, terminal: true });
  try {
    let server = server0;
    for (let tries = 0; tries < 3; tries++) {
      while (!server) server = (await rl.question('License server URL: ')).trim() || undefined;
      const key = key0 ?? (await rl.question('License key: ')).trim();
      if (!key) continue;
      const r = await validateKey({ serverUrl: server, licenseKey: key, ...(a.stateDir ? { stateDir: a.stateDir } : {}) });
      out.write(`${r.message}\n`);
      if (r.ok) {
        await rememberKey({ serverUrl: server, licenseKey: key }, a.stateDir);
        out.write('Remembered: later runs will not ask (floatd-run --forget clears it).\n');
        return { ok: true, serverUrl: server, licenseKey: key };
      }
      if (r.code === 'NETWORK_ERROR' && !a.server) server = undefined;
      if (key0) break;
    }
    return { ok: false, exit: 77, line: 'the license key was not accepted' };
  } finally {
    rl.close();
  }
}

export { forgetKey };
