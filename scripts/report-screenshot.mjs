#!/usr/bin/env node
// A screenshot of a report.html, or of one of a report's charts, with the browser test's own code
// (test/browser.ts, chromium through playwright-core):
//   node scripts/report-screenshot.mjs neuronmerge-out/report.html docs/report.png
//   node scripts/report-screenshot.mjs neuronmerge-out/drop.svg docs/vgg16-curve.png
// On an explain page it first clicks a unit of the first layer's first cluster, so that the picture
// shows a cluster's members. A chart (an .svg) is drawn alone, the picture cut to its size.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { screenshotPage } from '../dist/test/browser.js';

const [input, png] = process.argv.slice(2);
if (!input || !png) {
  console.error('usage: node scripts/report-screenshot.mjs REPORT.html|CHART.svg OUT.png');
  process.exit(2);
}
const chart = input.endsWith('.svg');
const tmp = chart ? mkdtempSync(join(tmpdir(), 'nm-chart-')) : null;
const page = chart ? join(tmp, 'chart.html') : input;
if (chart) writeFileSync(page, `<!doctype html><html><body style="margin:0;background:#fff">${readFileSync(input, 'utf8')}</body></html>`);
const r = await screenshotPage({ chromium }, page, png, async (p) => {
  if (chart) {
    const box = await p.locator('svg').first().boundingBox();
    await p.setViewportSize({ width: Math.ceil(box.width), height: Math.ceil(box.height) });
    return;
  }
  const unit = p.locator('svg.unit-map[data-layer="0"] circle.in-cluster').first();
  if (await p.locator('#ratio').count() && await unit.count()) await unit.dispatchEvent('click');
}).finally(() => tmp && rmSync(tmp, { recursive: true, force: true }));
if (r.errors.length || r.requests.length) {
  console.error(`the page reported errors ${JSON.stringify(r.errors)} or fetched ${JSON.stringify(r.requests)}`);
  process.exit(1);
}
console.log(`${png} written`);
