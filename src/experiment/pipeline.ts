// The steps that every compression of a trained model takes, whichever command asks for it (merge,
// prune, reproduce): which seeded training images each step reads, the units each layer keeps and
// their rounding to a multiple, and compressing with the batch norms re-estimated after.
import { allocate, layerSensitivity } from '../compress/allocate.js';
import type { Sensitivity } from '../compress/allocate.js';
import { mergeModel, ratioForBudget, readsActivations } from '../compress/merge.js';
import type { ClusterMethod, MergeReport, MergeRule } from '../compress/merge.js';
import { pruneModel } from '../compress/prune.js';
import { recalibrateBatchNorm } from '../compress/recalibrate.js';
import { mergeSites, roundingNotes, roundUnits, unitsAfter } from '../compress/sites.js';
import { BatchNorm } from '../nn/layers.js';
import type { Sequential } from '../nn/layers.js';
import type { Arch } from '../models/index.js';
import type { Tensor } from '../tensor/tensor.js';
import { calibrationSample, calibrationSet, cloneModel, recalibrationSample } from './task.js';
import type { TaskData } from './task.js';

/** the default number of images batch norms are re-estimated on after compressing */
export const RECALIBRATE_IMAGES = 5120;
/** the default number of training images a fitted rule and a layer's sensitivity are measured on */
export const CALIBRATION_IMAGES = 1000;

export const hasBatchNorm = (m: Sequential) => m.layers.some((l) => l instanceof BatchNorm);

/** how many images the batch norms are re-estimated on: the option (false: never), else the default
 *  for a model with batch norms, else none */
export function recalibrationImages(model: Sequential, option: number | false | undefined): number | null {
  return option === false ? null : option ?? (hasBatchNorm(model) ? RECALIBRATE_IMAGES : null);
}

/**
 * The seeded training images of one compression, each drawn the first time it is asked for: the
 * inputs a fitted rule (refit, lstsq …) reads, the labelled set a layer's sensitivity is measured on,
 * and the augmented images the batch norms are re-estimated on. Each from its own seed offset, so
 * that merge, prune and reproduce draw the same images for the same seed.
 */
export class CompressionSamples {
  private fitted: Tensor | null = null;
  private labelled: { x: Tensor; y: Int32Array } | null = null;
  /** `cutout`: the side of the Cutout square the batch-norm images get (0: none), as the original was
   * trained */
  constructor(private readonly task: TaskData, private readonly seed: number, private readonly images = CALIBRATION_IMAGES, private readonly cutout = 0) {}
  /** the inputs a rule that reads activations is fitted on */
  fit(): Tensor {
    return (this.fitted ??= calibrationSample(this.task, this.images, this.seed + 3));
  }
  /** the fit inputs where `rule` reads activations, else undefined */
  fitFor(rule: MergeRule | undefined): Tensor | undefined {
    return readsActivations(rule) ? this.fit() : undefined;
  }
  /** the labelled images a layer's sensitivity is measured on */
  sensitivity(): { x: Tensor; y: Int32Array } {
    return (this.labelled ??= calibrationSet(this.task, this.images, this.seed + 7));
  }
  /** n augmented images for re-estimating batch norms (null where n is) */
  recalibration(n: number | null): Tensor | null {
    return n === null ? null : recalibrationSample(this.task, n, this.seed, this.cutout);
  }
}

/** one ratio per mergeable layer: a number for every layer, or a list with one per layer */
export function perLayer(model: Sequential, ratio: number | number[], what = 'merge'): number[] {
  const sites = mergeSites(model);
  const ratios = typeof ratio === 'number' ? sites.map(() => ratio) : ratio;
  if (ratios.length !== sites.length) throw new Error(`${what}: ${ratios.length} ratios for ${sites.length} ${what === 'prune' ? 'prunable' : 'mergeable'} layers`);
  return ratios;
}

