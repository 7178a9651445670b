// Where a layer can be merged (or pruned): the hidden unit layers of a Sequential (Linear or Conv2d),
// the batch norm that follows each, and the unit layer that reads it; what describes a unit (its
// incoming weights and bias with the batch norm folded in); and the identity batch norm a merged
// layer leaves behind. merge, prune, repair and explain all start from here.
import { AvgPool2d, BatchNorm, Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, Sequential } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import { Tensor } from '../tensor/tensor.js';

/** one mergeable layer: a unit layer, its batch norm if one follows, and the unit layer reading it */
export interface MergeSite {
  index: number; // position in model.layers
  bn: number | null;
  next: number;
  /** spatial positions per channel where a Flatten sits between a conv and the next Linear (else 1) */
  spatial: number;
  units: number;
}

export function isUnit(m: Module): m is Linear | Conv2d {
  return m instanceof Linear || m instanceof Conv2d;
}

/** the hidden unit layers of a Sequential, in order (the output layer is never among them) */
export function mergeSites(model: Sequential): MergeSite[] {
  const L = model.layers;
  const units = L.map((m, i) => (isUnit(m) ? i : -1)).filter((i) => i >= 0);
  const sites: MergeSite[] = [];
  for (let q = 0; q < units.length - 1; q++) {
    const i = units[q], j = units[q + 1];
    const bn = L[i + 1] instanceof BatchNorm ? i + 1 : null;
    for (let t = i + 1; t < j; t++) {
      if (L[t] instanceof BatchNorm && t !== bn) throw new Error(`merge: layer ${t} (${L[t].describe()}) is a batch norm that does not directly follow a unit layer; not supported`);
    }
    const flat = L.slice(i + 1, j).some((m) => m instanceof Flatten);
    const cur = L[i] as Linear | Conv2d, nxt = L[j] as Linear | Conv2d;
    const out = cur.weight.shape[0];
    const inNext = nxt.weight.shape[1];
    let spatial = 1;
    if (cur instanceof Conv2d && nxt instanceof Linear) {
      if (!flat) throw new Error(`merge: conv layer ${i} feeds linear layer ${j} without a Flatten`);
      if (inNext % out !== 0) throw new Error(`merge: linear layer ${j} reads ${inNext} features, not a multiple of the ${out} channels of layer ${i}`);
      spatial = inNext / out;
    } else if (inNext !== out) {
      throw new Error(`merge: layer ${j} reads ${inNext} inputs but layer ${i} has ${out} units`);
    }
    sites.push({ index: i, bn, next: j, spatial, units: out });
  }
  return sites;
}

/** the incoming weights and bias of layer i with its batch norm folded in: w (units, fanIn), b (units) */
export function foldedUnits(model: Sequential, site: MergeSite): { w: Float32Array; b: Float32Array; fanIn: number } {
  const layer = model.layers[site.index] as Linear | Conv2d;
  const n = site.units;
  const fanIn = layer.weight.size / n;
  const w = Float32Array.from(layer.weight.data);
  const b = layer.bias ? Float32Array.from(layer.bias.data) : new Float32Array(n);
  if (site.bn !== null) {
    const bn = model.layers[site.bn] as BatchNorm;
    for (let u = 0; u < n; u++) {
      const s = bn.weight.data[u] / Math.sqrt(bn.runningVar.data[u] + bn.eps);
      for (let q = 0; q < fanIn; q++) w[u * fanIn + q] *= s;
      b[u] = (b[u] - bn.runningMean.data[u]) * s + bn.bias.data[u];
    }
  }
  return { w, b, fanIn };
}

/** the vectors that describe the units of a site, one row each: [folded incoming weights, bias] (n, d) */
export function unitVectors(model: Sequential, site: MergeSite): { X: Float32Array; n: number; d: number } {
  const { w, b, fanIn } = foldedUnits(model, site);
  const n = site.units, d = fanIn + 1;
  const X = new Float32Array(n * d);
  for (let u = 0; u < n; u++) {
    X.set(w.subarray(u * fanIn, (u + 1) * fanIn), u * d);
    X[u * d + fanIn] = b[u];
  }
  return { X, n, d };
}

