// The baseline: pruning the units with the smallest L1 norm of their incoming weights (Li et al.,
// "Pruning Filters for Efficient ConvNets"), to the same k per layer as merging. Kept units keep their
// weights and batch-norm parameters; the next layer keeps only the inputs that read them.
import type { BatchNorm, Conv2d, Linear, Sequential } from '../nn/layers.js';
import { Tensor } from '../tensor/tensor.js';
import { mergeSites, unitsAfter } from './sites.js';
import type { MergeSite } from './sites.js';

/** the k units of a site with the largest L1 norm of incoming weights, in their original order */
export function l1Keep(model: Sequential, site: MergeSite, k: number): Int32Array {
  const layer = model.layers[site.index] as Linear | Conv2d;
  const n = site.units, fan = layer.weight.size / n;
  const norms = Array.from({ length: n }, (_, u) => {
    let s = 0;
    for (let q = 0; q < fan; q++) s += Math.abs(layer.weight.data[u * fan + q]);
    return s;
  });
  const order = Array.from({ length: n }, (_, u) => u).sort((a, b) => norms[b] - norms[a] || a - b);
  return Int32Array.from(order.slice(0, k).sort((a, b) => a - b));
}

function select(t: Tensor, rows: Int32Array, rowSize: number, shape: number[]): Tensor {
  const out = new Float32Array(rows.length * rowSize);
  rows.forEach((r, i) => out.set(t.data.subarray(r * rowSize, (r + 1) * rowSize), i * rowSize));
  return new Tensor(out, shape);
}

/** keep only the given units of one site */
export function applyPrune(model: Sequential, site: MergeSite, keep: Int32Array): void {
  const k = keep.length;
  const layer = model.layers[site.index] as Linear | Conv2d;
  const fan = layer.weight.size / site.units;
  layer.setTensor('weight', select(layer.weight, keep, fan, [k, ...layer.weight.shape.slice(1)]));
  if (layer.bias) layer.setTensor('bias', select(layer.bias, keep, 1, [k]));
  if (site.bn !== null) {
    const bn = model.layers[site.bn] as BatchNorm;
    for (const name of ['weight', 'bias', 'runningMean', 'runningVar'] as const) bn.setTensor(name, select(bn[name], keep, 1, [k]));
  }
  const next = model.layers[site.next] as Linear | Conv2d;
  const [O, I] = next.weight.shape;
  const per = next.weight.size / (O * I), S = site.spatial;
  const out = new Float32Array(O * k * S * per);
  for (let o = 0; o < O; o++) {
    keep.forEach((u, g) => {
      const from = (o * I + u * S) * per, to = (o * k * S + g * S) * per;
      out.set(next.weight.data.subarray(from, from + S * per), to);
    });
  }
  next.setTensor('weight', new Tensor(out, [O, k * S, ...next.weight.shape.slice(2)]));
}

/** prune every hidden layer to k = max(1, round((1 - r) n)) units by L1 norm, in place */
export function pruneModel(model: Sequential, o: { ratio: number | number[] }): { index: number; before: number; after: number; kept: Int32Array }[] {
  const sites = mergeSites(model);
  const ratios = typeof o.ratio === 'number' ? sites.map(() => o.ratio as number) : o.ratio;
  if (ratios.length !== sites.length) throw new Error(`prune: ${ratios.length} ratios for ${sites.length} prunable layers`);
  const keeps = sites.map((s, i) => l1Keep(model, s, unitsAfter(s.units, ratios[i])));
  return sites.map((s, i) => {
    applyPrune(model, mergeSites(model)[i], keeps[i]);
    return { index: s.index, before: s.units, after: keeps[i].length, kept: keeps[i] };
  });
}
