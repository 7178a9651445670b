// A budget spread by sensitivity: the allocation keeps at most the budget's parameters as modelStats
// counts them after a real merge, as closely as whole units allow; it takes more from the layers whose
// loss moves least; the sensitivity table equals what merging one layer, re-estimating every batch norm
// and evaluating the whole network gives (the cached prefix and partial re-estimation change nothing).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  allocate, applyMerge, buildModel, clusterUnits, crossEntropy, layerSensitivity, lenet5Arch, mergeModel, mergeSites, modelStats, noGrad, paramsWithUnits,
  recalibrateBatchNorm, Rng, tensor, unitsAfter, vgg16Arch, inputShape, BatchNorm,
} from '../src/internal.js';
import type { Arch, Sensitivity, Sequential } from '../src/internal.js';
import { assertThrows } from './helpers.js';

const A = suite('allocate');

const clone = (arch: Arch) => (m: Sequential) => {
  const c = buildModel(arch, 0);
  c.loadStateDict(m.stateDict());
  return c;
};

/** a made-up sensitivity table: loss grows with the ratio at a rate per layer */
function table(rates: number[], ratios = [0.2, 0.4, 0.6, 0.8, 0.9]): Sensitivity {
  return { ratios, base: 1, loss: rates.map((a) => ratios.map((r) => 1 + a * r * r)) };
}

for (const [name, arch] of [['LeNet-5', lenet5Arch()], ['a small VGG-16', vgg16Arch([8, 8, 16, 16, 16, 16, 16, 24, 24, 24, 24, 24, 24], 20)]] as [string, Arch][]) {
  A(`${name}: the allocation meets the budget as modelStats counts it, to the unit`, () => {
    const model = buildModel(arch, 1);
    const sites = mergeSites(model);
    const before = modelStats(model, inputShape(arch)).params;
    const rng = new Rng(5);
    for (const budget of [0.5, 0.2, 0.08]) {
      const alloc = allocate(model, budget, table(sites.map(() => rng.uniform(0.1, 5))));
      assert.ok(alloc.params <= budget * before, `${alloc.params} > ${budget} × ${before}`);
      assert.ok(sites.some((s, i) => alloc.ks[i] < s.units && paramsWithUnits(model, alloc.ks.map((k, j) => (j === i ? k + 1 : k))) > alloc.limit), 'one more unit somewhere breaks the budget');
      alloc.ratios.forEach((r, i) => assert.is(unitsAfter(sites[i].units, r), alloc.ks[i], 'ratios give back the ks'));
      const merged = buildModel(arch, 1);
      mergeModel(merged, { ratio: alloc.ratios, nInit: 1, seed: 2 });
      assert.is(modelStats(merged, inputShape(arch)).params, alloc.params, 'counted as modelStats counts');
    }
  });
}

A('the budget goes where the loss moves least', () => {
  const model = buildModel(lenet5Arch(), 1);
  // layer 0 is very sensitive, layer 2 (fc 500) hardly at all
  const alloc = allocate(model, 0.3, table([50, 1, 0.01]));
  assert.ok(alloc.ratios[2] > alloc.ratios[0], `ratios ${alloc.ratios}`);
  assert.ok(alloc.ratios[0] < 0.2, `the sensitive layer keeps most of its units: ${alloc.ratios}`);
  // reversed sensitivity moves the budget, same limit
  const other = allocate(model, 0.3, table([0.01, 1, 50]));
  assert.ok(other.ratios[0] > alloc.ratios[0]);
  assertThrows(() => allocate(model, 0.001, table([1, 1, 1], [0.5])), /budget 0\.001 is below what the largest candidate ratio \(0\.5\)/);
  assertThrows(() => allocate(model, 0, table([1, 1, 1])), /budget must be in \(0, 1\]/);
});

