// `neuronmerge reproduce`: train (or reuse a checkpoint), merge at the requested ratios, evaluate before
// fine-tuning, fine-tune, evaluate, with the L1 pruning baseline beside it, and measure the speedup.
// Writes report.json, report.md and the plots, and returns the figures.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { batchNormSpread, compare, modelStats } from '../compress/stats.js';
import type { Sensitivity } from '../compress/allocate.js';
import { archOf, siteActivations } from '../compress/merge.js';
import type { MergeReport, MergeRule } from '../compress/merge.js';
import { explainMerge, firstFilters } from '../compress/explain.js';
import { buildModel, widthsOf } from '../models/index.js';
import type { Arch } from '../models/index.js';
import type { Sequential } from '../nn/layers.js';
import { Tensor } from '../tensor/tensor.js';
import { noGrad } from '../tensor/autograd.js';
import { slice } from '../tensor/ops.js';
import { checkArchHolds, loadCheckpoint, saveCheckpoint } from '../train/checkpoint.js';
import { evaluate } from '../train/loop.js';
import { Interrupted } from '../backend/native.js';
import { writeReports } from '../report/markdown.js';
import type { FinetuneSeeds, RatioResult, Report } from '../report/types.js';
import { checkOutputDir, checkOutputFile, claimFile, writeFileAtomic } from '../runtime/files.js';
import { DISTILL_DEFAULTS, NETWORKS, ONE_CYCLE_WARMUP } from './networks.js';
import type { NetworkName } from './networks.js';
import { RECIPES } from './recipes.js';
import { budgetWidths, CompressionSamples, compressModel, measureSensitivity, recalibrationImages, roundToMultiple, unitsAt } from './pipeline.js';
import { accuracyOf, recordedNormalization, calibrationInputs, cloneModel, FINETUNE_WEIGHT_DECAY, finetuneModel, loadTask, machineDescription, sourceOf } from './task.js';
import type { TaskData, TaskLoadOptions } from './task.js';
import { OptionError, quote } from '../runtime/errors.js';

export interface ReproduceOptions {
  quick?: boolean;
  /** training epochs of the original (default: the network's, ./networks.ts) */
  epochs?: number;
  /** fine-tuning epochs after merging or pruning (default: the network's) */
  finetuneEpochs?: number;
  /** fine-tuning's learning rate (default: the network's) */
  finetuneLr?: number;
  /** fine-tune every compressed model (each rule's merge and the pruned twin) once per seed, from the
   * same compressed weights; the accuracies after fine-tuning are then the seeds' mean, each seed's and
   * the standard deviation beside it (default: once, with `seed`) */
  finetuneSeeds?: number[];
  /** use only the first n training images (tiny runs, tests) */
  limit?: number;
  /** one merge ratio in every layer, a row each (default: the network's, unless `budgets` are given) */
  ratios?: number[];
  /** also compress to each of these fractions of the parameters (a row each) */
  budgets?: number[];
  /** round each layer's units to a multiple of this (to the nearest at a ratio, down for a budget) */
  multipleOf?: number;
  /** how a budget is spread over the layers (default uniform: one ratio everywhere) */
  allocate?: 'uniform' | 'sensitivity';
  seed?: number;
  out?: string;
  data?: TaskLoadOptions;
  log?: (line: string) => void;
  /** train a variant (other widths) instead of the paper's network */
  arch?: Arch;
  /** reuse this trained original if it exists (resuming it if its training was cut short); otherwise
   * train and write it here every epoch */
  checkpoint?: string;
  /** steps between checkpoints within an epoch while training the original and while fine-tuning */
  checkpointEvery?: number;
  /** the command as typed, for the report's title (default: the call, `reproduce("lenet")`) */
  command?: string;
  /** also report the merged model's accuracy after statistics repair on this many training images
   * (src/compress/repair.ts; not part of the paper's method) */
  repair?: number;
  /** re-estimate the batch norms of the merged and of the pruned model on this many seeded training
   * images, before their accuracy is measured and before fine-tuning (the same for both); default
   * 5120 for networks with batch norm; false: never */
  recalibrate?: number | false;
  /** the side of the Cutout square the images of that re-estimation get, as the original was trained
   * with (default 0: none; an original trained with Cutout keeps running statistics of cut-out images) */
  recalibrateCutout?: number;
  /** the merging rules to reproduce, each beside the others (default: the network's, ./networks.ts: the
   * paper's mean and the best measured of the others; with `paper`, the mean alone) */
  rules?: MergeRule[];
  /** the paper's setting: the mean rule and the network's plain fine-tuning (no distillation, the
   * paper's epochs and schedule) instead of the best measured recipe */
  paper?: boolean;
  /** fine-tune the merged and the pruned models learning the original's softened outputs too (default:
   * the network's recipe; false: never) */
  distill?: { temperature?: number; weight?: number } | false;
  /** distillation's temperature and weight where the recipe distills and `distill` gives none */
  distillTemperature?: number;
  distillWeight?: number;
  /** Cutout in fine-tuning's training images: an n x n square blanked (default 0: none) */
  finetuneCutout?: number;
  /** fine-tuning's schedule (default cosine) and one-cycle's warm-up share */
  schedule?: 'cosine' | 'onecycle';
  warmup?: number;
  /** fine-tuning's weight decay (default 5e-4) */
  weightDecay?: number;
  /** 'webgpu': train and fine-tune on the GPU */
  device?: 'cpu' | 'webgpu';
}

