// Client text in the console (issue #24 part 3): hostnames and user names a client chose, and metadata, are shown
// with control characters and bidirectional overrides escaped visibly, never raw, including rows stored before the
// server refused such text (written here straight into the database file, as an older version would have kept them).
// Real server process, real SQLite file, real headless Chromium.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';

const ROOT = new URL('../../', import.meta.url).pathname;
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const missing = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is missing (apt-get install -y chromium)`;
if (missing && process.env.CI === 'true') throw new Error(missing);

const HOSTILE_HOST = '\u001b]0;PWNED\u0007\u001b[2Jws-evil';
const HOSTILE_USER = 'bob\u202eexe.txt';
const HOSTILE_CUSTOMER = '\u001b[31mAcme\u0085 Corp';

const { startFloatdProcess } = await import(join(ROOT, 'packages/server/dist/testing/process.js'));
const start = (dataDir) => startFloatdProcess({ dataDir, args: ['--reclaim-interval', '3600'] });

test('the console shows client text and metadata with control characters and bidi overrides escaped, rows from before the rule included', {
  skip: missing,
  timeout: 120_000,
}, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'floatd-console-escape-'));
  let server = await start(dataDir);
  let browser;
  try {
    const token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
    const api = async (method, path, body, auth = `Bearer ${token}`) => {
      const res = await fetch(server.url + path, {
        method,
        headers: { authorization: auth, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      return { status: res.status, body: await res.json() };
    };
    const product = (await api('POST', '/v1/admin/products', { name: 'Escape CAD' })).body;
    const lic = await api('POST', '/v1/admin/licenses', { productId: product.id, seats: 3, metadata: { customer: HOSTILE_CUSTOMER } });
    assert.equal(lic.status, 201, JSON.stringify(lic.body));
    // Today the server refuses such identity text...
    const refused = await api(
      'POST',
      '/v1/client/checkout',
      { fingerprint: 'fp-escape-0001', instanceId: 'app', hostname: HOSTILE_HOST },
      `License ${lic.body.key}`,
    );
    assert.equal(refused.body.error?.code, 'VALIDATION_FAILED');
    const ok = await api(
      'POST',
      '/v1/client/checkout',
      { fingerprint: 'fp-escape-0001', instanceId: 'app', hostname: 'ws-plain', user: 'bob' },
      `License ${lic.body.key}`,
    );
    assert.equal(ok.status, 201);
    await server.stop();
    // ...but a row stored before the rule existed holds it.
    const db = new Database(join(dataDir, 'floatd.db'));
    db.prepare('UPDATE devices SET hostname = ?, user_name = ? WHERE fingerprint = ?').run(HOSTILE_HOST, HOSTILE_USER, 'fp-escape-0001');
    db.close();
    server = await start(dataDir);

    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'] });
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.setDefaultTimeout(10_000);
    await page.goto(`${server.url}/console/`);
    await page.evaluate((t) => sessionStorage.setItem('floatd.adminToken', t), token);
    const texts = {};
    for (const [name, path, waitFor] of [
      ['license page', `/console/keys/${lic.body.id}`, 'ws-evil'],
      ['dashboard', '/console/', 'Corp'],
      ['keys list', '/console/keys', 'Corp'],
    ]) {
      await page.goto(server.url + path);
      await page.getByText(waitFor, { exact: false }).first().waitFor();
      texts[name] = await page.evaluate(() => document.body.innerText);
    }
    const all = Object.values(texts).join('\n');
    assert.doesNotMatch(
      all,
      /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/u,
      'no raw control character or bidi override reaches the page',
    );
    assert.ok(
      texts['license page'].includes('\\x1b]0;PWNED\\x07\\x1b[2Jws-evil'),
      `the hostname is shown escaped: ${texts['license page'].slice(0, 2000)}`,
    );
    assert.ok(texts['license page'].includes('bob\\u202eexe.txt'), 'the user name is shown escaped');
    assert.ok(
      texts.dashboard.includes('\\x1b[31mAcme\\x85 Corp'),
      `metadata (the customer) is shown escaped on the dashboard: ${texts.dashboard.slice(0, 1500)}`,
    );
  } finally {
    await browser?.close().catch(() => {});
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
