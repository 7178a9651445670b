// The teaching view: for each merged layer, the clusters found (how many, how big, how spread), and
// how far merging that layer alone moved what the next layer computes on real inputs.
import { buildModel } from '../models/index.js';
import type { Arch } from '../models/index.js';
import { Conv2d } from '../nn/layers.js';
import type { Sequential } from '../nn/layers.js';
import { Tensor } from '../tensor/tensor.js';
import { noGrad } from '../tensor/autograd.js';
import type { Merge } from './agglomerative.js';
import { applyMerge, scalesAt } from './merge.js';
import type { ApplyOptions } from './merge.js';
import { directions, foldedUnits, mergeSites, unitVectors } from './sites.js';

export interface LayerExplanation {
  layer: string;
  units: number;
  clusters: number;
  /** members per cluster */
  sizes: { min: number; median: number; max: number; singletons: number };
  /** mean distance of a unit to its cluster's centre, relative to the mean norm of the units (for a
   * rule that merges by direction, of the units' directions) */
  spread: number;
  /** ||Δz|| / ||z|| of the next unit layer's output on the inputs, when only this layer is merged */
  outputShift: number;
  /** the units in the plane of their first two principal components (of the vectors they are
   * clustered by), with their groups, and the share of the variance each axis holds */
  map: UnitMap;
  /** agglomerative methods: the layer's whole dendrogram (merges in height order), cut at `clusters` */
  tree?: Merge[];
  /** with `replacements`: the incoming weights (batch norm folded, no bias) of the unit that stands for
   * each group when this layer alone is merged, row g for group g (clusters × fan-in) */
  replacement?: Float32Array;
}

/** what explainMerge computes besides each layer's figures */
export interface ExplainDetail {
  /** the unit maps (default true; a sweep over ratios draws its maps once) */
  map?: boolean;
  /** each group's replacing unit */
  replacements?: boolean;
  /** the original's next-layer outputs on x, kept across calls on the same model and inputs */
  reference?: Map<number, Tensor>;
}

export interface UnitMap {
  x: number[];
  y: number[];
  group: number[];
  explained: [number, number];
  /** the rules that keep units (medoid, compensate, fitted, lstsq, refit): the unit each group keeps,
   * which the page marks instead of a mean */
  kept?: number[];
}

/**
 * The n rows of X (n, d) projected on their first two principal components: power iteration on the
 * centred rows' Gram matrix (n × n), the second component after deflating the first.
 */
export function pcaMap(X: Float32Array, n: number, d: number, group: ArrayLike<number>): UnitMap {
  const mean = new Float64Array(d);
  for (let u = 0; u < n; u++) for (let j = 0; j < d; j++) mean[j] += X[u * d + j] / n;
  const G = new Float64Array(n * n);
  let total = 0;
  for (let a = 0; a < n; a++) {
    for (let b = 0; b <= a; b++) {
      let v = 0;
      for (let j = 0; j < d; j++) v += (X[a * d + j] - mean[j]) * (X[b * d + j] - mean[j]);
      G[a * n + b] = G[b * n + a] = v;
    }
    total += G[a * n + a];
  }
  const comps: { vec: Float64Array; val: number }[] = [];
  for (let c = 0; c < 2; c++) {
    let v = Float64Array.from({ length: n }, (_, i) => 1 + ((i * 7919) % 13) / 13); // fixed start
    let val = 0;
    for (let it = 0; it < 200; it++) {
      const w = new Float64Array(n);
      for (let a = 0; a < n; a++) {
        let s = 0;
        for (let b = 0; b < n; b++) s += G[a * n + b] * v[b];
        w[a] = s;
      }
      for (const p of comps) {
        let dotp = 0;
        for (let a = 0; a < n; a++) dotp += w[a] * p.vec[a];
        for (let a = 0; a < n; a++) w[a] -= dotp * p.vec[a];
      }
      const norm = Math.sqrt(w.reduce((s2, x) => s2 + x * x, 0));
      if (norm === 0) break;
      val = norm;
      v = w.map((x) => x / norm);
    }
    comps.push({ vec: v, val });
  }
  // the coordinates along a component of the Gram matrix: its eigenvector times √eigenvalue
  const coord = (p: { vec: Float64Array; val: number }) => Array.from(p.vec, (x) => x * Math.sqrt(p.val));
  return {
    x: coord(comps[0]), y: coord(comps[1]), group: Array.from(group),
    explained: [total > 0 ? comps[0].val / total : 0, total > 0 ? comps[1].val / total : 0],
  };
}

