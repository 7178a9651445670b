// report.html in a real browser: Debian's chromium, driven by playwright-core, opens the page from disk,
// reports no console error and no request beyond the file, and draws every chart: the unit maps' dots
// and crosses, the accuracy chart's lines and the filters, counted against the report. The screenshot
// it takes is docs/report.png's source (scripts/report-screenshot.mjs uses the same function). Skipped
// where chromium or playwright-core cannot be had.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { agglomerative, explainCheckpoint, writeCompressionHtml, writeReports } from '../src/internal.js';
import type { CompressionView, Report } from '../src/internal.js';
import { needs, tempDir } from './helpers.js';
import { CHROMIUM, screenshotPage } from './browser.js';

const B = suite('browser');

const map = { x: [0, 1, 2, 3, 4, 5], y: [1, 0, 1, 0, 2, 1], group: [0, 0, 1, 1, 2, 3], explained: [0.6, 0.3] as [number, number] };
const report: Report = {
  command: 'reproduce lenet --quick', recalibrated: null, model: 'lenet5', data: 'MNIST', quick: true, seed: 0, machine: 'a CPU, 2 cores', seconds: 60,
  original: { accuracy: 0.99, params: 431080, flops: 4586000, epochs: 2, arch: { model: 'lenet5', widths: [20, 50, 500], classes: 10, inChannels: 1, inSize: 28 }, perClass: [], batchNorm: [] },
  results: [0.5, 0.8].map((ratio, i) => ({
    ratio, units: [{ layer: 'Conv2d(1→20, 5x5)', before: 6, after: 4 }], params: { before: 431080, after: 100000 - 50000 * i }, compressionRatio: 0.75 + 0.2 * i,
    flops: { before: 4586000, after: 1000000 }, bytes: { before: 1, after: 1 },
    accuracy: { original: 0.99, merged: 0.8 - 0.3 * i, finetuned: 0.98 - 0.01 * i, pruned: 0.8 - 0.45 * i, prunedFinetuned: 0.98 - 0.01 * i },
    merges: [{ rule: 'mean', merged: 0.8 - 0.3 * i, finetuned: 0.98 - 0.01 * i }, { rule: 'lstsq', merged: 0.97 - 0.1 * i, finetuned: 0.985 - 0.01 * i }],
    speedup: { flops: 4, measured: 2.5 },
    explain: [{ layer: 'Conv2d(1→20, 5x5)', units: 6, clusters: 4, sizes: { min: 1, median: 1, max: 2, singletons: 2 }, spread: 0.2, outputShift: 0.1, map }],
    filters: { shape: [1, 2, 2] as [number, number, number], units: [[1, 0, 0, 0], [0.9, 0, 0, 0], [0, 1, 0, 0], [0, 0.8, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], group: map.group, merged: [[0.95, 0, 0, 0], [0, 0.9, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]] },
  })),
};

const missing = !existsSync(CHROMIUM) ? `${CHROMIUM} is not installed (apt-get install chromium)` : null;
let playwright: typeof import('playwright-core') | null = null;
try {
  playwright = await import('playwright-core');
} catch {
  /* counted as skipped below */
}

const need = needs(B, missing ?? (playwright ? null : 'playwright-core is not installed (npm ci)'));

need('report.html opens from disk with no error and draws every chart', async () => {
  const dir = tempDir('nm-browser-');
  await writeReports(dir, report);
  const png = join(dir, 'report.png');
  const seen = await screenshotPage(playwright!, join(dir, 'report.html'), png, async (page) => ({
    dots: await page.locator('svg.unit-map circle.unit').count(),
    crosses: await page.locator('svg.unit-map path.merged').count(),
    lines: await page.locator('figure.accuracy path[aria-roledescription="line mark"]').count(),
    dropLines: await page.locator('figure.drop path[aria-roledescription="line mark"]').count(),
    filters: await page.locator('.cluster svg.filter').count(),
    merged: await page.locator('.cluster svg.filter.merged').count(),
    rows: await page.locator('table.results tr').count(),
    mapBox: await page.locator('svg.unit-map').first().boundingBox(),
  }));
  assert.equal(seen.errors, [], 'console errors');
  assert.equal(seen.requests, [], 'requests beyond the file');
  const v = seen.value;
  assert.is(v.dots, map.x.length, 'a dot per unit');
  assert.is(v.crosses, 2, 'a cross per merged unit (clusters of two)');
  assert.is(v.lines, 6, 'two rules and pruning, before and after fine-tuning');
  assert.is(v.dropLines, 3, 'two rules and pruning, their change from the original');
  assert.is(v.filters, 6, 'two clusters: two members and the merged filter each');
  assert.is(v.merged, 2);
  assert.is(v.rows, 1 + report.results.length);
  assert.ok(v.mapBox && v.mapBox.width > 300 && v.mapBox.height > 250, `the map is laid out: ${JSON.stringify(v.mapBox)}`);
  assert.ok(statSync(png).size > 10000, 'a screenshot was taken');
  assert.equal([...readFileSync(png).subarray(1, 4)].map((c) => String.fromCharCode(c)).join(''), 'PNG');
});

need('the merge page opens from disk with no error and draws its bars, maps and dendrograms', async () => {
  const dir = tempDir('nm-browser-');
  const pts = Float32Array.from([0, 0.2, 3, 3.1, 9, 9.5]);
  const { labels, merges } = agglomerative(pts, 6, 1, { linkage: 'ward', k: 3 });
  const m = { x: [0, 0.2, 3, 3.1, 9, 9.5], y: [0, 0.1, 0, 0.1, 0, 0.1], group: Array.from(labels), explained: [0.9, 0.1] as [number, number] };
  const layer = { layer: 'Linear(784→6)', units: 6, clusters: 3, sizes: { min: 2, median: 2, max: 2, singletons: 0 }, spread: 0.1, outputShift: 0.02, map: m, tree: merges };
  const v: CompressionView = {
    title: 'dbn merged', command: 'merge d.safetensors --out e.safetensors --ratio 0.5 --method ward', checkpoint: 'd.safetensors', out: 'e.safetensors', model: 'dbn', data: 'mnist',
    rule: 'mean', method: 'ward', seed: 0, machine: 'a CPU', seconds: 1, allocation: 'the units per layer from --ratio',
    units: [{ layer: 'Linear(784→6)', before: 6, after: 3 }, { layer: 'Linear(6→6)', before: 6, after: 3 }],
    params: { before: 100, after: 50 }, flops: { before: 200, after: 100 }, accuracy: { before: 0.98, after: 0.9 }, recalibrated: null, notes: [],
    explain: [layer, { ...layer, layer: 'Linear(6→6)' }],
  };
  const file = join(dir, 'e.html');
  await writeCompressionHtml(file, v);
  const seen = await screenshotPage(playwright!, file, join(dir, 'e.png'), async (page) => ({
    bars: await page.locator('path[aria-roledescription="bar"], path[aria-roledescription="rect mark"]').count(),
    trees: await page.locator('svg.dendrogram').count(),
    links: await page.locator('svg.dendrogram path.link').count(),
    coloured: await page.locator('svg.dendrogram path.link.merged').count(),
    dots: await page.locator('svg.unit-map circle.unit').count(),
    treeBox: await page.locator('svg.dendrogram').first().boundingBox(),
  }));
  assert.equal(seen.errors, [], 'console errors');
  assert.equal(seen.requests, [], 'requests beyond the file');
  const s = seen.value;
  assert.is(s.bars, 4, 'two layers, before and after');
  assert.is(s.trees, 2);
  assert.is(s.links, 2 * 5, 'a link per merge: n - 1 per layer');
  assert.is(s.coloured, 2 * 3, 'below the cut: 6 units to 3 clusters');
  assert.is(s.dots, 12);
  assert.ok(s.treeBox && s.treeBox.width > 600, `the dendrogram is laid out: ${JSON.stringify(s.treeBox)}`);
});

need('the explain page: the slider redraws clusters, table and cut as the ratio\'s figures say; a click shows a cluster', async () => {
  const dir = tempDir('nm-browser-');
  const file = join(dir, 'lenet.explain.html');
  const r = await explainCheckpoint(join('models', 'lenet5.safetensors'), { ratios: [0.2, 0.6, 0.9], rules: ['mean', 'refit'], method: 'ward', images: 64, layer: 0, report: file });
  type Seen = { rows: string[][]; inCluster: number[]; groups: number[]; crosses: number[]; links: number[]; cut: string | null; where: string };
  const look = (page: import('playwright-core').Page): Promise<Seen> => page.evaluate(() => {
    const maps = [...document.querySelectorAll('svg.unit-map')];
    return {
      rows: [...document.querySelectorAll('table.clusters tr[data-layer]')].map((tr) => [...(tr as HTMLTableRowElement).cells].map((c) => c.textContent ?? '')),
      inCluster: maps.map((m) => m.querySelectorAll('circle.in-cluster').length),
      groups: maps.map((m) => new Set([...m.querySelectorAll('circle.in-cluster')].map((c) => (c as SVGElement).dataset.group)).size),
      crosses: maps.map((m) => m.querySelectorAll('path.merged').length),
      links: [...document.querySelectorAll('svg.dendrogram')].map((t) => t.querySelectorAll('path.link.merged').length),
      cut: document.querySelector('svg.dendrogram line.cut')?.getAttribute('y1') ?? null,
      where: document.getElementById('where')?.textContent ?? '',
    };
  });
  const seen = await screenshotPage(playwright!, file, join(dir, 'explain.png'), async (page) => {
    const states: Seen[] = [];
    for (let i = 0; i < r.ratios.length; i++) {
      await page.locator('#ratio').fill(String(i));
      states.push(await look(page));
    }
    // the largest cluster of the first layer at the last ratio: click its first member
    const members = r.ratios[2].clusters![0];
    await page.locator(`svg.unit-map[data-layer="0"] circle.unit[data-unit="${members[0]}"]`).dispatchEvent('click');
    const panel = {
      members: await page.locator('#members .members').textContent(),
      drawn: await page.locator('#members canvas.member').count(),
      replacement: await page.locator('#members canvas.replacement').count(),
    };
    // a unit alone at the first ratio says so
    await page.locator('#ratio').fill('0');
    const alone = r.ratios[0].clusters!.find((c) => c.length === 1);
    if (alone) await page.locator(`svg.unit-map[data-layer="0"] circle.unit[data-unit="${alone[0]}"]`).dispatchEvent('click');
    return { states, panel, members, alone: alone ? await page.locator('#members p').first().textContent() : null, aloneUnit: alone?.[0] };
  });
  assert.equal(seen.errors, [], 'console errors');
  assert.equal(seen.requests, [], 'requests beyond the file');
  const { states, panel, members } = seen.value;
  const pc = (x: number) => `${(100 * x).toFixed(1)}%`;
  r.ratios.forEach((x, i) => {
    const s = states[i];
    assert.equal(s.rows, x.layers.map((l) => [l.layer, `${l.units} → ${l.clusters}`, `${l.sizes.min} / ${l.sizes.median} / ${l.sizes.max}`, String(l.sizes.singletons), pc(l.spread), pc(l.outputShift)]), `table at ${x.ratio}`);
    assert.equal(s.inCluster, x.layers.map((l) => l.units - l.sizes.singletons), `units in clusters at ${x.ratio}`);
    assert.equal(s.groups, x.layers.map((l) => l.clusters - l.sizes.singletons), `clusters drawn at ${x.ratio}`);
    assert.equal(s.crosses, s.groups, 'a cross per merged unit');
    assert.equal(s.links, x.layers.map((l) => l.units - l.clusters), `dendrogram links below the cut at ${x.ratio}`);
    assert.match(s.where, new RegExp(`^ratio ${x.ratio}: ${(100 * x.removed).toFixed(1)}% of the parameters removed`));
  });
  assert.is.not(states[0].cut, states[2].cut, 'the cut moves');
  assert.is(panel.members, members.join(' '));
  assert.is(panel.drawn, Math.min(24, members.length));
  assert.is(panel.replacement, 1);
  // a rule that keeps units: a ring on each kept unit, and a click names the unit its cluster keeps
  const kept = join(dir, 'lstsq.explain.html');
  const k = await explainCheckpoint(join('models', 'lenet5.safetensors'), { ratios: [0.7], rule: 'lstsq', rules: ['lstsq'], images: 64, layer: 0, report: kept });
  const big = k.ratios[0].clusters![0];
  const ring = await screenshotPage(playwright!, kept, join(dir, 'lstsq.png'), async (page) => {
    await page.locator(`svg.unit-map[data-layer="0"] circle.unit[data-unit="${big[0]}"]`).dispatchEvent('click');
    return { rings: await page.locator('svg.unit-map[data-layer="0"] circle.kept').count(), label: await page.locator('#members canvas.replacement').locator('xpath=..').textContent() };
  });
  assert.equal(ring.errors, []);
  assert.is(ring.value.rings, k.ratios[0].layers[0].clusters - k.ratios[0].layers[0].sizes.singletons);
  const keeps = /^kept: unit (\d+)$/.exec(ring.value.label ?? '');
  assert.ok(keeps && big.includes(Number(keeps[1])), `the kept unit is one of the cluster's: ${ring.value.label}`);
  if (seen.value.aloneUnit !== undefined) assert.match(seen.value.alone ?? '', new RegExp(`unit ${seen.value.aloneUnit} of Conv2d\\(1→20, 5x5\\) stays alone at ratio 0\\.2`));
});

B.run();
