#!/usr/bin/env node
// The neuronmerge command. Every error is one clear line on stderr and a non-zero exit code.
// first, before anything else loads: re-runs this process with huge pages for large arrays (Linux)
import './rerun.js';
import { Command, InvalidArgumentError } from 'commander';
// the native kernels register themselves when this module loads (the TypeScript ones otherwise)
import '../backend/native.js';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { datasetStatus, fetchDataset, listDatasets, summarizeDataset } from '../../datasets/catalog.js';
import { setBackend } from '../backend/registry.js';
import { explainMerge } from '../compress/explain.js';
import { archOf, mergeModel, mergeSites } from '../compress/merge.js';
import { pruneModel } from '../compress/prune.js';
import { compare, modelStats } from '../compress/stats.js';
import { buildModel, dbnArch, lenet5Arch, vgg16Arch } from '../models/index.js';
import type { Arch } from '../models/index.js';
import { slice } from '../tensor/ops.js';
import { saveCheckpoint } from '../train/checkpoint.js';
import { RECIPES } from '../train/recipes.js';
import { reportTable, reproduce } from './reproduce.js';
import { accuracyOf, calibrationInputs, cloneModel, finetuneModel, loadTask, modelFromCheckpoint, taskOf } from './tasks.js';

const program = new Command();
program.name('neuronmerge').description('Merging similar neurons for deep network compression (Zhong et al., 2020)');

const num = (what: string, lo: number, hi: number) => (v: string) => {
  const x = Number(v);
  if (!Number.isFinite(x) || x < lo || x > hi) throw new InvalidArgumentError(`${what} must be a number in [${lo}, ${hi}], got '${v}'`);
  return x;
};
const ratio = (what: string) => (v: string) => {
  const x = Number(v);
  if (!(x >= 0 && x < 1)) throw new InvalidArgumentError(`${what} must be in [0, 1), got '${v}'`);
  return x;
};
const ratios = (v: string) => v.split(',').map(ratio('a merge ratio'));

function common(c: Command): Command {
  return c.option('--json', 'print JSON instead of text')
    .option('--seed <n>', 'seed of every random choice', num('--seed', 0, 2 ** 31), 0)
    .option('--backend <name>', 'js or native CPU kernels (default: the best available), or webgpu: train and fine-tune on the GPU')
    .option('--data-dir <dir>', 'dataset cache folder (default: NEURONMERGE_DATA or ~/.cache/neuronmerge)');
}
/** model commands also read a dataset from a given folder or archive */
const withData = (c: Command) => common(c).option('--data <path>', 'read the dataset from this folder (IDX files, or CIFAR-10\'s cifar-10-batches-bin) or CIFAR-10 archive');
const dataOpts = (o: { dataDir?: string; data?: string }) => ({ dataDir: o.dataDir, path: o.data });

/** --backend: js or native select the CPU kernels; webgpu trains on the GPU (returns the device) */
function useBackend(name?: string): 'cpu' | 'webgpu' {
  if (name === 'webgpu' || (!name && process.env.NEURONMERGE_BACKEND === 'webgpu')) return 'webgpu';
  if (name) setBackend(name);
  return 'cpu';
}

const intList = (v: string) => v.split(',').map((s) => {
  const x = Number(s);
  if (!Number.isInteger(x) || x < 1) throw new InvalidArgumentError(`widths must be positive integers separated by commas, got '${s}'`);
  return x;
});

const MODELS = ['lenet', 'dbn', 'vgg'] as const;
type ModelName = (typeof MODELS)[number];
function modelName(v: string, what = 'model'): ModelName {
  if (!(MODELS as readonly string[]).includes(v)) throw new Error(`unknown ${what} '${v}' (dbn, lenet or vgg)`);
  return v as ModelName;
}

/** the paper's architecture of a model, or a variant: --widths (every hidden width; VGG: 13 convolutions
 * and optionally the fc width) or --width-scale (every width times a factor) */
