// What a model is trained and tested on, derived from its `Arch` alone (through the networks table), so
// a checkpoint is all a command needs: the dataset, the normalised test set, fine-tuning, evaluation.
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, relative } from 'node:path';
import { loadDataset } from '../../datasets/catalog.js';
import type { ImageSet, LoadOptions } from '../../datasets/catalog.js';
import { BatchLoader, channelStats, toTensor, UNIT } from '../../datasets/loader.js';
import type { Augment, Normalization } from '../../datasets/loader.js';
import { getForcedBackend } from '../backend/registry.js';
import { nativeAddon } from '../backend/native.js';
import { buildModel, inputShape, modelName } from '../models/index.js';
import type { Arch } from '../models/index.js';
import type { Sequential } from '../nn/layers.js';
import { InferenceSession } from '../nn/session.js';
import { SGD } from '../optim/index.js';
import { Rng } from '../tensor/rng.js';
import { distillationLoss } from '../tensor/ops.js';
import { Tensor } from '../tensor/tensor.js';
import { checkArchHolds, checkFinite, CHECKPOINT_KINDS, loadCheckpoint, unfinished } from '../train/checkpoint.js';
import type { Checkpoint, InputNormalization, TrainState } from '../train/checkpoint.js';
import { fromOnnx } from '../onnx/import.js';
import type { CheckpointKind } from '../train/checkpoint.js';
import { evaluate, fit } from '../train/loop.js';
import type { EpochRecord, EvalOptions } from '../train/loop.js';
import { fitGpu, onGpuOr } from '../train/gpu.js';
import { DISTILL_DEFAULTS, networkOf, scheduleOf, withDataset } from './networks.js';
import type { NetworkSettings } from './networks.js';
import { OptionError, quote } from '../runtime/errors.js';
import { modelFormatOfFile } from '../runtime/files.js';

export interface TaskData {
  settings: NetworkSettings;
  /** one sample's shape */
  input: number[];
  train: ImageSet;
  test: ImageSet;
  norm: Normalization;
  /** the test set as one tensor (normalised, flattened for the DBN) */
  ev: { x: Tensor; y: Int32Array };
}

/** the indices 0 … min(n, count) − 1, or undefined (all) where n is undefined */
export function firstN(n: number | undefined, count: number): Int32Array | undefined {
  return n === undefined ? undefined : Int32Array.from({ length: Math.min(n, count) }, (_, i) => i);
}

/** where a task's data is read from, and (`dataset`) another dataset than the model's own */
export interface TaskLoadOptions extends LoadOptions {
  dataset?: string;
}

/** the data a model of this architecture is trained and tested on (CIFAR-10 standardised by its
 * training set's channel statistics) */
export async function loadTask(arch: Arch, data: TaskLoadOptions = {}): Promise<TaskData> {
  const settings = networkOf(withDataset(arch, data.dataset));
  const { train, test } = await loadDataset(settings.dataset, data);
  const norm = settings.normalization === 'channel' ? channelStats(train) : UNIT;
  return { settings, input: inputShape(arch), train, test, norm, ev: toTensor(test, norm, undefined, settings.flat) };
}

/** what a checkpoint records of a task's input standardisation: the channel statistics where the
 * network standardises by them (VGG-16 on CIFAR-10), nothing where pixels are only scaled */
export function recordedNormalization(t: TaskData): InputNormalization | null {
  return t.settings.normalization === 'channel' ? t.norm : null;
}

/** the augmentation a network trains with (random crop after 4-pixel padding and flip where its
 * settings say so), with Cutout's square side added (0: none) */
function augmentOf(s: NetworkSettings, cutout = 0): Augment {
  return { ...(s.augment ? { padCrop: 4, flip: true } : {}), cutout };
}

/** the training batches of a task: shuffled with the seed, augmented where the network trains so */
export function trainLoader(t: TaskData, o: { seed: number; limit?: number; batchSize?: number; cutout?: number }): BatchLoader {
  const s = t.settings;
  return new BatchLoader(t.train, {
    batchSize: o.batchSize ?? s.batch, shuffle: true, seed: o.seed, indices: firstN(o.limit, t.train.count), flatten: s.flat,
    normalize: t.norm, augment: augmentOf(s, o.cutout),
  });
}

