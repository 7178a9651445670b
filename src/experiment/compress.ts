// merge, prune and explain on a checkpoint file: what the commands of those names do, as functions
// that return their figures (the command only prints them).
import { explainMerge, firstFilters } from '../compress/explain.js';
import type { LayerExplanation } from '../compress/explain.js';
import { allocate } from '../compress/allocate.js';
import { archOf, readsActivations, siteActivations } from '../compress/merge.js';
import type { ClusterMethod, MergeReport, MergeRule } from '../compress/merge.js';
import { mergeSites } from '../compress/sites.js';
import type { Sequential } from '../nn/layers.js';
import { recalibrateBatchNorm } from '../compress/recalibrate.js';
import { compare, modelStats } from '../compress/stats.js';
import { inputShape, modelName } from '../models/index.js';
import type { Arch } from '../models/index.js';
import { slice } from '../tensor/ops.js';
import { saveCheckpoint } from '../train/checkpoint.js';
import { checkOutputFile } from '../runtime/files.js';
import { OptionError } from '../runtime/errors.js';
import { writeCompressionHtml } from '../report/markdown.js';
import type { Tensor } from '../tensor/tensor.js';
import { accuracyOf, calibrationInputs, cloneModel, finetuneModel, loadTask, machineDescription, modelFromCheckpoint, sourceOf } from './task.js';
import { budgetWidths, CompressionSamples, compressModel, measureSensitivity, recalibrationImages, roundToMultiple, unitsAt } from './pipeline.js';
import type { TaskData, TaskLoadOptions } from './task.js';
import { formatFor, writeOnnx } from './export.js';
import type { ModelFormat } from './export.js';
import { networkOf } from './networks.js';

export interface CompressOptions {
  /** where the compressed checkpoint goes (checked before any work; never the input) */
  out: string;
  /** one ratio for every layer, or one per mergeable layer */
  ratio?: number | number[];
  /** merge only: cut agglomerative dendrograms at this distance */
  threshold?: number;
  /** keep at most this fraction of the parameters */
  budget?: number;
  /** how a budget is spread: one ratio everywhere ('uniform', default) or by measured sensitivity */
  allocate?: 'uniform' | 'sensitivity';
  /** sensitivity, and the fitted rule: the seeded training images its losses (coefficients) are measured
   * (fitted) on (default 1000) */
  calibration?: number;
  method?: ClusterMethod;
  /** merge only: how a cluster becomes one unit (default 'mean', the paper's) */
  rule?: MergeRule;
  /** merge --rule medoid: drop members less similar than this to their representative */
  minSimilarity?: number;
  mode?: 'all' | 'sequential';
  seed?: number;
  nInit?: number;
  /** merge only: statistics repair on this many training images */
  repair?: number;
  /** round each layer's units to a multiple of this (to the nearest with --ratio, down with --budget
   * so that it stays met); not with --threshold */
  multipleOf?: number;
  /** re-estimate every batch norm's statistics on this many seeded training images after compressing;
   * default 5120 for models with batch norm; false: never */
  recalibrate?: number | false;
  /** the side of the Cutout square the images of that re-estimation get, as the original was trained
   * with (default 0: none) */
  recalibrateCutout?: number;
  /** compress in this many steps, fine-tuning `stageEpochs` between them (default 1 step) */
  stages?: number;
  stageEpochs?: number;
  /** measure the test accuracy before and after (default true) */
  eval?: boolean;
  data?: TaskLoadOptions;
  log?: (line: string) => void;
  device?: 'cpu' | 'webgpu';
  /** merge only: write the page of what merging did (report.html) here */
  report?: string;
  /** the command as typed, for the page */
  command?: string;
  /** how --out is written: a checkpoint (default) or ONNX (default where --out ends in .onnx) */
  format?: ModelFormat;
}

