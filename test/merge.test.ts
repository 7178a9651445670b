// Exactness of merging: networks whose hidden layers hold exact duplicate units merge to fewer units
// with the same outputs, for every boundary the three networks have (linear -> linear, conv -> conv,
// conv -> batch norm -> ..., conv -> pool -> flatten -> linear, linear -> batch norm -> linear); k = n
// changes nothing; a merged model fine-tunes and its loss falls.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  applyMerge, applyPrune, archOf, l1Keep, pruneModel, BatchLoader, BatchNorm, buildModel, unitMoments, dbnArch, fit, lenet5Arch, loadDataset, mergeModel, mergeSites, noGrad, paramsWithUnits, ratioForBudget, Rng, SGD, tensor, vgg16Arch,
  widthsOf, roundUnits, mlpArch, recalibrateBatchNorm,
} from '../src/internal.js';
import type { Arch, Linear, Conv2d, Sequential, Tensor } from '../src/internal.js';
import { assertThrows } from './helpers.js';

const M = suite('merge');

/** give every hidden layer duplicate units: unit u copies unit (u mod m); batch norms copied too */
function duplicate(model: Sequential, distinct: (n: number) => number, rng: Rng): number[] {
  const ms: number[] = [];
  for (const site of mergeSites(model)) {
    const layer = model.layers[site.index] as Linear | Conv2d;
    const n = site.units, m = distinct(n), fan = layer.weight.size / n;
    const bn = site.bn !== null ? (model.layers[site.bn] as BatchNorm) : null;
    if (bn) {
      // realistic statistics, not the identity
      for (let u = 0; u < n; u++) {
        bn.weight.data[u] = rng.uniform(0.5, 1.5);
        bn.bias.data[u] = rng.uniform(-0.5, 0.5);
        bn.runningMean.data[u] = rng.uniform(-0.3, 0.3);
        bn.runningVar.data[u] = rng.uniform(0.5, 2);
      }
    }
    if (layer.bias) for (let u = 0; u < n; u++) layer.bias.data[u] = rng.uniform(-0.2, 0.2);
    for (let u = m; u < n; u++) {
      const r = u % m;
      layer.weight.data.copyWithin(u * fan, r * fan, (r + 1) * fan);
      if (layer.bias) layer.bias.data[u] = layer.bias.data[r];
      if (bn) for (const t of [bn.weight, bn.bias, bn.runningMean, bn.runningVar]) t.data[u] = t.data[r];
    }
    ms.push(m);
  }
  return ms;
}

function run(model: Sequential, x: Tensor): Float32Array {
  model.eval();
  return noGrad(() => model.forward(x)).data as Float32Array;
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
  return m;
}

const cases: [string, Arch, number[]][] = [
  ['DBN-style sigmoid MLP (linear -> linear)', dbnArch([12, 9, 7]), [3, 784]],
  ['LeNet-5 (conv -> pool -> conv, conv -> pool -> flatten -> linear, linear -> linear)', lenet5Arch([6, 8, 10]), [3, 1, 28, 28]],
  ['VGG-16 (conv -> batch norm -> relu -> conv, through pools, conv -> flatten -> linear -> batch norm -> linear)', vgg16Arch([4, 4, 6, 6, 6, 6, 6, 8, 8, 8, 8, 8, 8], 10), [2, 3, 32, 32]],
];

for (const [name, arch, shape] of cases) {
  for (const method of ['kmeans', 'ward', 'average', 'complete'] as const) {
    M(`${name}: duplicates merge exactly (${method})`, () => {
      const rng = new Rng(11);
      const model = buildModel(arch, 5);
      const ms = duplicate(model, (n) => Math.max(1, Math.ceil(n / 2)), rng);
      const x = tensor(Float32Array.from({ length: shape.reduce((p, d) => p * d, 1) }, () => rng.uniform(0, 1)), shape, { copy: false });
      const before = run(model, x);
      const sites = mergeSites(model);
      const params = model.numParameters();
      const report = mergeModel(model, { ratio: sites.map((s, i) => 1 - ms[i] / s.units), method, seed: 1 });
      assert.equal(report.sites.map((s) => s.after), ms, 'units after');
      assert.equal(mergeSites(model).map((s) => s.units), ms);
      assert.ok(model.numParameters() < params);
      const after = run(model, x);
      const err = maxRelDiff(after, before);
      assert.ok(err <= 1e-5, `outputs moved by ${err}`);
      // the merged model is an ordinary one: its architecture rebuilds it and takes its weights
      const rebuilt = buildModel(archOf(model, arch), 0);
      rebuilt.loadStateDict(model.stateDict());
      assert.ok(maxRelDiff(run(rebuilt, x), after) === 0);
    });
  }
}

