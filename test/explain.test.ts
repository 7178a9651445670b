// The teaching view: duplicates merge with no spread and no output shift; real merges show both; the
// sweep over ratios gives, at each ratio, the figures merging and pruning at that ratio give.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  accuracyOf, buildModel, cloneModel, clusterUnits, dbnArch, explainCheckpoint, explainMerge, explainRatios, foldedUnits, loadTask, mergeModel, mergeSites,
  modelFromCheckpoint, pruneModel, Rng, tensor, unitsAfter, weightDrawing,
} from '../src/internal.js';
import type { Linear } from '../src/internal.js';
import { tempDir } from './helpers.js';
import { slice } from '../src/tensor/ops.js';
import type { Tensor } from '../src/internal.js';

const sliceFirst = (x: Tensor, n: number) => slice(x, 0, n);

const E = suite('explain');

E('exact duplicates: zero spread, zero output shift; a real merge: both positive', () => {
  const arch = dbnArch([8, 6]);
  const model = buildModel(arch, 3);
  const rng = new Rng(4);
  const x = tensor(Float32Array.from({ length: 16 * 784 }, () => rng.random()), [16, 784], { copy: false });
  // make layer 1's units pairwise duplicates: unit u copies unit u mod 4
  const l0 = model.layers[0] as Linear;
  for (let u = 4; u < 8; u++) {
    l0.weight.data.copyWithin(u * 784, (u % 4) * 784, (u % 4 + 1) * 784);
    l0.bias!.data[u] = l0.bias!.data[u % 4];
  }
  const sites = mergeSites(model);
  const dupLabels = Int32Array.from({ length: 8 }, (_, u) => u % 4);
  const realLabels = clusterUnits(model, sites[1], unitsAfter(6, 0.5), { seed: 1 });
  const ex = explainMerge(model, arch, [dupLabels, realLabels], x);
  assert.is(ex[0].clusters, 4);
  assert.equal(ex[0].sizes, { min: 2, median: 2, max: 2, singletons: 0 });
  assert.ok(ex[0].spread < 1e-6 && ex[0].outputShift < 1e-5, JSON.stringify(ex[0]));
  assert.is(ex[1].clusters, 3);
  assert.ok(ex[1].spread > 0.01 && ex[1].outputShift > 1e-3, JSON.stringify(ex[1]));
});

E('each group\'s replacing unit: the mean of its members\' folded weights (mean), the kept unit itself (medoid)', () => {
  const arch = dbnArch([8, 6]);
  const model = buildModel(arch, 5);
  const rng = new Rng(6);
  const x = tensor(Float32Array.from({ length: 8 * 784 }, () => rng.random()), [8, 784], { copy: false });
  const sites = mergeSites(model);
  const labels = sites.map((s, q) => clusterUnits(model, s, unitsAfter(s.units, 0.5), { seed: q }));
  const { w, fanIn } = foldedUnits(model, sites[0]);
  const [mean] = explainMerge(model, arch, labels, x, () => ({ rule: 'mean' }), { replacements: true, map: false });
  const k = mean.clusters;
  assert.is(mean.replacement!.length, k * fanIn);
  for (let g = 0; g < k; g++) {
    const members = [...labels[0].keys()].filter((u) => labels[0][u] === g);
    for (const j of [0, 391, fanIn - 1]) {
      const avg = members.reduce((a, u) => a + w[u * fanIn + j], 0) / members.length;
      assert.ok(Math.abs(mean.replacement![g * fanIn + j] - avg) < 1e-6, `group ${g}, weight ${j}`);
    }
  }
  assert.equal(mean.map.x, [], 'no map asked for');
  const [medoid] = explainMerge(model, arch, labels, x, () => ({ rule: 'medoid' }), { replacements: true });
  assert.is(medoid.map.x.length, 8, 'a map by default');
  for (let g = 0; g < k; g++) {
    const row = medoid.replacement!.subarray(g * fanIn, (g + 1) * fanIn);
    const same = [...labels[0].keys()].filter((u) => labels[0][u] === g).some((u) => row.every((v, j) => v === w[u * fanIn + j]));
    assert.ok(same, `medoid group ${g}: one of its members, unchanged`);
  }
});

