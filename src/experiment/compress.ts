// merge, prune and explain on a checkpoint file: what the commands of those names do, as functions
// that return their figures (the command only prints them).
import type { LoadOptions } from '../../datasets/catalog.js';
import { explainMerge } from '../compress/explain.js';
import type { LayerExplanation } from '../compress/explain.js';
import { archOf, mergeModel } from '../compress/merge.js';
import type { ClusterMethod } from '../compress/merge.js';
import { pruneModel } from '../compress/prune.js';
import { mergeSites } from '../compress/sites.js';
import { recalibrateBatchNorm } from '../compress/recalibrate.js';
import { compare, modelStats } from '../compress/stats.js';
import { inputShape } from '../models/index.js';
import type { Arch } from '../models/index.js';
import { slice } from '../tensor/ops.js';
import { saveCheckpoint } from '../train/checkpoint.js';
import { checkOutputFile } from '../runtime/files.js';
import { accuracyOf, calibrationInputs, calibrationSample, cloneModel, loadTask, modelFromCheckpoint } from './task.js';

export interface CompressOptions {
  /** where the compressed checkpoint goes (checked before any work; never the input) */
  out: string;
  /** one ratio for every layer, or one per mergeable layer */
  ratio?: number | number[];
  /** merge only: cut agglomerative dendrograms at this distance */
  threshold?: number;
  /** merge only: keep at most this fraction of the parameters */
  budget?: number;
  method?: ClusterMethod;
  mode?: 'all' | 'sequential';
  seed?: number;
  nInit?: number;
  /** merge only: statistics repair on this many training images */
  repair?: number;
  /** re-estimate every batch norm's statistics on this many seeded training images after compressing */
  recalibrate?: number;
  /** measure the test accuracy before and after (default true) */
  eval?: boolean;
  data?: LoadOptions;
}

export interface CompressResult {
  checkpoint: string;
  from: string;
  arch: Arch;
  units: { layer: string; before: number; after: number }[];
  params: { before: number; after: number };
  compressionRatio: number;
  flops: { before: number; after: number };
  speedupFlops: number;
  bytes: { before: number; after: number };
  accuracy: { before: number | null; after: number | null };
  /** merge --repair: per layer, the mean |log| of the spread corrections */
  repair: number[] | null;
  /** the number of training images the statistics were repaired on */
  repairImages: number | null;
  /** the number of training images the batch norms were re-estimated on */
  recalibrated: number | null;
}

/** merge (cluster similar units, merge them with their connections) or prune (L1, the baseline) a
 * checkpoint's hidden layers and write the result */
export async function compressCheckpoint(file: string, what: 'merge' | 'prune', o: CompressOptions): Promise<CompressResult> {
  if (what === 'merge' && [o.ratio, o.threshold, o.budget].filter((v) => v !== undefined).length !== 1) throw new Error('merge: give exactly one of --ratio, --threshold and --budget');
  if (what === 'prune' && o.ratio === undefined) throw new Error('prune: give --ratio');
  checkOutputFile(o.out, '--out', [file]);
  const { model, arch } = modelFromCheckpoint(file);
  const input = inputShape(arch);
  const before = modelStats(model, input);
  const evaluate = o.eval !== false;
  const data = evaluate || o.repair !== undefined || o.recalibrate !== undefined ? await loadTask(arch, o.data) : null;
  const calib = o.repair === undefined ? undefined : calibrationInputs(data!, o.repair);
  const accBefore = data && evaluate ? accuracyOf(model, data).accuracy : null;
  let units: CompressResult['units'];
  let repair: number[] | null = null;
  if (what === 'merge') {
    const rep = mergeModel(model, { ratio: o.ratio, threshold: o.threshold, budget: o.budget, method: o.method, mode: o.mode, seed: o.seed, nInit: o.nInit, repair: calib });
    units = rep.sites.map((s) => ({ layer: s.layer, before: s.before, after: s.after }));
    repair = rep.repair ?? null;
  } else {
    const names = mergeSites(model).map((s) => model.layers[s.index].describe());
    units = pruneModel(model, { ratio: o.ratio! }).map((p, i) => ({ layer: names[i], before: p.before, after: p.after }));
  }
  const calibration = o.recalibrate === undefined ? null : calibrationSample(data!, o.recalibrate, o.seed ?? 0);
  if (calibration) recalibrateBatchNorm(model, calibration);
  const newArch = archOf(model, arch);
  const after = modelStats(model, input);
  const c = compare(before, after);
  const accAfter = data && evaluate ? accuracyOf(model, data).accuracy : null;
  saveCheckpoint(o.out, { arch: newArch, model, kind: what === 'merge' ? 'merged' : 'pruned' });
  return {
    checkpoint: o.out, from: file, arch: newArch, units, params: c.params, compressionRatio: c.compressionRatio, flops: c.flops, speedupFlops: c.flopsRatio,
    bytes: c.bytes, accuracy: { before: accBefore, after: accAfter }, repair, repairImages: calib ? calib.shape[0] : null, recalibrated: calibration ? calibration.shape[0] : null,
  };
}

export interface ExplainResult {
  checkpoint: string;
  ratio: number;
  layers: LayerExplanation[];
  /** with `layer`: that layer's clusters, largest first, as unit indices */
  layer?: number;
  clusters?: number[][];
}

/** the teaching view of merging a checkpoint at one ratio: per layer, the clusters and how far merging
 * that layer alone moves the next layer's output on `images` test images */
export async function explainCheckpoint(file: string, o: { ratio: number; layer?: number; images?: number; seed?: number; data?: LoadOptions }): Promise<ExplainResult> {
  const { model, arch } = modelFromCheckpoint(file);
  const sites = mergeSites(model).length;
  if (o.layer !== undefined && o.layer >= sites) throw new Error(`--layer ${o.layer}: the model has ${sites} mergeable layers (0 to ${sites - 1})`);
  const data = await loadTask(arch, o.data);
  const merged = cloneModel(model, arch);
  const rep = mergeModel(merged, { ratio: o.ratio, seed: o.seed, nInit: 3 });
  const layers = explainMerge(model, arch, rep.sites.map((s) => s.labels), slice(data.ev.x, 0, Math.min(o.images ?? 256, data.ev.x.shape[0])));
  return { checkpoint: file, ratio: o.ratio, layers, ...(o.layer !== undefined ? { layer: o.layer, clusters: groupsOf(rep.sites[o.layer].labels) } : {}) };
}

/** members of each group, largest group first */
export function groupsOf(labels: Int32Array): number[][] {
  const m = new Map<number, number[]>();
  labels.forEach((g, u) => (m.get(g) ?? m.set(g, []).get(g)!).push(u));
  return [...m.values()].sort((a, b) => b.length - a.length || a[0] - b[0]);
}
