// The admin page in headless Chromium against a real server, as a user meets it: sign in with the keyboard, create a
// table, write three versions of a row, drag the time slider back and see the old value, compare versions, diff the
// table between two points, watch changes made by another client arrive live, open the admin views, and read it all
// at 390 px in dark mode. A screenshot of each screen is kept in the test's fixture
// dir (.tap/fixtures/…, not committed). Without Chromium it fails in CI and says why locally.

import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import t, { type Test } from 'tap';
import { chromiumMissing, launchChromium } from '../../bench/chromium.js';
import { adminPassword, makeTempDir, startServer, type TestServer } from '../helpers/server.js';

const missing = chromiumMissing();
const actionTimeoutMs = 20_000;

/** Screenshots, numbered in the order the screens were met. */
function camera(t: Test, page: Page) {
  // Kept after the run (tap removes a test's dir otherwise); it must be said before the dir is made.
  t.saveFixture = true;
  const dir = t.testdir();
  let n = 0;
  return {
    dir,
    async shoot(name: string) {
      await page.screenshot({ path: path.join(dir, `${String(++n).padStart(2, '0')}-${name}.png`), fullPage: true });
    },
  };
}

/** Console errors (a CSP violation, a failed load, an exception) the page met; none are expected. */
function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(`uncaught: ${error.message}`));
  return errors;
}

/** Puts a document through the page's row writer; answers the seq the page reports once the rows show it. */
async function writeRow(page: Page, key: string, doc: { name: string; city: string }): Promise<number> {
  await page.fill('#write-row [name=key]', key);
  await page.fill('#write-row [name=doc]', JSON.stringify(doc));
  await page.click('#write-row button[type=submit]');
  await page.locator('#rows', { hasText: `"city":"${doc.city}"` }).waitFor();
  const text = (await page.locator('#write-row + [role=status]').textContent()) ?? '';
  return Number(/at seq (\d+)/.exec(text)![1]);
}

