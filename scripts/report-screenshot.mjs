#!/usr/bin/env node
// A screenshot of a report.html, with the browser test's own code (test/browser.ts, chromium through
// playwright-core): node scripts/report-screenshot.mjs neuronmerge-out/report.html docs/report.png
import { chromium } from 'playwright-core';
import { screenshotPage } from '../dist/test/browser.js';

const [html, png] = process.argv.slice(2);
if (!html || !png) {
  console.error('usage: node scripts/report-screenshot.mjs REPORT.html OUT.png');
  process.exit(2);
}
const r = await screenshotPage({ chromium }, html, png, async () => null);
if (r.errors.length || r.requests.length) {
  console.error(`the page reported errors ${JSON.stringify(r.errors)} or fetched ${JSON.stringify(r.requests)}`);
  process.exit(1);
}
console.log(`${png} written`);