/** the first n training images as one tensor (normalised as for training, no augmentation): the
 * calibration inputs of merge --repair */
export function calibrationInputs(t: TaskData, n: number): Tensor {
  return toTensor(t.train, t.norm, firstN(n, t.train.count), t.settings.flat).x;
}

/** the indices of n training images drawn with the seed (a seeded permutation's first n) */
function drawTraining(t: TaskData, n: number, seed: number): Int32Array {
  return Int32Array.from(new Rng(seed).permutation(t.train.count).subarray(0, Math.min(n, t.train.count)));
}

/** n training images drawn with the seed (normalised as for training, no augmentation): the inputs of
 * batch-norm re-estimation */
export function calibrationSample(t: TaskData, n: number, seed: number): Tensor {
  return toTensor(t.train, t.norm, drawTraining(t, n, seed), t.settings.flat).x;
}

/** the n training images of calibrationSample(t, n, seed), augmented as the network trains (random
 * crops and flips, seeded; as they are where it trains without): the inputs of batch-norm
 * re-estimation. A network trained on augmented images kept running statistics of augmented images;
 * re-estimated on plain training images, which an overfit network answers differently, they no longer
 * fit the test images (a full-width VGG-16 at 90.22% fell to 88.74% with no unit merged). `cutout`: a
 * network trained with Cutout is re-estimated on images with it too, for the same reason (the 80-epoch
 * VGG-16 at 91.68% keeps 91.78% so and falls to 90.55% without) */
export function recalibrationSample(t: TaskData, n: number, seed: number, cutout = 0): Tensor {
  const indices = drawTraining(t, n, seed);
  const s = t.settings;
  const loader = new BatchLoader(t.train, {
    batchSize: indices.length, indices, seed, flatten: s.flat, normalize: t.norm, augment: augmentOf(s, cutout),
  });
  return loader.batch(0, 0).x;
}

/** n training images and their labels drawn with the seed (normalised, no augmentation): the
 * calibration set sensitivity is measured on */
export function calibrationSet(t: TaskData, n: number, seed: number): { x: Tensor; y: Int32Array } {
  const r = toTensor(t.train, t.norm, drawTraining(t, n, seed), t.settings.flat);
  return { x: r.x, y: r.y };
}

export function accuracyOf(model: Sequential, t: TaskData, o: EvalOptions = {}): { accuracy: number; loss: number } {
  const r = evaluate(model, t.ev.x, t.ev.y, t.settings.evalBatch, o);
  return { accuracy: r.accuracy, loss: r.loss };
}

export interface DistillOptions {
  /** the model whose softened outputs the student learns (the original before merging) */
  teacher: Sequential;
  /** softmax temperature (default 4) */
  temperature?: number;
  /** weight of the soft term; 1 − weight goes to the labels (default 0.9) */
  weight?: number;
}

/** fine-tuning's weight decay unless one is given */
export const FINETUNE_WEIGHT_DECAY = 5e-4;

export interface FinetuneOptions {
  /** default: the network's fine-tuning epochs */
  epochs?: number;
  /** default: the network's fine-tuning learning rate */
  lr?: number;
  /** 'cosine': from lr down to 0; 'onecycle': a linear warm-up over `warmup` of the steps, then cosine
   * down (default: the network's recipe) */
  schedule?: 'cosine' | 'onecycle';
  /** one-cycle's warm-up share of the steps (default: the recipe's, else networks.ts's ONE_CYCLE_WARMUP) */
  warmup?: number;
  /** SGD's weight decay (default: the network's recipe) */
  weightDecay?: number;
  /** learn from the original's softened outputs as well as the labels */
  distill?: DistillOptions;
  /** Cutout: blank a random n x n square of each training image (default: the network's recipe, else
   *  0: none); a network trained with it can be fine-tuned on the same augmentation */
  cutout?: number;
  /** the products' operands: float32 (default) or bf16 (see fit) */
  precision?: 'float32' | 'bf16';
  seed?: number;
  limit?: number;
  /** write a checkpoint here after every epoch (resumable) */
  checkpoint?: string;
  /** also write it every n steps */
  checkpointEvery?: number;
  /** continue from this checkpoint (written by an earlier run with the same options) */
  resume?: string;
  log?: (line: string) => void;
  progress?: boolean;
  device?: 'cpu' | 'webgpu';
}