/** Drags the slider's thumb to about `seq`, then steps with the arrow keys to exactly it. */
async function dragSliderTo(page: Page, seq: number): Promise<void> {
  const slider = page.locator('#as-of');
  const min = Number(await slider.getAttribute('min'));
  const max = Number(await slider.getAttribute('max'));
  const box = (await slider.boundingBox())!;
  const value = async () => Number(await slider.inputValue());
  const x = (v: number) => box.x + 8 + ((box.width - 16) * (v - min)) / Math.max(1, max - min);
  await page.mouse.move(x(await value()), box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(x(seq), box.y + box.height / 2, { steps: 8 });
  await page.mouse.up();
  for (let presses = 0; presses < 100 && (await value()) !== seq; presses++) {
    await slider.press((await value()) > seq ? 'ArrowLeft' : 'ArrowRight');
  }
}

t.test('the admin page in headless Chromium', { skip: missing !== null && !process.env['CI'] ? missing! : false }, async (t) => {
  if (missing !== null) {
    t.fail(`${missing}: CI installs it in .ci/run, so the page is tested there`);
    return;
  }
  const server: TestServer = await startServer({ args: ['--slow-query-threshold-ms', '0'] });
  t.teardown(() => server.stop());
  const context = await launchChromium({ userDataDir: makeTempDir('driftdb-chromium-'), viewport: { width: 1280, height: 800 } });
  t.teardown(() => context.close());
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(actionTimeoutMs);
  const errors = watchErrors(page);
  const shots = camera(t, page);

  await t.test('sign in with the keyboard; the token stays in memory', async (t) => {
    await page.goto(`${server.url}/admin/`);
    await page.waitForSelector('html[data-ready]');
    await shots.shoot('sign-in');
    await page.focus('#sign-in [name=username]');
    await page.keyboard.type('admin');
    await page.keyboard.press('Tab');
    await page.keyboard.type(adminPassword);
    await page.keyboard.press('Enter');
    await page.waitForSelector('h1:text("Tables")');
    t.equal(await page.isVisible('#sign-in'), false, 'the form is gone');
    t.equal(await page.textContent('#session-user'), 'admin');
    // Expressions as text: they run in the page, and this program is compiled without the DOM's types.
    const storage = await page.evaluate('[localStorage.length, sessionStorage.length, document.cookie]');
    t.same(storage, [0, 0, ''], 'nothing in web storage or cookies');
    t.same(await context.cookies(), [], 'the browser holds no cookie');
    await shots.shoot('tables');
  });

  let seqs: number[] = [];
  await t.test('create a table and write three versions of a row', async (t) => {
    await page.fill('#new-table [name=name]', 'people');
    await page.fill('#new-table [name=indexes]', 'city');
    await page.click('#new-table button[type=submit]');
    await page.waitForSelector('h1:text("Table people")');
    for (const city of ['London', 'Paris', 'Rome']) seqs.push(await writeRow(page, 'ada', { name: 'Ada', city }));
    t.ok(seqs[0]! < seqs[1]! && seqs[1]! < seqs[2]!, `three commits: ${seqs.join(', ')}`);
    t.match(await page.textContent('#rows'), /"city":"Rome"/, 'the rows show the newest version');
    await shots.shoot('table-now');
  });

  await t.test('drag the slider back and see the old value', async (t) => {
    await dragSliderTo(page, seqs[0]!);
    await page.locator('#as-of-note', { hasText: new RegExp(`^seq ${seqs[0]} `) }).waitFor();
    await page.locator('#rows', { hasText: '"city":"London"' }).waitFor();
    t.notMatch(await page.textContent('#rows'), /Rome/, 'the newer version is not shown');
    await shots.shoot('table-as-of-first-version');
    await page.locator('#as-of').press('End');
    await page.locator('#rows', { hasText: '"city":"Rome"' }).waitFor();
    t.pass('End goes back to now');
  });

  await t.test("a key's history compares two versions side by side", async (t) => {
    await page.click('#rows a:text-is("ada")');
    await page.waitForSelector('h1:text("History of ada")');
    // The heading shows before the versions arrive.
    await page.locator('table tbody tr').nth(2).waitFor({ timeout: 5_000 }).catch(() => {});
    t.equal(await page.locator('table tbody tr').count(), 3, 'three versions');
    const changed = page.locator('.diff-row.chg');
    t.match(await changed.locator('pre.left').textContent(), /Paris/, 'by default the last two: Paris on the left');
    t.match(await changed.locator('pre.right').textContent(), /Rome/, 'and Rome on the right');
    await page.selectOption('#diff-left', '0');
    await page.locator('.diff-row.chg pre.left', { hasText: 'London' }).waitFor();
    await shots.shoot('history');
  });

  await t.test('a table diff between two points shows the row changed, side by side', async (t) => {
    await page.click('a:text("people")');
    await page.click('a:text("Diff between two points")');
    await page.waitForSelector('h1:text("Diff of people")');
    await page.fill('#from', String(seqs[0]));
    await page.fill('#to', String(seqs[2]));
    await page.click('form button:text("Compare")');
    const item = page.locator('ol.changes > li', { hasText: 'ada' });
    await page.locator('#diff-results .diff-row.chg pre.left', { hasText: 'London' }).waitFor();
    t.match(await item.locator('.badge').textContent(), /changed/);
    t.match(await item.locator('.diff-row.chg pre.right').textContent(), /Rome/, 'London at the first point, Rome at the last');
    await shots.shoot('table-diff');
  });

  await t.test('a change made elsewhere arrives live on the change feed', async (t) => {
    await page.click('nav a:text("Changes")');
    await page.locator('#feed-state', { hasText: 'Live' }).waitFor();
    // Another client writes: the page learns of it only through the stream.
    t.equal((await server.request('PUT', '/v1/tables/people/rows/bob', { body: { name: 'Bob', city: 'Oslo' } })).status, 201);
    await page.locator('#feed li.commit', { hasText: 'bob' }).waitFor();
    t.equal((await server.request('PATCH', '/v1/tables/people/rows/ada', { body: { city: 'Turin' } })).status, 200);
    await page.locator('#feed li.commit', { hasText: 'Turin' }).waitFor();
    const commits = await page.locator('#feed li.commit').allTextContents();
    t.equal(commits.length, 2, 'only the commits made while watching');
    t.match(commits[0], /patch.*Turin/, 'the newest first');
    t.match(commits[1], /put.*bob.*Oslo/);
    await shots.shoot('changes-live');
  });

  await t.test('the admin views: audit log and its verification, slow queries, metrics', async (t) => {
    await page.click('nav a:text("Audit")');
    await page.click('button:text("Verify the chain now")');
    await page.waitForSelector('#audit-verify .badge.ok:text("valid")');
    t.ok(await page.locator('table tbody tr').filter({ hasText: 'table_created' }).count() >= 1, 'the table creation is in the log');
    await shots.shoot('audit');
    await page.click('nav a:text("Slow queries")');
    await page.waitForSelector('h1:text("Slow queries")');
    // The heading shows before the list arrives.
    await page.waitForSelector('table tbody tr', { timeout: 5_000 }).catch(() => {});
    t.ok(await page.locator('table tbody tr').count() >= 1, 'with a threshold of 0 ms every data request is listed');
    await shots.shoot('slow-queries');
    await page.click('nav a:text("Metrics")');
    await page.waitForSelector('#metrics dl');
    t.match(await page.textContent('#metrics'), /Commits/);
    await shots.shoot('metrics');
  });

  await t.test('at 390 px in dark mode nothing overflows the page, and the colours follow the system', async (t) => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.emulateMedia({ colorScheme: 'dark' });
    for (const [hash, heading, name] of [
      ['#/tables', 'Tables', 'narrow-dark-tables'],
      ['#/tables/people', 'Table people', 'narrow-dark-table'],
      ['#/tables/people/history/ada', 'History of ada', 'narrow-dark-history'],
      ['#/admin/audit', 'Audit log', 'narrow-dark-audit'],
    ] as const) {
      await page.evaluate(`location.hash = ${JSON.stringify(hash)}`);
      await page.waitForSelector(`h1:text-is("${heading}")`);
      const width = Number(await page.evaluate('document.documentElement.scrollWidth'));
      t.ok(width <= 390, `${hash}: the page is ${width} px wide`);
      await shots.shoot(name);
    }
    const background = String(await page.evaluate('getComputedStyle(document.body).backgroundColor'));
    const [r, g, b] = (background.match(/\d+/g) ?? []).map(Number) as [number, number, number];
    t.ok(r + g + b < 150, `a dark background (${background})`);
  });

  await t.test('sign out revokes the token and shows the sign-in form again', async (t) => {
    await page.click('#sign-out');
    await page.waitForSelector('#sign-in', { state: 'visible' });
    const logouts = await server.request('GET', '/v1/admin/audit?type=logout');
    t.equal(logouts.json.entries.length, 1, 'the token was revoked (audited logout)');
    await shots.shoot('signed-out');
  });

  t.same(errors, [], 'no console error: no CSP violation, no failed load, no exception');

  await t.test('with Basic credentials: a wrong password is a failed sign-in, the right one signs in', async (t) => {
    await page.check('#sign-in [name=mode][value=basic]');
    await page.fill('#sign-in [name=username]', 'admin');
    await page.fill('#sign-in [name=password]', 'not the password');
    await page.click('#sign-in button[type=submit]');
    await page.locator('#status', { hasText: 'Sign-in failed' }).waitFor();
    t.equal(await page.isVisible('#sign-in'), true, 'still signing in');
    await page.fill('#sign-in [name=password]', adminPassword);
    await page.click('#sign-in button[type=submit]');
    await page.waitForSelector('#session-user:text("admin")');
    t.equal(await page.isVisible('#sign-in'), false, 'signed in');
    await page.click('#sign-out');
    await page.waitForSelector('#sign-in', { state: 'visible' });
    t.equal(errors.length, 1, 'the one console error is the refused password');
    t.match(errors[0], /status of 401/);
  });

  const files = readdirSync(shots.dir).filter((file) => file.endsWith('.png'));
  t.ok(files.length >= 10 && files.every((file) => statSync(path.join(shots.dir, file)).size > 1000), `${files.length} screenshots`);
  t.comment(`screenshots: ${shots.dir}`);
});