function forwardTo(model: Sequential, x: Tensor, last: number): Tensor {
  return noGrad(() => {
    let h = x;
    for (let i = 0; i <= last; i++) h = model.layers[i].forward(h);
    return h;
  });
}

/** explain the groups `labels[q]` of each mergeable layer q of `model` (unmerged), merged as `apply(q)`
 * says (default the mean), on inputs x */
export function explainMerge(model: Sequential, arch: Arch, labels: Int32Array[], x: Tensor, apply: (q: number) => ApplyOptions = () => ({}), detail: ExplainDetail = {}): LayerExplanation[] {
  const sites = mergeSites(model);
  if (labels.length !== sites.length) throw new Error(`explain: ${labels.length} groupings for ${sites.length} mergeable layers`);
  model.eval();
  return sites.map((site, q) => {
    const lab = labels[q];
    const k = lab.reduce((m, v) => Math.max(m, v), -1) + 1;
    const raw = unitVectors(model, site);
    const { n, d } = raw;
    const how = apply(q);
    const X = scalesAt(model, site, how.rule) ? directions(raw.X, n, d).D : raw.X;
    const vec = (u: number, j: number) => X[u * d + j];
    const centre = new Float64Array(k * d), count = new Int32Array(k);
    for (let u = 0; u < n; u++) {
      count[lab[u]]++;
      for (let j = 0; j < d; j++) centre[lab[u] * d + j] += vec(u, j);
    }
    for (let g = 0; g < k; g++) for (let j = 0; j < d; j++) centre[g * d + j] /= Math.max(1, count[g]);
    let dist = 0, norm = 0;
    for (let u = 0; u < n; u++) {
      let s = 0, t = 0;
      for (let j = 0; j < d; j++) {
        s += (vec(u, j) - centre[lab[u] * d + j]) ** 2;
        t += vec(u, j) ** 2;
      }
      dist += Math.sqrt(s);
      norm += Math.sqrt(t);
    }
    const sizes = Array.from(count).sort((p, r) => p - r);
    // merge only this layer in a copy, and compare the next unit layer's output
    const copy = buildModel(arch, 0);
    copy.loadStateDict(model.stateDict());
    copy.eval();
    applyMerge(copy, mergeSites(copy)[q], lab, how);
    const ref = detail.reference;
    const z0 = ref?.get(q) ?? forwardTo(model, x, site.next), z1 = forwardTo(copy, x, site.next);
    ref?.set(q, z0);
    let dz = 0, zz = 0;
    for (let i = 0; i < z0.size; i++) {
      dz += (z1.data[i] - z0.data[i]) ** 2;
      zz += z0.data[i] ** 2;
    }
    return {
      layer: model.layers[site.index].describe(), units: n, clusters: k,
      sizes: { min: sizes[0], median: sizes[Math.floor((k - 1) / 2)], max: sizes[k - 1], singletons: sizes.filter((c) => c === 1).length },
      spread: dist / Math.max(1e-30, norm),
      outputShift: Math.sqrt(dz / Math.max(1e-30, zz)),
      map: detail.map === false ? { x: [], y: [], group: Array.from(lab), explained: [0, 0] } : { ...pcaMap(X, n, d, lab), ...(how.representatives ? { kept: Array.from(how.representatives) } : {}) },
      ...(detail.replacements ? { replacement: foldedUnits(copy, mergeSites(copy)[q]).w } : {}),
    };
  });
}

/** the first layer's filters as a report shows them: each unit's incoming weights (batch norm folded),
 * its group, and each merged unit's, for convolutions only */
export interface FilterView {
  /** channels, rows, columns of one filter */
  shape: [number, number, number];
  units: number[][];
  group: number[];
  merged: number[][];
}

export function firstFilters(original: Sequential, merged: Sequential, labels: Int32Array): FilterView | null {
  const site = mergeSites(original)[0], after = mergeSites(merged)[0];
  const layer = original.layers[site.index];
  if (!(layer instanceof Conv2d)) return null;
  const [, C, kh, kw] = layer.weight.shape;
  const a = foldedUnits(original, site), b = foldedUnits(merged, after);
  const rows = (w: Float32Array, n: number, fan: number) => Array.from({ length: n }, (_, u) => Array.from(w.subarray(u * fan, (u + 1) * fan), (v) => +v.toPrecision(5)));
  return { shape: [C, kh, kw], units: rows(a.w, site.units, a.fanIn), group: Array.from(labels), merged: rows(b.w, after.units, b.fanIn) };
}
