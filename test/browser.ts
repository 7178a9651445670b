// Opens a local HTML file in Debian's chromium through playwright-core, runs `inspect` on the page,
// takes a full-page screenshot, and reports console errors and any request other than the file itself.
// Used by test/browser.test.ts and scripts/report-screenshot.mjs (docs/report.png).
import { pathToFileURL } from 'node:url';
import type { Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'];

export async function screenshotPage<T>(pw: typeof import('playwright-core'), file: string, png: string, inspect: (page: Page) => Promise<T>): Promise<{ value: T; errors: string[]; requests: string[] }> {
  const browser = await pw.chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const errors: string[] = [], requests: string[] = [];
    const url = pathToFileURL(file).href;
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('request', (r) => {
      if (r.url() !== url) requests.push(r.url());
    });
    await page.goto(url, { waitUntil: 'load' });
    const value = await inspect(page);
    await page.screenshot({ path: png, fullPage: true });
    return { value, errors, requests };
  } finally {
    await browser.close();
  }
}