/** a compressed model's accuracy after fine-tuning: the mean over the seeds, each seed's beside it
 * where there are several */
interface SeedAccuracies {
  mean: number;
  seeds?: FinetuneSeeds;
}

function seedAccuracies(seeds: number[], each: number[]): SeedAccuracies {
  const mean = each.reduce((a, b) => a + b, 0) / each.length;
  if (each.length < 2) return { mean };
  // the sample standard deviation (n − 1): what a further seed would scatter by
  const std = Math.sqrt(each.reduce((a, b) => a + (b - mean) ** 2, 0) / (each.length - 1));
  return { mean, seeds: { seeds, accuracy: each, std, min: Math.min(...each), max: Math.max(...each) } };
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

async function original(which: NetworkName, o: ReproduceOptions, epochs: number, log: (l: string) => void): Promise<{ model: Sequential; arch: Arch; task?: TaskData }> {
  const cfg = NETWORKS[which];
  const quick = o.quick ?? false;
  const limit = o.limit ?? (quick ? cfg.quick.limit : undefined);
  let arch: Arch | undefined = o.arch ?? (quick ? cfg.quick.arch : undefined);
  if (arch && arch.model !== cfg.family) throw new Error(`reproduce ${which}: the architecture is a ${arch.model}, not a ${cfg.family}`);
  let resume: string | undefined;
  if (o.checkpoint && existsSync(o.checkpoint)) {
    const c = loadCheckpoint(o.checkpoint);
    checkArchHolds(o.checkpoint, c);
    if (c.arch.model !== cfg.family) throw new Error(`${o.checkpoint}: checkpoint holds a ${c.arch.model}, not a ${cfg.family}`);
    if (c.kind !== 'original') throw new OptionError(`${quote(o.checkpoint)}: checkpoint holds a ${c.kind} model; reproduce's {checkpoint} takes a trained original (as training ${which} writes it)`);
    if (!c.train || c.train.epoch >= epochs) {
      log(`reproduce ${which}: reusing the trained ${c.arch.model} in ${o.checkpoint}`);
      const model = buildModel(c.arch, 0);
      model.loadStateDict(c.state, `${o.checkpoint}: checkpoint`);
      return { model, arch: c.arch };
    }
    log(`reproduce ${which}: ${o.checkpoint} stopped after epoch ${c.train.epoch} of ${epochs}${c.train.batch ? ` (and ${c.train.batch} steps of the next)` : ''}; resuming`);
    if (o.arch && JSON.stringify(o.arch) !== JSON.stringify(c.arch)) throw new Error(`${o.checkpoint}: checkpoint is for widths ${widthsOf(c.arch).join('-')}, not the ${widthsOf(o.arch).join('-')} asked for`);
    arch = c.arch;
    resume = o.checkpoint;
  }
  log(`reproduce ${which}: training the ${cfg.title}${arch ? ` (widths ${widthsOf(arch).join('-')})` : ''} for ${epochs} epochs (seed ${o.seed ?? 0})`);
  const r = await RECIPES[which]({
    epochs, seed: o.seed ?? 0, limit, arch, data: o.data, log, device: o.device, checkpoint: o.checkpoint, checkpointEvery: o.checkpointEvery, resume,
    ...(quick && cfg.quick.pretrainEpochs !== undefined ? { pretrainEpochs: cfg.quick.pretrainEpochs } : {}),
  });
  return { model: r.model, arch: r.arch, task: r.task };
}

/** the SHA-256 of a model's weights and statistics, in state order: what identifies an original */
function fingerprint(model: Sequential): string {
  const h = createHash('sha256');
  for (const [name, t] of model.stateDict()) {
    h.update(name);
    h.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  return h.digest('hex');
}

/** whether a trained original's checkpoint is there, its training finished */
function originalDone(file: string, epochs: number): boolean {
  if (!existsSync(file)) return false;
  const c = loadCheckpoint(file);
  return c.kind === 'original' && (!c.train || c.train.epoch >= epochs);
}

/** a short name for everything that determines a piece of work, so that a rerun with the same settings
 * finds it and one with other settings does not */
function keyOf(what: unknown): string {
  return createHash('sha256').update(JSON.stringify(what)).digest('hex').slice(0, 12);
}

/**
 * The work a long reproduction keeps in `<out>/work/`, so that a run stopped at any point (a closed
 * terminal, a crash, a session's end) starts again where it was: each fine-tuning is a checkpoint
 * written every epoch (and every --checkpoint-every steps) that a rerun resumes exactly or, finished,
 * reuses; each sensitivity measurement is a JSON file. Names carry a hash of the settings they depend
 * on (the original's weights included), so a rerun with other settings starts fresh beside them.
 */
class WorkFolder {
  constructor(readonly dir: string) {}

  /** the checkpoint of one fine-tuning (a run before this one, or another copy of its piece, may have
   * left it: look once it is claimed) */
  finetuning(label: string, key: unknown): string {
    mkdirSync(this.dir, { recursive: true });
    return join(this.dir, `${label.replace(/[^\w.-]+/g, '-')}-${keyOf(key)}.safetensors`);
  }

  /** where the sensitivity measured with this key is kept */
  sensitivityFile(key: unknown): string {
    return join(this.dir, `sensitivity-${keyOf(key)}.json`);
  }

  /** a sensitivity measured before with the same key, or a fresh one (then stored). The layers measured
   * so far are kept in `<file>.partial` after each one, so a measurement stopped by Ctrl-C, a crash or
   * a session's end goes on from the next layer */
  sensitivity(key: unknown, measure: (measured: number[][], onLayer: (loss: number[][]) => void) => Sensitivity, log: (l: string) => void): Sensitivity {
    mkdirSync(this.dir, { recursive: true });
    const file = this.sensitivityFile(key), partial = `${file}.partial`;
    const stored = (f: string): { loss: number[][] } | null => {
      if (!existsSync(f)) return null;
      try {
        const s = JSON.parse(readFileSync(f, 'utf8'));
        // unreadable or of another shape: measured again and rewritten below
        return s && Array.isArray(s.loss) && s.loss.every((row: unknown) => Array.isArray(row) && row.every((v) => typeof v === 'number')) ? s : null;
      } catch {
        return null;
      }
    };
    const done = stored(file) as Sensitivity | null;
    if (done && Array.isArray(done.ratios) && typeof done.base === 'number') {
      log(`reusing the sensitivity measured before (${file})`);
      return done;
    }
    const measured = stored(partial)?.loss ?? [];
    if (measured.length > 0) log(`going on with the sensitivity measured before (${partial}: ${measured.length} layer${measured.length === 1 ? '' : 's'})`);
    let kept = measured.length;
    try {
      const s = measure(measured, (loss) => {
        writeFileAtomic(partial, JSON.stringify({ loss }));
        kept = loss.length;
      });
      writeFileAtomic(file, JSON.stringify(s));
      rmSync(partial, { force: true });
      return s;
    } catch (e) {
      if (e instanceof Interrupted) {
        const what = kept === 0 ? 'no layer was measured yet' : `${partial} holds the ${kept === 1 ? 'layer' : `${kept} layers`} measured: the same command goes on from there`;
        throw new Interrupted(`${e.message}; ${what}`, e.signal);
      }
      throw e;
    }
  }
}

/** the files a reproduction writes into its --out folder */
const REPORT_FILES = ['report.json', 'report.md', 'report.html', 'accuracy.svg', 'drop.svg', 'units.svg'];

/** one piece of a reproduction that runs alone (a process of its own, a job on a cluster), reading
 * what the pieces `after` it left in the work folder */
export interface ReproducePiece {
  id: string;
  after: string[];
  /** what it does, in words */
  what: string;
}

/** a piece run alone: which, and how long it took */
export interface PieceDone {
  piece: string;
  seconds: number;
}

/** a row's name (in its pieces' ids and its files): `ratio-R` or `budget-F`, `-xM` with --multiple-of */
const rowName = (row: { ratio: number } | { budget: number }, multipleOf?: number) =>
  `${'budget' in row ? `budget-${row.budget}` : `ratio-${row.ratio}`}${multipleOf ? `-x${multipleOf}` : ''}`;

/** what a reproduction's rows and pieces follow from: the ratios, budgets, rules and fine-tuning */
function rowsOf(which: NetworkName, o: ReproduceOptions) {
  const cfg = NETWORKS[which];
  if (!cfg) throw new Error(`reproduce: unknown model '${which}'`);
  const quick = o.quick ?? false;
  // budgets alone ask for their rows only; otherwise the network's ratios unless others are given
  const ratios = o.ratios ?? ((o.budgets ?? []).length > 0 ? [] : quick ? cfg.quick.ratios : cfg.ratios);
  // the network's budget rows, where no ratios or budgets are asked for (not in --quick or --paper)
  const ownBudgets = o.ratios === undefined && o.budgets === undefined && !quick && !o.paper ? cfg.budgets : undefined;
  const budgets = o.budgets ?? ownBudgets?.fractions ?? [];
  if (ratios.length === 0 && budgets.length === 0) throw new Error('reproduce: no merge ratios given');
  for (const r of ratios) if (!(r >= 0 && r < 1)) throw new Error(`ratio ${r} is out of range: merge ratios must be in [0, 1)`);
  const recipe = o.paper ? cfg.paper.finetune : cfg.finetune;
  const ftEpochs = o.finetuneEpochs ?? (quick ? cfg.quick.finetuneEpochs : recipe.epochs);
  const rules = o.rules ?? (o.paper ? ['mean' as MergeRule] : cfg.rules);
  if (rules.length === 0) throw new Error('reproduce: no merging rules given');
  const allocateHow = o.allocate ?? ownBudgets?.allocate ?? 'uniform';
  const rows = [...ratios.map((r) => rowName({ ratio: r }, o.multipleOf)), ...budgets.map((b) => rowName({ budget: b }, o.multipleOf))];
  const seed = o.seed ?? 0;
  const ftSeeds = o.finetuneSeeds ?? [seed];
  if (ftSeeds.length === 0) throw new OptionError('reproduce: {finetuneSeeds} lists no seed');
  for (const s of ftSeeds) if (!(Number.isInteger(s) && s >= 0)) throw new OptionError(`reproduce: {finetuneSeeds} must list whole numbers 0 or more, got ${s}`);
  if (new Set(ftSeeds).size !== ftSeeds.length) throw new OptionError(`reproduce: {finetuneSeeds} lists a seed twice (${ftSeeds.join(', ')})`);
  if (ftSeeds.length > 1 && ftEpochs === 0) throw new OptionError('reproduce: {finetuneSeeds} asks for several fine-tunings, but {finetuneEpochs} is 0');
  // a fine-tuning's name carries its seed where it is not the run's one seed (so that a run without
  // seeds finds the fine-tunings it made before)
  const seedTag = (s: number) => (ftSeeds.length === 1 && s === seed ? '' : `-seed${s}`);
  return { cfg, quick, ratios, ownBudgets, budgets, recipe, ftEpochs, rules, allocateHow, rows, ftSeeds, seedTag };
}

/**
 * The pieces `reproduce(which, o)` splits into, in an order that runs: the original; the layers'
 * sensitivity where a budget is spread by it; each row's fine-tunings (one per rule, one for the pruned
 * twin), side by side; the report, which finds every piece's result and writes the report files.
 * `reproducePiece` runs one; `reproduce` afterwards reuses what they left.
 */
export function reproducePlan(which: NetworkName, o: ReproduceOptions = {}): ReproducePiece[] {
  const { budgets, ftEpochs, rules, allocateHow, rows, ftSeeds, seedTag } = rowsOf(which, o);
  if (!o.out) throw new Error('reproduce: the pieces of a run share its output folder; give one');
  const pieces: ReproducePiece[] = [{ id: 'original', after: [], what: o.checkpoint ? `reuse or train the original in ${o.checkpoint}` : 'train the original' }];
  const sensitivity = budgets.length > 0 && allocateHow === 'sensitivity';
  if (sensitivity) pieces.push({ id: 'sensitivity', after: ['original'], what: 'measure each layer\'s sensitivity, to spread the budgets' });
  if (ftEpochs > 0) {
    for (const row of rows) {
      const after = sensitivity && row.startsWith('budget-') ? ['original', 'sensitivity'] : ['original'];
      for (const name of [...rules, 'pruned']) {
        for (const s of ftSeeds) pieces.push({ id: `${row}-${name}${seedTag(s)}`, after, what: `fine-tune the ${name === 'pruned' ? 'pruned twin' : `${name} merge`} at ${row.replace('-', ' ')}${seedTag(s) ? ` with seed ${s}` : ''}` });
      }
    }
  }
  pieces.push({ id: 'report', after: pieces.map((p) => p.id), what: 'merge, measure and write the report, reusing every piece\'s result' });
  return pieces;
}

/** run one piece of `reproducePlan(which, o)` (the report piece is `reproduce` itself) */
export async function reproducePiece(which: NetworkName, o: ReproduceOptions, piece: string): Promise<PieceDone | Report> {
  const ids = reproducePlan(which, o).map((p) => p.id);
  if (!ids.includes(piece)) throw new Error(`reproduce: this run has no piece '${piece}' (its pieces: ${ids.join(', ')})`);
  return run(which, o, piece === 'report' ? undefined : piece);
}

export async function reproduce(which: NetworkName, o: ReproduceOptions = {}): Promise<Report> {
  return (await run(which, o)) as Report;
}

/** the reproduction, or with `job` one piece of it alone */
async function run(which: NetworkName, o: ReproduceOptions, job?: string): Promise<Report | PieceDone> {
  const { cfg, quick, ratios, ownBudgets, budgets, recipe, ftEpochs, rules, allocateHow, ftSeeds, seedTag } = rowsOf(which, o);
  const t0 = performance.now();
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const seed = o.seed ?? 0;
  const done = (): PieceDone => ({ piece: job!, seconds: (performance.now() - t0) / 1000 });
  // a piece claims each file it writes; a second copy waits, then finds the result
  const claim = (file: string) => claimFile(file, (who) => log(`reproduce ${which}: ${file} is being written by ${who}; waiting`));
  // a fine-tuning piece's row (its id less the rule and the seed)
  const jobRow = job && job !== 'original' && job !== 'sensitivity' ? job.replace(/-seed\d+$/, '').replace(/-[^-]+$/, '') : null;
  // outputs checked before any work: an hour of training must not end on a path that cannot be written
  if (o.out) checkOutputDir(o.out, '{out}');
  // the original is never one of the files the run writes into --out
  if (o.checkpoint) checkOutputFile(o.checkpoint, '{checkpoint}', o.out ? REPORT_FILES.map((f) => ({ option: '{out}', path: join(o.out!, f) })) : []);
  const epochs = o.epochs ?? (quick ? cfg.quick.epochs : cfg.train.epochs);
  const limit = o.limit ?? (quick ? cfg.quick.limit : undefined);
  // without --checkpoint the original is kept in the work folder (named by what it depends on), so that
  // a run stopped while training it resumes it rather than training it again
  const withOriginal = o.checkpoint === undefined && o.out !== undefined
    ? { ...o, checkpoint: join(o.out, 'work', `original-${keyOf({ which, arch: o.arch ?? (quick ? cfg.quick.arch : null), epochs, seed, limit, quick, dataset: o.data?.dataset ?? null })}.safetensors`) }
    : o;
  if (withOriginal !== o) log(`reproduce ${which}: the original's checkpoints go to ${withOriginal.checkpoint}`);
  if (job && job !== 'original' && !originalDone(withOriginal.checkpoint!, epochs)) throw new Error(`reproduce: piece '${job}' needs the original trained first (piece 'original', ${withOriginal.checkpoint})`);
  const releaseOriginal = withOriginal.checkpoint ? await claim(withOriginal.checkpoint) : () => {};
  const base = await original(which, withOriginal, epochs, log);
  releaseOriginal();
  if (job === 'original') return done();
  const arch = base.arch;
  const task = base.task ?? (await loadTask(arch, o.data));
  const input = task.input;
  const evOriginal = evaluate(base.model, task.ev.x, task.ev.y, task.settings.evalBatch);
  const accOriginal = evOriginal.accuracy;
  log(`reproduce ${which}: original test accuracy ${(100 * accOriginal).toFixed(2)}%`);
  const before = modelStats(base.model, input);
  const x128 = slice(task.ev.x, 0, 128);
  const recalImages = recalibrationImages(base.model, o.recalibrate);
  const samples = new CompressionSamples(task, seed, undefined, o.recalibrateCutout ?? 0);
  const calibration = samples.recalibration(recalImages);
  const results: RatioResult[] = [];
  const askDistill = o.distill === undefined ? (recipe.distill ? { temperature: o.distillTemperature, weight: o.distillWeight } : undefined) : o.distill || undefined;
  const distill = askDistill ? { teacher: base.model, temperature: askDistill.temperature ?? DISTILL_DEFAULTS.temperature, weight: askDistill.weight ?? DISTILL_DEFAULTS.weight } : undefined;
  const work = o.out ? new WorkFolder(join(o.out, 'work')) : null;
  const originalId = work ? fingerprint(base.model) : '';
  // what a fine-tuning's result depends on besides the model it starts from (named by the original, the
  // row's per-layer ratios and the rule)
  const ftLr = o.finetuneLr ?? recipe.lr;
  if (!(ftLr > 0)) throw new Error(`reproduce: the fine-tuning learning rate must be positive, got ${ftLr}`);
  // Cutout in fine-tuning, recorded only where set (keys and reports of runs without it unchanged)
  const cutout = o.finetuneCutout ?? recipe.cutout ?? 0;
  const cutoutEntry = cutout ? { cutout } : {};
  const schedule = o.schedule ?? recipe.schedule, warmup = o.warmup ?? recipe.warmup ?? ONE_CYCLE_WARMUP, weightDecay = o.weightDecay ?? recipe.weightDecay;
  // (the Cutout of the re-estimation images enters the key only where there is one, so that the names
  // of the work a run without it made stay the same)
  const tuningKey = { originalId, seed, limit, ftEpochs, ftLr, recalImages, ...(recalImages !== null && o.recalibrateCutout ? { recalCutout: o.recalibrateCutout } : {}), distill: distill ? [distill.temperature, distill.weight] : null, schedule, warmup, ...(weightDecay !== FINETUNE_WEIGHT_DECAY ? { weightDecay } : {}), ...cutoutEntry };
  const finetuneOnce = async (model: Sequential, a: Arch, name: string, ratio: number | number[], ftSeed: number) => {
    const label = `${name}${seedTag(ftSeed)}`;
    // the key keeps the merge's seed (the compressed weights depend on it) and adds the fine-tuning's
    // where it is another (a run without seeds finds what it made before)
    const ck = work && ftEpochs > 0 ? work.finetuning(label, { ...tuningKey, label, ratio, widths: widthsOf(a), ...(ftSeed !== seed ? { finetuneSeed: ftSeed } : {}) }) : null;
    const release = ck ? await claim(ck) : () => {};
    try {
      const resume = ck && existsSync(ck) ? ck : undefined;
      if (ck) log(`reproduce ${which}: fine-tuning ${label}${resume ? ', continuing from' : ', checkpoints in'} ${ck}`);
      await finetuneModel(model, a, task, {
        epochs: ftEpochs, lr: ftLr, seed: ftSeed, limit, log, device: o.device, schedule, warmup, weightDecay, distill, cutout,
        ...(ck ? { checkpoint: ck, checkpointEvery: o.checkpointEvery, resume } : {}),
      });
    } finally {
      release();
    }
    return accuracyOf(model, task).accuracy;
  };
  // fine-tune a compressed model once per seed, each from the same weights (`model` itself takes the
  // first seed's and is the one kept); its accuracy is the seeds' mean
  const finetune = async (model: Sequential, a: Arch, name: string, ratio: number | number[]): Promise<SeedAccuracies> => {
    const copies = ftSeeds.slice(1).map(() => cloneModel(model, a));
    const each: number[] = [];
    for (let i = 0; i < ftSeeds.length; i++) {
      each.push(await finetuneOnce(i === 0 ? model : copies[i - 1], a, name, ratio, ftSeeds[i]));
      if (ftSeeds.length > 1) log(`reproduce ${which}: ${name} with seed ${ftSeeds[i]}: ${(100 * each[i]).toFixed(2)}%`);
    }
    return seedAccuracies(ftSeeds, each);
  };
  // one piece: one seed's fine-tuning of a compressed model
  const jobSeed = (name: string, row: string) => ftSeeds.find((s) => job === `${row}-${name}${seedTag(s)}`);
  const notes = new Set<string>();
  // the rows: one ratio in every layer, then each budget spread over the layers (uniformly, or by the
  // first rule's measured sensitivity; merged and pruned models take the same units per layer)
  const points: { ratio: number | number[]; budget?: RatioResult['budget'] }[] = ratios.map((r) => ({ ratio: r }));
  for (const fraction of budgets) {
    // the rule whose sensitivity spreads the budget: the network's choice for its own rows, else the first
    const by = ownBudgets?.by ?? rules[0];
    let per: number[];
    // a piece alone spreads only its own row's budget
    if (jobRow !== null && jobRow !== rowName({ budget: fraction }, o.multipleOf)) continue;
    if (allocateHow === 'uniform') per = budgetWidths(base.model, fraction).ratios;
    else {
      log(`reproduce ${which}: spreading the budget ${fraction} by each layer's sensitivity (${by} rule, 1,000 training images)`);
      const measure = (measured: number[][] = [], onLayer?: (loss: number[][]) => void) => measureSensitivity(base.model, arch, samples, { rule: by, seed, nInit: 3, recalibrate: calibration !== null, log, measured, onLayer });
      const key = { originalId, rule: by, seed, limit, recalImages };
      let sens: Sensitivity;
      if (work) {
        const release = await claim(work.sensitivityFile(key));
        try {
          sens = work.sensitivity(key, measure, log);
        } finally {
          release();
        }
      } else sens = measure();
      if (job === 'sensitivity') return done();
      per = budgetWidths(base.model, fraction, sens).ratios;
    }
    points.push({ ratio: per, budget: { fraction, allocate: allocateHow, ratios: per } });
  }
  for (const point of points) {
    const { budget } = point;
    // a multiple of units: each layer's units rounded (down for a budget, so that it stays met)
    const rounded = o.multipleOf === undefined ? null : roundToMultiple(base.model, unitsAt(base.model, point.ratio), o.multipleOf, budget !== undefined);
    const ratio = rounded ? rounded.ratios : point.ratio;
    const label = `${budget ? `budget ${budget.fraction}` : `ratio ${point.ratio}`}${o.multipleOf ? `, units in multiples of ${o.multipleOf}` : ''}`;
    rounded?.notes.forEach((n) => notes.add(`${label}: ${n}`));
    const row = rowName(budget ? { budget: budget.fraction } : { ratio: point.ratio as number }, o.multipleOf);
    if (jobRow !== null && row !== jobRow) continue;
    const merges: { rule: string; merged: number; finetuned: number }[] = [];
    let first: { model: Sequential; rep: MergeReport; arch: Arch } | null = null;
    // the compressed models as fine-tuning left them (weights only), one per rule and the pruned twin,
    // for eval, export and the user
    const kept: Record<string, string> = {};
    const keep = (name: string, model: Sequential, a: Arch, kind: 'merged' | 'pruned') => {
      if (!o.out) return;
      const file = join('models', `${row}-${name}.safetensors`);
      mkdirSync(join(o.out, 'models'), { recursive: true });
      saveCheckpoint(join(o.out, file), { arch: a, model, kind: ftEpochs > 0 ? 'finetuned' : kind, normalization: recordedNormalization(task) });
      kept[name] = file;
    };
    const prunedSeed = jobSeed('pruned', row);
    if (prunedSeed !== undefined) {
      const pruned = cloneModel(base.model, arch);
      compressModel(pruned, 'prune', { ratio, seed, recalibration: calibration });
      await finetuneOnce(pruned, archOf(pruned, arch), `${row}-pruned`, ratio, prunedSeed);
      return done();
    }
    for (const rule of rules) {
      const ruleSeed = job ? jobSeed(rule, row) : undefined;
      if (job && ruleSeed === undefined) continue;
      log(`reproduce ${which}: merging every hidden layer at ${label} (${rule})`);
      const m = cloneModel(base.model, arch);
      const r = compressModel(m, rule, { ratio, seed, nInit: 3, fit: samples.fitFor(rule), recalibration: calibration })!;
      r.notes.forEach((n) => notes.add(n));
      if (ruleSeed !== undefined) {
        await finetuneOnce(m, archOf(m, arch), `${row}-${rule}`, ratio, ruleSeed);
        return done();
      }
      const acc = accuracyOf(m, task).accuracy;
      if (!first) {
        first = { model: m, rep: r, arch: archOf(m, arch) };
        merges.push({ rule, merged: acc, finetuned: NaN });
        continue; // fine-tuned after its speed is measured
      }
      const ft = await finetune(m, archOf(m, arch), `${row}-${rule}`, ratio);
      log(`reproduce ${which}: merged (${rule}) ${(100 * acc).toFixed(2)}%, after fine-tuning ${(100 * ft.mean).toFixed(2)}%${ft.seeds ? ` (mean of ${ft.seeds.seeds.length} seeds)` : ''}`);
      merges.push({ rule, merged: acc, finetuned: ft.mean, ...(ft.seeds ? { seeds: ft.seeds } : {}) });
      keep(rule, m, archOf(m, arch), 'merged');
    }
    const { model: merged, rep } = first!;
    const fitFirst = samples.fitFor(rules[0]);
    const acts = fitFirst ? siteActivations(base.model, fitFirst) : null;
    const explain = explainMerge(base.model, arch, rep.sites.map((x) => x.labels), slice(task.ev.x, 0, 256), (q) => ({ rule: rules[0], representatives: rep.sites[q].representatives, activations: acts?.[q] }));
    const filters = firstFilters(base.model, merged, rep.sites[0].labels); // before fine-tuning moves them
    const mArch = archOf(merged, arch);
    const after = modelStats(merged, input);
    const c = compare(before, after);
    const accMerged = merges[0].merged;
    let accRepaired: number | undefined;
    if (o.repair) {
      const rep2 = cloneModel(base.model, arch);
      compressModel(rep2, rules[0], { ratio, seed, nInit: 3, repair: calibrationInputs(task, o.repair), recalibration: null });
      accRepaired = accuracyOf(rep2, task).accuracy;
      log(`reproduce ${which}: merged ${(100 * accMerged).toFixed(2)}%, with statistics repair ${(100 * accRepaired).toFixed(2)}%`);
    }
    const speedup = measuredSpeedup(base.model, merged, x128, cfg.speedReps);
    const ftMerged = await finetune(merged, mArch, `${row}-${rules[0]}`, ratio);
    const accFt = ftMerged.mean;
    merges[0] = { ...merges[0], finetuned: accFt, ...(ftMerged.seeds ? { seeds: ftMerged.seeds } : {}) };
    log(`reproduce ${which}: merged (${rules[0]}) ${(100 * accMerged).toFixed(2)}%, after fine-tuning ${(100 * accFt).toFixed(2)}%${ftMerged.seeds ? ` (mean of ${ftSeeds.length} seeds)` : ''}; pruning baseline (L1 norm) at ${label}`);
    const pruned = cloneModel(base.model, arch);
    compressModel(pruned, 'prune', { ratio, seed, recalibration: calibration });
    const pArch = archOf(pruned, arch);
    const accPruned = accuracyOf(pruned, task).accuracy;
    const ftPruned = await finetune(pruned, pArch, `${row}-pruned`, ratio);
    const accPrunedFt = ftPruned.mean;
    keep(rules[0], merged, mArch, 'merged');
    keep('pruned', pruned, pArch, 'pruned');
    const models: RatioResult['models'] = o.out ? { merged: kept[rules[0]], pruned: kept.pruned, rules: Object.fromEntries(rules.map((r) => [r, kept[r]])) } : undefined;
    results.push({
      ratio: budget ? null : (point.ratio as number),
      ...(budget ? { budget } : {}),
      units: rep.sites.map((s) => ({ layer: s.layer, before: s.before, after: s.after })),
      params: c.params, compressionRatio: c.compressionRatio, flops: c.flops, bytes: c.bytes,
      accuracy: { original: accOriginal, merged: accMerged, finetuned: accFt, pruned: accPruned, prunedFinetuned: accPrunedFt, ...(accRepaired !== undefined ? { repaired: accRepaired } : {}) },
      merges,
      ...(ftMerged.seeds && ftPruned.seeds ? { seeds: { finetuned: ftMerged.seeds, prunedFinetuned: ftPruned.seeds } } : {}),
      speedup: { flops: c.flopsRatio, measured: speedup },
      explain,
      filters,
      ...(models ? { models } : {}),
    });
  }
  const report: Report = {
    command: o.command ?? `reproduce(${JSON.stringify(which)}${quick ? ', { quick: true }' : ''})`,
    recalibrated: calibration ? calibration.shape[0] : null,
    ...(calibration && o.recalibrateCutout ? { recalibrateCutout: o.recalibrateCutout } : {}),
    ...(o.multipleOf !== undefined ? { multipleOf: o.multipleOf } : {}),
    ...(o.paper ? { paper: true } : {}),
    finetune: { epochs: ftEpochs, lr: ftLr, schedule, weightDecay, distill: distill ? { temperature: distill.temperature, weight: distill.weight } : null, ...cutoutEntry },
    notes: [...notes],
    model: cfg.family === 'sequential' ? cfg.name : cfg.family, data: `${task.settings.dataTitle} (${sourceOf(task)})`, quick, seed,
    machine: machineDescription(),
    seconds: (performance.now() - t0) / 1000,
    ...(o.finetuneSeeds ? { finetuneSeeds: ftSeeds } : {}),
    original: {
      accuracy: accOriginal, params: before.params, flops: before.flops, epochs, arch,
      perClass: evOriginal.perClass.map((accuracy, c) => ({ name: task.test.classes[c] ?? String(c), accuracy })), batchNorm: batchNormSpread(base.model),
    },
    results,
    // the literature's points, where this is the network they compressed (its widths, its data)
    ...(cfg.published && JSON.stringify(arch) === JSON.stringify(cfg.arch()) && (o.data?.dataset ?? cfg.dataset) === cfg.dataset ? { published: cfg.published } : {}),
  };
  if (o.out) await writeReports(o.out, report);
  return report;
}
