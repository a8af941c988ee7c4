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
export async function resolveKey(given: {
  server?: string;
  key?: string;
  stateDir?: string;
  tty: boolean;
  input?: NodeJS.ReadableStream;
  output?: NodeJS.WritableStream;
  /** finds the server when none is configured or remembered (discoverServer: DNS SRV, then DNS-SD) */
  discover?: () => Promise<DiscoveryResult>;
}): Promise<FirstRunOutcome> {
  if (given.server && given.key) return { ok: true, serverUrl: given.server, licenseKey: given.key };
  const out = given.output ?? process.stderr;
  const saved = await rememberedKey(given.stateDir);
  let knownServer = given.server ?? saved?.serverUrl;
  const knownKey = given.key ?? (saved && (!given.server || given.server === saved.serverUrl) ? saved.licenseKey : undefined);
  if (!knownServer && (given.tty || knownKey) && given.discover) {
    const found = await given.discover();
    if (found.source === 'none') for (const refusal of found.refused) out.write(`floatd-run: not used: ${refusal}\n`);
    else {
      knownServer = found.url;
      if (given.tty && 'name' in found) out.write(`Found the license server ${found.url} (${found.source} "${found.name}").\n`);
    }
  }
  if (knownServer && knownKey) return { ok: true, serverUrl: knownServer, licenseKey: knownKey };
  if (!given.tty) return { ok: false, exit: EXIT_NO_KEY, line: knownKey ? NO_SERVER_LINE : NO_KEY_LINE };
  const prompt = createInterface({ input: given.input ?? process.stdin, output: out, terminal: true });
  try {
    let server = knownServer;
    for (let tries = 0; tries < 3; tries++) {
      while (!server) server = (await prompt.question('License server URL: ')).trim() || undefined;
      const key = knownKey ?? (await prompt.question('License key: ')).trim();
      if (!key) continue;
      const checked = await validateKey({ serverUrl: server, licenseKey: key, ...(given.stateDir ? { stateDir: given.stateDir } : {}) });
      out.write(`${checked.message}\n`);
      if (checked.ok) {
        await rememberKey({ serverUrl: server, licenseKey: key }, given.stateDir);
        out.write('Remembered: later runs will not ask (floatd-run --forget clears it).\n');
        return { ok: true, serverUrl: server, licenseKey: key };
      }
      if (checked.code === 'NETWORK_ERROR' && !given.server) server = undefined;
      if (knownKey) break;
    }
    return { ok: false, exit: 77, line: 'the license key was not accepted' };
  } finally {
    prompt.close();
  }
}

export { forgetKey };
