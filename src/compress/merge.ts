// Neuron merging (docs/method.md). For each hidden unit layer L (Linear or Conv2d) of a
// Sequential model: fold a batch norm that follows L into it, describe each unit by [incoming weights,
// bias], cluster the units into k groups, replace each group by one unit whose incoming weights and
// bias are the members' mean, and in the next unit layer sum the weights that read the members (a
// column of a Linear, an input channel of a Conv2d, or, through a Flatten, the block of columns of
// that channel). Where members are exact copies the merged network computes the same function.
import { BatchNorm, Conv2d, Linear, Sequential } from '../nn/layers.js';
import type { Arch } from '../models/index.js';
import { Rng } from '../tensor/rng.js';
import { Tensor } from '../tensor/tensor.js';
import { agglomerative } from './agglomerative.js';
import type { Linkage } from './agglomerative.js';
import { kmeans } from './kmeans.js';
import { repairMerged, unitMoments } from './repair.js';
import { foldedUnits, isUnit, mergeSites, setIdentityNorm, unitsAfter, unitVectors } from './sites.js';
import type { MergeSite } from './sites.js';

export type ClusterMethod = 'kmeans' | Linkage;

export interface ClusterOptions {
  method?: ClusterMethod;
  seed?: number;
  nInit?: number;
}

/** group the units of one site into k clusters; labels[u] in [0, k) */
export function clusterUnits(model: Sequential, site: MergeSite, k: number, o: ClusterOptions = {}): Int32Array {
  const n = site.units;
  if (k >= n) return Int32Array.from({ length: n }, (_, i) => i);
  const { X, d } = unitVectors(model, site);
  const method = o.method ?? 'kmeans';
  if (method === 'kmeans') return kmeans(X, n, d, k, { seed: o.seed ?? 0, nInit: o.nInit ?? 10 }).labels;
  return agglomerative(X, n, d, { linkage: method, k }).labels;
}

/** apply a grouping to one site: layer i gets one unit per group, its batch norm becomes the identity
 * (its effect is folded into the weights), the next unit layer sums the members' inputs */
