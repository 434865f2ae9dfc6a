// Drives the auditor web view (/ui/) in Debian's headless chromium through playwright-core, for tests/ui.rs.
// Input (environment): UI_URL (the notarium server), UI_TOKEN (an auditor token), UI_LOG_KEY (the log key PEM),
// UI_OTHER_KEY (another Ed25519 PEM), UI_EXPECT (JSON: indices and digests of the scenario), UI_SHOTS (a
// directory for screenshots), UI_CSP (the Content-Security-Policy the pages must carry), PLAYWRIGHT_CORE (the
// package's directory). Prints one JSON line of what it saw; exits 1 naming the first check that failed.
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
const { chromium } = require(process.env.PLAYWRIGHT_CORE);
const base = process.env.UI_URL;
const origin = new URL(base).origin;
const expect = JSON.parse(process.env.UI_EXPECT);
const shots = process.env.UI_SHOTS;

const seen = { dialogs: [], outside: [], consoleErrors: [], checks: [] };

function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
  seen.checks.push(what);
}

const profile = mkdtempSync(join(tmpdir(), 'notarium-ui-profile-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
  viewport: { width: 1280, height: 800 },
  acceptDownloads: true,
});

try {
  // Nothing but this server: every other request is recorded and refused before it leaves.
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith('blob:') || url.startsWith('data:') || new URL(url).origin === origin) return route.continue();
    seen.outside.push(url);
    return route.abort('blockedbyclient');
  });
  const page = context.pages()[0] || await context.newPage();
  page.on('dialog', async (dialog) => { seen.dialogs.push(dialog.message()); await dialog.dismiss(); });
  page.on('console', (message) => { if (message.type() === 'error') seen.consoleErrors.push(message.text()); });

  const ready = async (name) => {
    await page.waitForSelector(`body[data-page="${name}"]:not([data-loading])`, { timeout: 20000 });
  };
  const go = async (hash, name) => {
    await page.evaluate((h) => { location.hash = h; }, hash);
    await ready(name);
  };
  const shot = async (name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  const bodyText = () => page.evaluate(() => document.body.textContent);
  const nothingInjected = async (where) => {
    const found = await page.evaluate(() => ({
      scripts: document.querySelectorAll('script').length,
      images: document.querySelectorAll('img, iframe, object, embed').length,
      foreignLinks: [...document.querySelectorAll('[href]')].map((a) => a.getAttribute('href'))
        .filter((h) => !h.startsWith('#/') && h !== 'app.css' && !h.startsWith('blob:')),
      handlers: [...document.querySelectorAll('*')].flatMap((e) => [...e.attributes].map((a) => a.name))
        .filter((n) => n.startsWith('on')),
    }));
    check(found.scripts === 1, `${where}: the page's one script only (found ${found.scripts})`);
    check(found.images === 0, `${where}: no image, frame or object made from register values`);
    check(found.foreignLinks.length === 0, `${where}: every link is a route of the page (${found.foreignLinks})`);
    check(found.handlers.length === 0, `${where}: no event handler attribute`);
  };

  // The page and its policy.
  const response = await page.goto(`${base}/ui/`);
  check(response.status() === 200, 'GET /ui/ answers 200');
  check(response.headers()['content-security-policy'] === process.env.UI_CSP, 'the page carries the strict CSP');
  check(response.headers()['x-content-type-options'] === 'nosniff', 'nosniff');
  await ready('signin');

  // Sign in with the auditor token, pinning the log key.
  await page.fill('#token', process.env.UI_TOKEN);
  await page.fill('#logkey', process.env.UI_LOG_KEY);
  await shot('01-signin');
  await page.click('#signin button[type=submit]');
  await ready('timeline');
  check(await page.evaluate(() => sessionStorage.getItem('notarium.token')) === process.env.UI_TOKEN,
    'the token is kept in sessionStorage');
  const timeline = await bodyText();
  check(timeline.includes(expect.script_text), 'markup from the register shows as text on the timeline');
  check(timeline.includes(expect.script_predicate), 'the javascript: predicate type shows as text');
  await nothingInjected('timeline');
  await shot('02-timeline');

  // Filters.
  await go('#/timeline?kind=verify', 'timeline');
  const kinds = await page.$$eval('#results tbody tr td:nth-child(3)', (cells) => cells.map((c) => c.textContent));
  check(kinds.length === 2 && kinds.every((k) => k === 'verify'), `kind=verify lists the two decisions (${kinds})`);
  await shot('03-timeline-verify');
  await go(`#/timeline?digest=${encodeURIComponent(expect.tool)}&kind=registry-pull`, 'timeline');
  const pulls = await page.$$eval('#results tbody tr', (rows) => rows.length);
  check(pulls >= 1, 'digest and kind filters combine');

  // An entry whose proof and checkpoint verify here.
  await go(`#/entry/${expect.sign_index}`, 'entry');
  check((await page.textContent('#verdict')) === 'Verified', 'the sign entry is Verified in the browser');
  await shot('04-entry-verified');

  // A tampered inclusion proof is NOT verified.
  await page.route('**/v1/log/proof/inclusion**', async (route) => {
    const real = await route.fetch();
    const proof = await real.json();
    const first = proof.hashes[0];
    proof.hashes[0] = (first[0] === '0' ? '1' : '0') + first.slice(1);
    await route.fulfill({ response: real, json: proof });
  });
  await go('#/timeline', 'timeline');
  await go(`#/entry/${expect.sign_index}`, 'entry');
  check((await page.textContent('#verdict')) === 'NOT verified', 'a tampered proof shows NOT verified');
  await shot('05-entry-tampered-proof');
  await page.unroute('**/v1/log/proof/inclusion**');

  // A checkpoint under another key than the pinned one is NOT verified.
  await page.evaluate((key) => localStorage.setItem('notarium.logkey', key), process.env.UI_OTHER_KEY);
  await go('#/timeline', 'timeline');
  await go(`#/entry/${expect.sign_index}`, 'entry');
  check((await page.textContent('#verdict')) === 'NOT verified', 'another pinned key shows NOT verified');
  await page.evaluate((key) => localStorage.setItem('notarium.logkey', key), process.env.UI_LOG_KEY);

  // The attestation with a javascript: predicate type: text, verified, no link made of it.
  await go(`#/entry/${expect.attest_index}`, 'entry');
  check((await page.textContent('#verdict')) === 'Verified', 'the attest entry is Verified');
  check((await bodyText()).includes(expect.script_predicate), 'the predicate type is shown as text');
  await nothingInjected('attest entry');
  await shot('06-entry-attest-javascript-predicate');

  // The entry of a registry event whose repository, actor and tag are markup.
  await go(`#/entry/${expect.hostile_index}`, 'entry');
  check((await page.textContent('#entry-json')).includes(expect.script_text), 'markup in an entry is text');
  await nothingInjected('hostile entry');
  await shot('07-entry-hostile-registry-event');

  // The image page: everything about the cache image, pulled and never verified.
  await go(`#/image/${encodeURIComponent(expect.cache)}`, 'image');
  check((await page.textContent('#findings')).includes('pulled but never verified'), 'the image page flags it');
  check((await bodyText()).includes(expect.script_text), 'the hostile pull is listed as text');
  await nothingInjected('image');
  await shot('08-image-never-verified');
  await go(`#/image/${encodeURIComponent(expect.tool)}`, 'image');
  check((await page.textContent('#findings')).includes('pulled after a denial'), 'the denied image pulled is flagged');
  await shot('09-image-denied-then-pulled');

  // Keys: versions, additions, images per version.
  await go('#/keys', 'keys');
  const keys = await bodyText();
  check(keys.includes('dev-ecdsa') && keys.includes(expect.app), 'the keys page lists dev-ecdsa and the image it signed');
  await shot('10-keys');

  // The evidence pack.
  await go('#/evidence', 'evidence');
  if (expect.evidence) {
    await page.fill('#evidence-from', '2000-01-01T00:00:00Z');
    await page.fill('#evidence-to', '2999-01-01T00:00:00Z');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#evidence button[type=submit]')]);
    const file = join(shots, 'evidence.zip');
    await download.saveAs(file);
    seen.evidence = file;
  }
  await shot('11-evidence');

  // The policy at work: an inline script does not run, a request to another host never leaves.
  const inline = await page.evaluate(() => {
    const s = document.createElement('script');
    s.textContent = 'window.__inlineRan = true;';
    document.body.appendChild(s);
    return window.__inlineRan === true;
  });
  check(!inline, 'an injected inline script does not run (CSP)');
  const outside = await page.evaluate(() => fetch('https://example.com/').then(() => 'loaded', () => 'refused'));
  check(outside === 'refused', 'a fetch to another host is refused (CSP connect-src)');
  check(seen.outside.length === 0, `the view made no request outside this server (${seen.outside})`);
  let navigated = true;
  try { await page.goto('http://example.com/'); } catch (_) { navigated = false; }
  check(!navigated && seen.outside.includes('http://example.com/'), 'a navigation to another host is blocked');
  check(seen.dialogs.length === 0, `no dialog fired (${seen.dialogs})`);
  console.log(JSON.stringify(seen));
} catch (error) {
  console.error(error.message);
  console.error(JSON.stringify(seen));
  process.exitCode = 1;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