/**
 * The loss of a distilling fine-tuning step: the teacher (put in eval mode) runs through an inference
 * session made here, its weights laid out once for every step (its outputs the same bits as its
 * forward; VGG-16 at batch 128 about 0.9x the time). The teacher must not change while the loss is in
 * use: the session would not see its weights change in place.
 */
export function distillationStep(teacher: Sequential, temperature: number, weight: number): (logits: Tensor, x: Tensor, y: Int32Array) => Tensor {
  teacher.eval();
  const session = new InferenceSession(teacher);
  return (logits, x, y) => distillationLoss(logits, session.run(x), y, temperature, weight);
}

/** fine-tune a (merged or pruned) model: SGD with momentum 0.9, the network's recipe (epochs, rate,
 * schedule, weight decay, Cutout: ./networks.ts) where `o` gives none, optionally distilling from the
 * original */
export async function finetuneModel(model: Sequential, arch: Arch, t: TaskData, o: FinetuneOptions = {}): Promise<EpochRecord[]> {
  const epochs = o.epochs ?? t.settings.finetune.epochs;
  if (epochs === 0) return [];
  // the loader checks the cutout (a whole number of pixels, 0 or more) when it is made
  const r = t.settings.finetune;
  const loader = trainLoader(t, { seed: (o.seed ?? 0) + 1, limit: o.limit, cutout: o.cutout ?? r.cutout ?? 0 });
  const lr = o.lr ?? r.lr;
  const steps = epochs * loader.length;
  const schedule = scheduleOf(o.schedule ?? r.schedule, lr, steps, o.warmup ?? r.warmup);
  const wd = o.weightDecay ?? r.weightDecay;
  if (!(wd >= 0)) throw new Error(`weight decay must be 0 or more, got ${wd}`);
  const d = o.distill;
  let loss: ((logits: Tensor, x: Tensor, y: Int32Array) => Tensor) | undefined;
  if (d) {
    const T = d.temperature ?? DISTILL_DEFAULTS.temperature, w = d.weight ?? DISTILL_DEFAULTS.weight;
    if (!(T > 0)) throw new Error(`distillation temperature must be positive, got ${T}`);
    if (!(w >= 0 && w <= 1)) throw new Error(`distillation weight must be in [0, 1], got ${w}`);
    loss = distillationStep(d.teacher, T, w);
  }
  const throughKernels = () => fit(model, {
    arch, loader, optimizer: new SGD(model.parameters(), { lr, momentum: 0.9, weightDecay: wd }), epochs,
    schedule, loss, checkpoint: o.checkpoint, checkpointEvery: o.checkpointEvery, resume: o.resume, checkpointKind: 'finetuned', log: o.log, progress: o.progress ?? true, normalization: recordedNormalization(t), precision: o.precision,
  }).history;
  // the GPU-resident trainer has the plain recipe only (its checkpoints hold weights alone, its loss is
  // the cross-entropy): a resume, bfloat16 or distillation runs through the kernel interface (on the
  // GPU where the WebGPU kernels are started and forced)
  if (o.device !== 'webgpu' || o.resume || o.precision === 'bf16' || d) return throughKernels();
  return onGpuOr(() => fitGpu(model, t.input, { arch, loader, epochs, lr, momentum: 0.9, weightDecay: wd, schedule, checkpoint: o.checkpoint, checkpointKind: 'finetuned', log: o.log, progress: o.progress }), throughKernels, o.log);
}

