// The L1 pruning baseline and the accounting.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { buildModel, compare, l1Keep, lenet5Arch, mergeModel, mergeSites, modelStats, noGrad, pruneModel, Rng, tensor, vgg16Arch } from '../src/internal.js';
import type { Linear, Conv2d, Sequential } from '../src/internal.js';

const P = suite('prune-stats');

P('pruning keeps the units with the largest L1 norm and equals zeroing the others\' outgoing weights', () => {
  for (const arch of [lenet5Arch([6, 8, 10]), vgg16Arch([4, 4, 6, 6, 6, 6, 6, 8, 8, 8, 8, 8, 8], 10)]) {
    const rng = new Rng(3);
    const model = buildModel(arch, 4);
    const reference = buildModel(arch, 4);
    const shape = arch.model === 'lenet5' ? [2, 1, 28, 28] : [2, 3, 32, 32];
    const x = tensor(Float32Array.from({ length: shape.reduce((p, d) => p * d, 1) }, () => rng.uniform(0, 1)), shape, { copy: false });
    const sites = mergeSites(model);
    const keeps = sites.map((s) => l1Keep(model, s, Math.ceil(s.units / 2)));
    // check the choice against the norms
    sites.forEach((s, i) => {
      const w = (model.layers[s.index] as Linear | Conv2d).weight;
      const fan = w.size / s.units;
      const norm = (u: number) => Array.from(w.data.subarray(u * fan, (u + 1) * fan)).reduce((p, v) => p + Math.abs(v), 0);
      const minKept = Math.min(...Array.from(keeps[i]).map(norm));
      for (let u = 0; u < s.units; u++) if (!keeps[i].includes(u)) assert.ok(norm(u) <= minKept);
    });
    // reference: zero the outgoing weights of pruned units
    mergeSites(reference).forEach((s, i) => {
      const next = (reference.layers[s.next] as Linear | Conv2d).weight;
      const [O, I] = next.shape;
      const per = next.size / (O * I);
      for (let o = 0; o < O; o++) for (let u = 0; u < s.units; u++) {
        if (keeps[i].includes(u)) continue;
        for (let q = 0; q < s.spatial * per; q++) next.data[(o * I + u * s.spatial) * per + q] = 0;
      }
    });
    const rep = pruneModel(model, { ratio: sites.map((s) => 1 - Math.ceil(s.units / 2) / s.units) });
    assert.equal(rep.map((r) => r.after), sites.map((s) => Math.ceil(s.units / 2)));
    model.eval();
    reference.eval();
    const a = noGrad(() => model.forward(x)).data, b = noGrad(() => reference.forward(x)).data;
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= 1e-5 * Math.max(1, Math.abs(b[i])), `${arch.model} output ${i}: ${a[i]} vs ${b[i]}`);
  }
});

P('accounting: LeNet-5 parameters, FLOPs and bytes by hand; a merge\'s compression ratio agrees with the counts', () => {
  const model = buildModel(lenet5Arch(), 1) as Sequential;
  const s = modelStats(model, [1, 28, 28]);
  assert.is(s.params, 431080);
  assert.equal(s.layers.map((l) => l.flops), [2 * 20 * 25 * 24 * 24, 2 * 50 * 20 * 25 * 8 * 8, 2 * 800 * 500, 2 * 500 * 10]);
  assert.is(s.flops, 576000 + 3200000 + 800000 + 10000);
  assert.is(s.bytes, 431080 * 4);
  mergeModel(model, { ratio: 0.5, nInit: 1 });
  const t = modelStats(model, [1, 28, 28]);
  const c = compare(s, t);
  assert.equal(t.layers.map((l) => l.units), [10, 25, 250, 10]);
  assert.is(t.params, 10 * 25 + 10 + 25 * 10 * 25 + 25 + 400 * 250 + 250 + 250 * 10 + 10);
  assert.ok(Math.abs(c.compressionRatio - (1 - t.params / s.params)) < 1e-12);
  assert.ok(c.flopsRatio > 1 && c.factor > 1);
});

P.run();
