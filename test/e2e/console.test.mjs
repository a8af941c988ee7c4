// Browser tests of the web console: a real server process, real headless Chromium
// (Debian's `chromium`, driven by playwright-core), the built console at /console.
// Every page is screenshotted to artifacts/console/*.png. Any browser console error or
// page error fails the test, except HTTP error answers a step provokes on purpose.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTempDatabase, TEST_KEY_ENCRYPTION_KEY } from '../../packages/server/dist/testing/pg.js';
import { startFloatdProcess } from '../../packages/server/dist/testing/process.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = join(ROOT, 'artifacts', 'console');
const CONSOLE_INDEX = join(ROOT, 'packages', 'console', 'dist', 'index.html');

if (!existsSync(CHROMIUM)) {
  const msg = `${CHROMIUM} is missing: the console browser tests need Debian's chromium (apt-get install -y chromium; .ci/run does it)`;
  if (process.env.CI === 'true') {
    test('console browser tests', () => assert.fail(msg));
  } else {
    console.error(
      `\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n!!! SKIPPING console browser tests: ${msg}\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n`,
    );
    test('console browser tests', { skip: msg }, () => {});
  }
} else {
  describe('web console in headless Chromium', { timeout: 240_000 }, consoleSuite);
}

function consoleSuite() {
  /** @type {import('../../packages/server/dist/testing/process.js').FloatdProcess | undefined} */
  let server;
  let dataDir = '';
  /** PostgreSQL pass: the server's own database */
  let database;
  let base = '';
  let adminToken = '';
  /** @type {import('playwright-core').Browser} */
  let browser;
  /** @type {import('playwright-core').BrowserContext} */
  let context;
  /** @type {import('playwright-core').Page} */
  let page;
  const problems = [];
  /** HTTP error answers a step provokes on purpose: Chromium logs them as console errors. */
  let allowed = [];
  const expectHttpError = (status, path) => allowed.push({ status, path });

  // What the steps share.
  const s = {
    productId: '',
    licenseId: '',
    key: '',
    key2Id: '',
    key2: '',
    zombieAt: 0,
    acmeId: '',
    initechId: '',
    acmeSubId: '',
    acmeSubKey: '',
    acmeToken: '',
  };

  async function api(method, path, body, auth = `Bearer ${adminToken}`) {
    const res = await fetch(base + path, {
      method,
      headers: { authorization: auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() };
  }
  const checkout = (key, host, user, extra = {}) =>
    api(
      'POST',
      '/v1/client/checkout',
      { fingerprint: `fp-${host}-0001`, instanceId: `${host}-pid-1`, hostname: host, user, ...extra },
      `License ${key}`,
    );

  function watch(p) {
    p.on('console', (msg) => {
      if (msg.type() !== 'error') return;
      const url = msg.location()?.url ?? '';
      const i = allowed.findIndex((a) => msg.text().includes(`status of ${a.status}`) && url.includes(a.path));
      if (i >= 0) allowed.splice(i, 1);
      else problems.push(`console error: ${msg.text()} ${url}`);
    });
    p.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    p.setDefaultTimeout(8000);
  }
  const shot = (name, p = page) => p.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  /**
   * Opens the console in a fresh page and signs in. A new browser context's first page can take
   * well over the 8-s step timeout to render on a loaded 2-core CI machine (both stores' passes and
   * Chromium at once), so the sign-in form gets 30 s; if it still is not there, the error says what
   * the page showed (its answer's status, its URL, its text) instead of only "timeout".
   */
  const signInFresh = async (p, url, token) => {
    const res = await p.goto(`${url}/console/`);
    try {
      await p.getByLabel('Admin token').waitFor({ timeout: 30_000 });
    } catch (e) {
      const text = await p.evaluate(() => document.body?.innerText ?? '').catch((x) => `(unreadable: ${x})`);
      await shot('FAILED-sign-in-form', p).catch(() => {});
      throw new Error(`no sign-in form at ${p.url()} (answer ${res?.status()}): ${String(text).slice(0, 500)}; ${e}`);
    }
    await p.getByLabel('Admin token').fill(token);
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor({ timeout: 30_000 });
  };
  const nav = (label) => page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: label, exact: true }).click();
  /**
   * Opens a console page the way its links do (history.pushState, no reload). Each full page load opens a new
   * event stream, and the server keeps a failed-authentication token for every event stream that ends (it never
   * gives the stream's reservation back): some 30 page loads within a minute are refused with 429 RATE_LIMITED.
   * The steps that walk many pages use this; `goto` stays for what a typed or bookmarked address must do.
   */
  const visit = (p, path) =>
    p.evaluate((url) => {
      history.pushState(null, '', url);
      window.dispatchEvent(new PopStateEvent('popstate'));
    }, `/console${path}`);
  const heading = (text) => page.getByRole('heading', { level: 1, name: text }).waitFor();

  before(async () => {
    assert.ok(existsSync(CONSOLE_INDEX), 'the console is not built: run `npm run build` first');
    mkdirSync(SHOTS, { recursive: true });
    dataDir = mkdtempSync(join(tmpdir(), 'floatd-console-'));
    // Rate limits as the environment says (the server's default unless FLOATD_RATE_LIMIT is set).
    // The PostgreSQL pass (scripts/test.mjs runs this file on both stores) puts the server on a database of its own.
    database = process.env.FLOATD_TEST_STORE === 'postgres' ? await createTempDatabase() : undefined;
    server = await startFloatdProcess({
      dataDir,
      args: ['--reclaim-interval', '3600'],
      env: {
        FLOATD_RATE_LIMIT: process.env.FLOATD_RATE_LIMIT,
        ...(database ? { FLOATD_DATABASE_URL: database.url, FLOATD_KEY_ENCRYPTION_KEY: TEST_KEY_ENCRYPTION_KEY } : {}),
      },
    });
    base = server.url.replace(/\/$/, '');
    adminToken = server.adminToken;
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-quic',
      ],
    });
    context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
    page = await context.newPage();
    watch(page);
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await server?.stop();
    await database?.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  // Each step ends clean: no unexpected console error or page error.
  // The steps build on each other: after a failure the rest are skipped, not failed again.
  let broken = '';
  const step = (name, fn) =>
    test(name, async (t) => {
      if (broken) return t.skip(`an earlier step failed: ${broken}`);
      allowed = [];
      try {
        await fn();
        assert.deepEqual(problems.splice(0), [], 'browser console errors');
      } catch (e) {
        broken = name;
        await shot(`FAILED-${name.replace(/[^a-z0-9]+/gi, '-').slice(0, 60)}`).catch(() => {});
        throw e;
      }
    });

  step('a bad token is refused, and nothing is kept', async () => {
    await page.goto(`${base}/console`);
    await heading('Sign in to the console');
    expectHttpError(401, '/v1/admin/whoami');
    await page.keyboard.type('fdt_tok_00000000000000000000_not-a-real-secret'); // the token field has focus
    await page.keyboard.press('Enter');
    const alert = page.getByRole('alert').filter({ hasText: 'UNAUTHENTICATED' });
    await alert.waitFor();
    assert.match(await alert.innerText(), /Sign-in refused/);
    assert.match(
      await alert.innerText(),
      /This token is not accepted: it is mistyped, incomplete or revoked\. Paste the whole token \(it starts with fdt_\), as printed at the first start or given to you by an administrator\./,
    );
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    assert.equal(new URL(page.url()).pathname, '/console/');
    await shot('signin-refused');
  });

  step('sign in with the admin token (keyboard only); a fresh install shows a useful empty state', async () => {
    const input = page.getByLabel('Admin token');
    await input.fill('');
    await input.focus();
    await page.keyboard.type(adminToken);
    await page.keyboard.press('Enter');
    await heading('Dashboard');
    await page.getByRole('heading', { name: 'No licenses yet' }).waitFor();
    await page.getByRole('link', { name: 'Create a product' }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('floatd.adminToken')), adminToken, 'token kept in session storage');
    assert.ok(!page.url().includes(adminToken), 'token never in the URL');
    // The live stream's first answer: on the loaded CI machine (both passes and Chromium at once) it once took
    // longer than the 8-s step timeout (the console retries after 1, 2 and 4 s); 30 s, as for the sign-in form.
    await page.getByRole('status').filter({ hasText: 'Live' }).waitFor({ timeout: 30_000 });
    // The main navigation is reachable with Tab, and Enter follows a link.
    await page.locator('body').focus();
    let reached = '';
    for (let i = 0; i < 12 && reached !== 'Licenses'; i++) {
      await page.keyboard.press('Tab');
      reached = await page.evaluate(() => document.activeElement?.textContent ?? '');
    }
    assert.equal(reached, 'Licenses', 'Tab reaches the Licenses link');
    await page.keyboard.press('Enter');
    await heading('Licenses');
    await page.getByText('First create a product').waitFor();
    await nav('Dashboard');
    await heading('Dashboard');
    await shot('dashboard-empty');
  });

  step("create a product and a key; the server's validation messages show at the field", async () => {
    await page.getByRole('link', { name: 'Create a product' }).click();
    await heading('Products');
    await page.getByLabel('New product name').fill('Acme CAD');
    await page.getByRole('button', { name: 'Create product' }).click();
    await page.getByRole('status').filter({ hasText: 'Product Acme CAD created' }).waitFor();
    await shot('products');
    await page.getByRole('link', { name: 'Create a license for it' }).click();
    await heading('New license');

    // No seat count: the schema's message, next to the Seats input.
    expectHttpError(400, '/v1/admin/licenses');
    await page.getByRole('button', { name: 'Create license' }).click();
    await page.getByRole('alert').filter({ hasText: 'VALIDATION_FAILED' }).first().waitFor();
    assert.equal(await page.getByLabel('Seats', { exact: true }).getAttribute('aria-invalid'), 'true');
    assert.match(await page.locator('.field-invalid .field-error').innerText(), /seats/);

    // A subscription without an end: the policy rule's message (422 INVALID_POLICY).
    await page.getByLabel('Seats', { exact: true }).fill('2');
    await page.getByRole('radio', { name: /^Subscription/ }).check();
    expectHttpError(422, '/v1/admin/licenses');
    await page.getByRole('button', { name: 'Create license' }).click();
    await page.getByRole('alert').filter({ hasText: 'INVALID_POLICY' }).first().waitFor();
    assert.match(await page.locator('.field-invalid').innerText(), /subscription needs expiresAt/);
    await shot('key-form-errors');

    await page.getByRole('radio', { name: /^Permanent/ }).check();
    await page.getByLabel('Metadata (JSON object)').fill('{"customer": "Globex"}');
    await page.getByRole('button', { name: 'Create license' }).click();
    await page.getByRole('status').filter({ hasText: 'created. Give its key to the customer' }).waitFor();
    s.key = (await page.locator('.key-title').innerText()).trim();
    assert.match(s.key, /^[0-9A-Z]{5}(-[0-9A-Z]{5}){4}$/);
    s.licenseId = new URL(page.url()).pathname.split('/').pop();
    assert.match(s.licenseId, /^lic_/);
    // Copy the key.
    await page.getByRole('button', { name: 'Copy key' }).click();
    await page.getByText('✓ Copied').waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), s.key);
    await page.getByText('No seat is held').waitFor();
  });

  step('the dashboard shows checkouts and denials live, without a reload', async () => {
    await nav('Dashboard');
    await heading('Dashboard');
    const row = page.locator(`tr[data-license-id="${s.licenseId}"]`);
    await row.filter({ hasText: '0 / 2' }).waitFor();
    await page.getByRole('status').filter({ hasText: 'Live' }).waitFor({ timeout: 30_000 });
    await page.evaluate(() => (window.__sameDocument = true));

    assert.equal((await checkout(s.key, 'ws-alice', 'alice', { appVersion: '4.2.0' })).status, 201);
    await row.filter({ hasText: '1 / 2' }).waitFor();
    assert.equal((await checkout(s.key, 'ws-bob', 'bob')).status, 201);
    await row.filter({ hasText: '2 / 2' }).waitFor();
    await row.filter({ hasText: 'Full' }).waitFor();
    const denied = await checkout(s.key, 'ws-dave', 'dave');
    assert.equal(denied.status, 409);
    assert.equal(denied.body.error.code, 'NO_SEATS_AVAILABLE');
    await row.locator('td[data-label="Denials today"]').filter({ hasText: /^1$/ }).waitFor();
    await page.locator('.stat', { hasText: 'Denials today' }).filter({ hasText: '1' }).waitFor();
    assert.equal(await page.evaluate(() => window.__sameDocument), true, 'no page reload');
    await shot('dashboard');
    await page.setViewportSize({ width: 390, height: 844 });
    await row.filter({ hasText: '2 / 2' }).waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `no horizontal scrolling at phone width (overflow ${overflow}px)`);
    await shot('dashboard-phone');
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  step('key detail lists the devices holding seats; force release, with the offline refusal and the force option', async () => {
    await page.locator(`tr[data-license-id="${s.licenseId}"] a`).first().click();
    await page.locator('.key-title', { hasText: s.key }).waitFor();
    const seats = page.locator('section', { has: page.getByRole('heading', { name: /Devices holding seats/ }) });
    const alice = seats.locator('tbody tr', { hasText: 'ws-alice' });
    await alice.waitFor();
    for (const text of ['alice', 'v4.2.0']) assert.match(await alice.innerText(), new RegExp(text.replace('.', '\\.')));
    assert.equal((await alice.locator('td[data-label="Instances"]').innerText()).trim(), '1');
    assert.match(await alice.locator('td[data-label="Offline expiry"]').innerText(), /online/);
    await seats.locator('tbody tr', { hasText: 'ws-bob' }).waitFor();
    await shot('key-detail');
    await page.setViewportSize({ width: 390, height: 844 });
    await shot('key-detail-phone');
    await page.setViewportSize({ width: 1280, height: 800 });

    // An online seat: the confirmation starts on Cancel and Escape closes it; then confirm, released.
    const dialog = page.getByRole('dialog');
    await page.getByRole('button', { name: 'Release the seat held by ws-bob' }).click();
    await dialog.waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Cancel');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    await page.getByRole('button', { name: 'Release the seat held by ws-bob' }).click();
    await dialog.getByRole('heading', { name: 'Release the seat held by ws-bob?' }).waitFor();
    await dialog.getByRole('button', { name: 'Release seat' }).click();
    await page.getByRole('status').filter({ hasText: 'Seat released from ws-bob' }).waitFor();
    await seats.locator('tbody tr', { hasText: 'ws-bob' }).waitFor({ state: 'detached' });

    // Edit the policy: allow offline checkout for a day.
    await page.getByRole('link', { name: 'Edit policy' }).click();
    await heading(/^Edit license/);
    await page.getByLabel('Longest offline checkout (seconds)').fill('86400');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByRole('status').filter({ hasText: 'License saved.' }).waitFor();
    await page.locator('.dl').getByText('Up to 1 d').waitFor();

    // An offline lease appears live; its release is refused plainly, then forced.
    const off = await api(
      'POST',
      '/v1/client/offline-checkout',
      { fingerprint: 'fp-ws-carol-0001', instanceId: 'carol-1', hostname: 'ws-carol', user: 'carol', durationSeconds: 3600 },
      `License ${s.key}`,
    );
    assert.equal(off.status, 201);
    const carol = seats.locator('tbody tr', { hasText: 'ws-carol' });
    await carol.waitFor();
    assert.match(await carol.locator('td[data-label="Offline expiry"]').innerText(), /offline/);
    await page.getByRole('button', { name: 'Release the seat held by ws-carol' }).click();
    expectHttpError(409, '/release');
    await dialog.getByRole('button', { name: 'Release seat' }).click();
    await dialog.getByRole('heading', { name: 'This seat is checked out for offline use' }).waitFor();
    assert.equal(
      await page.evaluate(() => document.activeElement?.textContent),
      'Cancel',
      'the refusal does not leave focus on Force release',
    );
    assert.match(await dialog.getByRole('alert').innerText(), /refused the release.*OFFLINE_LEASE_ACTIVE/s);
    await shot('key-release-offline');
    await dialog.getByRole('button', { name: 'Force release' }).click();
    await page.getByRole('status').filter({ hasText: 'offline checkout was overridden' }).waitFor();
    await carol.waitFor({ state: 'detached' });
    const audit = await api('GET', `/v1/admin/audit?licenseId=${s.licenseId}&type=release`);
    assert.deepEqual(
      audit.body.items.map((e) => e.reason),
      ['force-release', 'force-release'],
    );
  });

  step('reclamation settings: the interval and a per-key TTL, edited in place', async () => {
    const product = await api('GET', '/v1/admin/products');
    s.productId = product.body.items[0].id;
    const k2 = await api('POST', '/v1/admin/licenses', { productId: s.productId, seats: 5 });
    s.key2Id = k2.body.id;
    s.key2 = k2.body.key;
    await nav('Reclamation');
    await heading('Reclamation');
    await page.locator('.dl dd', { hasText: /^1 h \(server configuration/ }).waitFor(); // --reclaim-interval 3600
    const row = page.locator(`tr[data-license-id="${s.key2Id}"]`);
    // One editor at a time: the table shows values and a Change button per key.
    assert.equal(await page.getByLabel(/Lease TTL in seconds/).count(), 0, 'no editor until Change is pressed');
    await row.getByRole('button', { name: /^Change the lease TTL/ }).click();
    assert.equal(await page.getByLabel(/Lease TTL in seconds/).count(), 1);
    expectHttpError(400, `/v1/admin/licenses/${s.key2Id}`);
    await row.getByLabel(/Lease TTL in seconds/).fill('5');
    await row.getByRole('button', { name: 'Save' }).click();
    await row.getByRole('alert').filter({ hasText: 'VALIDATION_FAILED' }).waitFor(); // minimum 10 s
    await row.getByLabel(/Lease TTL in seconds/).fill('10');
    await row.getByRole('button', { name: 'Save' }).click();
    await row.getByText('✓ Saved').waitFor();
    assert.equal(await page.getByLabel(/Lease TTL in seconds/).count(), 0, 'the editor closes once saved');
    await row.locator('td[data-label="Heartbeat interval"]', { hasText: '3 s' }).waitFor();
    // A client takes a seat on it and then goes silent: dead after 10 s.
    assert.equal((await checkout(s.key2, 'ws-zombie', 'zed')).status, 201);
    s.zombieAt = Date.now();
  });

  step('usage: chart of concurrent seats per hour and per day, peak and denials, CSV download', async () => {
    await nav('Usage');
    await heading('Usage');
    // The same default period as the server and `floatd usage`: the last 24 hours.
    assert.equal(await page.getByLabel('Period').inputValue(), '24h');
    await page.getByLabel('License').selectOption(s.licenseId);
    await page.getByLabel('Period').selectOption('24h');
    const chart = page.locator('figure.chart svg[role="img"]');
    await chart.waitFor();
    assert.match(
      await chart
        .locator('title')
        .first()
        .innerText()
        .catch(() => chart.locator('title').first().textContent()),
      /Concurrent seats per hour/,
    );
    await page.locator('.stat', { hasText: 'Peak seats in use' }).filter({ hasText: '2 / 2' }).waitFor();
    await page
      .locator('.stat', { hasText: 'Denials' })
      .filter({ hasText: /^\s*1\s*Denials/ })
      .waitFor();
    assert.match(await page.locator('.verdict').innerText(), /Too few seats: users were turned away 1 time/);
    const bars = await chart.locator('.chart-bars rect').count();
    assert.ok(bars >= 24 && bars <= 26, `one bar per hour (${bars})`);
    assert.equal(await chart.locator('.chart-denials rect').count(), 1, 'one hour with denials');
    await page.locator('.chart-capacity', { hasText: '2 seats' }).waitFor();
    await page.getByText('The numbers as a table').click();
    await page.locator('details.data-table table tbody tr').first().waitFor();
    await shot('usage');
    await page.getByLabel('Day').check();
    await page.locator('figure.chart svg title', { hasText: 'per day' }).waitFor({ state: 'attached' });
    const dayBars = await chart.locator('.chart-bars rect').count();
    assert.ok(dayBars >= 1 && dayBars <= 2, `one bar per local day (${dayBars})`);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download CSV' }).click()]);
    assert.match(download.suggestedFilename(), new RegExp(`^floatd-usage-${s.key}-day-.*\\.csv$`));
    const csv = readFileSync(await download.path(), 'utf8')
      .trim()
      .split(/\r\n/);
    assert.equal(csv[0], 'period_start_utc,period,peak_seats,seats_at_end,checkouts,denials,seats_total');
    const total = csv.slice(1).map((l) => l.split(','));
    assert.equal(Math.max(...total.map((r) => Number(r[2]))), 2, 'peak in CSV');
    assert.equal(
      total.reduce((n, r) => n + Number(r[5]), 0),
      1,
      'denials in CSV',
    );
    await page.setViewportSize({ width: 390, height: 844 });
    await shot('usage-phone');
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  step('audit log: filter by event type, key and device', async () => {
    await nav('Audit log');
    await heading('Audit log');
    await page.locator('table.audit tbody tr').first().waitFor();
    await page.getByLabel('Event type').selectOption('release');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.waitForURL(/type=release/);
    const rows = page.locator('table.audit tbody tr');
    await rows.filter({ hasText: 'force-release' }).first().waitFor();
    await page.waitForFunction(() => document.querySelectorAll('table.audit tbody tr').length === 2).catch(() => undefined);
    assert.equal(await rows.count(), 2);
    assert.deepEqual(new Set(await rows.locator('.badge-type').allInnerTexts()), new Set(['release']));
    await page.getByLabel('Event type').selectOption('denied');
    await page.getByLabel('License', { exact: true }).selectOption(s.licenseId);
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.waitForURL(/type=denied/);
    await rows.filter({ hasText: 'NO_SEATS_AVAILABLE' }).waitFor();
    await page.waitForFunction(() => document.querySelectorAll('table.audit tbody tr').length === 1).catch(() => undefined);
    assert.equal(await rows.count(), 1);
    // A device link narrows to that device.
    await page.getByRole('button', { name: 'Clear' }).click();
    await page.getByLabel('Event type').selectOption('checkout');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.waitForURL(/type=checkout/);
    // (the checkout row of that key: until the filtered page renders, the rows of the cleared filter are still shown)
    const zombieRow = rows
      .filter({ hasText: s.key2 })
      .filter({ has: page.locator('.badge-type', { hasText: /^checkout$/ }) })
      .first();
    await zombieRow.waitFor();
    await zombieRow.locator('td[data-label="Device"] a').click();
    await page.waitForURL(/deviceId=dev_/);
    // (the URL changes before the filtered page renders: wait for the list to narrow, a slower store takes longer)
    await page.waitForFunction(() => document.querySelectorAll('table.audit tbody tr').length === 1).catch(() => undefined);
    assert.equal(await rows.count(), 1);
    // A time window in the future matches nothing.
    await page.getByLabel('From (local time)').fill('2999-01-01T00:00');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.getByText('No event matches these filters.').waitFor();
    await page.getByRole('button', { name: 'Clear' }).click();
    await page.locator('table.audit tbody tr').first().waitFor();
    await shot('audit');
  });

  step('reclaim inactive licenses now: shows what it freed', async () => {
    await nav('Reclamation');
    await heading('Reclamation');
    const wait = s.zombieAt + 10_500 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    await page.getByRole('button', { name: 'Reclaim inactive licenses now' }).click();
    const report = page.locator('.report');
    await report.getByText('Freed 1 seat.').waitFor();
    const freed = report.locator('tbody tr');
    assert.equal(await freed.count(), 1);
    assert.match(await freed.innerText(), new RegExp(`${s.key2}[\\s\\S]*ws-zombie \\(zed\\)[\\s\\S]*inactive`));
    await shot('reclaim');
    // Nothing left to free the second time.
    await page.getByRole('button', { name: 'Reclaim inactive licenses now' }).click();
    await report.getByText('Nothing to free').waitFor();
  });

  step('keys: search and paging', async () => {
    const bulk = await api('POST', '/v1/admin/products', { name: 'Bulk Reports' });
    for (let i = 0; i < 25; i++)
      await api('POST', '/v1/admin/licenses', { productId: bulk.body.id, seats: 1 + i, metadata: { customer: `Customer ${i}` } });
    await nav('Licenses');
    await heading('Licenses');
    await page.getByText('27 licenses').waitFor();
    await page.getByText('Page 1 of 2').waitFor();
    assert.equal(await page.locator('table tbody tr').count(), 20);
    await shot('keys');
    await page.getByRole('button', { name: 'Next →' }).click();
    await page.getByText('Page 2 of 2').waitFor();
    assert.equal(await page.locator('table tbody tr').count(), 7);
    // The key as a customer might read it out: lower case, no dashes.
    await page.getByLabel('Search').fill(s.key.replace(/-/g, '').toLowerCase());
    await page.getByText('1 license match, of 27').waitFor();
    assert.equal(await page.locator(`table tbody tr[data-license-id="${s.licenseId}"]`).count(), 1);
    await page.getByLabel('Search').fill('customer 1');
    await page.getByText(/^\d+ licenses match/).waitFor();
    await page.getByLabel('Search').fill('');
    await page.getByLabel('Product').selectOption({ label: 'Acme CAD' });
    await page.getByText('2 licenses match, of 27').waitFor();
    // Suspend from the key page, then resume.
    await page.getByRole('link', { name: s.key }).click();
    await page.getByRole('button', { name: 'Suspend' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Suspend license' }).click();
    await page.locator('.page-title .badge', { hasText: 'Suspended' }).waitFor();
    const refused = await checkout(s.key, 'ws-erin', 'erin');
    assert.equal(refused.body.error.code, 'LICENSE_SUSPENDED');
    await page.getByRole('button', { name: 'Resume' }).click();
    await page.getByRole('status').filter({ hasText: 'License resumed.' }).waitFor();
  });

  step('audit log: token names and hostnames, filter by actor, no sideways scrolling, CSV export neutralises formulas', async () => {
    // A token whose name a spreadsheet would run as a formula, and one event by it.
    const formula = await api('POST', '/v1/admin/tokens', { name: '=HYPERLINK("x")', role: 'admin' });
    assert.equal(formula.status, 201);
    const made = await api('POST', '/v1/admin/products', { name: 'Formula Co' }, `Bearer ${formula.body.token}`);
    assert.equal(made.status, 201);
    await nav('Audit log');
    await heading('Audit log');
    const rows = page.locator('table.audit tbody tr');
    await rows.filter({ hasText: '=HYPERLINK("x") (admin token)' }).first().waitFor();
    // A device shows as its hostname and user, not its id.
    await page.locator('table.audit td[data-label="Device"]', { hasText: 'ws-zombie (zed)' }).first().waitFor();
    // Filter by actor: only that token's event.
    await page.getByLabel('Actor').selectOption(`admin:${formula.body.id}`);
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.waitForURL(/actor=admin/);
    await rows.filter({ hasText: 'product.created' }).first().waitFor();
    await page.waitForFunction(() => document.querySelectorAll('table.audit tbody tr').length === 1);
    assert.match(await rows.first().innerText(), /Formula Co|product\.created/);
    for (const width of [1280, 390]) {
      await page.setViewportSize({ width, height: width === 390 ? 844 : 800 });
      const sideways = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(sideways <= 0, `no sideways scrolling at ${width}px (${sideways}px too wide)`);
    }
    await page.setViewportSize({ width: 1280, height: 800 });
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export CSV' }).click()]);
    assert.match(download.suggestedFilename(), /^floatd-audit-.*\.csv$/);
    const csv = readFileSync(await download.path(), 'utf8').split('\r\n');
    assert.equal(csv[0], 'time_utc,event,reason,actor,actor_name,key,customer,license_id,device,device_id,lease_id,details');
    assert.equal(csv.filter(Boolean).length, 2, 'the header and the one filtered event');
    assert.ok(csv[1].startsWith(`${made.body.createdAt.slice(0, 4)}`), csv[1]);
    assert.ok(
      csv[1].includes(`,product.created,,admin:${formula.body.id},"'=HYPERLINK(""x"") (admin token)",`),
      `the formula is neutralised: ${csv[1]}`,
    );
    await page.getByRole('button', { name: 'Clear' }).click();
    await page.waitForURL((u) => !u.search.includes('actor'));
  });

  step('admin tokens page: create with a role (the secret shown once), list, revoke', async () => {
    await nav('Tokens');
    await heading('Admin tokens');
    await page.getByLabel('Token name').fill('ci-bot');
    await page.getByLabel('Role').selectOption('operator');
    await page.getByRole('button', { name: 'Create token' }).click();
    const secret = (await page.getByTestId('new-token-secret').innerText()).trim();
    assert.match(secret, /^fdt_/);
    const who = await api('GET', '/v1/admin/whoami', undefined, `Bearer ${secret}`);
    assert.deepEqual([who.status, who.body.name, who.body.role], [200, 'ci-bot', 'operator']);
    const row = page.locator(`tr[data-token-id="${who.body.id}"]`);
    await row.getByText('operator').waitFor();
    await shot('tokens-created');
    await page.getByRole('button', { name: 'I have kept it' }).click();
    assert.equal(await page.getByTestId('new-token-secret').count(), 0, 'the secret is shown once');
    await page.reload();
    await heading('Admin tokens');
    assert.ok(!(await page.content()).includes(secret), 'the list never holds a secret');
    await row.getByRole('button', { name: 'Revoke token ci-bot' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Revoke token' }).click();
    await row.locator('td[data-label="State"]', { hasText: 'revoked' }).waitFor();
    assert.equal((await api('GET', '/v1/admin/whoami', undefined, `Bearer ${secret}`)).status, 401);
  });

  step('dashboard and keys list show the customer and the expiry; a key is deleted from its page', async () => {
    const k = await api('POST', '/v1/admin/licenses', {
      productId: s.productId,
      seats: 3,
      model: 'subscription',
      expiresAt: '2031-05-06T00:00:00Z',
      metadata: { customer: 'Initech' },
    });
    assert.equal(k.status, 201);
    await nav('Dashboard');
    await heading('Dashboard');
    const dash = page.locator(`tr[data-license-id="${k.body.id}"]`);
    await dash.locator('td[data-label="Customer"]', { hasText: 'Initech' }).waitFor();
    assert.match(await dash.locator('td[data-label="Expires"]').innerText(), /2031/);
    await nav('Licenses');
    await heading('Licenses');
    await page.getByLabel('Search').fill('initech');
    const row = page.locator(`tr[data-license-id="${k.body.id}"]`);
    await row.locator('td[data-label="Customer"]', { hasText: 'Initech' }).waitFor();
    assert.match(await row.locator('td[data-label="Expires"]').innerText(), /2031/);
    // A held seat: the first delete is refused (SEATS_HELD), the dialog offers to release and delete.
    assert.equal((await checkout(k.body.key, 'ws-frank', 'frank')).status, 201);
    await row.getByRole('link', { name: k.body.key }).click();
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    const dialog = page.getByRole('dialog');
    expectHttpError(409, `/v1/admin/licenses/${k.body.id}`);
    await dialog.getByRole('button', { name: 'Delete license' }).click();
    await dialog.getByRole('alert').filter({ hasText: 'SEATS_HELD' }).waitFor();
    await shot('key-delete-seats-held');
    await dialog.getByRole('button', { name: 'Release seats and delete' }).click();
    await heading('Licenses');
    await page
      .getByRole('status')
      .filter({ hasText: `License ${k.body.key} deleted; 1 held seat released.` })
      .waitFor();
    expectHttpError(404, `/v1/admin/licenses/${k.body.id}`);
    assert.equal((await api('GET', `/v1/admin/licenses/${k.body.id}`)).status, 404);
  });

  step(
    'sharing rule, clone and VM policy, linger and overdraft set in the form; a seat with its uses under it; overdraft and clone suspects shown',
    async () => {
      await page.goto(`${base}/console/licenses/new?productId=${s.productId}`);
      await heading('New license');
      await page.getByLabel('Seats', { exact: true }).fill('1');
      await page.getByRole('radio', { name: /By attributes/ }).check();
      const attrs = page.getByRole('group', { name: 'Sharing attributes' });
      assert.equal(await attrs.getByRole('checkbox', { name: 'user name' }).isChecked(), true, 'user is the first suggestion');
      await page.getByLabel('Most uses on one seat').fill('2');
      await page.getByLabel('Clone policy').selectOption('refuse');
      await page.getByLabel('VM policy').selectOption('count-per-instance');
      await page.getByLabel('Linger (seconds)').fill('60');
      await page.getByLabel('Overdraft seats').fill('1');
      await page.getByRole('button', { name: 'Create license' }).click();
      await page
        .getByRole('status')
        .filter({ hasText: /created/ })
        .waitFor();
      const id = new URL(page.url()).pathname.split('/').pop();
      const lic = (await api('GET', `/v1/admin/licenses/${id}`)).body;
      assert.deepEqual(lic.sharing, { by: ['user'], cap: 2 });
      assert.equal(lic.clonePolicy, 'refuse');
      assert.equal(lic.vmPolicy, 'count-per-instance');
      assert.equal(lic.lingerSeconds, 60);
      assert.equal(lic.overdraftSeats, 1);
      const policy = await page.locator('dl.dl').innerText();
      assert.match(policy, /By user, at most 2 uses a seat/);
      assert.match(policy, /Clones refused/);
      assert.match(policy, /Linger\s+1 min/);
      assert.match(policy, /1 seat beyond the count/);

      // one person on two workstations: one seat, two uses under it; then a second user takes the overdraft seat
      assert.equal((await checkout(lic.key, 'ws-ana-1', 'ana')).status, 201);
      assert.equal((await checkout(lic.key, 'ws-ana-2', 'ana')).status, 200);
      const over = await checkout(lic.key, 'ws-bo-1', 'bo');
      assert.equal(over.status, 201);
      assert.equal(over.body.lease.overdraft, true);
      await page.reload();
      const seat = page.locator('tr[data-share-group="user=ana"]');
      await seat.waitFor();
      assert.equal(await page.locator(`tr[data-use-of="${await seat.getAttribute('data-lease-id')}"]`).count(), 2);
      assert.match(
        await page
          .locator(`tr[data-use-of="${await seat.getAttribute('data-lease-id')}"]`)
          .first()
          .innerText(),
        /use .*ws-ana-1.*\(ana\)/,
      );
      assert.match(await page.locator('tr[data-share-group="user=bo"]').innerText(), /overdraft/);
      await shot('license-sharing');

      // the edit form shows the rule back, and a change goes through
      await page.getByRole('link', { name: 'Edit' }).click();
      await heading(/Edit license/);
      assert.equal(await page.getByRole('radio', { name: /By attributes/ }).isChecked(), true);
      assert.equal(await page.getByLabel('Most uses on one seat').inputValue(), '2');
      await page.getByRole('radio', { name: /Per instance/ }).check();
      await page.getByRole('button', { name: 'Save changes' }).click();
      await page.getByRole('status').filter({ hasText: 'License saved' }).waitFor();
      assert.deepEqual((await api('GET', `/v1/admin/licenses/${id}`)).body.sharing, { by: ['instance'], cap: null });

      // a clone of a device under a per-device rule: refused, and the devices list says so
      const byDevice = (await api('POST', '/v1/admin/licenses', { productId: s.productId, seats: 3, clonePolicy: 'separate' })).body;
      await api(
        'POST',
        '/v1/client/checkout',
        { fingerprint: 'fp-cloned-image', instanceId: 'c-1', hostname: 'origin' },
        `License ${byDevice.key}`,
      );
      await api(
        'POST',
        '/v1/client/checkout',
        { fingerprint: 'fp-cloned-image', instanceId: 'c-2', hostname: 'copy' },
        `License ${byDevice.key}`,
      );
      await page.goto(`${base}/console/licenses/${byDevice.id}`);
      await page
        .getByRole('status')
        .filter({ hasText: /seen from several machines/ })
        .waitFor();
      assert.match(await page.locator('[data-clone-suspect]').innerText(), /clone suspect since .*origin.*copy/);
      await shot('license-clone-suspect');
      await nav('Dashboard');
      await heading('Dashboard');
      await api('DELETE', `/v1/admin/licenses/${byDevice.id}?force=true`);
      await api('DELETE', `/v1/admin/licenses/${id}?force=true`);
    },
  );

  step('groups page and access policy: a group kept in the console, a license that reserves seats for it and limits a user', async () => {
    await nav('Groups');
    await heading('Groups');
    await page.getByLabel('Group name').fill('cad-team');
    await page.getByLabel('Users').fill('ana\nbo');
    await page.getByLabel('Hosts').fill('ws-cad-1');
    await page.getByRole('button', { name: 'Save group' }).click();
    await page.getByRole('status').filter({ hasText: 'Group cad-team saved: 2 user(s), 1 host(s).' }).waitFor();
    assert.match(await page.locator('tr[data-group="cad-team"]').innerText(), /group:cad-team\s+ana, bo\s+ws-cad-1/);
    await shot('groups');

    await page.goto(`${base}/console/licenses/new?productId=${s.productId}`);
    await heading('New license');
    await page.getByLabel('Seats', { exact: true }).fill('3');
    await page.getByLabel('Deny').fill('host:kiosk');
    await page.getByLabel('Most seats at once').fill('user:cy=1');
    await page.getByLabel('Reserved seats').fill('group:cad-team=2');
    await page.getByRole('button', { name: 'Create license' }).click();
    await page
      .getByRole('status')
      .filter({ hasText: /created/ })
      .waitFor();
    const id = new URL(page.url()).pathname.split('/').pop();
    const lic = (await api('GET', `/v1/admin/licenses/${id}`)).body;
    assert.deepEqual(lic.access, {
      allow: null,
      deny: ['host:kiosk'],
      limits: [{ principal: 'user:cy', max: 1 }],
      reservations: [{ principal: 'group:cad-team', seats: 2 }],
    });
    const policy = await page.locator('dl.dl').innerText();
    assert.match(policy, /Reserved seats\s+group:cad-team: 2/);
    assert.match(policy, /Most seats at once\s+user:cy: 1/);
    // the reservation at work: cy takes the one free seat, dee is refused, ana (the group) gets one
    assert.equal((await checkout(lic.key, 'ws-cy-1', 'cy')).status, 201);
    assert.equal((await checkout(lic.key, 'ws-dee-1', 'dee')).body.error.code, 'RESERVED_FOR_OTHERS');
    assert.equal((await checkout(lic.key, 'ws-ana-9', 'ana')).status, 201);
    // a bad entry shows the server's message on the form
    await page.getByRole('link', { name: 'Edit' }).click();
    await heading(/Edit license/);
    await page.getByLabel('Allow only').fill('ana');
    expectHttpError(400, `/v1/admin/licenses/${id}`);
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByRole('alert').filter({ hasText: 'VALIDATION_FAILED' }).first().waitFor();
    await nav('Dashboard');
    await heading('Dashboard');
    await api('DELETE', `/v1/admin/licenses/${id}?force=true`);
    await api('DELETE', '/v1/admin/groups/cad-team');
  });

  step(
    'feature pools and the queue: set in the form, a bar per feature on the license, pools on its seats, waiting checkouts on the dashboard and the license, both in usage',
    async () => {
      await page.goto(`${base}/console/licenses/new?productId=${s.productId}`);
      await heading('New license');
      await page.getByLabel('Seats', { exact: true }).fill('2');
      // a name the server refuses shows at the field, and nothing is created
      await page.getByLabel('Features').fill('base=2');
      expectHttpError(422, '/v1/admin/licenses');
      await page.getByRole('button', { name: 'Create license' }).click();
      await page.getByRole('alert').filter({ hasText: 'INVALID_POLICY' }).first().waitFor();
      await page.getByLabel('Features').fill('render=1\nsim=2 instance ttl=600 deny=user:mallory limit=user:ann=1');
      await page.getByRole('button', { name: 'Create license' }).click();
      await page
        .getByRole('status')
        .filter({ hasText: /created/ })
        .waitFor();
      const id = new URL(page.url()).pathname.split('/').pop();
      const lic = (await api('GET', `/v1/admin/licenses/${id}`)).body;
      assert.deepEqual(lic.features, [
        { name: 'render', seats: 1 },
        {
          name: 'sim',
          seats: 2,
          counting: 'instance',
          leaseTtlSeconds: 600,
          access: { allow: null, deny: ['user:mallory'], limits: [{ principal: 'user:ann', max: 1 }], reservations: [] },
        },
      ]);
      const use = (fingerprint, features) =>
        api('POST', '/v1/client/checkout', { fingerprint, instanceId: 'app', features }, `License ${lic.key}`);
      assert.equal((await use('fp-feature-1', ['base', 'render'])).status, 201);
      assert.equal((await use('fp-feature-2', ['render'])).status, 409);
      await page.reload();
      await page.locator('[data-feature="render"]').waitFor();
      assert.match(await page.locator('dl.dl').innerText(), /Feature render\s+1\s*\/\s*1/);
      assert.match(await page.locator('dl.dl').innerText(), /Feature sim \(per instance\), lease TTL 10 min/);
      assert.match(await page.locator('[data-pools="base+render"]').innerText(), /base \+ render/);
      await shot('license-features');
      await nav('Dashboard');
      await heading('Dashboard');
      await page.locator(`[data-feature="${id}:render"]`).filter({ hasText: 'render 1/1' }).waitFor();
      await nav('Usage');
      await heading('Usage');
      await page.getByLabel('License').selectOption(id);
      const row = page.locator('[data-feature-usage] tr[data-feature="render"]');
      await row.waitFor();
      assert.match(await row.innerText(), /render\s+1\s+1\s+1\s+1/);

      // The queue: two checkouts wait for the base seats; the dashboard and the license say so, usage counts it.
      assert.equal((await use('fp-feature-3', ['base'])).status, 201);
      const wait = (fingerprint) =>
        api('POST', '/v1/client/checkout', { fingerprint, instanceId: 'app', wait: { timeoutSeconds: 600 } }, `License ${lic.key}`);
      assert.equal((await wait('fp-queue-1')).body.error.queue.position, 1);
      assert.equal((await wait('fp-queue-2')).body.error.queue.position, 2);
      await nav('Dashboard');
      await heading('Dashboard');
      await page.locator(`[data-waiting="${id}"]`).filter({ hasText: '2 waiting' }).waitFor();
      // (the waiters ask again, as they do every few seconds, so the real clock's claim window never drops them here)
      await wait('fp-queue-1');
      await wait('fp-queue-2');
      await page.goto(`${base}/console/licenses/${id}`);
      await page.locator('[data-waiting-count]').filter({ hasText: '2 checkouts in the queue' }).waitFor();
      await nav('Usage');
      await heading('Usage');
      await page.getByLabel('License').selectOption(id);
      await page
        .locator('[data-queue-stat]')
        .filter({ hasText: /^\s*2\s*Waited in the queue/ })
        .waitFor();
      await nav('Dashboard');
      await heading('Dashboard');
      await api('DELETE', `/v1/admin/licenses/${id}?force=true`);
    },
  );

  step('reclamation settings for many keys: a searchable table', async () => {
    await nav('Reclamation');
    await heading('Reclamation');
    await page.getByLabel('Find a license').fill('customer 7');
    await page.getByText(/^1 license match, of \d+$/).waitFor();
    assert.equal(await page.locator('section[aria-labelledby="ttl-h"] tbody tr').count(), 1);
    await page.getByLabel('Find a license').fill('');
  });

  step('a viewer sees everything but cannot act; a revoked token signs the console out', async () => {
    const viewer = await api('POST', '/v1/admin/tokens', { name: 'support desk', role: 'viewer' });
    assert.equal(viewer.status, 201);
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const p = await ctx.newPage();
    watch(p);
    try {
      await signInFresh(p, base, viewer.body.token);
      await p.locator('.who').getByText('viewer').waitFor();
      await p.locator(`tr[data-license-id="${s.licenseId}"]`).waitFor();
      assert.equal(await p.getByRole('link', { name: 'New license' }).count(), 0);
      await p.locator(`tr[data-license-id="${s.licenseId}"] a`).first().click();
      await p.locator('section', { hasText: 'Devices holding seats' }).locator('tbody tr', { hasText: 'ws-alice' }).waitFor();
      for (const name of ['Edit policy', 'Suspend']) assert.equal(await p.getByText(name, { exact: true }).count(), 0, name);
      assert.equal(await p.getByRole('button', { name: /Release the seat/ }).count(), 0);
      await p.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Reclamation' }).click();
      await p.getByText('Running a sweep needs the operator role').waitFor();
      assert.equal(await p.getByRole('button', { name: 'Reclaim inactive licenses now' }).count(), 0);
      await shot('reclaim-viewer', p);
      // Revoked while signed in: the next request gets 401 and the console signs out.
      assert.equal((await api('POST', `/v1/admin/tokens/${viewer.body.id}/revoke`, {})).status, 200);
      expectHttpError(401, '/v1/admin/');
      expectHttpError(401, '/v1/admin/');
      expectHttpError(401, '/v1/admin/');
      expectHttpError(401, '/v1/admin/');
      await p.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Licenses' }).click();
      await p.getByRole('heading', { name: 'Sign in to the console' }).waitFor();
      await p.getByText('no longer accepts your admin token').waitFor();
      assert.equal(await p.evaluate(() => sessionStorage.length), 0);
    } finally {
      await ctx.close();
    }
  });

  step(
    'customers: two created in the form, licenses assigned in the license form, found by search, a customer page with its figures, edited; deletion refused plainly; a token for a customer',
    async () => {
      await nav('Customers');
      await heading('Customers');
      await page.getByRole('button', { name: 'New customer' }).click();
      // The server's validation message shows beside the field it names.
      await page.getByLabel('Customer name').fill('Acme Engineering');
      await page.getByLabel('Contact email').fill('not an email');
      expectHttpError(400, '/v1/admin/customers');
      await page.getByRole('button', { name: 'Create customer' }).click();
      await page.locator('.field-invalid', { hasText: 'Contact email' }).getByText('VALIDATION_FAILED').waitFor();
      await page.getByLabel('Contact email').fill('it@acme.example');
      await page.getByRole('button', { name: 'Create customer' }).click();
      await heading('Acme Engineering');
      await nav('Customers');
      await heading('Customers');
      await page.getByRole('button', { name: 'New customer' }).click();
      await page.getByLabel('Customer name').fill('Initech');
      await page.getByRole('button', { name: 'Create customer' }).click();
      await heading('Initech');
      const customers = (await api('GET', '/v1/admin/customers')).body.items;
      const acme = customers.find((c) => c.name === 'Acme Engineering');
      const initech = customers.find((c) => c.name === 'Initech');
      assert.ok(acme && initech);
      assert.deepEqual(acme.contact, { email: 'it@acme.example' });
      s.acmeId = acme.id;
      s.initechId = initech.id;

      // The license form moves s.licenseId to Acme and s.key2Id to Initech.
      for (const [licenseId, customer] of [
        [s.licenseId, acme],
        [s.key2Id, initech],
      ]) {
        await visit(page, `/licenses/${licenseId}/edit`);
        await heading(/^Edit license/);
        await page.getByLabel('Customer').selectOption(customer.id);
        await page.getByRole('button', { name: /^Save/ }).click();
        await page.getByTestId('license-customer').filter({ hasText: customer.name }).waitFor();
        assert.equal((await api('GET', `/v1/admin/licenses/${licenseId}`)).body.customerId, customer.id);
      }
      // A new license from Acme's page: the form has Acme chosen; a subscription ending in 20 days is Acme's next expiry.
      await visit(page, `/customers/${acme.id}`);
      await heading('Acme Engineering');
      await page.getByRole('link', { name: 'New license' }).click();
      await heading('New license');
      assert.equal(await page.getByLabel('Customer').inputValue(), acme.id);
      await page.getByLabel('Seats', { exact: true }).fill('3');
      await page.getByRole('radio', { name: /^Subscription/ }).check();
      const end = new Date(Date.now() + 20 * 86_400_000);
      const pad = (n) => String(n).padStart(2, '0');
      const local = `${end.getFullYear()}-${pad(end.getMonth() + 1)}-${pad(end.getDate())}T12:00`;
      await page.getByLabel('Subscription ends at (your local time)').fill(local);
      await page.getByRole('button', { name: 'Create license' }).click();
      await page.getByRole('status').filter({ hasText: 'created' }).waitFor();
      await page.getByTestId('license-customer').filter({ hasText: 'Acme Engineering' }).waitFor();
      s.acmeSubId = new URL(page.url()).pathname.split('/').pop();
      s.acmeSubKey = (await page.locator('.key-title').innerText()).trim();
      assert.equal((await api('GET', `/v1/admin/licenses/${s.acmeSubId}`)).body.customerId, acme.id);
      assert.equal((await checkout(s.acmeSubKey, 'ws-acme-cad', 'wile')).status, 201);

      // The licenses list names each license's customer (a link to its page).
      await nav('Licenses');
      await heading('Licenses');
      await page
        .locator(`tr[data-license-id="${s.licenseId}"] td[data-label="Customer"]`)
        .getByRole('link', { name: 'Acme Engineering' })
        .waitFor();
      await page.getByLabel('Search').fill('initech');
      await page.locator(`tr[data-license-id="${s.key2Id}"]`).waitFor();
      await page.getByLabel('Search').fill('');

      // Search: by a license key (exact), by a device's host name (part of it, any case), by a name (part of it, any case).
      await nav('Customers');
      await heading('Customers');
      const search = async (text, expected) => {
        await page.getByRole('searchbox', { name: 'Search' }).fill(text);
        await page.getByRole('button', { name: 'Search', exact: true }).click();
        await page
          .getByRole('status')
          .filter({ hasText: `match “${text}”` })
          .waitFor();
        const ids = await page.locator('tr[data-customer-id]').evaluateAll((rows) => rows.map((r) => r.dataset.customerId));
        assert.deepEqual(ids, expected, `search ${text}`);
      };
      await search(s.key, [acme.id]);
      await search('ZOMBIE', [initech.id]);
      await search('acme eng', [acme.id]);
      const acmeRow = page.locator(`tr[data-customer-id="${acme.id}"]`);
      assert.equal((await acmeRow.locator('td[data-label="Licenses"]').innerText()).trim(), '2');
      assert.equal((await acmeRow.locator('td[data-label="Seats in use"]').innerText()).trim(), '2 / 5');
      await shot('customers-search');

      // Acme's page: its licenses with seats and expiry, its totals, next expiry and 30 days, as the API says.
      await page.getByRole('link', { name: 'Acme Engineering' }).click();
      await heading('Acme Engineering');
      const detail = (await api('GET', `/v1/admin/customers/${acme.id}`)).body;
      assert.deepEqual(detail.licenses.map((l) => l.id).sort(), [s.licenseId, s.acmeSubId].sort());
      await page.locator(`tr[data-license-id="${s.acmeSubId}"]`).waitFor();
      const rows = page.locator('tr[data-license-id]');
      assert.deepEqual((await rows.evaluateAll((r) => r.map((x) => x.dataset.licenseId))).sort(), [s.licenseId, s.acmeSubId].sort());
      const sub = page.locator(`tr[data-license-id="${s.acmeSubId}"]`);
      assert.match(await sub.locator('td[data-label="Seats used / total"]').innerText(), /1\s*\/\s*3/);
      assert.match(await sub.locator('td[data-label="Expires"]').innerText(), new RegExp(String(end.getFullYear())));
      assert.match(await page.getByTestId('customer-seats').innerText(), new RegExp(`${detail.seatsUsed} / ${detail.seats}`));
      assert.equal(detail.seats, 5);
      assert.equal(detail.nextExpiry.licenseId, s.acmeSubId);
      await page.getByTestId('customer-next-expiry').getByRole('link', { name: s.acmeSubKey }).waitFor();
      assert.match(await page.getByTestId('customer-usage').innerText(), new RegExp(`${detail.usage.checkouts} checkouts?`));
      assert.ok(detail.usage.checkouts >= 1);
      assert.match(await page.getByTestId('customer-peak').innerText(), new RegExp(String(detail.usage.peakSeats)));
      assert.match(await page.getByTestId('customer-contact').innerText(), /it@acme\.example/);
      await shot('customer-page');

      // Edit: a contact phone.
      await page.getByRole('button', { name: 'Edit', exact: true }).click();
      await page.getByLabel('Contact phone').fill('+44 20 7946 0000');
      await page.getByRole('button', { name: 'Save', exact: true }).click();
      await page.getByTestId('customer-contact').getByText('+44 20 7946 0000').waitFor();
      assert.equal((await api('GET', `/v1/admin/customers/${acme.id}`)).body.customer.contact.phone, '+44 20 7946 0000');

      // Deleting a customer that owns licenses: refused, said plainly in the dialog, nothing changes.
      await page.getByRole('button', { name: 'Delete', exact: true }).click();
      const dialog = page.getByRole('dialog');
      expectHttpError(409, `/v1/admin/customers/${acme.id}`);
      await dialog.getByRole('button', { name: 'Delete customer' }).click();
      const refusal = dialog.getByRole('alert').filter({ hasText: 'CUSTOMER_HAS_LICENSES' });
      await refusal.waitFor();
      assert.match(await refusal.innerText(), /Acme Engineering still owns 2 licenses\. Move them to another customer/);
      await shot('customer-delete-refused');
      await dialog.getByRole('button', { name: 'Cancel' }).click();
      assert.equal((await api('GET', `/v1/admin/customers/${acme.id}`)).status, 200);
      // The built-in customer offers no Delete (the server would answer DEFAULT_CUSTOMER).
      await visit(page, '/customers/cus_default0000000000000');
      await heading('Unassigned');
      await page.getByRole('button', { name: 'Edit', exact: true }).waitFor();
      assert.equal(await page.getByRole('button', { name: 'Delete', exact: true }).count(), 0);

      // The dashboard names the customer.
      await nav('Dashboard');
      await heading('Dashboard');
      await page.locator(`tr[data-license-id="${s.licenseId}"] td[data-label="Customer"]`, { hasText: 'Acme Engineering' }).waitFor();

      // A token for Acme's own administrator, made on the Tokens page; the list says whose it is.
      await nav('Tokens');
      await heading('Admin tokens');
      await page.getByLabel('Token name').fill('acme it');
      await page.getByLabel('Role').selectOption('operator');
      await page.getByLabel('For').selectOption({ label: 'Acme Engineering' });
      await page.getByRole('button', { name: 'Create token' }).click();
      s.acmeToken = (await page.getByTestId('new-token-secret').innerText()).trim();
      assert.match(s.acmeToken, /^fdt_/);
      const tokenRow = page.locator('tr[data-token-id]', { hasText: 'acme it' });
      await tokenRow.locator('td[data-label="Customer"]').getByRole('link', { name: 'Acme Engineering' }).waitFor();
      await shot('tokens-customer');
    },
  );

  step(
    "a customer's own token: only that customer's licenses, no vendor page or action; release and reclaim work; another customer's license is not found",
    async () => {
      const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      const p = await ctx.newPage();
      watch(p);
      const mainNav = p.getByRole('navigation', { name: 'Main' });
      const h1 = (name) => p.getByRole('heading', { level: 1, name }).waitFor();
      const acmeIds = [s.licenseId, s.acmeSubId].sort();
      const listed = () => p.locator('tr[data-license-id]').evaluateAll((rows) => rows.map((r) => r.dataset.licenseId).sort());
      try {
        await signInFresh(p, base, s.acmeToken);
        assert.match(await p.getByTestId('customer-scope').innerText(), /Customer Acme Engineering/);
        // The navigation: what the token reaches, nothing of the vendor's.
        const navLinks = (await mainNav.getByRole('link').allInnerTexts()).map((t) => t.trim());
        assert.deepEqual(navLinks, ['Dashboard', 'Licenses', 'Customer', 'Reclamation', 'Usage', 'Audit log']);
        // The dashboard: Acme's licenses, and no action the server would refuse.
        await p.locator(`tr[data-license-id="${s.acmeSubId}"]`).waitFor();
        assert.deepEqual(await listed(), acmeIds, "the dashboard lists Acme's licenses only");
        assert.equal(await p.getByRole('link', { name: 'New license' }).count(), 0);
        await shot('customer-token-dashboard', p);
        // The licenses list: the same two, no customer column, no New license.
        await mainNav.getByRole('link', { name: 'Licenses' }).click();
        await h1('Licenses');
        await p.getByText('2 licenses', { exact: true }).waitFor();
        assert.deepEqual(await listed(), acmeIds, "the licenses list shows Acme's licenses only");
        assert.equal(await p.getByRole('columnheader', { name: 'Customer' }).count(), 0);
        assert.equal(await p.getByRole('link', { name: 'New license' }).count(), 0);
        // Its own customer page: figures, no Edit, Delete or New license.
        await mainNav.getByRole('link', { name: 'Customer' }).click();
        await h1('Acme Engineering');
        await p.locator(`tr[data-license-id="${s.acmeSubId}"]`).waitFor();
        assert.deepEqual(await listed(), acmeIds);
        for (const name of ['Edit', 'Delete']) assert.equal(await p.getByRole('button', { name, exact: true }).count(), 0, name);
        assert.equal(await p.getByRole('link', { name: 'New license' }).count(), 0);
        await shot('customer-token-customer', p);
        // A license page: its product by name, no Edit policy, Suspend or Delete; the operator releases a seat.
        assert.equal((await checkout(s.key, 'ws-acme-ann', 'ann')).status, 201);
        await p.locator(`tr[data-license-id="${s.licenseId}"] a`).first().click();
        await p.getByTestId('license-customer').filter({ hasText: 'Acme Engineering' }).waitFor();
        await p.locator('.crumbs', { hasText: 'Acme CAD' }).waitFor();
        for (const name of ['Edit policy', 'Suspend', 'Delete'])
          assert.equal(await p.getByRole('button', { name, exact: true }).count(), 0, name);
        assert.equal(await p.getByRole('link', { name: 'Edit policy' }).count(), 0);
        await p.getByRole('button', { name: 'Release the seat held by ws-acme-ann' }).click();
        await p.getByRole('dialog').getByRole('button', { name: 'Release seat' }).click();
        await p.getByRole('status').filter({ hasText: 'Seat released from ws-acme-ann' }).waitFor();
        await shot('customer-token-license', p);
        // Usage and the audit log of its license.
        await p.getByRole('link', { name: 'Usage over time' }).click();
        await h1('Usage');
        await p.getByTestId('recommendation').waitFor();
        await mainNav.getByRole('link', { name: 'Audit log' }).click();
        await h1('Audit log');
        await p.locator('tbody tr').first().waitFor();
        assert.equal(await p.getByText(s.key2).count(), 0, "no event of Initech's license");
        // Reclamation: a sweep of its own licenses.
        await mainNav.getByRole('link', { name: 'Reclamation' }).click();
        await h1('Reclamation');
        await p.getByRole('button', { name: 'Reclaim inactive licenses now' }).click();
        await p
          .locator('.report')
          .getByText(/Nothing to free|Freed/)
          .waitFor();
        // A vendor page by its address: said so, and no request sent (no 403 in the browser's console).
        await p.goto(`${base}/console/products`);
        await h1("Not available with a customer's token");
        for (const path of ['/tokens', '/webhooks', '/groups', '/license-file', `/licenses/${s.licenseId}/edit`, '/licenses/new']) {
          await visit(p, path);
          await p.getByText(`${path} is a page of the vendor's`).waitFor();
        }
        // Another customer's license and customer page, by their address: not found, as an id that exists nowhere.
        expectHttpError(404, `/v1/admin/licenses/${s.key2Id}`);
        await p.goto(`${base}/console/licenses/${s.key2Id}`);
        await h1('License not found');
        expectHttpError(404, `/v1/admin/customers/${s.initechId}`);
        await p.goto(`${base}/console/customers/${s.initechId}`);
        await h1('Customer not found');
        // Phone width: the customer's line in the header shows, and nothing scrolls sideways.
        await p.setViewportSize({ width: 390, height: 844 });
        for (const [name, path, title] of [
          ['dashboard', '/', 'Dashboard'],
          ['customer', `/customers/${s.acmeId}`, 'Acme Engineering'],
          ['license', `/licenses/${s.licenseId}`, /^License /],
        ]) {
          await visit(p, path);
          await h1(title);
          await p.locator('.loading').first().waitFor({ state: 'detached' });
          await p.getByTestId('customer-scope').filter({ hasText: 'Acme Engineering' }).waitFor();
          const sideways = await p.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
          assert.ok(sideways <= 0, `customer token, ${name} at phone size: ${sideways}px of sideways scrolling`);
          await p.screenshot({ path: join(SHOTS, `page-customer-token-${name}-phone.png`) });
        }
        assert.deepEqual(problems.splice(0), [], 'no browser console errors for the customer token');
      } finally {
        await ctx.close();
      }
    },
  );

  step(
    'webhooks: an endpoint added in the form (its secret once), pinged, its delivery log shows the delivery; disabled and deleted',
    async () => {
      const { createServer } = await import('node:http');
      const got = [];
      const rx = createServer((req, res) => {
        let b = '';
        req.on('data', (c) => (b += c));
        req.on('end', () => {
          got.push({ id: req.headers['webhook-id'], body: b });
          res.writeHead(204).end();
        });
      });
      await new Promise((r) => rx.listen(0, '127.0.0.1', r));
      try {
        await nav('Webhooks');
        await heading('Webhooks');
        await page.getByLabel('Endpoint URL').fill(`http://127.0.0.1:${rx.address().port}/hooks`);
        await page.getByLabel('Events').fill('ping seats.full');
        await page.getByRole('button', { name: 'Add endpoint' }).click();
        const secret = (await page.getByTestId('new-webhook-secret').innerText()).trim();
        assert.match(secret, /^whsec_/);
        const row = page.locator('tr[data-webhook-id]');
        await row.waitFor();
        await row.getByRole('button', { name: 'Ping' }).click();
        for (let i = 0; i < 100 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
        assert.equal(got.length, 1, 'the receiver got the ping');
        assert.equal(JSON.parse(got[0].body).type, 'ping');
        await row.getByRole('button', { name: 'Deliveries' }).click();
        const dlv = page.locator('tr[data-delivery-id]');
        await dlv.first().waitFor();
        for (let i = 0; i < 50 && !(await dlv.first().innerText()).includes('delivered'); i++) {
          await page.getByRole('button', { name: 'Refresh' }).click();
          await new Promise((r) => setTimeout(r, 100));
        }
        assert.match(await dlv.first().innerText(), /ping[\s\S]*delivered[\s\S]*204/);
        await shot('webhooks');
        await row.getByRole('button', { name: 'Disable' }).click();
        await row.getByText('disabled').waitFor();
        await row.getByRole('button', { name: 'Delete' }).click();
        await page.getByRole('dialog').getByRole('button', { name: 'Delete endpoint' }).click();
        await row.waitFor({ state: 'detached' });
      } finally {
        rx.closeAllConnections();
        await new Promise((r) => rx.close(r));
      }
    },
  );

  step('every page at desktop and phone size: screenshots, no sideways scrolling', async () => {
    // Fourteen pages at two sizes in a row: on a loaded CI machine one page's first render can pass 8 s.
    page.setDefaultTimeout(20_000);
    // The licenses pages were first at /console/keys: an old link or bookmark lands on the new address.
    await page.goto(`${base}/console/keys/${s.licenseId}/edit?x=1`);
    await page.waitForURL(`${base}/console/licenses/${s.licenseId}/edit?x=1`);
    await heading(/^Edit license/);
    const pages = [
      ['dashboard', '/', 'Dashboard'],
      ['licenses', '/licenses', 'Licenses'],
      ['license', `/licenses/${s.licenseId}`, /^License /],
      ['license-new', '/licenses/new', 'New license'],
      ['license-edit', `/licenses/${s.licenseId}/edit`, /^Edit license/],
      ['products', '/products', 'Products'],
      ['reclamation', '/reclamation', 'Reclamation'],
      ['usage', '/usage', 'Usage'],
      ['audit', '/audit', 'Audit log'],
      ['tokens', '/tokens', 'Admin tokens'],
      ['customers', '/customers', 'Customers'],
      ['customer', `/customers/${s.acmeId}`, 'Acme Engineering'],
      ['webhooks', '/webhooks', 'Webhooks'],
      ['license-file-hosted', '/license-file', 'License file'],
    ];
    for (const [size, viewport] of [
      ['desktop', { width: 1280, height: 800 }],
      ['phone', { width: 390, height: 844 }],
    ]) {
      await page.setViewportSize(viewport);
      for (const [name, path, title] of pages) {
        await visit(page, path);
        await page.getByRole('heading', { level: 1, name: title }).first().waitFor();
        await page
          .locator('.loading')
          .first()
          .waitFor({ state: 'detached' })
          .catch(() => {});
        const sideways = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
        assert.ok(sideways <= 0, `${name} at ${size}: ${sideways}px of sideways scrolling`);
        // Phone: the first screen (what a person sees without scrolling); desktop: the whole page.
        await page.screenshot({ path: join(SHOTS, `page-${name}-${size}.png`), fullPage: size === 'desktop' });
      }
    }
    await page.setViewportSize({ width: 1280, height: 800 });
    page.setDefaultTimeout(8000);
  });

  step('on-premise server: the license file page loads a file; no catalogue action the server refuses is offered', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'floatd-console-onprem-'));
    const cli = (args, env = {}) => {
      const r = spawnSync(process.execPath, [join(ROOT, 'packages/server/dist/cli.js'), ...args], {
        encoding: 'utf8',
        env: { ...process.env, ...env },
        timeout: 30_000,
      });
      assert.equal(r.status, 0, `floatd ${args.join(' ')}: ${r.stderr}`);
      return r;
    };
    let onprem;
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      cli(['entitlements', 'keygen', '--out', join(dir, 'vendor')]);
      onprem = await startFloatdProcess({
        dataDir: join(dir, 'data'),
        args: ['--mode', 'on-prem', '--vendor-public-key', join(dir, 'vendor.pub')],
        env: { FLOATD_RATE_LIMIT: process.env.FLOATD_RATE_LIMIT },
      });
      const url = onprem.url;
      const token = onprem.adminToken;
      const env = { FLOATD_SERVER: url, FLOATD_TOKEN: token };
      cli(['entitlements', 'request', '--out', join(dir, 'request.json')], env);
      writeFileSync(
        join(dir, 'spec.json'),
        JSON.stringify({
          customer: { name: 'Initech Plant', id: 'cust-42' },
          products: [{ name: 'Acme CAD' }],
          licenses: [{ product: 'Acme CAD', seats: 20 }],
        }),
      );
      cli([
        'entitlements',
        'issue',
        '--spec',
        join(dir, 'spec.json'),
        '--private-key',
        join(dir, 'vendor.key'),
        '--serial',
        '1',
        '--request',
        join(dir, 'request.json'),
        '--out',
        join(dir, 'plant.license.json'),
      ]);

      const p = await ctx.newPage();
      watch(p);
      await signInFresh(p, url, token);
      await p.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'License file' }).click();
      await p.getByRole('heading', { level: 1, name: 'License file' }).waitFor();
      await p.getByText('No license file is loaded').waitFor();
      await p.getByLabel('License file (JSON)').setInputFiles(join(dir, 'plant.license.json'));
      await p.getByRole('status').filter({ hasText: 'License file serial 1 loaded.' }).waitFor();
      const dl = p.locator('section[aria-labelledby="file-h"] .dl');
      await dl.getByText('Initech Plant').waitFor();
      assert.match(await dl.innerText(), /Serial\s+1/);
      assert.match(await dl.innerText(), /Bound to server\s+fsv1-\S+\s+this server/);
      const key = JSON.parse(readFileSync(join(dir, 'spec.json'), 'utf8')).licenses[0].key;
      const fileRow = p.locator('section[aria-labelledby="file-h"] tbody tr');
      assert.equal(await fileRow.count(), 1);
      assert.match(await fileRow.innerText(), new RegExp(`${key}[\\s\\S]*20`));
      for (const [size, viewport] of [
        ['desktop', { width: 1280, height: 800 }],
        ['phone', { width: 390, height: 844 }],
      ]) {
        await p.setViewportSize(viewport);
        const sideways = await p.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
        assert.ok(sideways <= 0, `license file page at ${size}: ${sideways}px of sideways scrolling`);
        await p.screenshot({ path: join(SHOTS, `page-license-file-onprem-${size}.png`), fullPage: size === 'desktop' });
      }
      await p.setViewportSize({ width: 1280, height: 800 });
      // The catalogue is the file's: no New key, no Edit policy, no Delete, no product form.
      await p.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Licenses' }).click();
      await p.getByRole('heading', { level: 1, name: 'Licenses' }).waitFor();
      await p.getByRole('link', { name: key }).waitFor();
      assert.equal(await p.getByRole('link', { name: 'New license' }).count(), 0);
      await p.screenshot({ path: join(SHOTS, 'page-keys-onprem-desktop.png'), fullPage: true });
      await p.getByRole('link', { name: key }).click();
      await p.getByRole('button', { name: 'Suspend' }).waitFor(); // the local admin may still suspend
      for (const name of ['Edit policy', 'Delete']) assert.equal(await p.getByText(name, { exact: true }).count(), 0, name);
      await p.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Products' }).click();
      await p.getByRole('heading', { level: 1, name: 'Products' }).waitFor();
      await p.getByText('Acme CAD').first().waitFor();
      assert.equal(await p.getByLabel('New product name').count(), 0);
      await p.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Reclamation' }).click();
      await p.getByRole('heading', { level: 1, name: 'Reclamation' }).waitFor();
      assert.equal(await p.getByRole('button', { name: /^Change the lease TTL/ }).count(), 0);
    } finally {
      await ctx.close();
      await onprem?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  step('sign out forgets the token', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await heading('Sign in to the console');
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    for (const [size, viewport] of [
      ['desktop', { width: 1280, height: 800 }],
      ['phone', { width: 390, height: 844 }],
    ]) {
      await page.setViewportSize(viewport);
      await page.screenshot({ path: join(SHOTS, `page-signin-${size}.png`) });
    }
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.reload();
    await heading('Sign in to the console');
    // Deep links are served by the index.html fallback and land on sign-in too.
    await page.goto(`${base}/console/keys/${s.licenseId}`);
    await heading('Sign in to the console');
  });
}
