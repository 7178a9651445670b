// Neuron merging (docs/method.md). For each hidden unit layer L (Linear or Conv2d) of a
// Sequential model: fold a batch norm that follows L into it, describe each unit by [incoming weights,
// bias], group the units into k groups, replace each group by one unit, and in the next unit layer let
// that unit be read through the members' outgoing weights (a column of a Linear, an input channel of a
// Conv2d, or, through a Flatten, the block of columns of that channel). The paper's rule clusters the
// vectors and takes the members' mean, summing their outgoing weights; the other rules (MergeRule
// below) differ in how groups form and in the coefficient each member's outgoing weights get. Where
// members are exact copies every rule computes the same function as the original.
import { BatchNorm, Conv2d, Linear, Sequential } from '../nn/layers.js';
import { specsOf } from '../models/index.js';
import type { Arch } from '../models/index.js';
import { Rng } from '../tensor/rng.js';
import { Tensor } from '../tensor/tensor.js';
import { noGrad } from '../tensor/autograd.js';
import { stopIfInterrupted } from '../backend/native.js';
import { agglomerative } from './agglomerative.js';
import type { Linkage, Merge } from './agglomerative.js';
import { kmeans } from './kmeans.js';
import { l1Keep } from './prune.js';
import { recalibrateBatchNorm } from './recalibrate.js';
import { repairMerged, unitMoments } from './repair.js';
import { directions, isUnit, mergeSites, nonHomogeneousAfter, setIdentityNorm, unitsAfter, unitVectors } from './sites.js';
import type { MergeSite } from './sites.js';

export type ClusterMethod = 'kmeans' | Linkage;

/**
 * How a cluster becomes one unit (docs/method.md):
 * - 'mean' (the paper's): the members' mean incoming weights; the next layer reads the sum of their
 *   outgoing weights;
 * - 'scaled': clustered by direction; the merged unit points along the members' mean direction with their
 *   mean norm, and the next layer reads each member's outgoing weights times its norm and its cosine to
 *   that direction (over that mean norm): exact where members are positive multiples of each other;
 * - 'medoid': the cluster keeps its most representative real unit (the member most similar to the
 *   others), the others' outgoing weights added to it scaled by their norm and cosine to it; members
 *   less similar than `minSimilarity` are dropped instead.
 * - 'fitted': the groups of 'compensate' (below), each member's coefficient (and a constant shift into
 *   the next layer's bias) fitted by least squares to its activations on calibration inputs:
 *   a_i ≈ β_i·a_r + γ_i. It asks nothing of the path (a regression holds through a sigmoid too).
 * - 'compensate': no clustering of its own: keep the k units the L1-pruning baseline keeps, and merge every
 *   other unit into the kept unit it points most nearly along (cosine of the folded vectors), its
 *   outgoing weights added scaled by its norm and that cosine, or dropped below `minSimilarity` (Kim et
 *   al., NeurIPS 2020, "Neuron Merging"). With nothing similar enough it is exactly L1 pruning.
 * - 'lstsq': the kept units of 'compensate'; every other unit's activations regressed (ridge least
 *   squares) on all the kept units' at once, a_i ≈ Σ_g β_ig·a_g + γ_i, its outgoing weights spread over
 *   the kept units by those β and its constant part moved into the next layer's bias. The groups only
 *   name each unit's most correlated kept unit (reports, explain).
 * - 'refit': the kept units of 'compensate'; layer by layer, every unit's activations in the original
 *   network (kept ones too) regressed on the kept units' activations in the network as merged so far,
 *   a_u ≈ Σ_g β_ug·a'_kept[g] + γ_u, and the next layer reads the kept units through those β: each
 *   layer also absorbs the error the layers merged before it left in its inputs. On one layer alone it
 *   is 'lstsq' with the kept units refitted too.
 * Scaling needs a positively homogeneous path to the next layer (ReLU, max-pool); where a sigmoid or
 * tanh follows, 'scaled' merges by the mean and 'medoid' keeps its representative without scaling.
 */
