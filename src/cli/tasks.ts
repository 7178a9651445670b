// What each network trains and is evaluated on, shared by every subcommand: the dataset, the input
// normalisation, the batch size and the fine-tuning settings, derived from a model's `Arch` alone so a
// checkpoint is all a command needs.
import { loadDataset } from '../../datasets/catalog.js';
import type { ImageSet, LoadOptions } from '../../datasets/catalog.js';
import { BatchLoader, channelStats, toTensor, UNIT } from '../../datasets/loader.js';
import type { Normalization } from '../../datasets/loader.js';
import { buildModel, inputShape } from '../models/index.js';
import type { Arch } from '../models/index.js';
import type { Sequential } from '../nn/layers.js';
import { SGD, cosineLr } from '../optim/index.js';
import type { Tensor } from '../tensor/tensor.js';
import { loadCheckpoint } from '../train/checkpoint.js';
import { evaluate, fit } from '../train/loop.js';
import { firstN, onGpuOr } from '../train/recipes.js';
import { fitGpu } from '../train/gpu.js';
import type { EpochRecord } from '../train/loop.js';

export interface TaskSettings {
  dataset: 'mnist' | 'cifar10';
  /** the DBN reads flat vectors */
  flat: boolean;
  input: number[];
  batch: number;
  finetuneLr: number;
  augment: boolean;
  evalBatch: number;
}

export function taskOf(arch: Arch): TaskSettings {
  switch (arch.model) {
    case 'lenet5':
      return { dataset: 'mnist', flat: false, input: inputShape(arch), batch: 64, finetuneLr: 0.005, augment: false, evalBatch: 500 };
    case 'dbn':
      return { dataset: 'mnist', flat: true, input: inputShape(arch), batch: 100, finetuneLr: 0.02, augment: false, evalBatch: 500 };
    case 'vgg16':
      return { dataset: 'cifar10', flat: false, input: inputShape(arch), batch: 128, finetuneLr: 0.01, augment: true, evalBatch: 250 };
  }
}

export interface TaskData {
  settings: TaskSettings;
  train: ImageSet;
  test: ImageSet;
  norm: Normalization;
  /** the test set as one tensor (normalised, flattened for the DBN) */
  ev: { x: Tensor; y: Int32Array };
}

/** the data a model of this architecture is trained and tested on (CIFAR-10 normalised by its
 * training set's channel statistics, as the VGG recipe trains) */
export async function loadTask(arch: Arch, data: LoadOptions = {}): Promise<TaskData> {
  const settings = taskOf(arch);
  const { train, test } = await loadDataset(settings.dataset, data);
  const norm = settings.dataset === 'cifar10' ? channelStats(train) : UNIT;
  return { settings, train, test, norm, ev: toTensor(test, norm, undefined, settings.flat) };
}

/** the first n training images as one tensor (normalised as for training, no augmentation): the
 * calibration inputs of merge --repair */
export function calibrationInputs(t: TaskData, n: number): Tensor {
  return toTensor(t.train, t.norm, firstN(n, t.train.count), t.settings.flat).x;
}

export function accuracyOf(model: Sequential, t: TaskData): { accuracy: number; loss: number } {
  const r = evaluate(model, t.ev.x, t.ev.y, t.settings.evalBatch);
  return { accuracy: r.accuracy, loss: r.loss };
}

export interface FinetuneOptions {
  epochs: number;
  lr?: number;
  seed?: number;
  limit?: number;
  /** write a checkpoint here after every epoch (resumable) */
  checkpoint?: string;
  log?: (line: string) => void;
  progress?: boolean;
  device?: 'cpu' | 'webgpu';
}

/** fine-tune a (merged or pruned) model: SGD with momentum 0.9, weight decay 5e-4, cosine schedule */
export async function finetuneModel(model: Sequential, arch: Arch, t: TaskData, o: FinetuneOptions): Promise<EpochRecord[]> {
  if (o.epochs === 0) return [];
  const s = t.settings;
  const loader = new BatchLoader(t.train, {
    batchSize: s.batch, shuffle: true, seed: (o.seed ?? 0) + 1, indices: firstN(o.limit, t.train.count), flatten: s.flat,
    normalize: t.norm, ...(s.augment ? { augment: { padCrop: 4, flip: true } } : {}),
  });
  const lr = o.lr ?? s.finetuneLr;
  const onCpu = () => fit(model, {
    arch, loader, optimizer: new SGD(model.parameters(), { lr, momentum: 0.9, weightDecay: 5e-4 }), epochs: o.epochs,
    schedule: cosineLr(lr, o.epochs * loader.length), checkpoint: o.checkpoint, log: o.log, progress: o.progress ?? true,
  }).history;
  if (o.device !== 'webgpu') return onCpu();
  return onGpuOr(() => fitGpu(model, s.input, { arch, loader, epochs: o.epochs, lr, momentum: 0.9, weightDecay: 5e-4, schedule: cosineLr(lr, o.epochs * loader.length), checkpoint: o.checkpoint, log: o.log, progress: o.progress }), onCpu, o.log);
}

/** a model and its architecture from a checkpoint file */
export function modelFromCheckpoint(path: string): { model: Sequential; arch: Arch } {
  const c = loadCheckpoint(path);
  const model = buildModel(c.arch, 0);
  model.loadStateDict(c.state, `${path}: checkpoint`);
  return { model, arch: c.arch };
}

/** a fresh copy of a model (same architecture, same weights) */
export function cloneModel(model: Sequential, arch: Arch): Sequential {
  const m = buildModel(arch, 0);
  m.loadStateDict(model.stateDict());
  return m;
}
