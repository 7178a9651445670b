#!/usr/bin/env node
// The neuronmerge command: parses the arguments, calls the library, prints. Every error is one line on
// stderr (`neuronmerge: …`) and exit code 1; outputs are checked before any work starts.
// first, before anything else loads: re-runs this process with huge pages for large arrays (Linux)
import '../runtime/rerun.js';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
// the native kernels register themselves when this module loads (the TypeScript ones otherwise)
import '../backend/native.js';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { datasetStatus, fetchDataset, listDatasets, loadDataset, summarizeDataset } from '../../datasets/catalog.js';
import { setBackend } from '../backend/registry.js';
import { startWebGpuKernels } from '../backend/webgpu-kernels.js';
import { WebGpuUnavailable } from '../backend/webgpu.js';
import { modelStats } from '../compress/stats.js';
import { buildModel, inputShape } from '../models/index.js';
import type { Arch } from '../models/index.js';
import type { MergeRule } from '../compress/merge.js';
import { archFor, DISTILL_DEFAULTS, network, NETWORK_NAMES, networkOf, NETWORKS, ONE_CYCLE_WARMUP, PAPER_NETWORKS } from '../experiment/networks.js';
import type { NetworkName } from '../experiment/networks.js';
import { accuracyOf, describeKind, finetuneModel, loadTask, modelFromCheckpoint, teacherFor } from '../experiment/task.js';
import { RECIPES } from '../experiment/recipes.js';
import { compressCheckpoint, MERGE_RULES } from '../experiment/compress.js';
import { RECALIBRATE_IMAGES } from '../experiment/pipeline.js';
import { EXPLAIN_RATIOS, explainCheckpoint } from '../experiment/explain.js';
import { reproduce, reproducePiece, reproducePlan } from '../experiment/reproduce.js';
import type { ReproduceOptions, ReproducePiece } from '../experiment/reproduce.js';
import { slurmScripts, submitStages } from '../experiment/slurm.js';
import { exportCheckpoint, FLOAT16_TOLERANCE, formatFor, writeOnnx } from '../experiment/export.js';
import { reportTable } from '../report/markdown.js';
import { environmentError } from '../runtime/env.js';
import { checkOutputFile, lockOutputs } from '../runtime/files.js';
import { Interrupted, watchInterrupts } from '../backend/native.js';
import { loadCheckpoint, unfinished } from '../train/checkpoint.js';
import { modelName } from '../models/index.js';
import { OptionError } from '../runtime/errors.js';

const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../../../package.json', import.meta.url)), 'utf8')) as { version: string };

const program = new Command();
program.name('neuronmerge').description('Merging similar neurons for deep network compression (Zhong et al., 2020)')
  .version(pkg.version, '--version', 'print the version')
  // errors come back here and are printed as one line below (subcommands inherit both settings)
  .exitOverride()
  .configureOutput({ outputError: () => {} });

/** a number in [lo, hi]; with `integer`, a whole one */
const num = (what: string, lo: number, hi: number, integer = false) => (v: string) => {
  const x = v.trim() === '' ? NaN : Number(v);
  if (!Number.isFinite(x) || x < lo || x > hi || (integer && !Number.isInteger(x))) {
    throw new InvalidArgumentError(`${what} must be ${integer ? 'an integer' : 'a number'} from ${lo} to ${hi}, got '${v}'`);
  }
  return x;
};
const int = (what: string, lo: number, hi: number) => num(what, lo, hi, true);
const ratio = (what: string) => (v: string) => {
  const x = v.trim() === '' ? NaN : Number(v);
  if (!(x >= 0 && x < 1)) throw new InvalidArgumentError(`${what} must be in [0, 1), got '${v}'`);
  return x;
};
/** one merge ratio for every layer, or one per mergeable layer (comma-separated) */
const layerRatios = (what: string) => (v: string) => {
  const xs = v.split(',').map(ratio(what));
  return xs.length === 1 ? xs[0] : xs;
};
const ratios = (v: string) => {
  if (v.trim() === '') throw new InvalidArgumentError('--ratios must list merge ratios separated by commas, got an empty list');
  return v.split(',').map(ratio('--ratios: each merge ratio'));
};
const fractions = (v: string) => v.split(',').map((s) => {
  const x = s.trim() === '' ? NaN : Number(s);
  if (!(x > 0 && x <= 1)) throw new InvalidArgumentError(`--budgets must list fractions in (0, 1] separated by commas, got '${s}'`);
  return x;
});
/** a comma-separated list of whole numbers from `min` (1: positive) */
const wholeList = (what: string, min: 0 | 1) => (v: string) => v.split(',').map((s) => {
  const x = Number(s);
  if (s.trim() === '' || !Number.isInteger(x) || x < min) throw new InvalidArgumentError(`${what} must be ${min ? 'positive integers' : 'whole numbers 0 or more'} separated by commas, got '${s}'`);
  return x;
});
const intList = wholeList('--widths', 1), seedList = wholeList('--finetune-seeds', 0);
const oneOf = (what: string, xs: string[]) => (v: string) => {
  if (!xs.includes(v)) throw new InvalidArgumentError(`${what} must be ${xs.join(', ')}, got '${v}'`);
  return v;
};

function common(c: Command): Command {
  return c.option('--json', 'print JSON instead of text')
    .option('--seed <n>', 'seed of every random choice', int('--seed', 0, 2 ** 31 - 1), 0)
    .option('--backend <name>', 'js or native CPU kernels (default: the best available), or webgpu: every op on the GPU', oneOf('--backend', ['js', 'native', 'webgpu']))
    .option('--data-dir <dir>', 'dataset cache folder (default: NEURONMERGE_DATA or ~/.cache/neuronmerge)');
}
/** commands that read a dataset also take it from a given folder or archive */
const withData = (c: Command) => common(c).option('--data <path>', 'read the dataset from this folder (IDX files, or CIFAR-10\'s cifar-10-batches-bin) or CIFAR-10 archive')
  .option('--dataset <name>', 'the dataset the model reads, where not its own: mnist, fashion-mnist or cifar10 (the model\'s input must fit its images)', oneOf('--dataset', ['mnist', 'fashion-mnist', 'cifar10']));
const dataOpts = (o: { dataDir?: string; data?: string; dataset?: string }) => ({ dataDir: o.dataDir, path: o.data, dataset: o.dataset });