export type MergeRule = 'mean' | 'scaled' | 'medoid' | 'fitted' | 'compensate' | 'lstsq' | 'refit';
export const MERGE_RULES: readonly MergeRule[] = ['mean', 'scaled', 'medoid', 'fitted', 'compensate', 'lstsq', 'refit'];

export interface ClusterOptions {
  method?: ClusterMethod;
  seed?: number;
  nInit?: number;
  rule?: MergeRule;
}

/** rules that keep the units L1 pruning keeps and fold the others into them */
export const keepsL1 = (rule?: MergeRule): boolean => rule === 'compensate' || rule === 'fitted' || rule === 'lstsq' || rule === 'refit';
/** rules that read the units' activations on calibration inputs */
export const readsActivations = (rule?: MergeRule): boolean => rule === 'fitted' || rule === 'lstsq' || rule === 'refit';

/** whether a site is merged by direction and scale: a scaling rule on a positively homogeneous path */
export function scalesAt(model: Sequential, site: MergeSite, rule: MergeRule = 'mean'): boolean {
  return rule !== 'mean' && nonHomogeneousAfter(model, site) === null;
}

/** the vectors a site's units are clustered by: as they are, or their directions where scaling applies */
function clusterVectors(model: Sequential, site: MergeSite, rule: MergeRule = 'mean'): { X: Float32Array; d: number } {
  const { X, d } = unitVectors(model, site);
  return { X: scalesAt(model, site, rule) ? directions(X, site.units, d).D : X, d };
}

/** group the units of one site into k clusters; labels[u] in [0, k) */
export function clusterUnits(model: Sequential, site: MergeSite, k: number, o: ClusterOptions = {}): Int32Array {
  return clusterSite(model, site, k, o).labels;
}

/** clusterUnits, with the whole dendrogram where the method is agglomerative */
function clusterSite(model: Sequential, site: MergeSite, k: number, o: ClusterOptions): { labels: Int32Array; tree?: Merge[] } {
  const n = site.units;
  const method = o.method ?? 'kmeans';
  if (k >= n && method === 'kmeans') return { labels: Int32Array.from({ length: n }, (_, i) => i) };
  const { X, d } = clusterVectors(model, site, o.rule);
  if (method === 'kmeans') return { labels: kmeans(X, n, d, k, { seed: o.seed ?? 0, nInit: o.nInit ?? 10 }).labels };
  const r = agglomerative(X, n, d, { linkage: method, k: Math.min(k, n) });
  return { labels: r.labels, tree: r.merges };
}

/** the activations a site's units feed the next layer with, on calibration inputs: a[(i·n + u)·S + s]
 * for input i, unit u and position s (S positions per unit: a conv's pixels, 1 for a linear) */
export interface SiteActivations {
  a: Float32Array;
  N: number;
  S: number;
}

export interface ApplyOptions {
  rule?: MergeRule;
  /** 'compensate': each group's kept unit */
  representatives?: Int32Array;
  /** 'fitted', 'lstsq': the site's activations in the original network; 'refit': in the network as
   * merged so far (the regressors) */
  activations?: SiteActivations;
  /** 'refit': the site's activations in the original network, which the kept units' `activations` are
   * fitted to (default: `activations` themselves) */
  target?: SiteActivations;
  /** 'medoid': members whose cosine to the representative is below this are dropped (default 0) */
  minSimilarity?: number;
}

/** what merging one site computes: the merged units' incoming vectors [w, b] (k, d), the coefficient
 * each member's outgoing weights get in the next layer, and the representative of each group (-1: none) */
interface MergePlan {
  V: Float64Array;
  coef: Float64Array;
  rep: Int32Array;
}

function dot(A: ArrayLike<number>, a: number, B: ArrayLike<number>, b: number, d: number): number {
  let s = 0;
  for (let q = 0; q < d; q++) s += A[a * d + q] * B[b * d + q];
  return s;
}