export function archFor(model: ModelName, o: { widths?: number[]; widthScale?: number }): Arch {
  const base = model === 'lenet' ? lenet5Arch() : model === 'dbn' ? dbnArch() : vgg16Arch();
  let widths: number[] = base.model === 'vgg16' ? [...base.widths, base.fc] : [...base.widths];
  if (o.widths) {
    const ok = base.model === 'lenet5' ? [3] : base.model === 'vgg16' ? [13, 14] : [o.widths.length];
    if (!ok.includes(o.widths.length)) throw new Error(`--widths: ${model} takes ${ok.join(' or ')} widths, got ${o.widths.length}`);
    widths = base.model === 'vgg16' && o.widths.length === 13 ? [...o.widths, base.fc] : o.widths;
  }
  if (o.widthScale !== undefined) widths = widths.map((w) => Math.max(1, Math.round(w * o.widthScale!)));
  if (base.model === 'lenet5') return lenet5Arch(widths as [number, number, number]);
  if (base.model === 'vgg16') return vgg16Arch(widths.slice(0, 13), widths[13]);
  return dbnArch(widths);
}
const variant = (c: Command) => c
  .option('--widths <list>', 'train a variant: every hidden width, comma-separated (VGG: 13 convolutions, then optionally the fc)', intList)
  .option('--width-scale <f>', 'train a variant: every width times this factor', num('--width-scale', 1e-3, 16));
const hasVariant = (o: { widths?: number[]; widthScale?: number }) => o.widths !== undefined || o.widthScale !== undefined;

const pct = (x: number) => (100 * x).toFixed(2) + '%';
const log = (l: string) => process.stderr.write(l + '\n');

async function runReproduce(model: ModelName, o: Record<string, any>, out: string) {
  const r = await reproduce(model, {
    device: useBackend(o.backend),
    quick: o.quick, ratios: o.ratios, seed: o.seed, out, data: dataOpts(o), epochs: o.epochs, finetuneEpochs: o.finetuneEpochs, limit: o.limit,
    checkpoint: o.checkpoint, arch: hasVariant(o) ? archFor(model, o) : undefined, log, repair: o.repair === true ? 500 : o.repair,
  });
  if (!o.json) console.log(`\n${r.model} on ${r.data.split(' (')[0]}${o.quick ? ' (--quick)' : ''}: original ${pct(r.original.accuracy)}, ${r.original.params.toLocaleString('en')} parameters; ${r.seconds.toFixed(0)} s\n\n${reportTable(r)}\n\nreports: ${out}/report.md, ${out}/report.json`);
  return r;
}

variant(withData(program.command('reproduce').argument('<model>', 'dbn, lenet, vgg or all').description('train (or reuse a checkpoint), merge, fine-tune and compare with the pruning baseline; writes report.json, report.md and plots'))
  .option('--quick', 'a short run (minutes; VGG: an eighth-width VGG-16 on 10,000 images)')
  .option('--ratios <list>', 'merge ratios, comma-separated', ratios)
  .option('--out <dir>', 'folder for the reports (all: one subfolder per model)', 'neuronmerge-out')
  .option('--epochs <n>', 'training epochs of the original', num('--epochs', 1, 10000))
  .option('--finetune-epochs <n>', 'fine-tuning epochs', num('--finetune-epochs', 0, 10000))
  .option('--limit <n>', 'train on the first n images only', num('--limit', 1, 1e9))
  .option('--checkpoint <file>', 'the trained original: reused if it exists (resumed if cut short), written every epoch otherwise')
  .option('--repair [n]', 'also report the merged model after statistics repair on n training images (default 500; not the paper\'s method)', num('--repair', 1, 1e6))
  ).action(async (model: string, o) => {
    useBackend(o.backend);
    if (model !== 'all' && !(MODELS as readonly string[]).includes(model)) throw new Error(`unknown model '${model}' (dbn, lenet, vgg or all)`);
    if (model === 'all' && (o.checkpoint || hasVariant(o))) throw new Error('reproduce all: --checkpoint, --widths and --width-scale name one model; run the models one by one');
    if (model !== 'all') {
      const r = await runReproduce(model as ModelName, o, o.out);
      if (o.json) console.log(JSON.stringify(r));
      return;
    }
    const all = [];
    // MNIST is embedded; --data names the CIFAR-10 folder or archive
    for (const m of ['lenet', 'dbn', 'vgg'] as const) all.push(await runReproduce(m, m === 'vgg' ? o : { ...o, data: undefined }, join(o.out, m)));
    if (o.json) console.log(JSON.stringify(all));
  });