/** the units each mergeable layer keeps at these ratios */
export function unitsAt(model: Sequential, ratio: number | number[], what?: string): number[] {
  const ratios = perLayer(model, ratio, what);
  return mergeSites(model).map((s, i) => unitsAfter(s.units, ratios[i]));
}

/** the measured sensitivity of each layer to compressing it by `rule` (merged, or pruned where what
 *  is 'prune'), for spreading a budget */
export function measureSensitivity(model: Sequential, arch: Arch, samples: CompressionSamples, o: {
  what?: 'merge' | 'prune'; rule: MergeRule; method?: ClusterMethod; seed: number; nInit?: number; minSimilarity?: number; recalibrate: boolean; log?: (line: string) => void;
  /** see SensitivityOptions: rows kept from a cut measurement, and where to keep them as they come */
  measured?: number[][]; onLayer?: (loss: number[][]) => void;
}): Sensitivity {
  const { x, y } = samples.sensitivity();
  return layerSensitivity(model, { what: o.what, x, y, clone: (m) => cloneModel(m, arch), rule: o.rule, method: o.method, seed: o.seed, nInit: o.nInit, minSimilarity: o.minSimilarity, recalibrate: o.recalibrate, calibration: samples.fitFor(o.rule), log: o.log, measured: o.measured, onLayer: o.onLayer });
}

/** the per-layer ratios and units that keep `budget` of the parameters: one ratio everywhere, or
 *  spread by a measured sensitivity */
export function budgetWidths(model: Sequential, budget: number, sensitivity?: Sensitivity): { ratios: number[]; ks: number[] } {
  if (sensitivity) return allocate(model, budget, sensitivity);
  const r = ratioForBudget(model, budget);
  const ratios = mergeSites(model).map(() => r);
  return { ratios, ks: unitsAt(model, ratios) };
}

/**
 * Each layer's units `ks` rounded to a multiple of m (down where `down`, so that a budget stays met;
 * else to the nearest), with a note for each layer that cannot be; and the ratios they make.
 */
export function roundToMultiple(model: Sequential, ks: number[], m: number, down: boolean): { ks: number[]; ratios: number[]; notes: string[] } {
  const sites = mergeSites(model);
  const n = sites.map((s) => s.units);
  const notes = roundingNotes(sites.map((s) => model.layers[s.index].describe()), ks, n, m, down);
  const rounded = ks.map((k, i) => roundUnits(k, n[i], m, down));
  return { ks: rounded, ratios: rounded.map((k, i) => 1 - k / n[i]), notes };
}

export interface CompressStep {
  /** per-layer ratios (or one for all), or a distance threshold (merge, agglomerative methods) */
  ratio?: number | number[];
  threshold?: number;
  method?: ClusterMethod;
  mode?: 'all' | 'sequential';
  seed: number;
  nInit?: number;
  minSimilarity?: number;
  /** statistics repair on these inputs (not the paper's method) */
  repair?: Tensor;
  /** the inputs a fitted rule reads */
  fit?: Tensor;
  /** the batch norms re-estimated on these images after compressing (and, for merging, each merged
   *  layer's before the next is clustered) */
  recalibration: Tensor | null;
}

/** merge `model` in place by `rule`, or prune it (L1 norm) where rule is 'prune'; then re-estimate its
 *  batch norms. The merge's report, or null for pruning. */
export function compressModel(model: Sequential, rule: MergeRule | 'prune', s: CompressStep): MergeReport | null {
  let rep: MergeReport | null = null;
  if (rule === 'prune') pruneModel(model, { ratio: s.ratio! });
  else rep = mergeModel(model, { ratio: s.ratio, threshold: s.ratio === undefined ? s.threshold : undefined, method: s.method, mode: s.mode, seed: s.seed, nInit: s.nInit, repair: s.repair, rule, minSimilarity: s.minSimilarity, calibration: s.fit, reestimate: s.recalibration ?? undefined });
  if (s.recalibration) recalibrateBatchNorm(model, s.recalibration);
  return rep;
}