/** like `duplicate`, but each copy is the original times a positive factor in [0.3, 3] (its folded
 * incoming weights and bias: a batch norm's scale and shift carry the factor) */
function scaledCopies(model: Sequential, distinct: (n: number) => number, rng: Rng): number[] {
  const ms = duplicate(model, distinct, rng);
  mergeSites(model).forEach((site, i) => {
    const layer = model.layers[site.index] as Linear | Conv2d;
    const n = site.units, fan = layer.weight.size / n;
    const bn = site.bn !== null ? (model.layers[site.bn] as BatchNorm) : null;
    for (let u = ms[i]; u < n; u++) {
      const f = rng.uniform(0.3, 3);
      if (bn) {
        bn.weight.data[u] *= f;
        bn.bias.data[u] *= f;
      } else {
        for (let q = 0; q < fan; q++) layer.weight.data[u * fan + q] *= f;
        if (layer.bias) layer.bias.data[u] *= f;
      }
    }
  });
  return ms;
}

for (const [name, arch, shape] of cases.slice(1)) {
  for (const rule of ['scaled', 'medoid'] as const) {
    M(`${name}: positive multiples merge exactly by direction (${rule})`, () => {
      const rng = new Rng(17);
      const model = buildModel(arch, 5);
      const ms = scaledCopies(model, (n) => Math.max(1, Math.ceil(n / 2)), rng);
      const x = tensor(Float32Array.from({ length: shape.reduce((p, d) => p * d, 1) }, () => rng.uniform(0, 1)), shape, { copy: false });
      const before = run(model, x);
      const ratio = mergeSites(model).map((s, i) => 1 - ms[i] / s.units);
      // the paper's mean cannot see through the scale: it moves the outputs
      const byMean = buildModel(arch, 5);
      byMean.loadStateDict(model.stateDict());
      const meanRep = mergeModel(byMean, { ratio, seed: 1 });
      assert.equal(meanRep.notes, []);
      assert.ok(maxRelDiff(run(byMean, x), before) > 1e-3, 'the mean rule should not be exact on scaled copies');
      const rep = mergeModel(model, { ratio, seed: 1, rule });
      assert.equal(rep.sites.map((s) => s.after), ms, 'units after');
      assert.equal(rep.notes, []);
      const err = maxRelDiff(run(model, x), before);
      assert.ok(err <= 1e-4, `outputs moved by ${err}`);
    });
  }
}