export interface CompressResult {
  checkpoint: string;
  from: string;
  arch: Arch;
  units: { layer: string; before: number; after: number }[];
  /** the merge ratio each layer ended at (1 − after/before): `prune --ratio` with these takes the same k */
  ratios: number[];
  /** how the units per layer were chosen */
  allocation: 'ratio' | 'threshold' | 'uniform' | 'sensitivity';
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
  /** the side of the Cutout square those images had (0: none) */
  recalibrateCutout: number;
  /** where a merge rule could not apply as asked */
  notes: string[];
  stages: number;
  /** the page written (merge --report) */
  report: string | null;
  /** how the output was written */
  format: ModelFormat;
}

export { MERGE_RULES } from '../compress/merge.js';

/** kept units per mergeable layer at stage s of S, going geometrically from n to k */
export function stageWidths(n: number[], k: number[], s: number, S: number): number[] {
  return n.map((v, i) => (s >= S ? k[i] : Math.max(k[i], Math.min(v, Math.round(v * (k[i] / v) ** (s / S))))));
}

/** merge (cluster similar units, merge them with their connections) or prune (L1, the baseline) a
 * checkpoint's hidden layers and write the result */
export async function compressCheckpoint(file: string, what: 'merge' | 'prune', o: CompressOptions): Promise<CompressResult> {
  const given = [o.ratio, o.threshold, o.budget].filter((v) => v !== undefined).length;
  if (what === 'merge' && given !== 1) throw new OptionError('merge: give exactly one of {ratio}, {threshold} and {budget}');
  if (what === 'prune' && (o.threshold !== undefined || [o.ratio, o.budget].filter((v) => v !== undefined).length !== 1)) throw new OptionError('prune: give exactly one of {ratio} and {budget}');
  if (o.allocate === 'sensitivity' && o.budget === undefined) throw new OptionError(`${what}: {allocate} sensitivity spreads a {budget}; give one`);
  const stages = o.stages ?? 1;
  if (stages > 1 && o.threshold !== undefined) throw new OptionError('merge: {stages} needs {ratio} or {budget} (a threshold decides the units only as it merges)');
  if (what === 'prune' && o.rule && o.rule !== 'mean') throw new OptionError(`prune: {rule} ${o.rule} is a merging rule; pruning keeps units by their L1 norm`);
  checkOutputFile(o.out, '{out}', [file]);
  if (o.report !== undefined && what !== 'merge') throw new OptionError(`${what}: {report} shows a merge; run merge for it`);
  if (o.report !== undefined) checkOutputFile(o.report, '{report}', [file, { option: '{out}', path: o.out }]);
  const started = performance.now();
  const log = o.log ?? (() => {});
  const { model, arch, normalization: recorded } = modelFromCheckpoint(file, o.data?.dataset);
  const input = inputShape(arch);
  const before = modelStats(model, input);
  const evaluate = o.eval !== false;
  const recalImages = recalibrationImages(model, o.recalibrate);
  const format = formatFor(o.out, o.format);
  // an ONNX file of a network whose input is standardised records the training set's statistics
  // an ONNX file of a network whose input is standardised records the training set's statistics (from
  // the checkpoint where it holds them)
  const why = [
    evaluate && 'measuring the test accuracy ({eval:false} skips it)', o.report !== undefined && 'the page ({report:false} skips it)',
    recalImages !== null && 're-estimating the batch norms ({recalibrate:false} skips it)', o.repair !== undefined && '{repair}',
    o.allocate === 'sensitivity' && '{allocate} sensitivity', readsActivations(o.rule) && `{rule} ${o.rule}`, stages > 1 && (o.stageEpochs ?? 1) > 0 && 'fine-tuning between {stages}',
    format === 'onnx' && networkOf(arch).normalization === 'channel' && !recorded && 'the input statistics an ONNX file records (the checkpoint holds none)',
  ].filter(Boolean) as string[];
  const data = why.length ? await loadFor(arch, o.data, `${what}: ${why[0]}`) : null;
  const calib = o.repair === undefined ? undefined : calibrationInputs(data!, o.repair);
  const accBefore = data && evaluate ? accuracyOf(model, data).accuracy : null;
  const seed = o.seed ?? 0;
  const sites = mergeSites(model);
  const n = sites.map((s) => s.units);
  const names = sites.map((s) => model.layers[s.index].describe());
  const rule = o.rule ?? 'mean';
  const samples = data ? new CompressionSamples(data, seed, o.calibration, o.recalibrateCutout ?? 0) : null;
  const fitOn = samples?.fitFor(rule);
  // the units each layer keeps (a threshold decides them while merging)
  let ks: number[] | null = null;
  let allocation: CompressResult['allocation'] = o.threshold !== undefined ? 'threshold' : o.ratio !== undefined ? 'ratio' : o.allocate ?? 'uniform';
  if (o.ratio !== undefined) ks = unitsAt(model, o.ratio, what);
  else if (o.budget !== undefined && allocation === 'uniform') ks = budgetWidths(model, o.budget).ks;
  else if (o.budget !== undefined) {
    log(`${what}: measuring each layer's sensitivity on ${samples!.sensitivity().x.shape[0]} training images`);
    const sens = measureSensitivity(model, arch, samples!, { what, rule, method: o.method, seed, nInit: o.nInit, minSimilarity: o.minSimilarity, recalibrate: recalImages !== null, log });
    ks = budgetWidths(model, o.budget, sens).ks;
    allocation = 'sensitivity';
  }
  let roundingNote: string[] = [];
  if (o.multipleOf !== undefined) {
    if (!ks) throw new OptionError(`${what}: {multipleOf} needs {ratio} or {budget} (a threshold decides the units only as it merges)`);
    // with a budget no layer is rounded up, so the budget stays met
    ({ ks, notes: roundingNote } = roundToMultiple(model, ks, o.multipleOf, o.budget !== undefined));
  }
  const calibration = samples?.recalibration(recalImages) ?? null;
  let repair: number[] | null = null;
  const notes: string[] = [];
  // the page compares each layer with the original's
  const original = o.report !== undefined ? cloneModel(model, arch) : null;
  let merged: MergeReport | null = null;
  let current = model;
  let currentArch = arch;
  for (let s = 1; s <= stages; s++) {
    const now = mergeSites(current).map((x) => x.units);
    const target = ks ? stageWidths(n, ks, s, stages) : null;
    const ratios = target ? target.map((k, i) => 1 - k / now[i]) : undefined;
    const rep = compressModel(current, what === 'merge' ? rule : 'prune', { ratio: ratios, threshold: o.threshold, method: o.method, mode: o.mode, seed: seed + 100 * (s - 1), nInit: o.nInit, repair: s === stages ? calib : undefined, minSimilarity: o.minSimilarity, fit: fitOn, recalibration: calibration });
    if (s === 1) notes.push(...(rep?.notes ?? []), ...roundingNote);
    if (rep) {
      merged = rep;
      repair = rep.repair ?? null;
    }
    currentArch = archOf(current, arch);
    if (s < stages && (o.stageEpochs ?? 1) > 0) {
      log(`${what}: stage ${s} of ${stages} (${mergeSites(current).map((x) => x.units).join('-')} units); fine-tuning ${o.stageEpochs ?? 1} epoch(s)`);
      await finetuneModel(current, currentArch, data!, { epochs: o.stageEpochs ?? 1, seed: seed + s, log, progress: false, device: o.device });
      if (calibration) recalibrateBatchNorm(current, calibration);
    }
  }
  const after = modelStats(current, input);
  const c = compare(before, after);
  const accAfter = data && evaluate ? accuracyOf(current, data).accuracy : null;
  const kind = what === 'merge' ? 'merged' : 'pruned';
  const normalization = networkOf(arch).normalization === 'channel' ? recorded ?? data?.norm ?? null : null;
  if (format === 'onnx') writeOnnx(o.out, { model: current, arch: currentArch, kind }, { normalization: normalization ?? undefined });
  else saveCheckpoint(o.out, { arch: currentArch, model: current, kind, normalization });
  const widths = mergeSites(current).map((x) => x.units);
  const units = names.map((layer, i) => ({ layer, before: n[i], after: widths[i] }));
  if (o.report !== undefined) {
    log(`merge: explaining each layer for ${o.report}`);
    const one = stages === 1 && merged !== null;
    await writeCompressionHtml(o.report, {
      title: `${modelName(arch)} merged by the ${rule} rule: ${(100 * c.compressionRatio).toFixed(2)}% of the parameters removed`,
      command: o.command ?? `compressCheckpoint(${JSON.stringify(file)}, 'merge', { out: ${JSON.stringify(o.out)} })`, checkpoint: file, out: o.out, model: arch.model, data: dataTitle(data!), rule, method: o.method ?? 'kmeans', seed,
      machine: machineDescription(), seconds: (performance.now() - started) / 1000, allocation: ALLOCATION_TEXT[allocation], units, params: c.params, flops: c.flops,
      accuracy: { before: accBefore, after: accAfter }, recalibrated: calibration ? calibration.shape[0] : null,
      notes: one ? notes : [...notes, `merged in ${stages} stages: each layer's view needs a one-step merge`],
      explain: one ? explainLayers(original!, arch, merged!, data!, rule, fitOn) : [],
      filters: one ? firstFilters(original!, current, merged!.sites[0].labels) : null,
    });
  }
  return {
    checkpoint: o.out, from: file, arch: currentArch, units, ratios: widths.map((k, i) => 1 - k / n[i]), allocation,
    params: c.params, compressionRatio: c.compressionRatio, flops: c.flops, speedupFlops: c.flopsRatio,
    bytes: c.bytes, accuracy: { before: accBefore, after: accAfter }, repair, repairImages: calib ? calib.shape[0] : null, recalibrated: calibration ? calibration.shape[0] : null, recalibrateCutout: calibration ? o.recalibrateCutout ?? 0 : 0, notes, stages,
    report: o.report ?? null, format,
  };
}

