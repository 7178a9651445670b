// A global parameter budget spread over the layers by measured sensitivity, instead of one merge ratio
// everywhere: for each mergeable layer and each candidate ratio, the loss on a calibration set with that
// layer alone merged (batch norms re-estimated after it, as they are after a real merge); then, from
// every layer at full width, the cheapest step first — the least loss added per parameter removed —
// until the model fits the budget, the last step cut to the unit so the budget is met as closely as
// whole units allow. Pruning can take the same per-layer k, so a comparison stays fair.
import type { Sequential } from '../nn/layers.js';
import { BatchNorm } from '../nn/layers.js';
import { crossEntropy, slice } from '../tensor/ops.js';
import { Tensor } from '../tensor/tensor.js';
import { noGrad } from '../tensor/autograd.js';
import { stopIfInterrupted } from '../backend/native.js';
import { applyMerge, groupUnits, paramsWithUnits, readsActivations, siteActivations } from './merge.js';
import type { ApplyOptions, ClusterOptions } from './merge.js';
import { applyPrune, l1Keep } from './prune.js';
import { recalibrateBatchNorm } from './recalibrate.js';
import { mergeSites, unitsAfter } from './sites.js';

export const DEFAULT_CANDIDATES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95];

export interface SensitivityOptions extends ClusterOptions, ApplyOptions {
  /** what each trial does to its layer: merge (default) or prune by L1 norm */
  what?: 'merge' | 'prune';
  /** calibration inputs and their labels */
  x: Tensor;
  y: Int32Array;
  /** 'fitted': the inputs its coefficients are fitted on */
  calibration?: Tensor;
  /** a fresh copy of the model (same architecture and weights) to merge one layer of */
  clone: (model: Sequential) => Sequential;
  candidates?: number[];
  /** re-estimate batch norms after each trial merge (default true; a no-op without batch norms) */
  recalibrate?: boolean;
  batch?: number;
  log?: (line: string) => void;
  /** the rows of the first layers measured before with the same settings (a cut run's): kept, not
   * measured again (each layer's trials depend on nothing but the settings and its own seed) */
  measured?: number[][];
  /** told the rows measured so far after each layer, to keep them against a stop */
  onLayer?: (loss: number[][]) => void;
}

export interface Sensitivity {
  /** candidate merge ratios */
  ratios: number[];
  /** the unmerged model's loss on the calibration set (batch norms re-estimated on it) */
  base: number;
  /** loss[site][candidate] with that site alone merged at that ratio */
  loss: number[][];
}

/** run layers [from, to) of a model over chunks */
function advance(model: Sequential, hs: Tensor[], from: number, to: number): Tensor[] {
  return noGrad(() => hs.map((h) => {
    for (let i = from; i < to; i++) h = model.layers[i].forward(h);
    return h;
  }));
}

function lossFrom(model: Sequential, hs: Tensor[], from: number, y: Int32Array): number {
  model.eval();
  let total = 0, seen = 0;
  for (const out of advance(model, hs, from, model.layers.length)) {
    const n = out.shape[0];
    total += noGrad(() => crossEntropy(out, y.subarray(seen, seen + n))).item() * n;
    seen += n;
  }
  return total / seen;
}

/** the loss with each mergeable layer alone merged (or pruned) at each candidate ratio */
export function layerSensitivity(model: Sequential, o: SensitivityOptions): Sensitivity {
  const ratios = o.candidates ?? DEFAULT_CANDIDATES;
  for (const r of ratios) unitsAfter(2, r); // range check
  const N = o.x.shape[0], batch = o.batch ?? 250;
  if (o.y.length !== N) throw new Error(`sensitivity: ${N} calibration inputs but ${o.y.length} labels`);
  const hasBn = model.layers.some((m) => m instanceof BatchNorm) && o.recalibrate !== false;
  // with re-estimation, every trial re-estimates the whole network's batch norms; the layers before the
  // merged one are the same in every trial, so they are re-estimated once, in `ref`, whose activations
  // feed the trials (which cluster and merge on the original's weights and statistics, as a real merge)
  const ref = hasBn ? o.clone(model) : model;
  if (hasBn) recalibrateBatchNorm(ref, o.x, batch);
  ref.eval();
  let hs: Tensor[] = [];
  for (let s = 0; s < N; s += batch) hs.push(slice(o.x, s, Math.min(N, s + batch)));
  const base = lossFrom(ref, hs, 0, o.y);
  const sites = mergeSites(model);
  if (readsActivations(o.rule) && !o.calibration) throw new Error(`sensitivity: the ${o.rule} rule needs calibration inputs`);
  const acts = readsActivations(o.rule) ? siteActivations(model, o.calibration!) : null;
  const measured = o.measured ?? [];
  if (measured.length > sites.length || measured.some((row) => row.length !== ratios.length || row.some((v) => !Number.isFinite(v)))) {
    throw new Error(`sensitivity: the rows measured before do not fit this model (${measured.length} row${measured.length === 1 ? '' : 's'} for ${sites.length} layers, ${ratios.length} ratios each)`);
  }
  const loss: number[][] = measured.map((row) => [...row]);
  if (measured.length > 0) o.log?.(`sensitivity: layers 1 to ${measured.length} of ${sites.length} measured before; going on from layer ${measured.length + 1}`);
  let at = 0; // hs holds the input of layer `at` of the original model
  sites.forEach((site, i) => {
    if (i < measured.length) return;
    hs = advance(ref, hs, at, site.index);
    at = site.index;
    const row: number[] = [];
    for (const r of ratios) {
      stopIfInterrupted(() => `measuring the sensitivity of layer ${site.index} (${i + 1} of ${sites.length} mergeable layers, ${i} done)`);
      const k = unitsAfter(site.units, r);
      const trial = o.clone(model);
      if (o.what === 'prune') applyPrune(trial, site, l1Keep(trial, site, k));
      else {
        const { labels, kept } = groupUnits(trial, site, k, { ...o, seed: (o.seed ?? 0) + i }, acts?.[i]);
        applyMerge(trial, site, labels, { rule: o.rule, minSimilarity: o.minSimilarity, representatives: kept, activations: acts?.[i] });
      }
      if (hasBn) recalibrateBatchNorm(trial, concatRows(hs), batch, site.index);
      row.push(lossFrom(trial, hs, site.index, o.y));
    }
    loss.push(row);
    o.onLayer?.(loss.map((x) => [...x]));
    o.log?.(`sensitivity: layer ${site.index} (${model.layers[site.index].describe()}): loss ${row.map((v) => v.toFixed(3)).join(' ')} at ratios ${ratios.join(' ')} (unmerged ${base.toFixed(3)})`);
  });
  return { ratios, base, loss };
}