function planMerge(X: Float32Array, n: number, d: number, labels: Int32Array, k: number, rule: MergeRule, scale: boolean, minSimilarity: number, given?: Int32Array): MergePlan {
  const V = new Float64Array(k * d), coef = new Float64Array(n), rep = new Int32Array(k).fill(-1);
  const members: number[][] = Array.from({ length: k }, () => []);
  labels.forEach((g, u) => members[g].push(u));
  const { D, norms } = directions(X, n, d);
  for (let g = 0; g < k; g++) {
    const ms = members[g];
    if (rule === 'mean' || (rule === 'scaled' && !scale)) {
      for (const u of ms) for (let q = 0; q < d; q++) V[g * d + q] += X[u * d + q] / ms.length;
      for (const u of ms) coef[u] = 1;
    } else if (rule === 'scaled') {
      const c = new Float64Array(d);
      for (const u of ms) for (let q = 0; q < d; q++) c[q] += D[u * d + q];
      const len = Math.sqrt(c.reduce((a, v) => a + v * v, 0));
      const mean = ms.reduce((a, u) => a + norms[u], 0) / ms.length;
      if (len === 0 || mean === 0) continue; // directions that cancel (or zero units): nothing to keep
      for (let q = 0; q < d; q++) V[g * d + q] = (mean * c[q]) / len;
      for (const u of ms) coef[u] = (norms[u] * Math.max(0, dot(D, u, c, 0, d) / len)) / mean;
    } else {
      // medoid (and fitted): the member with the largest summed similarity to the others (cosine where scaling
      // applies, else minus the distance)
      let best = given ? given[g] : ms[0], bestScore = given ? Infinity : -Infinity;
      for (const u of given ? [] : ms) {
        let score = 0;
        for (const v of ms) {
          if (scale) score += dot(D, u, D, v, d);
          else {
            let e = 0;
            for (let q = 0; q < d; q++) e += (X[u * d + q] - X[v * d + q]) ** 2;
            score -= Math.sqrt(e);
          }
        }
        if (score > bestScore) [best, bestScore] = [u, score];
      }
      rep[g] = best;
      for (let q = 0; q < d; q++) V[g * d + q] = X[best * d + q];
      for (const u of ms) {
        const cos = dot(D, u, D, best, d);
        coef[u] = u === best ? 1 : cos < minSimilarity || cos <= 0 ? 0 : scale ? (norms[u] * cos) / norms[best] : 1;
      }
    }
  }
  return { V, coef, rep };
}

/** least squares a_u ≈ β_u·a_r + γ_u of each member u on its group's representative r, over every input
 * and position; β goes to the plan's coefficients, γ to `shift` (a representative with no variance
 * passes its members' means as shifts) */
function fitCoefficients(act: SiteActivations, n: number, labels: Int32Array, plan: MergePlan, shift: Float64Array): void {
  const { a, N, S } = act;
  if (a.length !== N * n * S) throw new Error(`merge: activations of ${a.length} values for ${N} inputs, ${n} units and ${S} positions`);
  const mean = new Float64Array(n);
  for (let i = 0; i < N; i++) for (let u = 0; u < n; u++) for (let s = 0; s < S; s++) mean[u] += a[(i * n + u) * S + s];
  for (let u = 0; u < n; u++) mean[u] /= N * S;
  const cov = new Float64Array(n), varR = new Float64Array(n);
  for (let i = 0; i < N; i++) {
    for (let u = 0; u < n; u++) {
      const r = plan.rep[labels[u]];
      if (r === u) continue;
      for (let s = 0; s < S; s++) {
        const dr = a[(i * n + r) * S + s] - mean[r];
        cov[u] += (a[(i * n + u) * S + s] - mean[u]) * dr;
        varR[u] += dr * dr;
      }
    }
  }
  for (let u = 0; u < n; u++) {
    const r = plan.rep[labels[u]];
    if (r === u) continue;
    const beta = varR[u] > 0 ? cov[u] / varR[u] : 0;
    plan.coef[u] = beta;
    shift[u] = mean[u] - beta * mean[r];
  }
}

