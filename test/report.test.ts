// The report writers on a made-up report: the accuracy plot draws one line per method and stage with a
// legend for each, the markdown names the command as typed, and every file is written whole.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { accuracySpec, filterSvg, filtersHtml, pcaMap, renderSvg, reportHtml, reportMarkdown, Rng, saveCheckpoint, buildModel, lenet5Arch, writeFileAtomic, writeReports } from '../src/index.js';
import type { Report } from '../src/index.js';
import { tempDir } from './helpers.js';

const R = suite('report');
const report: Report = {
  command: 'reproduce lenet --ratios 0.5,0.8', recalibrated: null, model: 'lenet5', data: 'MNIST', quick: false, seed: 3, machine: 'a CPU, 2 cores', seconds: 12,
  original: {
    accuracy: 0.99, params: 431080, flops: 4586000, epochs: 12, arch: { model: 'lenet5', widths: [20, 50, 500], classes: 10, inChannels: 1, inSize: 28 },
    perClass: [{ name: 'cat', accuracy: 0.875 }, { name: 'dog', accuracy: 0.5 }],
    batchNorm: [{ index: 1, layer: 'Conv2d(3→64, 3x3)', units: 64, min: 0.001, median: 0.5, max: 2, small: 3 }],
  },
  results: [0.5, 0.8].map((ratio, i) => ({
    ratio, units: [{ layer: 'Conv2d(1→20, 5x5)', before: 20, after: 10 }], params: { before: 431080, after: 100000 - 50000 * i }, compressionRatio: 0.77 + 0.1 * i,
    flops: { before: 4586000, after: 1000000 }, bytes: { before: 1, after: 1 },
    accuracy: { original: 0.99, merged: 0.81 - 0.3 * i, finetuned: 0.985 - 0.01 * i, pruned: 0.8 - 0.45 * i, prunedFinetuned: 0.984 - 0.01 * i },
    speedup: { flops: 4, measured: 2.5 }, explain: [],
  })),
};