variant(withData(program.command('train').argument('<model>', 'dbn, lenet or vgg').description('train a network with its recipe'))
  .option('--epochs <n>', 'epochs', num('--epochs', 1, 10000))
  .option('--checkpoint <file>', 'write a checkpoint (safetensors) every epoch')
  .option('--resume <file>', 'continue from a checkpoint')
  .option('--limit <n>', 'train on the first n images only', num('--limit', 1, 1e9))
  .option('--lr <x>', 'learning rate', num('--lr', 0, 100))
  ).action(async (model: string, o) => {
    const device = useBackend(o.backend);
    const m = modelName(model);
    const recipe = RECIPES[m];
    const r = await recipe({ device, epochs: o.epochs, seed: o.seed, lr: o.lr, limit: o.limit, checkpoint: o.checkpoint, resume: o.resume, arch: hasVariant(o) ? archFor(m, o) : undefined, data: dataOpts(o), log });
    if (o.json) console.log(JSON.stringify({ model, arch: r.arch, testAccuracy: r.testAccuracy, seconds: r.seconds, history: r.history, checkpoint: o.checkpoint ?? null }));
    else console.log(`${model}: test accuracy ${pct(r.testAccuracy)} (${r.seconds.toFixed(0)} s)${o.checkpoint ? `; checkpoint ${o.checkpoint}` : ''}`);
  });

variant(common(program.command('info').argument('<what>', 'a checkpoint file, or lenet, vgg, dbn').description('layers, units, parameters and FLOPs')))
  .action((what: string, o) => {
    let arch: Arch;
    let model;
    if ((MODELS as readonly string[]).includes(what)) {
      arch = archFor(what as ModelName, o);
      model = buildModel(arch, 0);
    } else {
      if (hasVariant(o)) throw new Error('--widths and --width-scale describe a model by name, not a checkpoint');
      ({ model, arch } = modelFromCheckpoint(what));
    }
    const s = modelStats(model, taskOf(arch).input);
    if (o.json) console.log(JSON.stringify({ arch, ...s }));
    else {
      console.log(`${arch.model}: ${s.params.toLocaleString('en')} parameters, ${s.flops.toLocaleString('en')} FLOPs per input, ${s.bytes.toLocaleString('en')} bytes`);
      for (const l of s.layers) console.log(`  ${String(l.index).padStart(3)} ${l.layer.padEnd(26)} units ${String(l.units).padStart(5)}  params ${String(l.params).padStart(9)}  FLOPs ${l.flops}`);
    }
  });

withData(program.command('eval').argument('<checkpoint>', 'a checkpoint file').description('test accuracy and loss of a checkpoint on its dataset'))
  .action(async (file: string, o) => {
    useBackend(o.backend);
    const { model, arch } = modelFromCheckpoint(file);
    const task = await loadTask(arch, dataOpts(o));
    const t = performance.now();
    const r = accuracyOf(model, task);
    const params = model.numParameters();
    if (o.json) console.log(JSON.stringify({ checkpoint: file, arch, dataset: task.settings.dataset, images: task.test.count, ...r, params, seconds: (performance.now() - t) / 1000 }));
    else console.log(`${file}: ${arch.model} on the ${task.settings.dataset} test set (${task.test.count} images): accuracy ${pct(r.accuracy)}, loss ${r.loss.toFixed(4)}; ${params.toLocaleString('en')} parameters`);
  });