/** ridge least squares of every unit outside `kept` on all kept units' centred activations:
 * a_u ≈ Σ_g β_ug·a_kept[g] + γ_u; returns the β as (unit, group, coefficient), γ in `shift`. Given
 * `target`, every unit's activations there (kept ones too) are regressed on the kept units' in `act` */
function regressOnKept(act: SiteActivations, n: number, kept: Int32Array, shift: Float64Array, target?: SiteActivations): { u: number; g: number; c: number }[] {
  const { a, N, S } = act;
  const k = kept.length, m = N * S;
  for (const t of target ? [act, target] : [act]) {
    if (t.a.length !== N * n * S || t.N !== N || t.S !== S) throw new Error(`merge: activations of ${t.a.length} values for ${N} inputs, ${n} units and ${S} positions`);
  }
  const meansOf = (x: Float32Array) => {
    const mean = new Float64Array(n);
    for (let i = 0; i < N; i++) for (let u = 0; u < n; u++) for (let s = 0; s < S; s++) mean[u] += x[(i * n + u) * S + s];
    for (let u = 0; u < n; u++) mean[u] /= m;
    return mean;
  };
  const mean = meansOf(a);
  const columnOf = (x: Float32Array, mu: Float64Array) => (u: number) => {
    const z = new Float64Array(m);
    for (let i = 0; i < N; i++) for (let s = 0; s < S; s++) z[i * S + s] = x[(i * n + u) * S + s] - mu[u];
    return z;
  };
  const col = columnOf(a, mean);
  const K = Array.from(kept, col);
  const G = new Float64Array(k * k);
  let tr = 0;
  for (let p = 0; p < k; p++) {
    for (let q = 0; q <= p; q++) {
      let v = 0;
      const x = K[p], y = K[q];
      for (let j = 0; j < m; j++) v += x[j] * y[j];
      G[p * k + q] = G[q * k + p] = v;
    }
    tr += G[p * k + p];
  }
  const ridge = (1e-5 * tr) / Math.max(1, k) + 1e-12;
  for (let p = 0; p < k; p++) G[p * k + p] += ridge;
  // Cholesky G = L·Lᵀ
  const L = new Float64Array(k * k);
  for (let p = 0; p < k; p++) {
    for (let q = 0; q <= p; q++) {
      let v = G[p * k + q];
      for (let r = 0; r < q; r++) v -= L[p * k + r] * L[q * k + r];
      L[p * k + q] = p === q ? Math.sqrt(Math.max(v, 1e-300)) : v / L[q * k + q];
    }
  }
  const isKept = new Uint8Array(n);
  if (!target) kept.forEach((u) => (isKept[u] = 1));
  const tMean = target ? meansOf(target.a) : mean;
  const tCol = target ? columnOf(target.a, tMean) : col;
  const out: { u: number; g: number; c: number }[] = [];
  for (let u = 0; u < n; u++) {
    if (isKept[u]) continue;
    const z = tCol(u);
    const b = new Float64Array(k);
    for (let p = 0; p < k; p++) {
      let v = 0;
      const x = K[p];
      for (let j = 0; j < m; j++) v += x[j] * z[j];
      b[p] = v;
    }
    // solve L y = b, Lᵀ β = y
    for (let p = 0; p < k; p++) {
      let v = b[p];
      for (let r = 0; r < p; r++) v -= L[p * k + r] * b[r];
      b[p] = v / L[p * k + p];
    }
    for (let p = k - 1; p >= 0; p--) {
      let v = b[p];
      for (let r = p + 1; r < k; r++) v -= L[r * k + p] * b[r];
      b[p] = v / L[p * k + p];
    }
    let sh = tMean[u];
    for (let g = 0; g < k; g++) {
      sh -= b[g] * mean[kept[g]];
      if (b[g] !== 0) out.push({ u, g, c: b[g] });
    }
    shift[u] = sh;
  }
  return out;
}

