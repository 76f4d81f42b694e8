// The token server's page in a real browser: Debian's Chromium, headless, driven by
// playwright-core (which never downloads a browser of its own).
//   usage: node e2e.mjs PAGE_URL SESSION_SECRET SCREENSHOT_PATH
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [pageUrl, secret, screenshotPath] = process.argv.slice(2);
if (!screenshotPath) {
  console.error('usage: node e2e.mjs PAGE_URL SESSION_SECRET SCREENSHOT_PATH');
  process.exit(2);
}

const WS_PREFIX = 'wss://api.cartesia.ai/tts/websocket?access_token=';
const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const WAIT = { timeout: 10_000 };

let passed = 0;
let failed = 0;
function check(name, condition, detail = '') {
  if (condition) {
    passed += 1;
    console.log(`ok: ${name}`);
  } else {
    failed += 1;
    console.log(`FAILED: ${name}${detail ? `: ${detail}` : ''}`);
  }
}

const text = (page, selector) => page.locator(selector).textContent();
const nonEmpty = (page, selector) =>
  page.waitForFunction((s) => document.querySelector(s)?.textContent.trim() !== '', selector, WAIT);

async function getToken(page, withSecret) {
  await page.fill('#secret', withSecret);
  await page.click('#get-token');
}

async function wrongSecretShowsAnError(page) {
  await page.goto(pageUrl);
  await getToken(page, 'not-the-secret');
  await nonEmpty(page, '#error');
  const error = await text(page, '#error');
  check('a wrong secret shows an error', error.includes('401'), error);
  check('and no token', (await text(page, '#token')) === '');
  await page.screenshot({ path: screenshotPath.replace(/\.png$/, '-error.png') });
}

async function rightSecretShowsAToken(page) {
  await getToken(page, secret);
  await nonEmpty(page, '#token');
  const token = await text(page, '#token');
  check('the token looks like a JWT', JWT.test(token), token);
  check('the error is gone', (await text(page, '#error')) === '');
  const grants = await text(page, '#grants');
  check('the grants, from the JWT, include tts', /\btts\b/.test(grants), grants);
  const expires = await text(page, '#expires');
  check('the expiry is shown with the seconds left', /\d+ s remaining/.test(expires), expires);
  const wsUrl = await text(page, '#ws-url');
  check('the WebSocket URL carries the token', wsUrl === WS_PREFIX + token, wsUrl);
}

async function secretFromQueryString(page) {
  await page.goto(`${pageUrl}/?secret=${encodeURIComponent(secret)}`);
  check('?secret= fills the secret field', (await page.inputValue('#secret')) === secret);
}

const userDataDir = await mkdtemp(join(tmpdir(), 'token-server-e2e-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
  viewport: { width: 1000, height: 760 },
});
try {
  const page = context.pages()[0] ?? (await context.newPage());
  const pageErrors = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => {
    // The 401 the page asks for is logged by Chromium as a failed resource load: expected.
    if (message.type() === 'error' && !message.text().includes('401')) pageErrors.push(message.text());
  });

  await wrongSecretShowsAnError(page);
  await rightSecretShowsAToken(page);
  await page.screenshot({ path: screenshotPath, fullPage: true });
  console.log(`screenshot: ${screenshotPath}`);
  await secretFromQueryString(page);
  check('no script errors', pageErrors.length === 0, pageErrors.join('; '));
} catch (error) {
  check('the page works', false, error.message);
} finally {
  await context.close();
  await rm(userDataDir, { recursive: true, force: true });
}

console.log(`browser_e2e: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
