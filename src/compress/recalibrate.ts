// Batch-norm re-estimation: after merging or pruning, each batch norm's running statistics describe
// inputs the layer no longer sees (units were averaged, removed, or fed by changed layers before it).
// This sets every batch norm's running mean and variance to the statistics of its actual inputs on
// calibration images, first layer first (each later layer sees the re-estimated ones before it), with
// no gradient and nothing else changed. For a merged unit, whose batch norm keeps its members' average
// output statistics as scale and shift (./sites.ts, setIdentityNorm), this restores those statistics
// on real inputs, as fine-tuning's first batches in training mode would.
import { BatchNorm } from '../nn/layers.js';
import type { Sequential } from '../nn/layers.js';
import { slice } from '../tensor/ops.js';
import { Tensor } from '../tensor/tensor.js';
import { noGrad } from '../tensor/autograd.js';

/** adds the per-channel (axis 1) sums and sums of squares of a (N, C, ...) tensor to `sum` and `sq`
 * (float64); returns how many values each channel had */
export function channelSums(z: Tensor, sum: Float64Array, sq: Float64Array): number {
  const N = z.shape[0], C = z.shape[1];
  const S = z.size / (N * C);
  const d = z.data;
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const base = (n * C + c) * S;
      let s = 0, s2 = 0;
      for (let i = 0; i < S; i++) {
        const v = d[base + i];
        s += v;
        s2 += v * v;
      }
      sum[c] += s;
      sq[c] += s2;
    }
  }
  return N * S;
}

/**
 * Re-estimate the running mean and variance of every batch norm of `model` on the inputs `x`, layer by
 * layer, with one pass over the network: all calibration inputs advance one layer at a time (in chunks
 * of `batch`), so each batch norm's statistics are final before the layers after it see its output.
 * Memory: the calibration set's activations at one layer (5,120 images of a full-width VGG-16's first
 * block: 1.3 GB). `from`: x is the input of layer `from` (the layers before it are left alone); `to`:
 * the last layer whose batch norms are re-estimated (the later ones are left alone).
 * Returns, per batch norm re-estimated, the mean |log| of the ratio of the new to the old running
 * standard deviation: how stale the statistics were.
 */
export function recalibrateBatchNorm(model: Sequential, x: Tensor, batch = 256, from = 0, to = model.layers.length - 1): number[] {
  const N = x.shape[0];
  if (N < 1) throw new Error('recalibrate: no calibration inputs');
  const was = model.training;
  model.eval();
  const drift: number[] = [];
  try {
    noGrad(() => {
      let hs: Tensor[] = [];
      for (let s = 0; s < N; s += batch) hs.push(slice(x, s, Math.min(N, s + batch)));
      for (let j = from; j < model.layers.length; j++) {
        const bn = model.layers[j];
        if (bn instanceof BatchNorm) {
          const C = bn.numFeatures;
          const sum = new Float64Array(C), sq = new Float64Array(C);
          let count = 0;
          for (const h of hs) count += channelSums(h, sum, sq);
          let d = 0;
          for (let c = 0; c < C; c++) {
            const mean = sum[c] / count;
            const v = Math.max(0, sq[c] / count - mean * mean);
            d += Math.abs(0.5 * Math.log((v + bn.eps) / (bn.runningVar.data[c] + bn.eps)));
            bn.runningMean.data[c] = mean;
            bn.runningVar.data[c] = v;
          }
          drift.push(d / C);
        }
        if (!model.layers.slice(j + 1, to + 1).some((m) => m instanceof BatchNorm)) break;
        hs = hs.map((h) => bn.forward(h));
      }
    });
  } finally {
    model.train(was);
  }
  return drift;
}