/** units before and after, parameters, FLOPs, and (unless --no-eval) accuracy before and after */
async function compressCommand(file: string, o: Record<string, any>, what: 'merge' | 'prune') {
  useBackend(o.backend);
  if (what === 'merge' && [o.ratio, o.threshold, o.budget].filter((v) => v !== undefined).length !== 1) throw new Error('merge: give exactly one of --ratio, --threshold and --budget');
  const { model, arch } = modelFromCheckpoint(file);
  const task = taskOf(arch);
  const before = modelStats(model, task.input);
  const data = o.eval === false && o.repair === undefined ? null : await loadTask(arch, dataOpts(o));
  const calib = o.repair === undefined ? undefined : calibrationInputs(data!, o.repair === true ? 500 : o.repair);
  const accBefore = data && o.eval !== false ? accuracyOf(model, data).accuracy : null;
  let units: { layer: string; before: number; after: number }[];
  let repair: number[] | null = null;
  if (what === 'merge') {
    const rep = mergeModel(model, { ratio: o.ratio, threshold: o.threshold, budget: o.budget, method: o.method, mode: o.mode, seed: o.seed, nInit: o.nInit, repair: calib });
    units = rep.sites.map((s) => ({ layer: s.layer, before: s.before, after: s.after }));
    repair = rep.repair ?? null;
  } else {
    if (o.ratio === undefined) throw new Error('prune: give --ratio');
    const names = mergeSites(model).map((s) => model.layers[s.index].describe());
    units = pruneModel(model, { ratio: o.ratio }).map((p, i) => ({ layer: names[i], before: p.before, after: p.after }));
  }
  const newArch = archOf(model, arch);
  const after = modelStats(model, task.input);
  const c = compare(before, after);
  const accAfter = data && o.eval !== false ? accuracyOf(model, data).accuracy : null;
  saveCheckpoint(o.out, { arch: newArch, model });
  const res = { checkpoint: o.out, from: file, arch: newArch, units, params: c.params, compressionRatio: c.compressionRatio, flops: c.flops, speedupFlops: c.flopsRatio, bytes: c.bytes, accuracy: { before: accBefore, after: accAfter }, repair };
  if (o.json) console.log(JSON.stringify(res));
  else {
    console.log(`${what === 'merge' ? 'merged' : 'pruned'} ${file} → ${o.out}`);
    for (const u of units) console.log(`  ${u.layer.padEnd(28)} ${String(u.before).padStart(5)} → ${u.after}`);
    console.log(`parameters ${c.params.before.toLocaleString('en')} → ${c.params.after.toLocaleString('en')} (${pct(c.compressionRatio)} removed), FLOPs ${c.flopsRatio.toFixed(2)}× fewer`);
    if (accBefore !== null) console.log(`test accuracy ${pct(accBefore)} → ${pct(accAfter!)}${calib ? ` (statistics repaired on ${calib.shape[0]} training images)` : ''} (before fine-tuning; try: neuronmerge finetune ${o.out} --out FILE)`);
  }
}

withData(program.command('merge').argument('<checkpoint>', 'a trained checkpoint').description('cluster similar units in every hidden layer and merge them with their connections'))
  .requiredOption('--out <file>', 'where to write the merged checkpoint')
  .option('--ratio <r>', 'merge ratio: each layer keeps round((1 - r) n) units', ratio('--ratio'))
  .option('--threshold <d>', 'cut each layer\'s dendrogram at this distance (ward, average or complete)', num('--threshold', 0, 1e30))
  .option('--budget <f>', 'keep at most this fraction of the parameters', num('--budget', 1e-9, 1))
  .option('--method <m>', 'kmeans, ward, average or complete', (v: string) => {
    if (!['kmeans', 'ward', 'average', 'complete'].includes(v)) throw new InvalidArgumentError(`--method must be kmeans, ward, average or complete, got '${v}'`);
    return v;
  }, 'kmeans')
  .option('--mode <m>', 'all (cluster every layer of the original) or sequential (layer by layer as merged)', (v: string) => {
    if (v !== 'all' && v !== 'sequential') throw new InvalidArgumentError(`--mode must be all or sequential, got '${v}'`);
    return v;
  }, 'all')
  .option('--n-init <n>', 'k-means restarts', num('--n-init', 1, 1000), 3)
  .option('--repair [n]', 'after merging, restore each merged unit\'s output mean and spread to its members\' on n training images (default 500; not part of the paper\'s method)', num('--repair', 1, 1e6))
  .option('--no-eval', 'skip the test-set accuracy before and after')
  .action((file: string, o) => compressCommand(file, o, 'merge'));