R('accuracy.svg: a line per method and stage through the report\'s points, and both legends', async () => {
  const svg = await renderSvg(accuracySpec(report));
  const lines = [...svg.matchAll(/aria-roledescription="line mark" d="([^"]+)"/g)];
  assert.is(lines.length, 4, 'merged and pruned, before and after fine-tuning');
  for (const [method, stage, key] of [['merged', 'before', 'merged'], ['merged', 'after', 'finetuned'], ['pruned \\(L1\\)', 'before', 'pruned'], ['pruned \\(L1\\)', 'after', 'prunedFinetuned']] as const) {
    const label = new RegExp(`aria-label="[^"]*test accuracy: ([0-9.]+)%; method: ${method}; stage: ${stage} fine-tuning[^"]*"[^>]*aria-roledescription="line mark"`);
    const m = label.exec(svg);
    assert.ok(m, `${method} ${stage}: no line`);
    assert.ok(Math.abs(Number(m![1]) - 100 * report.results[0].accuracy[key]) < 1e-4, `${method} ${stage}: starts at ${m![1]}%`);
  }
  const texts = [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((t) => t[1]);
  for (const t of ['method', 'merged', 'pruned (L1)', 'stage', 'before fine-tuning', 'after fine-tuning']) assert.ok(texts.includes(t), `legend entry '${t}' missing`);
});

R('report.md is titled by the command as typed; writeReports leaves the five files and nothing else', async () => {
  const md = reportMarkdown(report);
  assert.is(md.split('\n')[0], '# neuronmerge reproduce lenet --ratios 0.5,0.8');
  assert.match(md, /Test accuracy per class: cat 87\.50%, dog 50\.00%\./);
  assert.match(md, /\| Conv2d\(3→64, 3x3\) \| 64 \| 0\.00100 \| 0\.500 \| 2\.00 \| 3 \|/);
  const d = tempDir('nm-report-');
  await writeReports(d, report);
  assert.equal(readdirSync(d).sort(), ['accuracy.svg', 'report.html', 'report.json', 'report.md', 'units.svg']);
  const json = JSON.parse(readFileSync(join(d, 'report.json'), 'utf8'));
  assert.is(json.command, report.command);
  assert.is(json.compressionRatio, report.results[0].compressionRatio);
});

R('a write that fails names the path given, not a temporary file, and leaves nothing behind', () => {
  const d = tempDir('nm-atomic-');
  const file = join(d, 'a.json');
  writeFileSync(file, 'good');
  // a folder in the way of the rename, and a file in the way of the folder
  const folder = join(d, 'taken');
  mkdirSync(join(folder, 'inside'), { recursive: true });
  assert.throws(() => writeFileAtomic(folder, 'x'), (e: Error) => e.message.startsWith(`${folder}: cannot write (`) && !e.message.includes('.tmp'));
  assert.throws(() => writeFileAtomic(join(file, 'b.json'), 'x'), (e: Error) => e.message.startsWith(`${join(file, 'b.json')}: cannot write (`) && !e.message.includes('.tmp'));
  const arch = lenet5Arch([2, 2, 4]);
  assert.throws(() => saveCheckpoint(folder, { arch, model: buildModel(arch, 0) }), (e: Error) => e.message.startsWith(`${folder}: cannot write checkpoint (`) && e.message.endsWith('the previous file is untouched') && !e.message.includes('.tmp'));
  assert.equal(readdirSync(d).sort(), ['a.json', 'taken']);
  assert.is(readFileSync(file, 'utf8'), 'good');
});

R.run();

const H = suite('report.html');

H('pcaMap: points in a plane keep their distances; a line holds all the variance on the first axis', () => {
  const rng = new Rng(5);
  const n = 12, d = 6;
  // points spanning two directions of a 6-D space
  const a = [1, 2, 0, -1, 0.5, 0], b = [0, 1, -1, 1, 0, 2];
  const X = new Float32Array(n * d), P: [number, number][] = [];
  for (let i = 0; i < n; i++) {
    const s = rng.uniform(-2, 2), t = rng.uniform(-1, 1);
    P.push([s, t]);
    for (let j = 0; j < d; j++) X[i * d + j] = s * a[j] + t * b[j];
  }
  const m = pcaMap(X, n, d, Array.from({ length: n }, (_, i) => i % 3));
  assert.ok(Math.abs(m.explained[0] + m.explained[1] - 1) < 1e-6, `a plane: ${m.explained}`);
  const dist = (i: number, j: number) => Math.hypot(m.x[i] - m.x[j], m.y[i] - m.y[j]);
  const orig = (i: number, j: number) => Math.sqrt(a.map((_, q) => ((P[i][0] - P[j][0]) * a[q] + (P[i][1] - P[j][1]) * b[q]) ** 2).reduce((s, v) => s + v, 0));
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) assert.ok(Math.abs(dist(i, j) - orig(i, j)) < 1e-3 * Math.max(1, orig(i, j)), `pair ${i},${j}`);
  const line = pcaMap(Float32Array.from({ length: 5 * 2 }, (_, k) => (k % 2 ? 2 : 1) * Math.floor(k / 2)), 5, 2, [0, 0, 1, 1, 2]);
  assert.ok(line.explained[0] > 0.999, `a line: ${line.explained}`);
});

