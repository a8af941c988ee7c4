#!/usr/bin/env node
// A stand-in for an Electron main process: a plain Node "app" with a menu, a
// quit hook and a data directory, licensed by ./license.mjs.
//
//   FLOATD_SERVER=http://127.0.0.1:7070 LICENSE_KEY=XXXXX-… node examples/electron-like/main.mjs [--offline DAYS] [--seconds N]
import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline';
import { license } from './license.mjs';
import { licenseKey } from './keyDialog.mjs';

const { values: flags } = parseArgs({ options: { offline: { type: 'string' }, seconds: { type: 'string' } } });

// --- the "application" (in Electron: app, Menu, dialog, BrowserWindow) ------------
const quitHooks = [];
let lines;
const menu = new Map();
const app = {
  config: { serverUrl: process.env.FLOATD_SERVER ?? 'http://127.0.0.1:7070', licenseKey: process.env.LICENSE_KEY ?? '' },
  // in Electron: app.getPath('userData')
  dataDir: process.env.APP_DATA_DIR ?? join(homedir(), '.electron-like-example'),
  warn: (text) => console.log(`[app] ⚠ ${text}`),
  show: (text) => console.log(`[app] ${text}`),
  // in Electron: the key dialog window; here one line from stdin (undefined at its end)
  ask: (label) => {
    lines ??= createInterface({ input: process.stdin })[Symbol.asyncIterator]();
    console.log(`[app] ${label}`);
    return lines.next().then((r) => (r.done ? undefined : r.value));
  },
  onMenu: (label, fn) => menu.set(label, fn),
  onQuit: (fn) => quitHooks.push(fn),
  async quit(reason) {
    if (reason) console.log(`[app] ${reason}`);
    for (const fn of quitHooks) await fn();
    console.log('[app] bye');
    process.exit(reason ? 75 : 0);
  },
};
mkdirSync(app.dataDir, { recursive: true });

// --- start -------------------------------------------------------------------------
// no key configured: the key dialog asks once and remembers it (./keyDialog.mjs)
app.config.licenseKey = await licenseKey(app);
const lic = await license(app);
const s = lic.status();
console.log(`[app] licensed: ${s.state}, lease ${s.leaseId}, ${s.seatsUsed ?? '?'}/${s.seatsTotal ?? '?'} seats in use`);
lic.on('renewed', (st) => console.log(`[app] lease renewed until ${st.leaseExpiresAt?.toISOString() ?? 'check-in'}`));
lic.on('reacquired', () => console.log('[app] license seat reacquired'));

if (flags.offline) {
  const st = await menu.get('Work offline…')(Number(flags.offline));
  console.log(`[app] working offline until ${st.offlineExpiresAt?.toISOString()}`);
}

// The user works… then closes the window (or presses Ctrl-C: handleExit checks in).
const seconds = Number(flags.seconds ?? 5);
setTimeout(() => app.quit(), seconds * 1000);