/** --backend: js or native select the CPU kernels; webgpu starts the WebGPU kernels and runs every op
 * on them (training, where it can, on the GPU-resident trainer); no adapter: the CPU, said so */
function useBackend(name?: string): 'cpu' | 'webgpu' {
  if (name === 'webgpu' || (!name && process.env.NEURONMERGE_BACKEND === 'webgpu')) {
    try {
      const info = startWebGpuKernels();
      setBackend('webgpu');
      log(`WebGPU: ${info.description} (${info.backend}${info.software ? ', a software adapter: slow' : ''})`);
      return 'webgpu';
    } catch (e) {
      if (!(e instanceof WebGpuUnavailable)) throw e;
      log(`WebGPU is unavailable (${e.message}); the CPU kernels run instead`);
      return 'cpu';
    }
  }
  if (name) setBackend(name);
  return 'cpu';
}

const variant = (c: Command) => c
  .option('--widths <list>', 'a variant: every hidden width, comma-separated (VGG: 13 convolutions, then optionally the fc; mlp: any number)', intList)
  .option('--width-scale <f>', 'a variant: every width times this factor', num('--width-scale', 1e-3, 16))
  .option('--activation <a>', 'mlp: relu, sigmoid or tanh (default relu)', oneOf('--activation', ['relu', 'sigmoid', 'tanh']));
const hasVariant = (o: { widths?: number[]; widthScale?: number; activation?: string; dataset?: string }) => o.widths !== undefined || o.widthScale !== undefined || o.activation !== undefined || o.dataset !== undefined;