/** the chunks as one tensor (rows stacked) */
function concatRows(hs: Tensor[]): Tensor {
  const n = hs.reduce((a, h) => a + h.shape[0], 0);
  const out = new Float32Array(hs.reduce((a, h) => a + h.size, 0));
  let o = 0;
  for (const h of hs) {
    out.set(h.data, o);
    o += h.size;
  }
  return new Tensor(out, [n, ...hs[0].shape.slice(1)]);
}

export interface Allocation {
  /** units kept per mergeable layer */
  ks: number[];
  /** the same as merge ratios (1 - k/n) */
  ratios: number[];
  /** parameters the model will have, and the most the budget allows */
  params: number;
  limit: number;
}

/**
 * Per-layer k that keeps at most `budget` of the model's parameters, chosen greedily by sensitivity:
 * each step moves one layer to a larger candidate ratio, the one with the least loss added per parameter
 * removed; the step that crosses the budget stops at the largest k that fits.
 */
export function allocate(model: Sequential, budget: number, s: Sensitivity): Allocation {
  if (!(budget > 0 && budget <= 1)) throw new Error(`budget must be in (0, 1], got ${budget}`);
  const sites = mergeSites(model);
  if (s.loss.length !== sites.length) throw new Error(`allocate: sensitivity of ${s.loss.length} layers for ${sites.length} mergeable layers`);
  const limit = Math.floor(budget * model.numParameters());
  const ks = sites.map((x) => x.units);
  const at = sites.map(() => -1); // candidate index each layer is at (-1: unmerged)
  const lossAt = (i: number, c: number) => (c < 0 ? s.base : s.loss[i][c]);
  const P = (k: number[]) => paramsWithUnits(model, k);
  while (P(ks) > limit) {
    const now = P(ks);
    let best: { i: number; c: number; k: number; slope: number; dp: number } | null = null;
    sites.forEach((site, i) => {
      for (let c = at[i] + 1; c < s.ratios.length; c++) {
        const k = unitsAfter(site.units, s.ratios[c]);
        if (k >= ks[i]) continue;
        const dp = now - P(ks.map((v, j) => (j === i ? k : v)));
        if (dp <= 0) continue;
        const slope = (lossAt(i, c) - lossAt(i, at[i])) / dp;
        if (!best || slope < best.slope || (slope === best.slope && dp > best.dp)) best = { i, c, k, slope, dp };
      }
    });
    if (!best) throw new Error(`budget ${budget} is below what the largest candidate ratio (${s.ratios[s.ratios.length - 1]}) in every layer keeps`);
    const { i, c, k } = best as { i: number; c: number; k: number };
    if (P(ks.map((v, j) => (j === i ? k : v))) <= limit) {
      // the last step: the largest k of this layer that fits
      let lo = k, hi = ks[i] - 1; // P(lo) fits; find the largest fitting k in [lo, hi]
      while (lo < hi) {
        const mid = Math.ceil((lo + hi) / 2);
        if (P(ks.map((v, j) => (j === i ? mid : v))) <= limit) lo = mid;
        else hi = mid - 1;
      }
      ks[i] = lo;
      break;
    }
    ks[i] = k;
    at[i] = c;
  }
  return { ks, ratios: ks.map((k, i) => 1 - k / sites[i].units), params: P(ks), limit };
}