/** the activations each site's units feed the next layer with, on inputs x (eval mode); with `only`,
 * that site's alone (the forward pass stops there) */
export function siteActivations(model: Sequential, x: Tensor, only?: number): SiteActivations[] {
  const sites = mergeSites(model);
  const taps = new Map(sites.map((s, q) => [s.next - 1, q] as const).filter(([, q]) => only === undefined || q === only));
  const last = only === undefined ? model.layers.length - 1 : sites[only].next - 1;
  const out: SiteActivations[] = [];
  const was = model.training;
  model.eval();
  try {
    noGrad(() => {
      let h = x;
      model.layers.forEach((m, i) => {
        if (i > last) return;
        h = m.forward(h);
        const q = taps.get(i);
        if (q === undefined) return;
        const N = h.shape[0], n = sites[q].units;
        out[q] = { a: Float32Array.from(h.data), N, S: h.size / (N * n) };
      });
    });
  } finally {
    model.train(was);
  }
  return out;
}

/** 'compensate' and 'fitted': the k units L1 pruning keeps, each a group (numbered in the units'
 * order), and every other unit in the group of the kept unit most like it: whose folded vector's
 * direction is nearest its own, or, given the site's activations, whose activations correlate best with
 * its own */
export function compensationGroups(model: Sequential, site: MergeSite, k: number, act?: SiteActivations): { labels: Int32Array; kept: Int32Array } {
  const kept = l1Keep(model, site, k);
  const n = site.units;
  const labels = new Int32Array(n).fill(-1);
  kept.forEach((u, g) => (labels[u] = g));
  let sim: (u: number, r: number) => number;
  if (act) {
    // centred activations of every unit, one row each, scaled to unit length: similarity is correlation
    const { a, N, S } = act, m = N * S;
    const Z = new Float32Array(n * m);
    for (let u = 0; u < n; u++) {
      let mean = 0;
      for (let i = 0; i < N; i++) for (let s = 0; s < S; s++) mean += a[(i * n + u) * S + s];
      mean /= m;
      let ss = 0;
      for (let i = 0; i < N; i++) {
        for (let s = 0; s < S; s++) {
          const v = a[(i * n + u) * S + s] - mean;
          Z[u * m + i * S + s] = v;
          ss += v * v;
        }
      }
      const inv = ss > 0 ? 1 / Math.sqrt(ss) : 0;
      for (let j = 0; j < m; j++) Z[u * m + j] *= inv;
    }
    sim = (u, r) => dot(Z, u, Z, r, m);
  } else {
    const { X, d } = unitVectors(model, site);
    const { D } = directions(X, n, d);
    sim = (u, r) => dot(D, u, D, r, d);
  }
  for (let u = 0; u < n; u++) {
    if (labels[u] >= 0) continue;
    let best = 0, bestSim = -Infinity;
    kept.forEach((r, g) => {
      const c = sim(u, r);
      if (c > bestSim) [best, bestSim] = [g, c];
    });
    labels[u] = best;
  }
  return { labels, kept };
}

/** the k groups of one site under a rule: k-means (or agglomerative) clusters, or, for the rules that
 * keep the L1-pruning units, those units and what joins each (`act`: the site's activations, for the
 * rules that read them); `kept`: each group's kept unit */
export function groupUnits(model: Sequential, site: MergeSite, k: number, o: ClusterOptions, act?: SiteActivations): { labels: Int32Array; kept?: Int32Array; tree?: Merge[] } {
  if (!keepsL1(o.rule)) return clusterSite(model, site, k, o);
  return compensationGroups(model, site, k, readsActivations(o.rule) ? act : undefined);
}

/** apply a grouping to one site: layer i gets one unit per group, its batch norm becomes the identity
 * (its effect is folded into the weights), the next unit layer reads the merged unit through the
 * members' outgoing weights (summed, or weighted by the rule's coefficients); returns each group's
 * representative ('medoid'; -1 for the other rules) */