const pct = (x: number) => (100 * x).toFixed(2) + '%';
/** "1 epoch", "3 epochs" */
const plural = (n: number, word: string) => `${n.toLocaleString('en')} ${word}${n === 1 ? '' : 's'}`;
const log = (l: string) => process.stderr.write(l + '\n');
/** the command as typed, after `neuronmerge` */
const typed = (drop: string[] = []) => {
  const args = process.argv.slice(2).filter((a, i, all) => !drop.includes(a) && !(drop.includes(all[i - 1]) && !a.startsWith('--')));
  return args.map((a) => (/^[\w./,:=@+-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
};

/** `--recalibrate [n]` / `--no-recalibrate`: a number, the default (undefined: on for models with batch
 * norm), or off */
const recalibration = (v: unknown): number | false | undefined => (v === true ? RECALIBRATE_IMAGES : (v as number | false | undefined));

const ruleList = (what: string) => (v: string) => v.split(',').map((x) => {
  if (!(MERGE_RULES as readonly string[]).includes(x)) throw new InvalidArgumentError(`${what} must list rules from ${MERGE_RULES.join(', ')}, got '${x}'`);
  return x as MergeRule;
});

/** the fine-tuning options finetune and reproduce share */
const tuning = (c: Command) => c
  .option('--schedule <s>', 'learning rate over the run: cosine (from the rate down to 0) or onecycle (a warm-up, then cosine down) (default: the network\'s)', oneOf('--schedule', ['cosine', 'onecycle']))
  .option('--warmup <f>', `onecycle: the share of the steps spent warming up (default ${ONE_CYCLE_WARMUP})`, num('--warmup', 0, 0.9))
  .option('--weight-decay <x>', 'fine-tuning\'s weight decay (SGD; default: the network\'s)', num('--weight-decay', 0, 1))
  .option('--temperature <t>', 'distillation: softmax temperature', num('--temperature', 0.01, 100), DISTILL_DEFAULTS.temperature)
  .option('--distill-weight <a>', 'distillation: weight of the teacher\'s softened outputs (the labels get 1 - a)', num('--distill-weight', 0, 1), DISTILL_DEFAULTS.weight);

tuning(variant(withData(program.command('reproduce').argument('<model>', 'dbn, lenet, vgg, mlp or all (the paper\'s three)').description('train (or reuse a checkpoint), merge, fine-tune and compare with the pruning baseline; writes report.json, report.md and plots'))
  .option('--quick', 'a short run (minutes; VGG: an eighth-width VGG-16 on 10,000 images)')
  .option('--ratios <list>', 'merge ratios, comma-separated (default: the network\'s, or none where --budgets are given)', ratios)
  .option('--budgets <list>', 'also compress to each of these fractions of the parameters, comma-separated (a row each)', fractions)
  .option('--allocate <how>', 'how a budget is spread: uniform (one ratio everywhere; the default) or sensitivity (measured per layer with the first --merge rule)', oneOf('--allocate', ['uniform', 'sensitivity']))
  .option('--out <dir>', 'folder for the reports (all: one subfolder per model) and, in its work/, the fine-tunings and measurements a rerun continues from', 'neuronmerge-out')
  .option('--epochs <n>', 'training epochs of the original', int('--epochs', 1, 10000))
  .option('--finetune-epochs <n>', 'fine-tuning epochs', int('--finetune-epochs', 0, 10000))
  .option('--finetune-lr <x>', 'fine-tuning\'s learning rate (default: the network\'s)', num('--finetune-lr', 1e-9, 100))
  .option('--finetune-seeds <list>', 'fine-tune every merged and pruned model once per seed, comma-separated (0,1,2); the report gives each seed\'s accuracy, the mean and the standard deviation (default: once, with --seed)', seedList)
  .option('--limit <n>', 'train on the first n images only', int('--limit', 1, 1e9))
  .option('--checkpoint <file>', 'the trained original: reused if it exists (resumed if cut short), written every epoch otherwise')
  .option('--checkpoint-every <n>', 'also write the original\'s checkpoint and each fine-tuning\'s every n training steps', int('--checkpoint-every', 1, 1e9))
  .option('--repair [n]', 'also report the merged model after statistics repair on n training images (default 500; not the paper\'s method)', int('--repair', 1, 1e6))
  .option('--recalibrate [n]', `re-estimate the merged and the pruned models' batch norms on n seeded training images before measuring and fine-tuning them (default: on, ${RECALIBRATE_IMAGES}, for networks with batch norm)`, int('--recalibrate', 1, 1e6))
  .option('--no-recalibrate', 'measure and fine-tune the merged and pruned models with the batch-norm statistics compressing left')
  .option('--recalibrate-cutout <n>', 'give the images of that re-estimation an n×n Cutout, as the original was trained with (train --cutout n; default 0: none)', int('--recalibrate-cutout', 0, 1024), 0)
  .option('--merge <rules>', `merging rules to reproduce side by side, comma-separated (${MERGE_RULES.join(', ')}; default: the network's, the paper's mean and the best of the others)`, ruleList('--merge'))
  .option('--paper', 'the paper\'s setting: the mean rule and plain fine-tuning (the network\'s epochs, cosine, no distillation) instead of the best measured recipe')
  .option('--distill', 'fine-tune the merged and pruned models on the original\'s softened outputs as well as the labels (default: as the network\'s recipe says)')
  .option('--no-distill', 'fine-tune on the labels alone')
  .option('--finetune-cutout <n>', 'fine-tuning: Cutout, a random n×n square of each training image blanked (default: the network\'s; 0: none)', int('--finetune-cutout', 0, 1e4))
  .option('--multiple-of <m>', 'round each layer\'s units to a multiple of m (8 or 16: what runtimes such as onnxruntime run fastest); to the nearest at a ratio, down for a budget', int('--multiple-of', 1, 4096))
  .option('--plan', 'print the pieces this run splits into, as JSON (each with the command that runs it alone), and stop')
  .option('--job <id>', 'run one piece of the plan alone (its results go to --out\'s work/; the run without --job then reuses them)')
  .option('--job-index [n]', 'run the plan\'s n-th piece (from 0; default: SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX)', int('--job-index', 0, 1e6))
  )).action(async (model: string, o) => {
    const device = useBackend(o.backend);
    if (model !== 'all' && !(NETWORK_NAMES as readonly string[]).includes(model)) throw new Error(`unknown model '${model}' (${NETWORK_NAMES.join(', ')} or all)`);
    if (model === 'all' && (o.checkpoint || hasVariant(o))) throw new Error('reproduce all: --checkpoint, --widths, --width-scale, --activation and --dataset name one model; run the models one by one');
    const pieceWise = o.plan || o.job !== undefined || o.jobIndex !== undefined;
    if (model === 'all' && pieceWise) throw new Error('reproduce all: --plan, --job and --job-index take one model; plan the models one by one');
    if ([o.plan, o.job !== undefined, o.jobIndex !== undefined].filter(Boolean).length > 1) throw new Error('reproduce: give one of --plan, --job and --job-index');
    const settings = (m: NetworkName, out: string, data: { dataDir?: string; data?: string }): ReproduceOptions => ({
      device, quick: o.quick, ratios: o.ratios, seed: o.seed, out, data: dataOpts(data), epochs: o.epochs, finetuneEpochs: o.finetuneEpochs, finetuneLr: o.finetuneLr, finetuneSeeds: o.finetuneSeeds, limit: o.limit,
      checkpoint: o.checkpoint, checkpointEvery: o.checkpointEvery, arch: hasVariant(o) ? archFor(m, o) : undefined, log, repair: o.repair === true ? 500 : o.repair,
      recalibrate: recalibration(o.recalibrate), recalibrateCutout: o.recalibrateCutout, multipleOf: o.multipleOf, rules: o.merge, budgets: o.budgets, allocate: o.allocate, schedule: o.schedule, warmup: o.warmup, weightDecay: o.weightDecay,
      finetuneCutout: o.finetuneCutout, paper: o.paper, distill: o.distill === undefined ? undefined : o.distill && { temperature: o.temperature, weight: o.distillWeight },
      distillTemperature: o.temperature, distillWeight: o.distillWeight,
      command: model === 'all' ? `reproduce ${m}` : typed(['--job', '--job-index']),
    });
    if (pieceWise) {
      const opts = settings(model as NetworkName, resolve(o.out), o);
      const plan = reproducePlan(model as NetworkName, opts);
      if (o.plan) {
        // each piece's command: this one as typed, less --plan, with the output folder made absolute
        const typedArgs = process.argv.slice(2).filter((a) => a !== '--plan');
        const args = typedArgs.map((a, k) => (typedArgs[k - 1] === '--out' ? resolve(o.out) : a.startsWith('--out=') ? `--out=${resolve(o.out)}` : a));
        if (!typedArgs.some((a) => a === '--out' || a.startsWith('--out='))) args.push('--out', resolve(o.out));
        return console.log(JSON.stringify({ jobs: plan.map((p) => ({ id: p.id, after: p.after, what: p.what, command: ['neuronmerge', ...args, '--job', p.id] })) }, null, 1));
      }
      let id = o.job as string | undefined;
      if (o.jobIndex !== undefined) {
        const from = o.jobIndex === true ? process.env.SLURM_ARRAY_TASK_ID ?? process.env.JOB_COMPLETION_INDEX : String(o.jobIndex);
        const i = from === undefined || from.trim() === '' ? NaN : Number(from);
        if (!Number.isInteger(i) || i < 0) throw new Error(`--job-index: ${o.jobIndex === true ? `neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX holds a piece's index (got ${from === undefined ? 'none' : `'${from}'`})` : 'not an index'}`);
        if (i >= plan.length) throw new Error(`--job-index ${i}: the plan has ${plan.length} pieces (0 to ${plan.length - 1})`);
        id = plan[i].id;
      }
      if (id === 'report') lockOutputs([{ option: '--out', path: o.out }]);
      watchInterrupts();
      const r = await reproducePiece(model as NetworkName, opts, id!);
      if ('piece' in r) return console.log(o.json ? JSON.stringify(r) : `piece ${r.piece} done (${r.seconds.toFixed(0)} s)`);
      if (o.json) console.log(JSON.stringify(r));
      else console.log(`\n${reportTable(r)}\n\nreports: ${o.out}/report.md, ${o.out}/report.json, ${o.out}/report.html (open it in a browser)`);
      return;
    }
    lockOutputs([{ option: '--out', path: o.out }, ...(o.checkpoint ? [{ option: '--checkpoint', path: o.checkpoint }] : [])]);
    watchInterrupts();
    const one = async (m: NetworkName, out: string, data: { dataDir?: string; data?: string }) => {
      const r = await reproduce(m, settings(m, out, data));
      if (!o.json) console.log(`\n${r.model} on ${r.data.split(' (')[0]}${o.quick ? ' (--quick)' : ''}: original ${pct(r.original.accuracy)}, ${r.original.params.toLocaleString('en')} parameters; ${r.seconds.toFixed(0)} s\n\n${reportTable(r)}\n\nreports: ${out}/report.md, ${out}/report.json, ${out}/report.html (open it in a browser)`);
      return r;
    };
    if (model !== 'all') {
      const r = await one(model as NetworkName, o.out, o);
      if (o.json) console.log(JSON.stringify(r));
      return;
    }
    // MNIST is embedded; --data names the CIFAR-10 folder or archive. Every dataset is checked before
    // the first network trains, so a missing CIFAR-10 is not found an hour in
    const dataFor = (m: NetworkName) => (m === 'vgg' ? o : { dataDir: o.dataDir });
    for (const m of PAPER_NETWORKS) await loadDataset(NETWORKS[m].dataset, dataOpts(dataFor(m)));
    const all = [];
    for (const m of PAPER_NETWORKS) all.push(await one(m, join(o.out, m), dataFor(m)));
    if (o.json) console.log(JSON.stringify(all));
  });

variant(withData(program.command('train').argument('<model>', 'dbn, lenet, vgg or mlp').description('train a network with its recipe'))
  .option('--epochs <n>', 'epochs', int('--epochs', 1, 10000))
  .option('--checkpoint <file>', 'write a checkpoint (safetensors) every epoch')
  .option('--checkpoint-every <n>', 'also write it every n steps', int('--checkpoint-every', 1, 1e9))
  .option('--resume <file>', 'continue from a checkpoint (and keep writing it, unless --checkpoint names another file)')
  .option('--limit <n>', 'train on the first n images only', int('--limit', 1, 1e9))
  .option('--lr <x>', 'learning rate', num('--lr', 1e-9, 100))
  .option('--label-smoothing <x>', 'label smoothing of the loss, in [0, 1) (default: the network\'s recipe)', num('--label-smoothing', 0, 0.999))
  .option('--cutout <n>', 'Cutout: blank a random square of n×n pixels in each training image (0: none; default: the recipe\'s)', int('--cutout', 0, 1e4))
  .option('--precision <p>', 'the operands of the products: float32, or bf16 (inputs, weights and gradients rounded to bfloat16; float32 accumulation and master weights)', oneOf('--precision', ['float32', 'bf16']), 'float32')
  .option('--ema <decay>', 'also keep an exponential moving average of the weights (and batch-norm statistics) with this decay, e.g. 0.999, saved in the checkpoint and tested every epoch; export --ema writes it as a model (resuming a run without one starts it there)', num('--ema', 1e-6, 0.999999))
  ).action(async (model: string, o) => {
    const device = useBackend(o.backend);
    const m = network(model).name;
    const checkpoint: string | undefined = o.checkpoint ?? o.resume;
    if (o.resume && !o.checkpoint) log(`train ${m}: checkpoints go to ${o.resume} (the file resumed from)`);
    if (o.checkpointEvery && !checkpoint) throw new Error('--checkpoint-every: give --checkpoint FILE too');
    if (checkpoint) checkOutputFile(checkpoint, o.checkpoint ? '--checkpoint' : '--resume');
    if (checkpoint) lockOutputs([{ option: o.checkpoint ? '--checkpoint' : '--resume', path: checkpoint }]);
    watchInterrupts();
    const r = await RECIPES[m]({ device, epochs: o.epochs, seed: o.seed, lr: o.lr, labelSmoothing: o.labelSmoothing, precision: o.precision, cutout: o.cutout, limit: o.limit, checkpoint, checkpointEvery: o.checkpointEvery, resume: o.resume, arch: hasVariant(o) ? archFor(m, o) : undefined, data: dataOpts(o), log, ema: o.ema });
    if (o.json) console.log(JSON.stringify({ model, arch: r.arch, testAccuracy: r.testAccuracy, ...(r.averagedAccuracy !== undefined ? { averagedAccuracy: r.averagedAccuracy } : {}), seconds: r.seconds, history: r.history, checkpoint: checkpoint ?? null }));
    else console.log(`${model}: test accuracy ${pct(r.testAccuracy)}${r.averagedAccuracy !== undefined ? `, averaged weights ${pct(r.averagedAccuracy)}` : ''} (${r.seconds.toFixed(0)} s)${checkpoint ? `; checkpoint ${checkpoint}` : ''}`);
  });

variant(common(program.command('info').argument('<what>', 'a checkpoint or ONNX file, or lenet, vgg, dbn, mlp').description('layers, units, parameters and FLOPs')))
  .action((what: string, o) => {
    let arch: Arch;
    let model;
 let kind = 'original';
    let state = 'original';
    if ((NETWORK_NAMES as readonly string[]).includes(what)) {
      arch = archFor(what as NetworkName, o);
      model = buildModel(arch, 0);
    } else {
      if (hasVariant(o)) throw new Error('--widths and --width-scale describe a model by name, not a checkpoint');
      const f = modelFromCheckpoint(what);
      ({ model, arch, kind } = f);
      state = describeKind(f);
    }
    const s = modelStats(model, inputShape(arch));
    if (o.json) console.log(JSON.stringify({ arch, kind, state, ...s }));
    else {
      console.log(`${modelName(arch)} (${state}): ${s.params.toLocaleString('en')} parameters, ${s.flops.toLocaleString('en')} FLOPs per input, ${s.bytes.toLocaleString('en')} bytes`);
      for (const l of s.layers) console.log(`  ${String(l.index).padStart(3)} ${l.layer.padEnd(26)} units ${String(l.units).padStart(5)}  params ${String(l.params).padStart(9)}  FLOPs ${l.flops}`);
    }
  });

withData(program.command('eval').argument('<checkpoint>', 'a checkpoint file').description('test accuracy and loss of a checkpoint on its dataset'))
  .option('--precision <p>', 'the operands of the products: float32, or bf16 (weights and activations rounded to bfloat16, float32 accumulation)', oneOf('--precision', ['float32', 'bf16']), 'float32')
  .option('--tta <how>', 'test-time augmentation: flip (each image and its mirror image, their class probabilities averaged; images only)', oneOf('--tta', ['flip']))
  .action(async (file: string, o) => {
    useBackend(o.backend);
    const f = modelFromCheckpoint(file, o.dataset);
    const { model, arch, kind } = f;
    const task = await loadTask(arch, dataOpts(o));
    const t = performance.now();
    const precision = o.precision as 'float32' | 'bf16';
    const tta = o.tta as 'flip' | undefined;
    const r = accuracyOf(model, task, { precision, tta });
    const params = model.numParameters();
    if (o.json) console.log(JSON.stringify({ checkpoint: file, arch, kind, dataset: task.settings.dataset, images: task.test.count, precision, ...(tta ? { tta } : {}), ...r, params, seconds: (performance.now() - t) / 1000 }));
    else console.log(`${file}: ${modelName(arch)} (${describeKind(f)}) on the ${task.settings.dataTitle} test set (${task.test.count} images)${precision === 'bf16' ? ' in bfloat16' : ''}${tta ? ', each image and its mirror image' : ''}: accuracy ${pct(r.accuracy)}, loss ${r.loss.toFixed(4)}; ${params.toLocaleString('en')} parameters`);
  });

/** the page a merge or an explanation writes: --report FILE, none with --no-report, else beside `file`
 * with its extension replaced by `ext` */
const pageFor = (o: { report?: string | false }, file: string, ext: string): string | undefined =>
  o.report === false ? undefined : typeof o.report === 'string' ? o.report : file.replace(/\.[^./\\]*$/, '') + ext;

/** units before and after, parameters, FLOPs, and (unless --no-eval) accuracy before and after */
async function compressCommand(file: string, o: Record<string, any>, what: 'merge' | 'prune') {
  const device = useBackend(o.backend);
  const page = what === 'merge' ? pageFor(o, o.out, '.html') : undefined;
  lockOutputs([{ option: '--out', path: o.out }, ...(page ? [{ option: '--report', path: page }] : [])]);
  const res = await compressCheckpoint(file, what, {
    out: o.out, ratio: o.ratio, threshold: o.threshold, budget: o.budget, allocate: o.allocate, calibration: o.calibration, method: o.method, rule: o.merge, minSimilarity: o.minSimilarity,
    mode: o.mode, seed: o.seed, nInit: o.nInit, multipleOf: o.multipleOf, repair: o.repair === true ? 500 : o.repair, recalibrate: recalibration(o.recalibrate), recalibrateCutout: o.recalibrateCutout, stages: o.stages, stageEpochs: o.stageEpochs,
    eval: o.eval, data: dataOpts(o), log, device, report: page, command: typed(), format: o.format,
  });
  if (o.json) return console.log(JSON.stringify(res));
  for (const n of res.notes) console.log(`note: ${n}`);
  console.log(`${what === 'merge' ? `merged (${o.merge ?? 'mean'})` : 'pruned'} ${file} → ${o.out}${res.stages > 1 ? ` in ${res.stages} stages` : ''}`);
  for (const u of res.units) console.log(`  ${u.layer.padEnd(28)} ${String(u.before).padStart(5)} → ${u.after}`);
  console.log(`parameters ${res.params.before.toLocaleString('en')} → ${res.params.after.toLocaleString('en')} (${pct(res.compressionRatio)} removed), FLOPs ${res.speedupFlops.toFixed(2)}× fewer`);
  if (res.allocation === 'sensitivity' || res.allocation === 'threshold' || o.multipleOf !== undefined) console.log(`the same units per layer: --ratio ${res.ratios.map((r) => +r.toFixed(6)).join(',')}`);
  const how = [res.repairImages ? `statistics repaired on ${res.repairImages} training images` : '', res.recalibrated ? `batch norms re-estimated on ${res.recalibrated} training images${res.recalibrateCutout ? ` (Cutout ${res.recalibrateCutout})` : ''}` : ''].filter(Boolean).join('; ');
  if (res.accuracy.before !== null) console.log(`test accuracy ${pct(res.accuracy.before)} → ${pct(res.accuracy.after!)}${how ? ` (${how})` : ''} (before fine-tuning${res.format === 'onnx' ? '' : `; try: neuronmerge finetune ${o.out} --out FILE --distill ${file}`})`);
  if (res.report) console.log(`what merging did to each layer: ${res.report} (open it in a browser)`);
}

/** the options merge and prune share */
const compressing = (c: Command, what: 'merge' | 'prune') => c
  .option('--budget <f>', 'keep at most this fraction of the parameters', num('--budget', 1e-9, 1))
  .option('--allocate <how>', 'how a --budget is spread: uniform (one ratio everywhere) or sensitivity (measured per layer)', oneOf('--allocate', ['uniform', 'sensitivity']))
  .option('--calibration <n>', `seeded training images --allocate sensitivity measures on${what === 'merge' ? ' (and --merge fitted, lstsq or refit fits on)' : ''}`, int('--calibration', 1, 1e6), 1000)
  .option('--recalibrate [n]', `after compressing, re-estimate every batch norm's statistics on n seeded training images (default: on, ${RECALIBRATE_IMAGES}, for models with batch norm)`, int('--recalibrate', 1, 1e6))
  .option('--no-recalibrate', 'keep the batch norms\' statistics as compressing left them')
  .option('--recalibrate-cutout <n>', 'give the images of that re-estimation an n×n Cutout, as the original was trained with (train --cutout n; default 0: none)', int('--recalibrate-cutout', 0, 1024), 0)
  .option('--multiple-of <m>', 'round each layer\'s units to a multiple of m (8 or 16: what runtimes such as onnxruntime run fastest); to the nearest with --ratio, down with --budget', int('--multiple-of', 1, 4096))
  .option('--stages <n>', 'compress in n steps, fine-tuning between them', int('--stages', 1, 100))
  .option('--stage-epochs <n>', 'fine-tuning epochs between stages', int('--stage-epochs', 0, 1000), 1)
  .option('--no-eval', 'skip the test-set accuracy before and after')
  .option('--format <f>', 'write --out as a neuronmerge checkpoint (safetensors) or as ONNX (default: onnx where --out ends in .onnx)', oneOf('--format', ['safetensors', 'onnx']));

compressing(withData(program.command('merge').argument('<checkpoint>', 'a trained checkpoint').description('cluster similar units in every hidden layer and merge them with their connections'))
  .requiredOption('--out <file>', 'where to write the merged checkpoint')
  .option('--ratio <r>', 'merge ratio: each layer keeps round((1 - r) n) units; or one ratio per mergeable layer, comma-separated', layerRatios('--ratio'))
  .option('--threshold <d>', 'cut each layer\'s dendrogram at this distance (ward, average or complete)', num('--threshold', 0, 1e30))
  .option('--merge <rule>', 'mean (the paper\'s: average the members), scaled (by direction, the next layer reads each member\'s scale), medoid (keep the most representative member), compensate (keep the units L1 pruning keeps, fold each other unit into its most similar kept one), fitted (the same, each unit fitted to its kept one on calibration activations), lstsq (each other unit rebuilt from all kept units by least squares on calibration activations) or refit (layer by layer, every unit of the original rebuilt from the kept units as the merged network computes them)', oneOf('--merge', [...MERGE_RULES]), 'mean')
  .option('--min-similarity <c>', '--merge medoid: members whose cosine to their representative is below c are dropped, not merged', num('--min-similarity', -1, 1))
  .option('--method <m>', 'kmeans, ward, average or complete', oneOf('--method', ['kmeans', 'ward', 'average', 'complete']), 'kmeans')
  .option('--mode <m>', 'all (cluster every layer of the original) or sequential (layer by layer as merged)', oneOf('--mode', ['all', 'sequential']), 'all')
  .option('--n-init <n>', 'k-means restarts', int('--n-init', 1, 1000), 3)
  .option('--repair [n]', 'after merging, restore each merged unit\'s output mean and spread to its members\' on n training images (default 500; not part of the paper\'s method)', int('--repair', 1, 1e6))
  .option('--report <file>', 'the page of what merging did to each layer (default: --out with .html for its extension)')
  .option('--no-report', 'write no page'), 'merge')
  .action((file: string, o) => compressCommand(file, o, 'merge'));

compressing(withData(program.command('prune').argument('<checkpoint>', 'a trained checkpoint').description('the baseline: remove the units with the smallest L1 norm in every hidden layer'))
  .requiredOption('--out <file>', 'where to write the pruned checkpoint')
  .option('--ratio <r>', 'each layer keeps round((1 - r) n) units; or one ratio per prunable layer, comma-separated', layerRatios('--ratio')), 'prune')
  .action((file: string, o) => compressCommand(file, o, 'prune'));

tuning(withData(program.command('finetune').argument('<checkpoint>', 'a (merged or pruned) checkpoint').description('fine-tune: SGD with momentum, weight decay and a cosine or one-cycle schedule, optionally distilling from the original'))
  .requiredOption('--out <file>', 'where to write the fine-tuned checkpoint (every epoch)')
  .option('--epochs <n>', 'epochs (default: per network)', int('--epochs', 1, 10000))
  .option('--lr <x>', 'learning rate (default: per network)', num('--lr', 1e-9, 100))
  .option('--distill <original>', 'also learn the softened outputs of this checkpoint (the original the model was compressed from)')
  .option('--limit <n>', 'train on the first n images only', int('--limit', 1, 1e9))
  .option('--cutout <n>', 'Cutout: blank a random n×n square of each training image (default 0: none; a network trained with it can be fine-tuned the same way)', int('--cutout', 0, 1e4))
  .option('--precision <p>', 'the operands of the products: float32, or bf16 (inputs, weights and gradients rounded to bfloat16; float32 accumulation and master weights)', oneOf('--precision', ['float32', 'bf16']), 'float32')
  .option('--format <f>', 'write --out as a neuronmerge checkpoint (safetensors, every epoch) or as ONNX (at the end; default where --out ends in .onnx)', oneOf('--format', ['safetensors', 'onnx'])))
  .action(async (file: string, o) => {
    const device = useBackend(o.backend);
    checkOutputFile(o.out, '--out', [file, ...(o.distill ? [{ option: '--distill', path: o.distill }] : [])]);
    lockOutputs([{ option: '--out', path: o.out }]);
    const onnx = formatFor(o.out, o.format) === 'onnx';
    const { model, arch } = modelFromCheckpoint(file, o.dataset);
    const teacher = o.distill ? teacherFor(o.distill, arch) : undefined;
    const data = await loadTask(arch, dataOpts(o));
    const epochs: number = o.epochs ?? data.settings.finetune.epochs;
    // a fine-tuning cut short (Ctrl-C, a crash) left its checkpoint in --out: the same command resumes it
    const resume = !onnx && existsSync(o.out) ? unfinishedFinetuning(o.out, epochs) : undefined;
    const before = accuracyOf(model, data).accuracy;
    const t = performance.now();
    watchInterrupts();
    const history = await finetuneModel(model, arch, data, {
      device, epochs, lr: o.lr, seed: o.seed, limit: o.limit, cutout: o.cutout, precision: o.precision, checkpoint: onnx ? undefined : o.out, resume, log, schedule: o.schedule, warmup: o.warmup, weightDecay: o.weightDecay,
      distill: teacher ? { teacher, temperature: o.temperature, weight: o.distillWeight } : undefined,
    });
    const after = accuracyOf(model, data).accuracy;
    const seconds = (performance.now() - t) / 1000;
    if (onnx) writeOnnx(o.out, { model, arch, kind: 'finetuned' }, { normalization: networkOf(arch).normalization === 'channel' ? data.norm : undefined });
    if (o.json) console.log(JSON.stringify({ checkpoint: o.out, from: file, arch, accuracy: { before, after }, seconds, history }));
    else console.log(`fine-tuned ${file} → ${o.out}${teacher ? ` (distilled from ${o.distill})` : ''}: test accuracy ${pct(before)} → ${pct(after)} (${plural(epochs, 'epoch')}${resume ? ', resumed' : ''}, ${seconds.toFixed(0)} s)`);
  });

/** --out of finetune where it holds a fine-tuning cut short: the file to resume (its epochs must be
 * those asked for); undefined where it holds anything else, which the run then replaces */
function unfinishedFinetuning(out: string, epochs: number): string | undefined {
  let c;
  try {
    c = loadCheckpoint(out);
  } catch {
    return undefined;
  }
  if (c.kind !== 'finetuned' || !unfinished(c.train)) return undefined;
  if (c.train!.epochs !== epochs) throw new Error(`--out ${out}: holds a fine-tuning of ${plural(c.train!.epochs!, 'epoch')} cut short after epoch ${c.train!.epoch}; give --epochs ${c.train!.epochs} to resume it, or another --out`);
  return out;
}

withData(program.command('export').argument('<checkpoint>', 'a checkpoint or ONNX file (original, merged, pruned or fine-tuned)').description('write a model for other runtimes (ONNX, opset 13, batch axis dynamic) or for shipping (a checkpoint of the model alone, float32 or float16)'))
  .requiredOption('--out <file>', 'the file to write: a checkpoint where it ends in .safetensors, else ONNX')
  .option('--format <f>', 'onnx, or safetensors: the model alone, without optimizer or generator state (default: from the name of --out)', oneOf('--format', ['onnx', 'safetensors']))
  .option('--float16', 'a checkpoint with its convolutions\' and linear layers\' weights in float16 (half the bytes), written only if the test accuracy moves by at most --tolerance')
  .option('--tolerance <points>', 'with --float16: the largest change of test accuracy allowed, in percentage points', num('--tolerance', 0, 100), 100 * FLOAT16_TOLERANCE)
  .option('--fold-batch-norm', 'ONNX: fold each batch norm into the convolution or linear layer before it (default: kept as BatchNormalization)')
  .option('--ema', 'write the moving average of the weights that training kept (train --ema) in their place')
  .action(async (file: string, o) => {
    lockOutputs([{ option: '--out', path: o.out }]);
    const r = await exportCheckpoint(file, o.out, { format: o.format, float16: o.float16, tolerance: o.tolerance / 100, foldBatchNorm: o.foldBatchNorm, ema: o.ema, data: dataOpts(o), log });
    if (o.json) return console.log(JSON.stringify(r));
    if (r.format === 'onnx') {
      console.log(`${file} (${modelName(r.arch)}, ${r.kind}) → ${r.out}: ONNX opset 13, ${r.bytes.toLocaleString('en')} bytes${r.foldBatchNorm ? ', batch norms folded' : ''}`);
      console.log(`input: ${r.input}; output: batch × ${r.arch.classes}, the logits`);
      return;
    }
    console.log(`${file} (${modelName(r.arch)}, ${r.kind}) → ${r.out}: the model alone${r.averaged ? `, its weights averaged over ${r.averaged.updates.toLocaleString('en')} steps (decay ${r.averaged.decay})` : ''}, ${r.weights} weights, ${r.bytes.toLocaleString('en')} bytes`);
    if (r.accuracy) console.log(`test accuracy (${r.accuracy.images} images): ${pct(r.accuracy.float32)} in float32, ${pct(r.accuracy.float16)} with float16 weights`);
  });

withData(program.command('explain').argument('<checkpoint>', 'a trained checkpoint').description('the teaching view: merging swept over ratios, with a page whose slider moves through them (clusters per layer, their sizes and spread, how far each layer\'s output moves, accuracy of every rule and of pruning)'))
  .option('--ratios <list>', `merge ratios, comma-separated (default ${EXPLAIN_RATIOS.join(',')})`, ratios)
  .option('--ratio <r>', 'one merge ratio (the same as --ratios r)', ratio('--ratio'))
  .option('--layer <i>', 'list the clusters of this mergeable layer (0 = the first) at each ratio', int('--layer', 0, 1000))
  .option('--images <n>', 'test images to measure the output shift on', int('--images', 1, 10000), 256)
  .option('--merge <rule>', `the rule whose clusters the layers show (${MERGE_RULES.join(', ')})`, oneOf('--merge', [...MERGE_RULES]), 'mean')
  .option('--rules <list>', 'the rules whose accuracy is measured at each ratio, comma-separated (default: all)', ruleList('--rules'))
  .option('--method <m>', 'kmeans, ward, average or complete (the page draws the dendrograms of the last three)', oneOf('--method', ['kmeans', 'ward', 'average', 'complete']), 'kmeans')
  .option('--report <file>', 'the page (default: the checkpoint with .explain.html for its extension)')
  .option('--no-report', 'write no page')
  .action(async (file: string, o) => {
    useBackend(o.backend);
    if (o.ratio !== undefined && o.ratios !== undefined) throw new Error('explain: give --ratio or --ratios, not both');
    const page = pageFor(o, file, '.explain.html');
    if (page) lockOutputs([{ option: '--report', path: page }]);
    const r = await explainCheckpoint(file, {
      ratios: o.ratio !== undefined ? [o.ratio] : o.ratios, layer: o.layer, images: o.images, seed: o.seed, rule: o.merge, rules: o.rules, method: o.method,
      data: dataOpts(o), report: page, command: typed(), log: o.json ? undefined : (l: string) => process.stderr.write(l + '\n'),
    });
    if (o.json) return console.log(JSON.stringify(r));
    const how = `${o.method === 'kmeans' ? 'k-means' : `${o.method} linkage`} on each unit's incoming weights and bias${o.merge === 'mean' ? '' : ' by direction where the next layer allows'}, batch norm folded`;
    console.log(`merging ${file} by the ${o.merge} rule (${how}); original ${pct(r.original.accuracy)}`);
    console.log(`\ntest accuracy before fine-tuning${r.recalibrated ? `, batch norms re-estimated on ${r.recalibrated.toLocaleString('en')} training images` : ''}:`);
    console.log(`  ratio  removed  ${r.rules.map((x) => x.padStart(8)).join(' ')}    pruned`);
    for (const x of r.ratios) console.log(`  ${String(x.ratio).padEnd(5)}  ${(100 * x.removed).toFixed(1).padStart(6)}%  ${r.rules.map((m) => pct(x.accuracy[m]).padStart(8)).join(' ')}  ${pct(x.pruned).padStart(8)}`);
    const one = r.ratios.length === 1 ? r.ratios[0] : null;
    if (one) {
      console.log(`\neach layer at ratio ${one.ratio}:`);
      console.log('  layer                        units → clusters   sizes min/median/max  singletons  spread  output moved');
      for (const e of one.layers) console.log(`  ${e.layer.padEnd(28)} ${String(e.units).padStart(5)} → ${String(e.clusters).padEnd(8)}   ${`${e.sizes.min}/${e.sizes.median}/${e.sizes.max}`.padEnd(20)}  ${String(e.sizes.singletons).padStart(10)}  ${(100 * e.spread).toFixed(1).padStart(5)}%  ${(100 * e.outputShift).toFixed(1).padStart(5)}%`);
      console.log('spread: mean distance of a unit to its cluster centre over the mean unit norm; output moved: ‖Δz‖/‖z‖ of the next layer when this layer alone is merged');
    } else {
      console.log('\nclusters per layer (and how far the next layer\'s output moves when that layer alone is merged):');
      console.log(`  ${'layer'.padEnd(28)} units  ${r.ratios.map((x) => String(x.ratio).padStart(12)).join('')}`);
      r.ratios[0].layers.forEach((e, q) => console.log(`  ${e.layer.padEnd(28)} ${String(e.units).padStart(5)}  ${r.ratios.map((x) => `${x.layers[q].clusters} (${(100 * x.layers[q].outputShift).toFixed(0)}%)`.padStart(12)).join('')}`));
    }
    if (r.layer !== undefined) {
      for (const x of r.ratios) {
        console.log(`\nclusters of ${x.layers[r.layer].layer} at ratio ${x.ratio} (largest first; unit indices):`);
        for (const [g, members] of x.clusters!.entries()) console.log(`  ${String(g).padStart(4)}: ${plural(members.length, 'unit')}: ${members.slice(0, 24).join(' ')}${members.length > 24 ? ' …' : ''}`);
      }
    }
    for (const n of r.notes) console.log(`note: ${n}`);
    if (r.report) console.log(`\nthe page: ${r.report} (open it in a browser)`);
  });

program.command('slurm').argument('<args...>', 'reproduce, its model and options, and the options below anywhere among them')
  .description('write (with --submit, submit) the Slurm batch scripts of a reproduction: the original, the sensitivity where a budget needs it, the fine-tunings as one job array, the report, each stage after the one before. --out must be on a file system every node sees')
  .addHelpText('after', `
Options (anywhere after slurm):
  --submit             submit the scripts with sbatch, each stage with --dependency=afterok on the one before
  --scripts <dir>      the folder for the scripts and, in logs/, the jobs' output (default: neuronmerge-slurm)
  --partition <p>, --cpus-per-task <n>, --time <t>, --account <a>
                       passed to every script as #SBATCH lines
A piece that failed runs again, resuming its checkpoint, with: sbatch --array=INDEX DIR/N-finetune.sbatch`)
  .allowUnknownOption()
  .action((all: string[]) => {
    const mine: Record<string, string | true> = {};
    const rest: string[] = [];
    const valued = ['--scripts', '--partition', '--cpus-per-task', '--time', '--account'];
    for (let i = 0; i < all.length; i++) {
      const [name, inline] = all[i].includes('=') ? [all[i].slice(0, all[i].indexOf('=')), all[i].slice(all[i].indexOf('=') + 1)] : [all[i], undefined];
      if (name === '--submit') mine.submit = true;
      else if (valued.includes(name)) {
        const v = inline ?? all[++i];
        if (v === undefined || v.startsWith('--')) throw new Error(`slurm: ${name} needs a value`);
        mine[name.slice(2)] = v;
      } else rest.push(all[i]);
    }
    if (rest[0] !== 'reproduce') throw new Error(`slurm: runs reproduce (neuronmerge slurm reproduce MODEL [options]), not '${rest[0] ?? ''}'`);
    const cpus = mine['cpus-per-task'] === undefined ? undefined : int('--cpus-per-task', 1, 4096)(mine['cpus-per-task'] as string);
    const cli = fileURLToPath(import.meta.url);
    const r = spawnSync(process.execPath, [cli, ...rest, '--plan'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr.trim().replace(/^neuronmerge: /, ''));
    const plan = (JSON.parse(r.stdout) as { jobs: (ReproducePiece & { command: string[] })[] }).jobs;
    // every piece's command is the plan's, run by this node and this build
    const base = [process.execPath, cli, ...plan[0].command.slice(1, -2)];
    const dir = (mine.scripts as string | undefined) ?? 'neuronmerge-slurm';
    const stages = slurmScripts(plan, (sel) => ('id' in sel ? [...base, '--job', sel.id] : 'index' in sel ? [...base, '--job-index'] : base), {
      dir, cwd: process.cwd(), partition: mine.partition as string | undefined, cpusPerTask: cpus, time: mine.time as string | undefined, account: mine.account as string | undefined,
    });
    for (const s of stages) console.log(`${s.file}: ${s.array ? `${s.pieces.length} fine-tunings as array tasks ${s.array[0]}-${s.array[1]}` : `piece ${s.pieces[0]}`}`);
    if (!mine.submit) return console.log('submit them in this order, each after the one before succeeded, or run again with --submit');
    const ids = submitStages(stages);
    const cmd = plan[0].command, at = cmd.lastIndexOf('--out');
    const out = at >= 0 ? cmd[at + 1] : cmd.filter((a) => a.startsWith('--out=')).pop()!.slice(6);
    console.log(`submitted: ${stages.map((s, i) => `${s.name} ${ids[i]}`).join(', ')}; the report: ${out}/report.html`);
  });

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
withData(data.command('verify').argument('<name>', 'mnist, fashion-mnist or cifar10').description('load a dataset and print its counts and class counts')).action(async (name: string, o) => {
  const s = await summarizeDataset(name, { dataDir: o.dataDir, path: o.data, download: false });
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

/** the flag of a library option named in an OptionError ({multipleOf} -> --multiple-of; off: --no-…) */
const OPTION_FLAGS: Record<string, string> = { rule: 'merge' };
const flagOf = (option: string, off: boolean): string => {
  const kebab = OPTION_FLAGS[option] ?? option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  return off ? `--no-${kebab}` : `--${kebab}`;
};
const fail = (message: string) => {
  process.stderr.write(`neuronmerge: ${message.split('\n')[0]}\n`);
  process.exit(1);
};
// a closed pipe (`neuronmerge info vgg | head`) ends the output, not with a stack trace
process.stdout.on('error', (e: NodeJS.ErrnoException) => process.exit(e.code === 'EPIPE' ? 0 : 1));
const envError = environmentError();
if (envError) fail(envError);
{
  const threads = process.env.NEURONMERGE_THREADS;
  const cores = availableParallelism();
  if (threads && Number(threads) > cores) log(`neuronmerge: note: NEURONMERGE_THREADS=${threads} is more threads than the ${cores} cores here; the kernels run slower when threads wait for cores (leave it unset to use ${cores})`);
}
program.parseAsync(process.argv).catch((e: Error) => {
  // stopped by Ctrl-C or SIGTERM between two steps: where it stopped and how to go on, and the usual
  // status of a process ended by that signal
  if (e instanceof Interrupted) {
    process.stderr.write(`neuronmerge: ${e.message}\n`);
    process.exit(e.signal === 'SIGINT' ? 130 : 143);
  }
  if (e instanceof CommanderError) {
    // --help and --version end here too, with exit code 0
    if (e.exitCode === 0) process.exit(0);
    // an option's own check says what is wrong with it; commander's preamble would say it twice
    fail(e.code === 'commander.invalidArgument' ? e.message.replace(/^error: .*? is invalid\. /, '') : e.message.replace(/^error: /, ''));
  }
  fail(e instanceof OptionError ? e.worded(flagOf) : e.message);
});