A('sensitivity equals merging one layer, re-estimating every batch norm and evaluating the whole network', () => {
  const arch = vgg16Arch([4, 4, 6, 6, 6, 6, 6, 8, 8, 8, 8, 8, 8], 10);
  const model = buildModel(arch, 3);
  const rng = new Rng(8);
  for (const m of model.layers) {
    if (m instanceof BatchNorm) for (let c = 0; c < m.numFeatures; c++) [m.runningMean.data[c], m.runningVar.data[c]] = [rng.uniform(-0.2, 0.2), rng.uniform(0.5, 2)];
  }
  const N = 24;
  const x = tensor(Float32Array.from({ length: N * 3 * 32 * 32 }, () => rng.uniform(-1, 1)), [N, 3, 32, 32], { copy: false });
  const y = Int32Array.from({ length: N }, () => rng.int(10));
  const ratios = [0.25, 0.5];
  const s = layerSensitivity(model, { x, y, clone: clone(arch), candidates: ratios, batch: 10, seed: 4, nInit: 1, rule: 'scaled' });
  const full = (m: Sequential) => {
    m.eval();
    return noGrad(() => crossEntropy(m.forward(x), y)).item();
  };
  const ref = clone(arch)(model);
  recalibrateBatchNorm(ref, x, 7);
  assert.ok(Math.abs(s.base - full(ref)) < 1e-5, `base ${s.base} vs ${full(ref)}`);
  for (const i of [0, 6, 13]) {
    ratios.forEach((r, c) => {
      const trial = clone(arch)(model);
      const site = mergeSites(trial)[i];
      applyMerge(trial, site, clusterUnits(trial, site, unitsAfter(site.units, r), { seed: 4 + i, nInit: 1, rule: 'scaled' }), { rule: 'scaled' });
      recalibrateBatchNorm(trial, x, 5);
      const want = full(trial);
      assert.ok(Math.abs(s.loss[i][c] - want) <= 1e-4 * Math.max(1, want), `site ${i} ratio ${r}: ${s.loss[i][c]} vs ${want}`);
    });
  }
  assert.ok(s.loss.flat().some((v) => Math.abs(v - s.base) > 1e-3), 'merging moved the loss');
});

A('a measurement cut after some layers goes on from the rows it kept, to the same table', () => {
  const arch = vgg16Arch([4, 4, 6, 6, 6, 6, 6, 8, 8, 8, 8, 8, 8], 10);
  const model = buildModel(arch, 5);
  const rng = new Rng(9);
  const N = 20;
  const x = tensor(Float32Array.from({ length: N * 3 * 32 * 32 }, () => rng.uniform(-1, 1)), [N, 3, 32, 32], { copy: false });
  const y = Int32Array.from({ length: N }, () => rng.int(10));
  const o = { x, y, clone: clone(arch), candidates: [0.25, 0.5], batch: 10, seed: 2, nInit: 1, rule: 'scaled' as const };
  const told: number[][][] = [];
  const whole = layerSensitivity(model, { ...o, onLayer: (loss) => told.push(loss) });
  assert.is(told.length, 14, 'told after every layer');
  told.forEach((rows, i) => assert.equal(rows, whole.loss.slice(0, i + 1)));
  for (const kept of [1, 6, 14]) {
    const after: number[][][] = [];
    const lines: string[] = [];
    const again = layerSensitivity(model, { ...o, measured: told[kept - 1], onLayer: (loss) => after.push(loss), log: (l) => lines.push(l) });
    assert.equal(again, whole, `going on after ${kept} layers`);
    assert.is(after.length, 14 - kept, 'only the layers measured now are told');
    assert.is(lines[0], `sensitivity: layers 1 to ${kept} of 14 measured before; going on from layer ${kept + 1}`);
  }
  assertThrows(() => layerSensitivity(model, { ...o, measured: [[1, 2, 3]] }), /sensitivity: the rows measured before do not fit this model \(1 row for 14 layers, 2 ratios each\)/);
  assertThrows(() => layerSensitivity(model, { ...o, measured: [[1, NaN]] }), /do not fit this model/);
});

A.run();