const ALLOCATION_TEXT: Record<CompressResult['allocation'], string> = {
  ratio: 'the units per layer from a ratio', threshold: 'the units per layer from a distance threshold',
  uniform: 'a budget spread as one ratio in every layer', sensitivity: 'a budget spread by each layer\'s measured sensitivity',
};

/** a task's data, where `why` needs it: a dataset that cannot be had is an error that says what asked
 * for it (and how to do without) */
async function loadFor(arch: Arch, data: TaskLoadOptions | undefined, why: string): Promise<TaskData> {
  try {
    return await loadTask(arch, data);
  } catch (e) {
    throw new OptionError(`${why} needs the dataset: ${(e as Error).message}`);
  }
}

/** the dataset and where it was read */
export const dataTitle = (d: TaskData) => `${d.settings.dataTitle}, ${d.test.count} test images (${sourceOf(d)})`;

/** each layer of `model` merged alone as `rep` grouped it, on the first `images` test images, with its
 * dendrogram where the method made one */
function explainLayers(model: Sequential, arch: Arch, rep: MergeReport, data: TaskData, rule: MergeRule, fitOn?: Tensor, images = 256): LayerExplanation[] {
  const acts = fitOn ? siteActivations(model, fitOn) : null;
  const layers = explainMerge(model, arch, rep.sites.map((x) => x.labels), slice(data.ev.x, 0, Math.min(images, data.ev.x.shape[0])), (q) => ({ rule, representatives: rep.sites[q].representatives, activations: acts?.[q] }));
  return layers.map((l, q) => (rep.sites[q].tree ? { ...l, tree: rep.sites[q].tree } : l));
}