export function applyMerge(model: Sequential, site: MergeSite, labels: Int32Array): void {
  const n = site.units;
  if (labels.length !== n) throw new Error(`merge: ${labels.length} labels for ${n} units of layer ${site.index}`);
  const k = labels.reduce((m, v) => Math.max(m, v), -1) + 1;
  const counts = new Int32Array(k);
  for (const g of labels) {
    if (!Number.isInteger(g) || g < 0) throw new Error(`merge: bad group label ${g}`);
    counts[g]++;
  }
  if (counts.some((c) => c === 0)) throw new Error(`merge: group labels of layer ${site.index} must cover 0..${k - 1} without gaps`);
  const { w, b, fanIn } = foldedUnits(model, site);
  const layer = model.layers[site.index] as Linear | Conv2d;
  // this layer: the members' mean
  const nw = new Float32Array(k * fanIn), nb = new Float32Array(k);
  for (let u = 0; u < n; u++) {
    const g = labels[u], inv = 1 / counts[g];
    for (let q = 0; q < fanIn; q++) nw[g * fanIn + q] += w[u * fanIn + q] * inv;
    nb[g] += b[u] * inv;
  }
  const wshape = [k, ...layer.weight.shape.slice(1)];
  layer.setTensor('weight', new Tensor(nw, wshape));
  if (layer.bias) layer.setTensor('bias', new Tensor(nb, [k]));
  else {
    // a conv without bias (VGG) gets one: the folded batch norm's shift lives there now
    const withBias = layer instanceof Conv2d
      ? new Conv2d(wshape[1], k, wshape[2], { stride: layer.stride, padding: layer.padding, rng: new Rng(0) })
      : new Linear(wshape[1], k, { rng: new Rng(0) });
    withBias.setTensor('weight', new Tensor(nw, wshape));
    withBias.setTensor('bias', new Tensor(nb, [k]));
    model.replace(site.index, withBias);
  }
  if (site.bn !== null) {
    const bn = model.layers[site.bn] as BatchNorm;
    // The batch norm's effect is in the weights now; it becomes an identity in eval mode that also
    // knows the merged unit's output statistics, so that in training mode (fine-tuning) normalising
    // by the batch's statistics gives back about the same values instead of a unit-variance,
    // zero-mean signal. A member's folded output has mean beta_u and spread |gamma_u|·√(var/(var+eps));
    // the merged unit gets the members' averages μ, σ: running mean μ, running variance σ², scale
    // √(σ² + eps), shift μ, so (z − μ)/√(σ² + eps)·√(σ² + eps) + μ = z.
    const mu = new Float32Array(k), sd = new Float32Array(k);
    for (let u = 0; u < n; u++) {
      const g = labels[u], inv = 1 / counts[g];
      const rv = bn.runningVar.data[u];
      mu[g] += bn.bias.data[u] * inv;
      sd[g] += Math.abs(bn.weight.data[u]) * Math.sqrt(rv / (rv + bn.eps)) * inv;
    }
    setIdentityNorm(bn, mu, sd);
  }
  // the next layer: sum the weights that read the members
  const next = model.layers[site.next] as Linear | Conv2d;
  const [O, I] = next.weight.shape;
  const per = next.weight.size / (O * I); // kernel positions of a conv (1 for a linear)
  const S = site.spatial;
  const newI = k * S;
  const src = next.weight.data;
  const out = new Float32Array(O * newI * per);
  for (let o = 0; o < O; o++) {
    for (let u = 0; u < n; u++) {
      const g = labels[u];
      for (let s = 0; s < S; s++) {
        const from = ((o * I + u * S + s) * per), to = ((o * newI + g * S + s) * per);
        for (let q = 0; q < per; q++) out[to + q] += src[from + q];
      }
    }
  }
  next.setTensor('weight', new Tensor(out, [O, newI, ...next.weight.shape.slice(2)]));
}

export interface MergeOptions extends ClusterOptions {
  /** merge ratio per site (or one for all): k = max(1, round((1 - r) n)) */
  ratio?: number | number[];
  /** cut each layer's dendrogram at this distance (agglomerative methods only): k follows from the data */
  threshold?: number;
  /** keep about this fraction of the model's parameters, with one merge ratio for every layer */
  budget?: number;
  /** cluster every layer on the original network first ('all'), or layer by layer as merged ('sequential') */
  mode?: 'all' | 'sequential';
  /** calibration inputs: after merging, restore each merged unit's output mean and spread to its
   * members' (./repair.ts); not part of the paper's method */
  repair?: Tensor;
}

/** parameters of the model if each site had ks[i] units (weights, biases, batch-norm scale and shift) */
export function paramsWithUnits(model: Sequential, ks: number[]): number {
  const sites = mergeSites(model);
  const outOf = new Map<number, number>(), inOf = new Map<number, number>();
  sites.forEach((s, i) => {
    outOf.set(s.index, ks[i]);
    inOf.set(s.next, ks[i] * s.spatial);
    if (s.bn !== null) outOf.set(s.bn, ks[i]);
  });
  let total = 0;
  model.layers.forEach((m, i) => {
    if (m instanceof Linear || m instanceof Conv2d) {
      const [O, I] = m.weight.shape;
      const per = m.weight.size / (O * I);
      const o = outOf.get(i) ?? O, inp = inOf.get(i) ?? I;
      total += o * inp * per + (m.bias || outOf.has(i) ? o : 0);
    } else if (m instanceof BatchNorm) total += 2 * (outOf.get(i) ?? m.weight.shape[0]);
  });
  return total;
}

