#!/usr/bin/env node
// A screenshot of a report.html, with the browser test's own code (test/browser.ts, chromium through
// playwright-core): node scripts/report-screenshot.mjs neuronmerge-out/report.html docs/report.png.
// On an explain page it first clicks a unit of the first layer's first cluster, so that the picture
// shows a cluster's members.
import { chromium } from 'playwright-core';
import { screenshotPage } from '../dist/test/browser.js';

const [html, png] = process.argv.slice(2);
if (!html || !png) {
  console.error('usage: node scripts/report-screenshot.mjs REPORT.html OUT.png');
  process.exit(2);
}
const r = await screenshotPage({ chromium }, html, png, async (page) => {
  const unit = page.locator('svg.unit-map[data-layer="0"] circle.in-cluster').first();
  if (await page.locator('#ratio').count() && await unit.count()) await unit.dispatchEvent('click');
});
if (r.errors.length || r.requests.length) {
  console.error(`the page reported errors ${JSON.stringify(r.errors)} or fetched ${JSON.stringify(r.requests)}`);
  process.exit(1);
}
console.log(`${png} written`);