H('the page: self-contained, the results table holds the report\'s figures, each map a dot per unit and a cross per merged unit at its members\' mean', async () => {
  const map = { x: [0, 1, 2, 3, 4], y: [1, 0, 1, 0, 2], group: [0, 0, 1, 1, 2], explained: [0.6, 0.3] as [number, number] };
  const r: Report = {
    ...report,
    results: report.results.map((x) => ({
      ...x, merges: [{ rule: 'mean', merged: x.accuracy.merged, finetuned: x.accuracy.finetuned }, { rule: 'lstsq', merged: 0.97, finetuned: 0.991 }],
      explain: [{ layer: 'Conv2d(1→20, 5x5)', units: 5, clusters: 3, sizes: { min: 1, median: 2, max: 2, singletons: 1 }, spread: 0.2, outputShift: 0.1, map }],
    })),
  };
  const html = reportHtml(r, { accuracy: await renderSvg(accuracySpec(r)), units: '<svg></svg>' });
  assert.not.match(html, /<script|src=|href=|url\(|@import/, 'nothing is fetched');
  // the results table: a row per result, its cells the report's numbers
  const results = /<table class="results">([\s\S]*?)<\/table>/.exec(html)![1];
  const rows = [...results.matchAll(/<tr>(.*?)<\/tr>/g)].slice(1).map((m) => [...m[1].matchAll(/<td>(.*?)<\/td>/g)].map((c) => c[1]));
  assert.is(rows.length, 2);
  rows.forEach((row, i) => {
    const x = r.results[i];
    assert.is(row[0], String(x.ratio));
    assert.is(row[2], `${(100 * x.compressionRatio).toFixed(2)}%`);
    assert.equal(row.slice(5, 9), [x.accuracy.merged, x.accuracy.finetuned, 0.97, 0.991].map((v) => `${(100 * v).toFixed(2)}%`));
    assert.equal(row.slice(9), [x.accuracy.pruned, x.accuracy.prunedFinetuned].map((v) => `${(100 * v).toFixed(2)}%`));
  });
  // the map: five dots in the data's order left to right, two crosses (the singleton is not merged)
  const svg = /<svg class="unit-map"[\s\S]*?<\/svg>/.exec(html)![0];
  const dots = [...svg.matchAll(/<circle class="unit" data-unit="(\d+)" data-group="(\d+)" cx="([\d.]+)" cy="([\d.]+)"/g)];
  assert.is(dots.length, 5);
  assert.equal(dots.map((d) => Number(d[2])), map.group);
  const cx = dots.map((d) => Number(d[3]));
  assert.ok(cx.every((v, i) => i === 0 || v > cx[i - 1]), 'x grows with the first component');
  const crosses = [...svg.matchAll(/<path class="merged" data-group="(\d+)" d="M([\d.]+),([\d.]+)/g)];
  assert.equal(crosses.map((c) => Number(c[1])), [0, 1]);
  // cluster 0's cross sits halfway between its two dots
  assert.ok(Math.abs(Number(crosses[0][2]) + 5 - (cx[0] + cx[1]) / 2) < 0.2);
  assert.match(svg, /first principal component \(60% of the variance\)/);
  assert.match(html, /<svg[^>]*class="marks"|aria-roledescription="line mark"/, 'the accuracy chart is inline');
});

H('filters: a row per merged cluster, the members then the merged filter; grey and colour drawn from the weights', () => {
  // a 2×2 grey filter: its largest |weight| is white or black, 0 mid-grey
  const grey = filterSvg([1, -1, 0, 0.5], [1, 2, 2], 10);
  const fills = [...grey.matchAll(/fill="rgb\((\d+),(\d+),(\d+)\)"/g)].map((m) => [Number(m[1]), Number(m[2]), Number(m[3])]);
  assert.equal(fills, [[255, 255, 255], [0, 0, 0], [128, 128, 128], [191, 191, 191]]);
  // colour: channel c of pixel (0,0) is w[c·kh·kw]
  const colour = filterSvg([2, 0, 0, 0, -2, 0, 0, 0, 1, 0, 0, 0], [3, 2, 2]);
  assert.match(colour, /^<svg class="filter"[^>]*><rect x="0" y="0" width="8" height="8" fill="rgb\(255,0,191\)"\/>/);
  const f = { shape: [1, 2, 2] as [number, number, number], units: [[1, 0, 0, 0], [0.9, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0.8, 0.1]], group: [0, 0, 1, 2, 2], merged: [[0.95, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0.9, 0.05]] };
  const html = filtersHtml(f);
  const rows = [...html.matchAll(/<div class="cluster" data-group="(\d+)">(.*?)<\/div>/g)];
  assert.equal(rows.map((r) => Number(r[1])), [0, 2], 'clusters of more than one filter, largest first');
  for (const r of rows) {
    assert.is((r[2].match(/<svg class="filter"/g) ?? []).length, 2, 'the members');
    assert.is((r[2].match(/<svg class="filter merged"/g) ?? []).length, 1, 'the merged filter');
  }
});

H.run();