/** k for a merge ratio r: max(1, round((1 - r) n)) */
export function unitsAfter(n: number, ratio: number): number {
  if (!(ratio >= 0 && ratio < 1)) throw new Error(`merge ratio must be in [0, 1), got ${ratio}`);
  return Math.max(1, Math.round((1 - ratio) * n));
}

/**
 * k rounded to a multiple of m (runtimes such as onnxruntime run convolutions of 8 or 16 channels a
 * block much faster than odd widths): the nearest multiple (never below m), or with `down` the one
 * below, so that a budget stays met; never above n. Left as it is: a layer kept whole, one of no more
 * than m units, and with `down` a k below m (rounding it up would break the budget, down would leave
 * no unit); roundingLeft says which and why.
 */
export function roundUnits(k: number, n: number, m: number, down = false): number {
  if (!Number.isInteger(m) || m < 1) throw new Error(`a multiple of units must be a positive integer, got ${m}`);
  if (roundingLeft(k, n, m, down) !== null || k >= n) return Math.min(n, k);
  const r = Math.max(m, (down ? Math.floor(k / m) : Math.round(k / m)) * m);
  return r > n ? n - (n % m) : r;
}

/** why roundUnits leaves k as it is (words for a note), or null where it rounds it (or the layer is
 * kept whole) */
export function roundingLeft(k: number, n: number, m: number, down = false): string | null {
  if (k >= n || m === 1) return null;
  if (n <= m) return `it has ${n} units, no more than ${m}`;
  if (down && k < m) return `${k} units are fewer than ${m}, and a budget is not rounded up`;
  return null;
}

/** a note per layer that --multiple-of left unrounded, naming the layer, its units and why */
export function roundingNotes(layers: string[], ks: number[], n: number[], m: number, down: boolean): string[] {
  return layers.flatMap((layer, i) => {
    const why = roundingLeft(ks[i], n[i], m, down);
    return why === null ? [] : [`${layer} keeps ${ks[i]} of ${n[i]} units, not a multiple of ${m}: ${why}`];
  });
}

/** make a batch norm the identity in eval mode that expects outputs of mean mu and spread sd */
export function setIdentityNorm(bn: BatchNorm, mu: ArrayLike<number>, sd: ArrayLike<number>): void {
  const k = mu.length;
  const f = (fn: (i: number) => number) => new Tensor(Float32Array.from({ length: k }, (_, i) => fn(i)), [k]);
  bn.setTensor('runningMean', f((i) => mu[i]));
  bn.setTensor('runningVar', f((i) => sd[i] * sd[i]));
  bn.setTensor('weight', f((i) => Math.sqrt(sd[i] * sd[i] + bn.eps)));
  bn.setTensor('bias', f((i) => mu[i]));
}

/**
 * Whether what lies between a site's units and the layer that reads them is positively homogeneous
 * (f(s·z) = s·f(z) for s > 0: ReLU, max-pool, average pool, flatten, dropout; the site's own batch norm is folded
 * into the units): then a unit is its direction up to a positive scale. Returns null where it is, else
 * the first layer that is not (a sigmoid, a tanh).
 */
export function nonHomogeneousAfter(model: Sequential, site: MergeSite): string | null {
  for (let t = site.index + 1; t < site.next; t++) {
    if (t === site.bn) continue;
    const m = model.layers[t];
    if (!(m instanceof ReLU || m instanceof MaxPool2d || m instanceof AvgPool2d || m instanceof Flatten || m instanceof Dropout)) return m.describe();
  }
  return null;
}

/** rows of X (n, d) scaled to unit length (a zero row stays zero); returns the rows and their norms */
export function directions(X: Float32Array, n: number, d: number): { D: Float32Array; norms: Float64Array } {
  const D = new Float32Array(n * d), norms = new Float64Array(n);
  for (let u = 0; u < n; u++) {
    let s = 0;
    for (let q = 0; q < d; q++) s += X[u * d + q] * X[u * d + q];
    norms[u] = Math.sqrt(s);
    const inv = norms[u] > 0 ? 1 / norms[u] : 0;
    for (let q = 0; q < d; q++) D[u * d + q] = X[u * d + q] * inv;
  }
  return { D, norms };
}
