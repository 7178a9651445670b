// The teaching view: duplicates merge with no spread and no output shift; real merges show both.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { buildModel, dbnArch, explainMerge, mergeSites, Rng, tensor, clusterUnits, unitsAfter } from '../src/index.js';
import type { Linear } from '../src/index.js';

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

E.run();
