// Accounting: units, parameters (weights, biases, batch-norm scale and shift), FLOPs (multiply-adds
// x 2 of the convolutions and linear layers, for one input) and bytes of the saved model, per layer
// and in total; compression ratio = 1 - params_after / params_before.
import { BatchNorm, Conv2d, Linear } from '../nn/layers.js';
import type { Sequential } from '../nn/layers.js';
import { Tensor, zeros } from '../tensor/tensor.js';
import { noGrad } from '../tensor/autograd.js';

export interface LayerStats {
  index: number;
  layer: string;
  units: number;
  params: number;
  flops: number;
}

export interface ModelStats {
  layers: LayerStats[];
  params: number;
  flops: number;
  /** float32 parameters and buffers, as a checkpoint stores them (header not counted) */
  bytes: number;
}

/** walk one input of `inputShape` (without the batch axis) through the model, counting */
export function modelStats(model: Sequential, inputShape: number[]): ModelStats {
  const layers: LayerStats[] = [];
  const was = model.training;
  model.eval();
  try {
    noGrad(() => {
      let x: Tensor = zeros([1, ...inputShape]);
      model.layers.forEach((m, index) => {
        const y = m.forward(x);
        const params = m.namedParameters().reduce((p, [, t]) => p + t.size, 0);
        if (m instanceof Conv2d) {
          const [, C, KH, KW] = m.weight.shape;
          const [, OC, OH, OW] = y.shape;
          layers.push({ index, layer: m.describe(), units: OC, params, flops: 2 * OC * C * KH * KW * OH * OW });
        } else if (m instanceof Linear) {
          const [O, I] = m.weight.shape;
          layers.push({ index, layer: m.describe(), units: O, params, flops: 2 * O * I });
        } else if (m instanceof BatchNorm) {
          layers.push({ index, layer: m.describe(), units: m.weight.shape[0], params, flops: 0 });
        }
        x = y;
      });
    });
  } finally {
    model.train(was);
  }
  const bytes = [...model.stateDict().values()].reduce((p, t) => p + t.size * 4, 0);
  return { layers, params: layers.reduce((p, l) => p + l.params, 0), flops: layers.reduce((p, l) => p + l.flops, 0), bytes };
}

export interface Comparison {
  params: { before: number; after: number };
  flops: { before: number; after: number };
  bytes: { before: number; after: number };
  compressionRatio: number;
  /** params_before / params_after */
  factor: number;
  flopsRatio: number;
}

export function compare(before: ModelStats, after: ModelStats): Comparison {
  return {
    params: { before: before.params, after: after.params },
    flops: { before: before.flops, after: after.flops },
    bytes: { before: before.bytes, after: after.bytes },
    compressionRatio: 1 - after.params / before.params,
    factor: before.params / after.params,
    flopsRatio: before.flops / after.flops,
  };
}

/** the spread of one batch norm's effective scales |γ|/√(var+ε): how unequal its units are */
export interface BatchNormSpread {
  index: number;
  layer: string;
  units: number;
  min: number;
  median: number;
  max: number;
  /** units whose scale is below 1% of the layer's largest: next to silent, what pruning removes first */
  small: number;
}

/** the effective scale spread of every batch norm of a model (eval-mode statistics) */
export function batchNormSpread(model: Sequential): BatchNormSpread[] {
  const out: BatchNormSpread[] = [];
  model.layers.forEach((m, index) => {
    if (!(m instanceof BatchNorm)) return;
    const s = Array.from(m.weight.data, (g, u) => Math.abs(g) / Math.sqrt(m.runningVar.data[u] + m.eps)).sort((a, b) => a - b);
    const max = s[s.length - 1];
    out.push({ index, layer: model.layers[index - 1]?.describe() ?? m.describe(), units: s.length, min: s[0], median: s[Math.floor(s.length / 2)], max, small: s.filter((v) => v < 0.01 * max).length });
  });
  return out;
}