withData(program.command('prune').argument('<checkpoint>', 'a trained checkpoint').description('the baseline: remove the units with the smallest L1 norm in every hidden layer'))
  .requiredOption('--out <file>', 'where to write the pruned checkpoint')
  .requiredOption('--ratio <r>', 'each layer keeps round((1 - r) n) units', ratio('--ratio'))
  .option('--no-eval', 'skip the test-set accuracy before and after')
  .action((file: string, o) => compressCommand(file, o, 'prune'));

withData(program.command('finetune').argument('<checkpoint>', 'a (merged or pruned) checkpoint').description('fine-tune: SGD with momentum, weight decay and a cosine schedule'))
  .requiredOption('--out <file>', 'where to write the fine-tuned checkpoint (every epoch)')
  .option('--epochs <n>', 'epochs', num('--epochs', 1, 10000), 4)
  .option('--lr <x>', 'learning rate (default: per network)', num('--lr', 0, 100))
  .option('--limit <n>', 'train on the first n images only', num('--limit', 1, 1e9))
  .action(async (file: string, o) => {
    const device = useBackend(o.backend);
    const { model, arch } = modelFromCheckpoint(file);
    const data = await loadTask(arch, dataOpts(o));
    const before = accuracyOf(model, data).accuracy;
    const t = performance.now();
    const history = await finetuneModel(model, arch, data, { device, epochs: o.epochs, lr: o.lr, seed: o.seed, limit: o.limit, checkpoint: o.out, log });
    const after = accuracyOf(model, data).accuracy;
    const seconds = (performance.now() - t) / 1000;
    if (o.json) console.log(JSON.stringify({ checkpoint: o.out, from: file, arch, accuracy: { before, after }, seconds, history }));
    else console.log(`fine-tuned ${file} → ${o.out}: test accuracy ${pct(before)} → ${pct(after)} (${o.epochs} epochs, ${seconds.toFixed(0)} s)`);
  });

withData(program.command('explain').argument('<checkpoint>', 'a trained checkpoint').description('the teaching view: the clusters merging finds in each layer, their sizes and spread, and how far each layer\'s output moves'))
  .requiredOption('--ratio <r>', 'merge ratio', ratio('--ratio'))
  .option('--layer <i>', 'list the clusters of this mergeable layer (0 = the first)', num('--layer', 0, 1000))
  .option('--images <n>', 'test images to measure the output shift on', num('--images', 1, 10000), 256)
  .action(async (file: string, o) => {
    useBackend(o.backend);
    const { model, arch } = modelFromCheckpoint(file);
    const data = await loadTask(arch, dataOpts(o));
    const merged = cloneModel(model, arch);
    const rep = mergeModel(merged, { ratio: o.ratio, seed: o.seed, nInit: 3 });
    if (o.layer !== undefined && o.layer >= rep.sites.length) throw new Error(`--layer ${o.layer}: the model has ${rep.sites.length} mergeable layers (0 to ${rep.sites.length - 1})`);
    const layers = explainMerge(model, arch, rep.sites.map((s) => s.labels), slice(data.ev.x, 0, Math.min(o.images, data.ev.x.shape[0])));
    const clusters = o.layer === undefined ? null : groupsOf(rep.sites[o.layer].labels);
    if (o.json) {
      console.log(JSON.stringify({ checkpoint: file, ratio: o.ratio, layers, ...(clusters ? { layer: o.layer, clusters } : {}) }));
      return;
    }
    console.log(`merging ${file} at ratio ${o.ratio} (k-means on each unit's incoming weights and bias, batch norm folded)`);
    console.log('  layer                        units → clusters   sizes min/median/max  singletons  spread  output moved');
    for (const e of layers) console.log(`  ${e.layer.padEnd(28)} ${String(e.units).padStart(5)} → ${String(e.clusters).padEnd(8)}   ${`${e.sizes.min}/${e.sizes.median}/${e.sizes.max}`.padEnd(20)}  ${String(e.sizes.singletons).padStart(10)}  ${(100 * e.spread).toFixed(1).padStart(5)}%  ${(100 * e.outputShift).toFixed(1).padStart(5)}%`);
    console.log('spread: mean distance of a unit to its cluster centre over the mean unit norm; output moved: ‖Δz‖/‖z‖ of the next layer when this layer alone is merged');
    if (clusters) {
      console.log(`\nclusters of ${layers[o.layer].layer} (largest first; unit indices):`);
      for (const [g, members] of clusters.entries()) console.log(`  ${String(g).padStart(4)}: ${members.length} units: ${members.slice(0, 24).join(' ')}${members.length > 24 ? ' …' : ''}`);
    }
  });