E('explain ratios: sorted, distinct, each in [0, 1); none, or one out of range, refused', () => {
  assert.equal(explainRatios([0.8, 0.3, 0.3, 0]), [0, 0.3, 0.8]);
  assert.throws(() => explainRatios([]), /no merge ratios/);
  assert.throws(() => explainRatios([0.5, 1]), /ratio 1 is out of range/);
});

E('the page draws what fits: whole filters and images where they fit, a stated part where not', () => {
  assert.equal({ ...weightDrawing([3, 3, 3], 64), index: undefined }, { kind: 'rgb', channels: 3, rows: 3, cols: 3, index: undefined, part: '' });
  const big = weightDrawing([512, 3, 3], 512);
  assert.is(big.channels, 16);
  assert.is(big.part, 'the first 16 of 512 input channels');
  assert.is(big.index.length, 16 * 9);
  const image = weightDrawing([1, 28, 28], 500);
  assert.is(image.rows, 14, 'every second pixel: 500 × 196 weights fit, 500 × 784 do not');
  assert.ok(500 * image.index.length <= 200_000);
  assert.is(image.index[1], 2);
  assert.is(image.index[14], 56, 'the second row drawn is the input\'s third');
  const bars = weightDrawing([500], 2000);
  assert.equal([bars.kind, bars.cols, bars.part], ['bars', 100, 'the first 100 of 500 inputs']);
});

E('explain over ratios: at each ratio the accuracies merge and prune give, the clusters explainMerge finds, and a page', async () => {
  const file = join('models', 'lenet5.safetensors');
  const page = join(tempDir('nm-explain-'), 'lenet.html');
  const r = await explainCheckpoint(file, { ratios: [0.8, 0.3], rules: ['mean', 'lstsq'], method: 'ward', images: 64, layer: 0, report: page });
  assert.equal(r.ratios.map((x) => x.ratio), [0.3, 0.8]);
  const { model, arch } = modelFromCheckpoint(file);
  const task = await loadTask(arch);
  assert.is(r.original.accuracy, accuracyOf(model, task).accuracy);
  for (const x of r.ratios) {
    const m = cloneModel(model, arch);
    const rep = mergeModel(m, { ratio: x.ratio, seed: 0, nInit: 3, rule: 'mean', method: 'ward' });
    assert.is(x.accuracy.mean, accuracyOf(m, task).accuracy, `mean at ${x.ratio}`);
    const p = cloneModel(model, arch);
    pruneModel(p, { ratio: x.ratio });
    assert.is(x.pruned, accuracyOf(p, task).accuracy, `pruned at ${x.ratio}`);
    assert.equal(x.layers.map((l) => l.clusters), mergeSites(model).map((s) => unitsAfter(s.units, x.ratio)));
    assert.equal(x.clusters!.flat().sort((a, b) => a - b), Array.from({ length: 20 }, (_, u) => u));
    const direct = explainMerge(model, arch, rep.sites.map((s) => s.labels), task.ev.x.shape[0] > 64 ? sliceFirst(task.ev.x, 64) : task.ev.x, () => ({ rule: 'mean' }), { map: false });
    assert.equal(x.layers.map((l) => l.outputShift), direct.map((l) => l.outputShift));
    assert.ok(x.removed > 0 && x.removed < 1);
  }
  assert.ok(r.ratios[1].removed > r.ratios[0].removed);
  assert.ok(r.ratios[1].accuracy.lstsq > r.ratios[1].accuracy.mean, 'at 0.8, lstsq keeps more of LeNet-5 than the mean');
  const html = readFileSync(page, 'utf8');
  const data = JSON.parse(/<script type="application\/json" id="data">([\s\S]*?)<\/script>/.exec(html)![1]);
  assert.equal(data.ratios.map((x: { ratio: number }) => x.ratio), [0.3, 0.8]);
  // the embedded weights are the folded ones, to int8 precision
  const { w, fanIn } = foldedUnits(model, mergeSites(model)[0]);
  const q = new Int8Array(Buffer.from(data.layers[0].w.q, 'base64'));
  for (const u of [0, 7, 19]) {
    for (const j of [0, 12, 24]) assert.ok(Math.abs(q[u * 25 + j] * data.layers[0].w.s[u] - w[u * fanIn + j]) <= data.layers[0].w.s[u] * 0.51, `unit ${u}, weight ${j}`);
  }
  assert.is(data.layers[0].cutY.length, 2, 'ward: the cut at each ratio');
});

E.run();
