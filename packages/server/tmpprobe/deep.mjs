import { startServer } from '/work/main/packages/server/dist/server.js';
import { parseConfig } from '/work/main/packages/server/dist/config.js';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os'; import { join } from 'node:path';
import { pino } from 'pino';
const dataDir = await mkdtemp(join(tmpdir(), 'floatd-x-'));
const s = await startServer(parseConfig({ host: '127.0.0.1', port: '0', dataDir, logLevel: 'error' }), { logger: pino({ level: 'error' }), reclaimer: false });
const tok = (await readFile(s.adminTokenFile, 'utf8')).trim();
for (const n of [100, 1000, 2000, 5000]) {
const body = '{"name":"y","metadata":{"a":' + '{"a":'.repeat(n) + '1' + '}'.repeat(n) + '}}';
const r = await fetch(s.url + '/v1/admin/products', { method: 'POST', headers: { authorization: 'Bearer ' + tok, 'content-type': 'application/json' }, body });
console.log(n, r.status, (await r.text()).slice(0, 200));
}
await s.close();