/** a model read from a file: its architecture, what the file holds, the input's standardisation where
 * recorded, and (a checkpoint written while training) where its training stood */
export interface ModelFile {
  model: Sequential;
  arch: Arch;
  kind: CheckpointKind;
  normalization: InputNormalization | null;
  train: TrainState | null;
  /** a checkpoint that keeps a moving average of its weights beside them: that average */
  average?: Checkpoint['average'];
}

/** a model, its architecture and what the file holds, from a checkpoint file */
export function modelFromCheckpoint(path: string, dataset?: string): ModelFile {
  const m = readModel(path);
  return { ...m, arch: withDataset(m.arch, dataset) };
}

/** what a checkpoint holds, in words: "finetuned", or "finetuned, unfinished: epoch 1 of 3", with
 * ", weights averaged over n steps beside them" where it keeps a moving average */
export function describeKind(m: { kind: CheckpointKind; train: TrainState | null; average?: Checkpoint['average'] }): string {
  const kind = unfinished(m.train) ? `${m.kind}, unfinished: epoch ${m.train!.epoch} of ${m.train!.epochs} done${m.train!.batch ? ` and ${m.train!.batch} steps of the next` : ''}` : m.kind;
  return m.average ? `${kind}; its weights averaged over ${m.average.state.updates.toLocaleString('en')} steps beside them` : kind;
}

function readModel(path: string): ModelFile {
  // ONNX by its name, or by its content whatever its name (an ONNX file written as model.safetensors)
  if (/\.onnx$/i.test(path) || modelFormatOfFile(path) === 'onnx') {
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(path);
    } catch (e) {
      throw new Error(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    // a model made elsewhere counts as an original; one neuronmerge exported says what it holds
    const m = fromOnnx(bytes, path);
    checkFinite(path, m.model.stateDict());
    return { model: m.model, arch: m.arch, kind: CHECKPOINT_KINDS.includes(m.kind as CheckpointKind) ? (m.kind as CheckpointKind) : 'original', normalization: m.normalization, train: null };
  }
  const c = loadCheckpoint(path);
  checkArchHolds(path, c);
  const model = buildModel(c.arch, 0);
  model.loadStateDict(c.state, `${path}: checkpoint`);
  return { model, arch: c.arch, kind: c.kind, normalization: c.normalization, train: c.train, ...(c.average ? { average: c.average } : {}) };
}

/** the original a compressed model learns from: a checkpoint of the same network and classes */
export function teacherFor(path: string, student: Arch): Sequential {
  const { model, arch } = modelFromCheckpoint(path);
  if (arch.model !== student.model) throw new OptionError(`{distill} ${quote(path)}: the teacher is a ${modelName(arch)}, the model being fine-tuned a ${modelName(student)}`);
  if (arch.classes !== student.classes) throw new OptionError(`{distill} ${quote(path)}: the teacher has ${arch.classes} classes, the model being fine-tuned ${student.classes}`);
  return model;
}

/** a fresh copy of a model (same architecture, same weights) */
export function cloneModel(model: Sequential, arch: Arch): Sequential {
  const m = buildModel(arch, 0);
  m.loadStateDict(model.stateDict());
  return m;
}

/** the machine a run computed on, for reports: the CPU, its cores, and the kernels (the native addon's
 * instruction set and threads, or TypeScript) */
export function machineDescription(): string {
  const nat = nativeAddon();
  const kernels = !nat || getForcedBackend() === 'js' ? 'TypeScript kernels' : `native kernels, ${nat.isa()}, ${nat.threads()} threads`;
  return `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores; ${kernels}`;
}

/** where a task's images were read (the folder, or CIFAR-10's archive, that holds both splits),
 * relative to the working folder unless that climbs out of it */
export function sourceOf(t: TaskData): string {
  const src = t.train.source === t.test.source ? t.train.source : dirname(t.train.source);
  const rel = relative(process.cwd(), src);
  return rel === '' ? '.' : rel.startsWith('..') ? src : rel;
}