/** the one merge ratio that keeps at most `budget` of the parameters (bisection) */
export function ratioForBudget(model: Sequential, budget: number): number {
  if (!(budget > 0 && budget <= 1)) throw new Error(`merge budget must be in (0, 1], got ${budget}`);
  const sites = mergeSites(model);
  const before = model.numParameters();
  const fits = (r: number) => paramsWithUnits(model, sites.map((s) => unitsAfter(s.units, r))) <= budget * before;
  if (fits(0)) return 0;
  let lo = 0, hi = 0.999999;
  if (!fits(hi)) throw new Error(`merge budget ${budget} is below what one unit per layer keeps`);
  for (let it = 0; it < 50; it++) {
    const mid = (lo + hi) / 2;
    if (fits(mid)) hi = mid;
    else lo = mid;
  }
  return hi;
}

export interface MergeReport {
  sites: { index: number; layer: string; before: number; after: number; labels: Int32Array }[];
  /** with `repair`: per site, the mean |log| of the spread corrections */
  repair?: number[];
}

/** merge the hidden layers of a model in place; returns the groups of each layer */
export function mergeModel(model: Sequential, o: MergeOptions): MergeReport {
  const sites = mergeSites(model);
  const given = [o.ratio, o.threshold, o.budget].filter((v) => v !== undefined).length;
  if (given !== 1) throw new Error('merge: give exactly one of ratio, threshold and budget');
  const method = o.method ?? 'kmeans';
  if (o.threshold !== undefined && method === 'kmeans') throw new Error('merge: a distance threshold needs an agglomerative method (ward, average, complete)');
  let ks: number[];
  if (o.threshold !== undefined) ks = sites.map(() => -1);
  else {
    const r = o.budget !== undefined ? ratioForBudget(model, o.budget) : o.ratio!;
    const ratios = typeof r === 'number' ? sites.map(() => r) : r;
    if (ratios.length !== sites.length) throw new Error(`merge: ${ratios.length} ratios for ${sites.length} mergeable layers`);
    ks = sites.map((s, i) => unitsAfter(s.units, ratios[i]));
  }
  const group = (site: MergeSite, i: number): Int32Array => {
    if (o.threshold === undefined) return clusterUnits(model, site, ks[i], { ...o, seed: (o.seed ?? 0) + i });
    const { X, d } = unitVectors(model, site);
    const labels = agglomerative(X, site.units, d, { linkage: method as Linkage, threshold: o.threshold }).labels;
    ks[i] = labels.reduce((m, v) => Math.max(m, v), -1) + 1;
    return labels;
  };
  const report: MergeReport = { sites: [] };
  const describe = (i: number) => model.layers[i].describe();
  const moments = o.repair ? unitMoments(model, o.repair) : null;
  if ((o.mode ?? 'all') === 'all') {
    const groups = sites.map((s, i) => group(s, i));
    sites.forEach((s, i) => report.sites.push({ index: s.index, layer: describe(s.index), before: s.units, after: ks[i], labels: groups[i] }));
    // later sites' next-layer sums see the earlier merges; each site's own rows are unaffected
    sites.forEach((s, i) => applyMerge(model, mergeSites(model)[i], groups[i]));
  } else {
    for (let i = 0; i < sites.length; i++) {
      const s = mergeSites(model)[i];
      const labels = group(s, i);
      report.sites.push({ index: s.index, layer: describe(s.index), before: s.units, after: ks[i], labels });
      applyMerge(model, s, labels);
    }
  }
  if (moments) report.repair = repairMerged(model, moments, report.sites.map((x) => x.labels), o.repair!);
  return report;
}

/** the architecture description of a (merged) model built from `arch` */
export function archOf(model: Sequential, arch: Arch): Arch {
  const outs = model.layers.filter(isUnit).map((l) => l.weight.shape[0]);
  switch (arch.model) {
    case 'lenet5':
      return { ...arch, widths: [outs[0], outs[1], outs[2]] };
    case 'vgg16': {
      const first = model.layers.find(isUnit) as Conv2d;
      return { ...arch, widths: outs.slice(0, 13), fc: outs[13], ...(first.bias ? { convBias: true } : {}) };
    }
    case 'dbn':
      return { ...arch, widths: outs.slice(0, -1) };
  }
}
