// Statistics repair after merging (an option, not part of the paper's method): a merged unit computes
// the mean of its members' pre-activations, whose spread is smaller than the members' own where they
// are not identical, and each later layer sees inputs shifted by the merges before it. On a few
// calibration inputs, this restores for every merged unit, layer by layer, the per-unit mean and
// standard deviation of the original network's members (their averages over the cluster), by an
// affine change of the unit's weights and bias: z' = (z − μ_merged)·σ_target/σ_merged + μ_target.
// The idea is REPAIR (Jordan et al., 2022, for interpolating two networks) applied within one network.
import type { BatchNorm, Conv2d, Linear, Sequential } from '../nn/layers.js';
import { Tensor } from '../tensor/tensor.js';
import { noGrad } from '../tensor/autograd.js';
import { mergeSites, setIdentityNorm } from './sites.js';
import { channelSums } from './recalibrate.js';

/** per channel (axis 1) mean and standard deviation of a (N, C, ...) activation */
function channelMoments(z: Tensor): { mean: Float64Array; std: Float64Array } {
  const C = z.shape[1];
  const mean = new Float64Array(C), sq = new Float64Array(C);
  const M = channelSums(z, mean, sq);
  const std = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    mean[c] /= M;
    std[c] = Math.sqrt(Math.max(0, sq[c] / M - mean[c] * mean[c]));
  }
  return { mean, std };
}

/** the output of layer `last` (inclusive) on x, in eval mode */
function activationAt(model: Sequential, x: Tensor, last: number): Tensor {
  model.eval();
  return noGrad(() => {
    let h = x;
    for (let i = 0; i <= last; i++) h = model.layers[i].forward(h);
    return h;
  });
}

/** where a site's pre-activation is read: after its batch norm when it has one */
const tap = (s: { index: number; bn: number | null }) => s.bn ?? s.index;

/** the members' statistics of every mergeable layer of the (unmerged) model, on inputs x */
export function unitMoments(model: Sequential, x: Tensor): { mean: Float64Array; std: Float64Array }[] {
  return mergeSites(model).map((s) => channelMoments(activationAt(model, x, tap(s))));
}

/**
 * Repair a merged model in place: `before` are unitMoments of the original, `labels[q]` the groups of
 * site q; x the calibration inputs. Returns, per site, the mean |log(σ_target/σ_merged)| it corrected.
 */
export function repairMerged(merged: Sequential, before: { mean: Float64Array; std: Float64Array }[], labels: Int32Array[], x: Tensor): number[] {
  const sites = mergeSites(merged);
  if (sites.length !== before.length || labels.length !== sites.length) throw new Error(`repair: ${before.length} statistics and ${labels.length} groupings for ${sites.length} mergeable layers`);
  const changes: number[] = [];
  sites.forEach((site, q) => {
    const lab = labels[q];
    const k = site.units;
    const tMean = new Float64Array(k), tStd = new Float64Array(k), cnt = new Float64Array(k);
    lab.forEach((g, u) => {
      tMean[g] += before[q].mean[u];
      tStd[g] += before[q].std[u];
      cnt[g]++;
    });
    for (let g = 0; g < k; g++) {
      tMean[g] /= Math.max(1, cnt[g]);
      tStd[g] /= Math.max(1, cnt[g]);
    }
    const bn = site.bn !== null ? (merged.layers[site.bn] as BatchNorm) : null;
    if (bn) {
      // the merged layer's batch norm is an identity in eval mode after merging; repair acts on the
      // unit layer, then gives the batch norm the repaired statistics
      const w = bn.weight.data, b = bn.bias.data, rm = bn.runningMean.data, rv = bn.runningVar.data;
      for (let g = 0; g < k; g++) {
        if (Math.abs(w[g] - Math.sqrt(rv[g] + bn.eps)) > 1e-5 * Math.max(1, w[g]) || Math.abs(b[g] - rm[g]) > 1e-6 * Math.max(1, Math.abs(rm[g]))) {
          throw new Error(`repair: the batch norm of layer ${site.index} is not an identity; repair runs right after merging`);
        }
      }
    }
    const now = channelMoments(activationAt(merged, x, tap(site)));
    const layer = merged.layers[site.index] as Linear | Conv2d;
    if (!layer.bias) throw new Error(`repair: layer ${site.index} has no bias`);
    const W = layer.weight.data, b = layer.bias.data;
    const fan = layer.weight.size / k;
    let change = 0;
    for (let g = 0; g < k; g++) {
      const s = now.std[g] > 1e-8 && tStd[g] > 0 ? tStd[g] / now.std[g] : 1;
      for (let j = 0; j < fan; j++) W[g * fan + j] *= s;
      b[g] = (b[g] - now.mean[g]) * s + tMean[g];
      change += Math.abs(Math.log(s));
    }
    if (bn) setIdentityNorm(bn, tMean, tStd);
    changes.push(change / k);
  });
  return changes;
}
