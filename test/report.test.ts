// The report writers on a made-up report: the accuracy plot draws one line per method and stage with a
// legend for each, the markdown names the command as typed, and every file is written whole.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { accuracySpec, dropSpec, agglomerative, compressionHtml, compressionUnitsSpec, unitsSpec, cutHeight, dendrogramLayout, dendrogramSvg, filterSvg, filtersHtml, pcaMap, renderSvg, reportHtml, reportMarkdown, Rng, saveCheckpoint, buildModel, lenet5Arch, writeFileAtomic, writeReports } from '../src/internal.js';
import type { CompressionView, Report } from '../src/internal.js';
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

R('accuracy.svg: a line per method and stage through the report\'s points, a panel per stage, the methods\' legend', async () => {
  const svg = await renderSvg(accuracySpec(report));
  const lines = [...svg.matchAll(/aria-roledescription="line mark" d="([^"]+)"/g)];
  assert.is(lines.length, 4, 'merged and pruned, in the panels before and after fine-tuning');
  for (const [method, stage, key] of [['merged', 'before', 'merged'], ['merged', 'after', 'finetuned'], ['pruned \\(L1\\)', 'before', 'pruned'], ['pruned \\(L1\\)', 'after', 'prunedFinetuned']] as const) {
    const label = new RegExp(`aria-label="[^"]*test accuracy: ([0-9.]+)%; method: ${method}; stage: ${stage} fine-tuning[^"]*"[^>]*aria-roledescription="line mark"`);
    const m = label.exec(svg);
    assert.ok(m, `${method} ${stage}: no line`);
    assert.ok(Math.abs(Number(m![1]) - 100 * report.results[0].accuracy[key]) < 1e-4, `${method} ${stage}: starts at ${m![1]}%`);
  }
  const texts = [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((t) => t[1]);
  // the legend of methods, and each panel titled by its stage
  for (const t of ['method', 'merged', 'pruned (L1)', 'before fine-tuning', 'after fine-tuning']) assert.ok(texts.includes(t), `text '${t}' missing`);
});

R('drop.svg: each method\'s change from the original in points at its share removed, ± one standard deviation over seeds, the published points labelled', async () => {
  const seeds = (a: number[]) => {
    const m = a.reduce((x, y) => x + y, 0) / a.length;
    return { seeds: [0, 1, 2], accuracy: a, std: Math.sqrt(a.reduce((x, y) => x + (y - m) ** 2, 0) / 2), min: Math.min(...a), max: Math.max(...a) };
  };
  const r: Report = {
    ...report,
    results: report.results.map((x, i) => {
      const merged = seeds([0.97 - 0.02 * i, 0.975 - 0.02 * i, 0.98 - 0.02 * i]), pruned = seeds([0.95 - 0.05 * i, 0.96 - 0.05 * i, 0.958 - 0.05 * i]);
      const mean = (f: typeof merged) => f.accuracy.reduce((a, b) => a + b, 0) / 3;
      return { ...x, accuracy: { ...x.accuracy, finetuned: mean(merged), prunedFinetuned: mean(pruned) }, merges: [{ rule: 'refit', merged: x.accuracy.merged, finetuned: mean(merged), seeds: merged }], seeds: { finetuned: merged, prunedFinetuned: pruned } };
    }),
    published: [{ method: 'CHIP (Sui et al., NeurIPS 2021)', removed: 0.873, drop: -0.0078 }, { method: 'DECORE (Alwani et al., CVPR 2022)', removed: 0.966, drop: -0.0152 }],
  };
  const svg = await renderSvg(dropSpec(r));
  const marks = [...svg.matchAll(/aria-label="([^"]*)"[^>]*aria-roledescription="([^"]*)"/g)].map((m) => ({ label: m[1], kind: m[2] }));
  const num = (label: string, field: string) => Number(new RegExp(`${field}: (−?[0-9.]+)`).exec(label)![1].replace('−', '-'));
  for (const [i, x] of r.results.entries()) {
    for (const [method, tuned, f] of [['merged \\(refit\\)', x.accuracy.finetuned, x.seeds!.finetuned], ['pruned \\(L1\\)', x.accuracy.prunedFinetuned, x.seeds!.prunedFinetuned]] as const) {
      const points = marks.filter((m) => m.kind === 'point' && new RegExp(`method: ${method};`).test(m.label) && Math.abs(num(m.label, 'removed') - 100 * x.compressionRatio) < 0.01);
      assert.is(points.length, 1, `${method} at row ${i}`);
      assert.ok(Math.abs(num(points[0].label, 'change \\(points\\)') - 100 * (tuned - x.accuracy.original)) < 0.006, points[0].label);
      // the bar from mean − std to mean + std
      const bar = marks.find((m) => m.kind === 'rule mark' && new RegExp(`this run: ${method}$`).test(m.label) && Math.abs(num(m.label, 'parameters removed') - 100 * x.compressionRatio) < 1e-4);
      assert.ok(bar, `${method} at row ${i}: no bar`);
      assert.ok(Math.abs(num(bar!.label, 'hi') - 100 * (tuned - x.accuracy.original + f.std)) < 0.006, bar!.label);
    }
  }
  for (const p of r.published!) {
    const diamond = marks.find((m) => m.kind === 'point' && m.label.includes(`method: ${p.method};`));
    assert.ok(diamond, p.method);
    assert.ok(Math.abs(num(diamond!.label, 'change from its own original \\(points\\)') - 100 * p.drop) < 0.006, diamond!.label);
    assert.ok(marks.some((m) => m.kind === 'text mark' && m.label.endsWith(`method: ${p.method}`)), `${p.method}: no label`);
  }
  // without published points or seeds: no diamonds, no bars
  const plain = [...(await renderSvg(dropSpec(report))).matchAll(/aria-roledescription="(rule mark|text mark)"/g)];
  assert.is(plain.length, 1, 'the zero line alone');
});

R('report.md is titled by the command as typed; writeReports leaves the six files and nothing else', async () => {
  const md = reportMarkdown(report);
  assert.is(md.split('\n')[0], '# neuronmerge reproduce lenet --ratios 0.5,0.8');
  assert.match(md, /Test accuracy per class: cat 87\.50%, dog 50\.00%\./);
  assert.match(md, /\| Conv2d\(3→64, 3x3\) \| 64 \| 0\.00100 \| 0\.500 \| 2\.00 \| 3 \|/);
  const d = tempDir('nm-report-');
  await writeReports(d, report);
  assert.equal(readdirSync(d).sort(), ['accuracy.svg', 'drop.svg', 'report.html', 'report.json', 'report.md', 'units.svg']);
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
  assert.throws(() => writeFileAtomic(folder, 'x'), (e: Error) => e.message === `${folder}: cannot write (is a folder; give a file name); the previous file is untouched`);
  assert.throws(() => writeFileAtomic(join(file, 'b.json'), 'x'), (e: Error) => e.message.startsWith(`${join(file, 'b.json')}: cannot write (`) && !e.message.includes('.tmp'));
  const arch = lenet5Arch([2, 2, 4]);
  assert.throws(() => saveCheckpoint(folder, { arch, model: buildModel(arch, 0) }), (e: Error) => e.message.startsWith(`${folder}: cannot write checkpoint (`) && e.message.endsWith('the previous file is untouched') && !e.message.includes('.tmp'));
  assert.equal(readdirSync(d).sort(), ['a.json', 'taken']);
  assert.is(readFileSync(file, 'utf8'), 'good');
});

R('units.svg and the merge page\'s chart: a bar per layer and version, its height the log of the report\'s units', async () => {
  const bars = (svg: string) => [...svg.matchAll(/aria-label="layer: ([^;]*); units \(log scale\): (\d+); version: ([^;"]*)[^"]*"[^>]*d="M[\d.-]+,([\d.-]+)h[\d.-]+v([\d.-]+)/g)]
    .map((m) => ({ layer: m[1], units: Number(m[2]), version: m[3], top: Number(m[4]), height: Number(m[5]) }));
  const r = { ...report, results: report.results.map((x, i) => ({ ...x, units: [{ layer: 'Conv2d(1→20, 5x5)', before: 20, after: 10 - 5 * i }, { layer: 'Linear(800→500)', before: 500, after: 250 - 150 * i }] })) };
  const got = bars(await renderSvg(unitsSpec(r)));
  const want = [
    { layer: '1: Conv2d(1→20, 5x5)', units: 20, version: 'original' }, { layer: '2: Linear(800→500)', units: 500, version: 'original' },
    { layer: '1: Conv2d(1→20, 5x5)', units: 10, version: 'merged at 0.5' }, { layer: '2: Linear(800→500)', units: 250, version: 'merged at 0.5' },
    { layer: '1: Conv2d(1→20, 5x5)', units: 5, version: 'merged at 0.8' }, { layer: '2: Linear(800→500)', units: 100, version: 'merged at 0.8' },
  ];
  const key = (b: { layer: string; version: string; units: number }) => `${b.layer}|${b.version}|${b.units}`;
  assert.equal(got.map(key).sort(), want.map(key).sort());
  // heights in proportion to log(1 + units) (a symmetric log axis: a 5-unit layer beside a 500-unit one
  // stays visible)
  const per = got.map((b) => b.height / Math.log1p(b.units));
  assert.ok(per.every((v) => Math.abs(v - per[0]) < 0.01 * per[0]), JSON.stringify(per));
  const page = bars(await renderSvg(compressionUnitsSpec({ model: 'lenet5', units: r.results[1].units } as Parameters<typeof compressionUnitsSpec>[0])));
  assert.equal(page.map(key).sort(), ['1: Conv2d(1→20, 5x5)|original|20', '1: Conv2d(1→20, 5x5)|merged|5', '2: Linear(800→500)|original|500', '2: Linear(800→500)|merged|100'].map((k) => k.split('|')).map(([layer, version, units]) => key({ layer, version, units: Number(units) })).sort());
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
  const html = reportHtml(r, { accuracy: await renderSvg(accuracySpec(r)), drop: '<svg></svg>', units: '<svg></svg>' });
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

H('dendrogram: a link per merge at its height, the clusters below the cut in their map colours, the cut between the last merge made and the next', () => {
  // three tight pairs far apart on a line, and one far point: 7 points, cut into 4 clusters
  const pts = [0, 0.1, 5, 5.2, 10, 10.3, 30];
  const X = Float32Array.from(pts);
  const { labels, merges } = agglomerative(X, pts.length, 1, { linkage: 'ward', k: 4 });
  assert.is(merges.length, 6);
  const { order, x } = dendrogramLayout(merges);
  assert.equal([...order].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6], 'the leaves, each once');
  // every cluster's leaves sit side by side in tree order
  for (let g = 0; g < 4; g++) {
    const at = order.map((u, i) => (labels[u] === g ? i : -1)).filter((i) => i >= 0);
    assert.is(at[at.length - 1] - at[0] + 1, at.length, `cluster ${g} is contiguous`);
  }
  merges.forEach((m, i) => assert.is(x[7 + i], (x[m.a] + x[m.b]) / 2));
  const cut = cutHeight(merges, 4);
  assert.ok(cut > merges[2].height && cut < merges[3].height, `${cut} between ${merges[2].height} and ${merges[3].height}`);
  const svg = dendrogramSvg(merges, labels, 'layer', 'ward');
  const links = [...svg.matchAll(/<path class="link( merged)?" data-height="([^"]+)"(?: data-group="(\d+)")?/g)];
  assert.is(links.length, 6, 'a link per merge');
  assert.equal(links.map((l) => Number(l[2])), merges.map((m) => Number(m.height.toPrecision(6))));
  const coloured = links.filter((l) => l[1]);
  assert.is(coloured.length, 3, 'the merges below the cut: 7 units to 4 clusters');
  // each coloured link joins units of the cluster it names
  const leaves = (id: number): number[] => (id < 7 ? [id] : [...leaves(merges[id - 7].a), ...leaves(merges[id - 7].b)]);
  coloured.forEach((l, i) => assert.ok(leaves(7 + i).every((u) => labels[u] === Number(l[3])), `link ${i} joins cluster ${l[3]} only`));
  assert.is(Number(/<line class="cut" data-height="([^"]+)"/.exec(svg)![1]), Number(cut.toPrecision(6)));
  assert.match(svg, /cut: 4 clusters/);
  assert.match(svg, /merge distance \(ward\)/);
  assert.throws(() => dendrogramSvg(merges, labels.subarray(1), 'x'), /6 labels for 7 units/);
});

H('the merge page: its facts, a row per layer with the units kept, a map per layer and a dendrogram where there is a tree', () => {
  const map = { x: [0, 1, 2], y: [0, 1, 0], group: [0, 0, 1], explained: [0.7, 0.3] as [number, number] };
  const tree = agglomerative(Float32Array.from([0, 0.1, 4]), 3, 1, { linkage: 'average', k: 2 }).merges;
  const v: CompressionView = {
    title: 'lenet5 merged', command: 'merge a.safetensors --out b.safetensors --ratio 0.5', checkpoint: 'a.safetensors', out: 'b.safetensors', model: 'lenet5', data: 'mnist',
    rule: 'lstsq', method: 'average', seed: 3, machine: 'a CPU', seconds: 2.5, allocation: 'the units per layer from --ratio',
    units: [{ layer: 'Conv2d(1→20, 5x5)', before: 3, after: 2 }, { layer: 'Linear(800→500)', before: 500, after: 100 }],
    params: { before: 1000, after: 250 }, flops: { before: 4000, after: 1000 }, accuracy: { before: 0.99, after: 0.9712 }, recalibrated: null, notes: ['one note'],
    explain: [
      { layer: 'Conv2d(1→20, 5x5)', units: 3, clusters: 2, sizes: { min: 1, median: 1, max: 2, singletons: 1 }, spread: 0.1, outputShift: 0.05, map, tree },
      { layer: 'Linear(800→500)', units: 3, clusters: 2, sizes: { min: 1, median: 1, max: 2, singletons: 1 }, spread: 0.1, outputShift: 0.05, map },
    ],
  };
  const html = compressionHtml(v, { units: '<svg class="u"></svg>' });
  assert.not.match(html, /<script|src=|href=|url\(|@import/, 'nothing is fetched');
  assert.match(html, /<h1>lenet5 merged<\/h1>/);
  assert.match(html, /<td>parameters<\/td><td>1,000 → 250 \(75\.00% removed\)<\/td>/);
  assert.match(html, /<td>test accuracy<\/td><td>99\.00% → 97\.12% \(before fine-tuning\)<\/td>/);
  assert.match(html, /<td>merging<\/td><td>lstsq rule: no clustering: the units L1 pruning keeps stay, every other unit rebuilt from all the kept units by least squares on calibration activations; the units per layer from --ratio<\/td>/);
  assert.match(html, /Note: one note\./);
  const units = /<table class="units">([\s\S]*?)<\/table>/.exec(html)![1];
  const rows = [...units.matchAll(/<tr>(.*?)<\/tr>/g)].slice(1).map((m) => [...m[1].matchAll(/<td>(.*?)<\/td>/g)].map((c) => c[1]));
  assert.equal(rows, [['Conv2d(1→20, 5x5)', '3', '2', '0.333'], ['Linear(800→500)', '500', '100', '0.800']]);
  assert.is((html.match(/<svg class="unit-map"/g) ?? []).length, 2, 'a map per layer');
  assert.is((html.match(/<svg class="dendrogram"/g) ?? []).length, 1, 'a dendrogram for the layer with a tree');
  assert.match(html, /How average linkage joined/);
  assert.not.match(compressionHtml({ ...v, explain: [v.explain[1]] }, { units: '' }), /class="dendrogram"/);
});

H.run();