M('sigmoid layers (DBN): scaling rules keep the mean (exact on copies) and say so', () => {
  const [, arch, shape] = cases[0];
  const rng = new Rng(18);
  const model = buildModel(arch, 5);
  const ms = duplicate(model, (n) => Math.max(1, Math.ceil(n / 2)), rng);
  const x = tensor(Float32Array.from({ length: shape.reduce((p, d) => p * d, 1) }, () => rng.uniform(0, 1)), shape, { copy: false });
  const before = run(model, x);
  const rep = mergeModel(model, { ratio: mergeSites(model).map((s, i) => 1 - ms[i] / s.units), seed: 1, rule: 'scaled' });
  assert.is(rep.notes.length, 3);
  assert.match(rep.notes[0], /layer 0 \(.*\) is followed by Sigmoid.*not positively homogeneous: merged by the members' mean/);
  assert.ok(maxRelDiff(run(model, x), before) <= 1e-5);
});

M('medoid below its similarity floor drops the other members: the same function as pruning to the representatives', () => {
  const arch = vgg16Arch([4, 4, 6, 6, 6, 6, 6, 8, 8, 8, 8, 8, 8], 10);
  const rng = new Rng(19);
  const merged = buildModel(arch, 8);
  duplicate(merged, (n) => n, rng); // realistic batch norms, no copies
  const pruned = buildModel(arch, 8);
  pruned.loadStateDict(merged.stateDict());
  const x = tensor(Float32Array.from({ length: 2 * 3 * 32 * 32 }, () => rng.uniform(0, 1)), [2, 3, 32, 32], { copy: false });
  const rep = mergeModel(merged, { ratio: 0.5, seed: 2, rule: 'medoid', minSimilarity: 1.5 });
  rep.sites.forEach((s) => {
    assert.is(s.representatives!.length, s.after);
    s.representatives!.forEach((r, g) => assert.is(s.labels[r], g, 'a representative belongs to its group'));
  });
  assert.ok(rep.sites.some((s) => s.after < s.before));
  rep.sites.forEach((s, i) => applyPrune(pruned, mergeSites(pruned)[i], Int32Array.from(s.representatives!).sort()));
  const err = maxRelDiff(run(merged, x), run(pruned, x));
  assert.ok(err <= 1e-4, `outputs differ by ${err}`);
});

M('compensate with nothing similar enough is exactly L1 pruning; with copies it is exact and keeps the pruned units', () => {
  const arch = vgg16Arch([4, 4, 6, 6, 6, 6, 6, 8, 8, 8, 8, 8, 8], 10);
  const rng = new Rng(23);
  const a = buildModel(arch, 8);
  duplicate(a, (n) => n, rng);
  const b = buildModel(arch, 8);
  b.loadStateDict(a.stateDict());
  const x = tensor(Float32Array.from({ length: 2 * 3 * 32 * 32 }, () => rng.uniform(0, 1)), [2, 3, 32, 32], { copy: false });
  const keeps = mergeSites(b).map((s) => Array.from(l1Keep(b, s, Math.round(s.units / 2))));
  const rep = mergeModel(a, { ratio: 0.5, rule: 'compensate', minSimilarity: 1.5 });
  pruneModel(b, { ratio: 0.5 });
  rep.sites.forEach((s, i) => assert.equal(Array.from(s.representatives!), keeps[i], `kept units of site ${i}`));
  const err = maxRelDiff(run(a, x), run(b, x));
  assert.ok(err <= 1e-4, `compensate without compensation vs pruning: ${err}`);
  // small positive multiples (LeNet-5, no batch norm): L1 keeps the originals, every pruned unit is a
  // multiple of a kept one, so compensation is exact
  for (const rule of ['compensate', 'fitted', 'lstsq', 'refit'] as const) {
    const la = lenet5Arch([6, 8, 10]);
    const m = buildModel(la, 9);
    const r2 = new Rng(24);
    const ms = duplicate(m, (n) => n / 2, r2);
    mergeSites(m).forEach((site, i) => {
      const layer = m.layers[site.index] as Linear | Conv2d;
      const fan = layer.weight.size / site.units;
      for (let u = ms[i]; u < site.units; u++) {
        const f = r2.uniform(0.05, 0.2);
        for (let q = 0; q < fan; q++) layer.weight.data[u * fan + q] *= f;
        layer.bias!.data[u] *= f;
      }
    });
    const xl = tensor(Float32Array.from({ length: 2 * 784 }, () => rng.uniform(0, 1)), [2, 1, 28, 28], { copy: false });
    const calib = tensor(Float32Array.from({ length: 6 * 784 }, () => rng.uniform(0, 1)), [6, 1, 28, 28], { copy: false });
    const before = run(m, xl);
    const rep2 = mergeModel(m, { ratio: 0.5, rule, calibration: calib });
    rep2.sites.forEach((s, i) => assert.equal(Array.from(s.representatives!), Array.from({ length: ms[i] }, (_, u) => u), `${rule}: the originals are kept`));
    const e = maxRelDiff(run(m, xl), before);
    assert.ok(e <= 1e-4, `${rule} on multiples moved the outputs by ${e}`);
  }
});

M('lstsq: a unit that is a combination of kept units is rebuilt from them exactly, shift and all', () => {
  // three units; unit 2's activations are 0.5·a0 − 2·a1 + 0.3: the next layer reads the same values
  const rng = new Rng(26);
  const N = 40, n = 3;
  const acts = new Float32Array(N * n);
  for (let i = 0; i < N; i++) {
    const a0 = rng.uniform(0, 2), a1 = rng.uniform(-1, 1);
    acts.set([a0, a1, 0.5 * a0 - 2 * a1 + 0.3], i * n);
  }
  const lin = buildModel(dbnArch([3, 4]), 1);
  const site = mergeSites(lin)[0];
  const next = lin.layers[site.next] as Linear;
  const W = Float32Array.from(next.weight.data), b0 = Float32Array.from(next.bias!.data);
  applyMerge(lin, site, Int32Array.from([0, 1, 0]), { rule: 'lstsq', representatives: Int32Array.from([0, 1]), activations: { a: acts, N, S: 1 } });
  for (let o = 0; o < 4; o++) {
    assert.ok(Math.abs(next.weight.data[o * 2] - (W[o * 3] + 0.5 * W[o * 3 + 2])) < 1e-4, `weight ${o}, 0`);
    assert.ok(Math.abs(next.weight.data[o * 2 + 1] - (W[o * 3 + 1] - 2 * W[o * 3 + 2])) < 1e-4, `weight ${o}, 1`);
    assert.ok(Math.abs(next.bias!.data[o] - (b0[o] + 0.3 * W[o * 3 + 2])) < 1e-4, `bias ${o}`);
  }
});

M('lstsq: where the next layer has no bias, the shift goes into the running mean of the batch norm after it', () => {
  // a small VGG: conv (no bias) -> batch norm -> relu -> conv (no bias) -> batch norm; unit 2 of the first
  // conv reads as a0 + 0.3, so the next conv's pre-norm output moves by 0.3 times unit 2's kernel sums
  const model = buildModel(vgg16Arch([3, 4, 6, 6, 6, 6, 6, 8, 8, 8, 8, 8, 8], 10), 5);
  const site = mergeSites(model)[0];
  const next = model.layers[site.next] as Conv2d, norm = model.layers[site.next + 1] as BatchNorm;
  assert.ok(!next.bias && norm instanceof BatchNorm, 'the boundary under test');
  const rng = new Rng(27);
  const N = 10, n = 3, S = 5;
  const acts = new Float32Array(N * n * S);
  for (let i = 0; i < N; i++) for (let s2 = 0; s2 < S; s2++) {
    const a0 = rng.uniform(0, 2), a1 = rng.uniform(0, 1);
    acts[(i * n) * S + s2] = a0;
    acts[(i * n + 1) * S + s2] = a1;
    acts[(i * n + 2) * S + s2] = a0 + 0.3;
  }
  const W = Float32Array.from(next.weight.data), mu = Float32Array.from(norm.runningMean.data);
  applyMerge(model, site, Int32Array.from([0, 1, 0]), { rule: 'lstsq', representatives: Int32Array.from([0, 1]), activations: { a: acts, N, S } });
  const O = mu.length;
  for (let o = 0; o < O; o++) {
    let k2 = 0;
    for (let q = 0; q < 9; q++) k2 += W[(o * 3 + 2) * 9 + q];
    assert.ok(Math.abs(norm.runningMean.data[o] - (mu[o] - 0.3 * k2)) < 1e-4, `running mean ${o}: ${norm.runningMean.data[o]} against ${mu[o] - 0.3 * k2}`);
  }
});

M('refit: every unit, kept ones too, rebuilt from the kept units as the merged network computes them', () => {
  // the merged network's kept units a0', a1'; the original's units a0 = a0' + 0.1, a1 = 2·a1',
  // a2 = 0.5·a0' − 2·a1' + 0.3: the next layer reads exactly the original's values
  const rng = new Rng(28);
  const N = 40, n = 3;
  const now = new Float32Array(N * n), orig = new Float32Array(N * n);
  for (let i = 0; i < N; i++) {
    const a0 = rng.uniform(0, 2), a1 = rng.uniform(-1, 1);
    now.set([a0, a1, rng.uniform(-5, 5)], i * n);
    orig.set([a0 + 0.1, 2 * a1, 0.5 * a0 - 2 * a1 + 0.3], i * n);
  }
  const lin = buildModel(dbnArch([3, 4]), 1);
  const site = mergeSites(lin)[0];
  const next = lin.layers[site.next] as Linear;
  const W = Float32Array.from(next.weight.data), b0 = Float32Array.from(next.bias!.data);
  assertThrows(() => applyMerge(buildModel(dbnArch([3, 4]), 1), site, Int32Array.from([0, 1, 0]), { rule: 'refit', representatives: Int32Array.from([0, 1]) }), /the refit rule needs the activations of layer 0/);
  applyMerge(lin, site, Int32Array.from([0, 1, 0]), { rule: 'refit', representatives: Int32Array.from([0, 1]), activations: { a: now, N, S: 1 }, target: { a: orig, N, S: 1 } });
  for (let o = 0; o < 4; o++) {
    assert.ok(Math.abs(next.weight.data[o * 2] - (W[o * 3] + 0.5 * W[o * 3 + 2])) < 1e-4, `weight ${o}, 0`);
    assert.ok(Math.abs(next.weight.data[o * 2 + 1] - (2 * W[o * 3 + 1] - 2 * W[o * 3 + 2])) < 1e-4, `weight ${o}, 1`);
    assert.ok(Math.abs(next.bias!.data[o] - (b0[o] + 0.1 * W[o * 3] + 0.3 * W[o * 3 + 2])) < 1e-4, `bias ${o}`);
  }
});

M('refit corrects, at a later layer, the error an earlier merge left: closer to the original than lstsq', () => {
  // a ReLU MLP whose last layer is the identity, so that its outputs are the second hidden layer's
  // activations; only the first hidden layer is merged. lstsq leaves the second layer as it is; refit
  // regresses its original activations on what it computes after the first merge, a family that
  // contains lstsq's answer, so on the calibration inputs it is at least as close, and here closer.
  const arch = mlpArch([8, 6], 'relu', 'mnist', 5, 6);
  const base = buildModel(arch, 4);
  const last = base.layers[base.layers.length - 1] as Linear;
  last.weight.data.fill(0);
  for (let u = 0; u < 6; u++) last.weight.data[u * 6 + u] = 1;
  last.bias!.data.fill(0);
  const rng = new Rng(29);
  const calib = tensor(Float32Array.from({ length: 300 * 5 }, () => rng.normal()), [300, 5], { copy: false });
  const want = run(base, calib);
  const error = (rule: 'lstsq' | 'refit') => {
    const m = buildModel(arch, 4);
    m.loadStateDict(base.stateDict());
    mergeModel(m, { ratio: [0.5, 0], rule, calibration: calib });
    const got = run(m, calib);
    return got.reduce((a, v, i) => a + (v - want[i]) ** 2, 0);
  };
  const eL = error('lstsq'), eR = error('refit');
  assert.ok(eL > 1e-3, `the first merge must leave an error to correct (${eL})`);
  assert.ok(eR <= eL * (1 + 1e-6), `refit ${eR} against lstsq ${eL}`);
  assert.ok(eR < 0.95 * eL, `refit ${eR} should correct part of lstsq's ${eL}`);
});

M('refit with re-estimation: each layer is fitted on the network merged so far with its batch norms re-estimated', () => {
  // before the last layer is fitted every batch norm is re-estimated on the given images, and merging
  // that last layer (the classifier's input) touches no convolution's batch norm: re-estimating again
  // finds those statistics as they are. Without the option they are stale.
  const arch = vgg16Arch([4, 4, 6, 6, 6, 6, 6, 8, 8, 8, 8, 8, 8], 10);
  const rng = new Rng(31);
  const images = (n: number) => tensor(Float32Array.from({ length: n * 3 * 32 * 32 }, () => rng.normal()), [n, 3, 32, 32], { copy: false });
  const calib = images(24), again = images(32);
  const convNorms = (m: Sequential) => m.layers.filter((l): l is BatchNorm => l instanceof BatchNorm && m.layers.indexOf(l) < m.layers.length - 4);
  const drift = (reestimate?: Tensor) => {
    const m = buildModel(arch, 6);
    mergeModel(m, { ratio: 0.5, rule: 'refit', calibration: calib, ...(reestimate ? { reestimate } : {}) });
    const before = convNorms(m).map((b) => [Float32Array.from(b.runningMean.data), Float32Array.from(b.runningVar.data)]);
    recalibrateBatchNorm(m, reestimate ?? again);
    let d = 0;
    convNorms(m).forEach((b, j) => {
      for (let c = 0; c < b.runningMean.size; c++) {
        d = Math.max(d, Math.abs(b.runningMean.data[c] - before[j][0][c]), Math.abs(b.runningVar.data[c] - before[j][1][c]) / Math.max(1e-3, before[j][1][c]));
      }
    });
    return d;
  };
  const withIt = drift(again), without = drift();
  assert.ok(withIt < 1e-4, `statistics moved by ${withIt} after re-estimation inside the merge`);
  assert.ok(without > 1e-2, `without the option the statistics should be stale (${without})`);
});

M('the fitted rule needs calibration inputs and fits each member to its kept unit by least squares', () => {
  const arch = lenet5Arch([6, 8, 10]);
  const model = buildModel(arch, 2);
  assertThrows(() => mergeModel(model, { ratio: 0.5, rule: 'fitted' }), /merge: the fitted rule needs calibration inputs/);
  assertThrows(() => mergeModel(model, { threshold: 0.5, method: 'ward', rule: 'compensate' }), /the compensate rule keeps k units by L1 norm; give a ratio or a budget, not a threshold/);
  // two units whose activations are exactly a·r + c: the fitted coefficient is a, the shift c goes to the bias
  const rng = new Rng(25);
  const N = 5, n = 2, S = 3;
  const acts = new Float32Array(N * n * S);
  for (let i = 0; i < N; i++) for (let s = 0; s < S; s++) {
    const r = rng.uniform(0, 2);
    acts[(i * n + 0) * S + s] = r;
    acts[(i * n + 1) * S + s] = 0.4 * r + 0.25;
  }
  const lin = buildModel(dbnArch([2, 3]), 1); // 784-2-3-10: site 0 has 2 units read by a 3-unit layer
  const site = mergeSites(lin)[0];
  const next = lin.layers[site.next] as Linear;
  const W = Float32Array.from(next.weight.data), b0 = Float32Array.from(next.bias!.data);
  applyMerge(lin, site, Int32Array.from([0, 0]), { rule: 'fitted', representatives: Int32Array.from([0]), activations: { a: acts, N, S } });
  for (let o = 0; o < 3; o++) {
    assert.ok(Math.abs(next.weight.data[o] - (W[o * 2] + 0.4 * W[o * 2 + 1])) < 1e-5, `weight ${o}`);
    assert.ok(Math.abs(next.bias!.data[o] - (b0[o] + 0.25 * W[o * 2 + 1])) < 1e-5, `bias ${o}`);
  }
});

M('k = n changes nothing (batch norms folded, outputs equal)', () => {
  const rng = new Rng(12);
  const arch = vgg16Arch([4, 4, 6, 6, 6, 6, 6, 8, 8, 8, 8, 8, 8], 10);
  const model = buildModel(arch, 3);
  duplicate(model, (n) => n, rng); // only randomises the batch norms
  const x = tensor(Float32Array.from({ length: 2 * 3 * 32 * 32 }, () => rng.uniform(0, 1)), [2, 3, 32, 32], { copy: false });
  const before = run(model, x);
  const widths = mergeSites(model).map((s) => s.units);
  mergeModel(model, { ratio: 0 });
  assert.equal(mergeSites(model).map((s) => s.units), widths);
  assert.ok(maxRelDiff(run(model, x), before) <= 1e-5);
});

M('a distance threshold (agglomerative) finds exactly the duplicates; sequential mode is exact too', () => {
  for (const mode of ['all', 'sequential'] as const) {
    const rng = new Rng(13);
    const arch = lenet5Arch([6, 8, 10]);
    const model = buildModel(arch, 6);
    const ms = duplicate(model, (n) => n - 2, rng);
    const x = tensor(Float32Array.from({ length: 2 * 784 }, () => rng.uniform(0, 1)), [2, 1, 28, 28], { copy: false });
    const before = run(model, x);
    const rep = mode === 'all' ? mergeModel(model, { threshold: 1e-6, method: 'complete', mode }) : mergeModel(model, { ratio: mergeSites(model).map((s, i) => 1 - ms[i] / s.units), mode, seed: 2 });
    assert.equal(rep.sites.map((r) => r.after), ms, mode);
    assert.ok(maxRelDiff(run(model, x), before) <= 1e-5, mode);
  }
});

M('a global parameter budget: one ratio for all layers, the kept parameters at or under the budget, counted right', () => {
  const model = buildModel(lenet5Arch(), 7);
  const before = model.numParameters();
  const predicted = paramsWithUnits(model, mergeSites(model).map((s) => Math.ceil(s.units * 0.3)));
  const r = ratioForBudget(model, 0.1);
  mergeModel(model, { budget: 0.1, nInit: 1 });
  const after = model.numParameters();
  assert.ok(after <= 0.1 * before, `${after} of ${before}`);
  assert.ok(after > 0.08 * before, `${after} of ${before}: the budget should be used, not undershot by much`);
  assert.ok(r > 0.6 && r < 0.8, `ratio ${r}`);
  // the analytic count agrees with a real merge
  const m2 = buildModel(lenet5Arch(), 7);
  mergeModel(m2, { ratio: mergeSites(m2).map((s) => 1 - Math.ceil(s.units * 0.3) / s.units), nInit: 1 });
  assert.is(m2.numParameters(), predicted);
});

M('batch norms after merging: an identity in eval mode that keeps the statistics, so training mode (batch statistics) computes what the original does', () => {
  const arch = vgg16Arch([4, 4, 6, 6, 6, 6, 6, 8, 8, 8, 8, 8, 8], 10);
  const make = () => {
    const m = buildModel(arch, 9);
    duplicate(m, (n) => Math.max(1, Math.ceil(n / 2)), new Rng(41));
    return m;
  };
  const original = make(), merged = make();
  const ms = mergeSites(merged).map((s) => Math.max(1, Math.ceil(s.units / 2)));
  mergeModel(merged, { ratio: mergeSites(merged).map((s, i) => 1 - ms[i] / s.units), seed: 1 });
  for (const site of mergeSites(merged)) {
    if (site.bn === null) continue;
    const bn = merged.layers[site.bn] as BatchNorm;
    for (let g = 0; g < site.units; g++) {
      assert.ok(Math.abs(bn.weight.data[g] - Math.sqrt(bn.runningVar.data[g] + bn.eps)) < 1e-6, 'eval-mode identity');
      assert.ok(Math.abs(bn.bias.data[g] - bn.runningMean.data[g]) < 1e-7, 'eval-mode identity');
    }
  }
  const rng = new Rng(42);
  const x = tensor(Float32Array.from({ length: 8 * 3 * 32 * 32 }, () => rng.uniform(0, 1)), [8, 3, 32, 32], { copy: false });
  const trainOut = (m: Sequential) => {
    m.train();
    return noGrad(() => m.forward(x)).data as Float32Array;
  };
  const err = maxRelDiff(trainOut(merged), trainOut(original));
  assert.ok(err < 2e-2, `training-mode outputs differ by ${err}`);
});

M('repair: exact duplicates need none (outputs stay exact); otherwise every merged unit gets its members\' mean and spread back', () => {
  for (const [, arch, shape] of cases) {
    const rng = new Rng(31);
    const model = buildModel(arch, 5);
    const ms = duplicate(model, (n) => Math.max(1, Math.ceil(n / 2)), rng);
    const calib = tensor(Float32Array.from({ length: 4 * shape.slice(1).reduce((p, d) => p * d, 1) }, () => rng.uniform(0, 1)), [4, ...shape.slice(1)], { copy: false });
    const x = tensor(Float32Array.from({ length: shape.reduce((p, d) => p * d, 1) }, () => rng.uniform(0, 1)), shape, { copy: false });
    const before = run(model, x);
    const sites = mergeSites(model);
    const rep = mergeModel(model, { ratio: sites.map((s, i) => 1 - ms[i] / s.units), seed: 1, repair: calib });
    assert.ok(rep.repair!.every((c) => c < 1e-4), `corrections on duplicates: ${rep.repair}`);
    assert.ok(maxRelDiff(run(model, x), before) <= 1e-4);
  }
  // random (not duplicated) units: after repair each merged unit's moments equal its cluster's average
  const arch = vgg16Arch([4, 4, 6, 6, 6, 6, 6, 8, 8, 8, 8, 8, 8], 10);
  const model = buildModel(arch, 7);
  const rng = new Rng(32);
  const calib = tensor(Float32Array.from({ length: 6 * 3 * 32 * 32 }, () => rng.uniform(0, 1)), [6, 3, 32, 32], { copy: false });
  const target = unitMoments(model, calib);
  const rep = mergeModel(model, { ratio: 0.5, seed: 1, repair: calib });
  assert.ok(rep.repair!.some((c) => c > 1e-3), 'nothing was corrected');
  const now = unitMoments(model, calib);
  rep.sites.forEach((site, q) => {
    const k = site.after;
    for (let g = 0; g < k; g++) {
      const members = Array.from(site.labels.keys()).filter((u) => site.labels[u] === g);
      const mu = members.reduce((a, u) => a + target[q].mean[u], 0) / members.length;
      const sd = members.reduce((a, u) => a + target[q].std[u], 0) / members.length;
      assert.ok(Math.abs(now[q].mean[g] - mu) <= 1e-3 * Math.max(1, Math.abs(mu)), `site ${q} unit ${g}: mean ${now[q].mean[g]} vs ${mu}`);
      assert.ok(Math.abs(now[q].std[g] - sd) <= 1e-3 * Math.max(1, sd), `site ${q} unit ${g}: std ${now[q].std[g]} vs ${sd}`);
    }
  });
});

M('bad merge requests are refused clearly', () => {
  const model = buildModel(lenet5Arch([6, 8, 10]), 1);
  assertThrows(() => mergeModel(model, { ratio: 1 }), /merge ratio must be in \[0, 1\), got 1/);
  assertThrows(() => mergeModel(model, { ratio: [0.5, 0.5] }), /merge: 2 ratios for 3 mergeable layers/);
  assertThrows(() => mergeModel(model, { ratio: 0.5, budget: 0.2 }), /exactly one of ratio, threshold and budget/);
  assertThrows(() => mergeModel(model, { threshold: 0.1 }), /a distance threshold needs an agglomerative method/);
  assertThrows(() => mergeModel(model, { budget: 0 }), /merge budget must be in \(0, 1\]/);
});

M('a merged LeNet-5 fine-tunes: its loss falls', async () => {
  const { train } = await loadDataset('mnist');
  const arch = lenet5Arch([10, 20, 100]);
  const model = buildModel(arch, 2);
  const loader = new BatchLoader(train, { batchSize: 64, shuffle: true, seed: 1, indices: Int32Array.from({ length: 1024 }, (_, i) => i) });
  fit(model, { arch, loader, optimizer: new SGD(model.parameters(), { lr: 0.02, momentum: 0.9 }), epochs: 1, progress: false });
  mergeModel(model, { ratio: 0.5, seed: 3 });
  const merged = archOf(model, arch);
  assert.equal(widthsOf(merged), [5, 10, 50]);
  const r = fit(model, { arch: merged, loader, optimizer: new SGD(model.parameters(), { lr: 0.02, momentum: 0.9 }), epochs: 3, progress: false });
  assert.ok(r.history[2].loss < r.history[0].loss, `loss ${r.history.map((h) => h.loss.toFixed(4)).join(' -> ')}`);
});

M('roundUnits: the nearest multiple, or the one below; never above the layer; whole and narrow layers, and a budget\'s k below the multiple, left alone', () => {
  assert.is(roundUnits(10, 20, 8), 8);
  assert.is(roundUnits(13, 50, 8), 16);
  assert.is(roundUnits(13, 50, 8, true), 8);
  assert.is(roundUnits(3, 50, 8), 8, 'to the nearest, at least one multiple');
  assert.is(roundUnits(3, 50, 8, true), 3, 'down (a budget): a k below the multiple is left, neither rounded up past the budget nor to no unit');
  assert.is(roundUnits(134, 135, 8), 128, 'the nearest multiple above n is capped to the one below it');
  assert.is(roundUnits(135, 135, 8), 135, 'a layer kept whole stays whole');
  assert.is(roundUnits(3, 6, 8), 3, 'a layer narrower than the multiple keeps its k');
  assert.is(roundUnits(250, 500, 1), 250);
  assertThrows(() => roundUnits(4, 8, 0), /a multiple of units must be a positive integer, got 0/);
});

M.run();
