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
import { noGrad, Tensor } from '../tensor/tensor.js';

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
 * Re-estimate the running mean and variance of every batch norm of `model` on the inputs `x` (in
 * chunks of `batch`), layer by layer. Returns, per batch norm, the mean |log| of the ratio of the new
 * to the old running standard deviation: how stale the statistics were.
 */
export function recalibrateBatchNorm(model: Sequential, x: Tensor, batch = 256): number[] {
  const N = x.shape[0];
  if (N < 1) throw new Error('recalibrate: no calibration inputs');
  const was = model.training;
  model.eval();
  const drift: number[] = [];
  try {
    noGrad(() => {
      model.layers.forEach((bn, j) => {
        if (!(bn instanceof BatchNorm)) return;
        const C = bn.numFeatures;
        const sum = new Float64Array(C), sq = new Float64Array(C);
        let count = 0;
        for (let s = 0; s < N; s += batch) {
          let h = slice(x, s, Math.min(N, s + batch));
          for (let i = 0; i < j; i++) h = model.layers[i].forward(h);
          count += channelSums(h, sum, sq);
        }
        let d = 0;
        for (let c = 0; c < C; c++) {
          const mean = sum[c] / count;
          const v = Math.max(0, sq[c] / count - mean * mean);
          d += Math.abs(0.5 * Math.log((v + bn.eps) / (bn.runningVar.data[c] + bn.eps)));
          bn.runningMean.data[c] = mean;
          bn.runningVar.data[c] = v;
        }
        drift.push(d / C);
      });
    });
  } finally {
    model.train(was);
  }
  return drift;
}