export function applyMerge(model: Sequential, site: MergeSite, labels: Int32Array, o: ApplyOptions = {}): Int32Array {
  const n = site.units;
  if (labels.length !== n) throw new Error(`merge: ${labels.length} labels for ${n} units of layer ${site.index}`);
  const k = labels.reduce((m, v) => Math.max(m, v), -1) + 1;
  const counts = new Int32Array(k);
  for (const g of labels) {
    if (!Number.isInteger(g) || g < 0) throw new Error(`merge: bad group label ${g}`);
    counts[g]++;
  }
  if (counts.some((c) => c === 0)) throw new Error(`merge: group labels of layer ${site.index} must cover 0..${k - 1} without gaps`);
  const rule = o.rule ?? 'mean';
  const { X, d } = unitVectors(model, site);
  const fanIn = d - 1;
  if (keepsL1(rule) && (!o.representatives || o.representatives.length !== k || o.representatives.some((r, g) => labels[r] !== g))) {
    throw new Error(`merge: the ${rule} rule needs each group's kept unit (layer ${site.index})`);
  }
  const plan = planMerge(X, n, d, labels, k, keepsL1(rule) ? 'medoid' : rule, scalesAt(model, site, rule), o.minSimilarity ?? 0, keepsL1(rule) ? o.representatives : undefined);
  const shift = new Float64Array(n);
  if (rule === 'fitted') {
    if (!o.activations) throw new Error(`merge: the fitted rule needs the activations of layer ${site.index} on calibration inputs`);
    fitCoefficients(o.activations, n, labels, plan, shift);
  }
  // lstsq: every removed unit's activations regressed on all kept units' at once
  let extra: { u: number; g: number; c: number }[] = [];
  if (rule === 'lstsq') {
    if (!o.activations) throw new Error(`merge: the lstsq rule needs the activations of layer ${site.index} on calibration inputs`);
    extra = regressOnKept(o.activations, n, o.representatives!, shift);
    for (let u = 0; u < n; u++) if (!o.representatives!.includes(u)) plan.coef[u] = 0;
  }
  // refit: every unit's original activations regressed on the kept units' as the network now computes them
  if (rule === 'refit') {
    if (!o.activations) throw new Error(`merge: the refit rule needs the activations of layer ${site.index} on calibration inputs`);
    extra = regressOnKept(o.activations, n, o.representatives!, shift, o.target ?? o.activations);
    plan.coef.fill(0);
  }
  const layer = model.layers[site.index] as Linear | Conv2d;
  const nw = new Float32Array(k * fanIn), nb = new Float32Array(k);
  for (let g = 0; g < k; g++) {
    for (let q = 0; q < fanIn; q++) nw[g * fanIn + q] = plan.V[g * d + q];
    nb[g] = plan.V[g * d + fanIn];
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
    // knows the merged unit's output statistics, so that in training mode (fine-tuning, re-estimation)
    // normalising by the batch's statistics gives back about the same values instead of a
    // unit-variance, zero-mean signal. A member's folded output has mean beta_u and spread
    // |gamma_u|·√(var/(var+eps)). The mean rule's unit gets the members' averages; a representative
    // its own; under scaling, member u reads about coef_u·z of the merged unit's z, so z's statistics
    // are the least-squares fit Σ coef_u·m_u / Σ coef_u² of the members' m_u.
    const spread = (u: number) => Math.abs(bn.weight.data[u]) * Math.sqrt(bn.runningVar.data[u] / (bn.runningVar.data[u] + bn.eps));
    const mu = new Float64Array(k), sd = new Float64Array(k), c2 = new Float64Array(k);
    const byCoef = rule !== 'mean' && plan.coef.some((c) => c !== 1);
    for (let u = 0; u < n; u++) {
      const g = labels[u];
      const w = byCoef ? plan.coef[u] : 1 / counts[g];
      mu[g] += bn.bias.data[u] * w;
      sd[g] += spread(u) * w;
      c2[g] += byCoef ? plan.coef[u] * plan.coef[u] : 0;
    }
    for (let g = 0; g < k; g++) {
      const r = plan.rep[g];
      if (r >= 0) [mu[g], sd[g]] = [bn.bias.data[r], spread(r)];
      else if (byCoef && c2[g] > 0) [mu[g], sd[g]] = [mu[g] / c2[g], sd[g] / c2[g]];
    }
    setIdentityNorm(bn, mu, sd);
  }
  // the next layer: the members' outgoing weights, each times its coefficient, summed into the group's
  const next = model.layers[site.next] as Linear | Conv2d;
  const [O, I] = next.weight.shape;
  const per = next.weight.size / (O * I); // kernel positions of a conv (1 for a linear)
  const S = site.spatial;
  const newI = k * S;
  const src = next.weight.data;
  const out = new Float32Array(O * newI * per);
  for (let o = 0; o < O; o++) {
    for (let u = 0; u < n; u++) {
      const g = labels[u], c = plan.coef[u];
      if (c === 0) continue;
      for (let s = 0; s < S; s++) {
        const from = ((o * I + u * S + s) * per), to = ((o * newI + g * S + s) * per);
        for (let q = 0; q < per; q++) out[to + q] += c * src[from + q];
      }
    }
  }
  for (const { u, g, c } of extra) {
    for (let o = 0; o < O; o++) {
      for (let s = 0; s < S; s++) {
        const from = ((o * I + u * S + s) * per), to = ((o * newI + g * S + s) * per);
        for (let q = 0; q < per; q++) out[to + q] += c * src[from + q];
      }
    }
  }
  next.setTensor('weight', new Tensor(out, [O, newI, ...next.weight.shape.slice(2)]));
  // fitted, lstsq, refit: the members' constant parts go to the next layer's bias, or, where it has none
  // and a batch norm follows it, into that norm's running mean (exact in eval mode; re-estimation
  // replaces it anyway)
  const after = model.layers[site.next + 1];
  const norm = !next.bias && after instanceof BatchNorm && after.runningMean.size === O ? after : null;
  if ((next.bias || norm) && shift.some((v) => v !== 0)) {
    const add = new Float64Array(O);
    for (let o2 = 0; o2 < O; o2++) {
      for (let u = 0; u < n; u++) {
        if (shift[u] === 0) continue;
        for (let q = 0; q < S * per; q++) add[o2] += shift[u] * src[(o2 * I + u * S) * per + q];
      }
    }
    if (next.bias) next.setTensor('bias', new Tensor(Float32Array.from(next.bias.data, (b, o2) => b + add[o2]), [O]));
    else norm!.setTensor('runningMean', new Tensor(Float32Array.from(norm!.runningMean.data, (m, o2) => m - add[o2]), [O]));
  }
  return plan.rep;
}