/** members of each group, largest group first */
function groupsOf(labels: Int32Array): number[][] {
  const m = new Map<number, number[]>();
  labels.forEach((g, u) => (m.get(g) ?? m.set(g, []).get(g)!).push(u));
  return [...m.values()].sort((a, b) => b.length - a.length || a[0] - b[0]);
}

program.command('bench').argument('[suites...]', 'gemm, conv, data, train, cluster, speedup (all by default)').option('--json', 'JSON lines').description('the benchmarks (from a source checkout: they need the dev dependencies)')
  .allowUnknownOption()
  .action((suites: string[], o) => {
    const script = fileURLToPath(new URL('../../bench/index.js', import.meta.url));
    if (!existsSync(script)) throw new Error(`the benchmarks are not built here (${script} is missing): run them from a source checkout with npm run bench`);
    const r = spawnSync(process.execPath, [script, ...suites, ...(o.json ? ['--json'] : [])], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`benchmarks failed (exit code ${r.status})`);
  });

const data = program.command('data').description('list, verify and fetch datasets');
common(data.command('list').description('the datasets neuronmerge knows and what the cache holds')).action(async (o) => {
  const out = [];
  for (const d of listDatasets()) out.push(await datasetStatus(d.name, { dataDir: o.dataDir }));
  if (o.json) console.log(JSON.stringify(out));
  else for (const s of out) console.log(`${s.name.padEnd(14)} ${s.title}; cache ${s.cacheDir}: ${s.files.filter((f) => f.present).length}/${s.files.length} files${s.embedded ? '; embedded copy available' : ''}`);
});
common(data.command('verify').argument('<name>', 'mnist, fashion-mnist or cifar10').option('--path <dir>', 'read from this folder or archive').description('load a dataset and print its counts and class counts')).action(async (name: string, o) => {
  const s = await summarizeDataset(name, { dataDir: o.dataDir, path: o.path, download: false });
  if (o.json) console.log(JSON.stringify(s));
  else console.log(`${s.name} from ${s.source}\n  train ${s.train.count} images, per class ${s.train.classCounts.join(' ')}\n  test ${s.test.count} images, per class ${s.test.classCounts.join(' ')}`);
});
common(data.command('fetch').argument('<name>', 'mnist, fashion-mnist or cifar10').description('download into the cache, checked against the official checksums')).action(async (name: string, o) => {
  let last = 0;
  const paths = await fetchDataset(name, {
    dataDir: o.dataDir,
    onProgress: (p) => {
      const now = Date.now();
      if (!o.json && now - last > 500) {
        last = now;
        process.stderr.write(`\r${p.file}: ${(p.received / 1e6).toFixed(1)}${p.total ? ` / ${(p.total / 1e6).toFixed(1)}` : ''} MB`);
      }
    },
  });
  if (!o.json) process.stderr.write('\n');
  console.log(o.json ? JSON.stringify(paths) : paths.join('\n'));
});

program.parseAsync(process.argv).catch((e: Error) => {
  process.stderr.write(`neuronmerge: ${e.message.split('\n')[0]}\n`);
  process.exit(1);
});