export interface MergeOptions extends ClusterOptions, ApplyOptions {
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
  /** 'fitted', 'lstsq', 'refit': the inputs the coefficients are fitted on */
  calibration?: Tensor;
  /** 'refit' on a network with batch norms: before each layer is fitted, the batch norms of the network
   * merged so far are re-estimated on these images, so that the layer is fitted on the activations it
   * will see once the merged network's batch norms are re-estimated (as reproduce and merge do) */
  reestimate?: Tensor;
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
  /** per site: its groups (labels[u] of each original unit) and, for 'medoid', each group's kept unit */
  sites: { index: number; layer: string; before: number; after: number; labels: Int32Array; representatives?: Int32Array; tree?: Merge[] }[];
  /** with `repair`: per site, the mean |log| of the spread corrections */
  repair?: number[];
  /** where the rule asked for could not apply as asked (a scaling rule before a sigmoid) */
  notes: string[];
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
  const rule = o.rule ?? 'mean';
  const kept: Int32Array[] = [];
  const trees: (Merge[] | undefined)[] = [];
  const group = (site: MergeSite, i: number): Int32Array => {
    if (keepsL1(rule) && o.threshold !== undefined) throw new Error(`merge: the ${rule} rule keeps k units by L1 norm; give a ratio or a budget, not a threshold`);
    if (o.threshold === undefined) {
      const g = groupUnits(model, site, ks[i], { ...o, seed: (o.seed ?? 0) + i }, acts?.[i]);
      if (g.kept) kept[i] = g.kept;
      trees[i] = g.tree;
      return g.labels;
    }
    const { X, d } = clusterVectors(model, site, o.rule);
    const r = agglomerative(X, site.units, d, { linkage: method as Linkage, threshold: o.threshold });
    ks[i] = r.k;
    trees[i] = r.merges;
    return r.labels;
  };
  const report: MergeReport = { sites: [], notes: [] };
  if (readsActivations(rule) && !o.calibration) throw new Error(`merge: the ${rule} rule needs calibration inputs`);
  const acts = readsActivations(rule) ? siteActivations(model, o.calibration!) : null;
  if (rule === 'scaled' || rule === 'medoid' || rule === 'compensate') {
    for (const s of sites) {
      const blocker = nonHomogeneousAfter(model, s);
      if (blocker) report.notes.push(`layer ${s.index} (${model.layers[s.index].describe()}) is followed by ${blocker}, which is not positively homogeneous: ${rule === 'scaled' ? 'merged by the members\' mean (the paper\'s rule)' : 'its representative reads the others\' outgoing weights unscaled'}`);
    }
  }
  // refit: the kept units' activations come from the network as merged so far (its batch norms
  // re-estimated where asked), the targets from the original
  const reestimate = o.reestimate && model.layers.some((m) => m instanceof BatchNorm) ? o.reestimate : null;
  const mergedActivations = (i: number): SiteActivations => {
    // only the batch norms before layer i's activations matter to its fit
    if (reestimate && i > 0) recalibrateBatchNorm(model, reestimate, 256, 0, mergeSites(model)[i].next - 1);
    return siteActivations(model, o.calibration!, i)[i];
  };
  const apply = (i: number): ApplyOptions => ({
    rule, minSimilarity: o.minSimilarity, representatives: kept[i],
    ...(rule === 'refit' ? { activations: mergedActivations(i), target: acts![i] } : { activations: acts?.[i] }),
  });
  const describe = (i: number) => model.layers[i].describe();
  const moments = o.repair ? unitMoments(model, o.repair) : null;
  if ((o.mode ?? 'all') === 'all') {
    const groups = sites.map((s, i) => group(s, i));
    sites.forEach((s, i) => report.sites.push({ index: s.index, layer: describe(s.index), before: s.units, after: ks[i], labels: groups[i], ...(trees[i] ? { tree: trees[i] } : {}) }));
    // later sites' next-layer sums see the earlier merges; each site's own rows are unaffected
    sites.forEach((s, i) => {
      stopIfInterrupted(() => `merging layer ${s.index} (${i + 1} of ${sites.length} mergeable layers)`);
      const r = applyMerge(model, mergeSites(model)[i], groups[i], apply(i));
      if (rule !== 'mean' && rule !== 'scaled') report.sites[i].representatives = r;
    });
  } else {
    for (let i = 0; i < sites.length; i++) {
      const s = mergeSites(model)[i];
      stopIfInterrupted(() => `merging layer ${s.index} (${i + 1} of ${sites.length} mergeable layers)`);
      const labels = group(s, i);
      const r = applyMerge(model, s, labels, apply(i));
      report.sites.push({ index: s.index, layer: describe(s.index), before: s.units, after: ks[i], labels, ...(rule !== 'mean' && rule !== 'scaled' ? { representatives: r } : {}), ...(trees[i] ? { tree: trees[i] } : {}) });
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
    case 'sequential':
      return { ...arch, layers: specsOf(model) };
  }
}
