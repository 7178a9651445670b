// ONE table of what each of the paper's networks trains and is evaluated on: its dataset and input
// normalisation, batch sizes, the training recipe's defaults, the fine-tuning settings, the quick
// variant of a reproduction and the merge ratios it reports. Everything else (the recipes, the tasks
// a checkpoint is evaluated on, the reproduction, the command) reads its settings from here.
import { dbnArch, lenet5Arch, vgg16Arch, VGG16_WIDTHS } from '../models/index.js';
import type { Arch } from '../models/index.js';

export type NetworkName = 'lenet' | 'dbn' | 'vgg';
export const NETWORK_NAMES: readonly NetworkName[] = ['lenet', 'dbn', 'vgg'];

export interface TrainDefaults {
  epochs: number;
  lr: number;
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
  /** the learning rate over the run: cosine from lr to 0, or one-cycle (a linear warm-up from lr/25
   * over the first `warmup` of the steps, then cosine down to lr/1e4) */
  schedule: 'cosine' | 'onecycle';
  /** one-cycle: the share of the steps spent warming up */
  warmup?: number;
  /** DBN: RBM pretraining epochs per layer */
  pretrainEpochs?: number;
}

export interface NetworkSettings {
  /** the command-line name */
  name: NetworkName;
  /** the model family an Arch of this network names */
  family: Arch['model'];
  title: string;
  /** the paper's architecture */
  arch: () => Arch;
  dataset: 'mnist' | 'cifar10';
  /** how a report names the data (followed by where it was read from) */
  dataTitle: string;
  /** 'unit': pixels scaled to [0, 1]; 'channel': then standardised by the training set's channel statistics */
  normalization: 'unit' | 'channel';
  /** the DBN reads flat vectors */
  flat: boolean;
  batch: number;
  evalBatch: number;
  /** random crop (pad 4) and horizontal flip while training and fine-tuning */
  augment: boolean;
  train: TrainDefaults;
  finetune: { lr: number; epochs: number };
  /** the merge ratios a reproduction reports */
  ratios: number[];
  /** reproduce --quick: minutes on a CPU */
  quick: { epochs: number; finetuneEpochs: number; ratios: number[]; limit?: number; arch?: Arch; pretrainEpochs?: number };
  /** timed forward passes per measurement of the speedup at batch 128 */
  speedReps: number;
}


export const NETWORKS: Record<NetworkName, NetworkSettings> = {
  lenet: {
    name: 'lenet', family: 'lenet5', title: 'LeNet-5', arch: () => lenet5Arch(),
    dataset: 'mnist', dataTitle: 'MNIST', normalization: 'unit', flat: false, batch: 64, evalBatch: 500, augment: false,
    train: { epochs: 12, lr: 0.02, momentum: 0.9, nesterov: false, weightDecay: 5e-4, schedule: 'cosine' },
    finetune: { lr: 0.005, epochs: 4 },
    ratios: [0.5, 0.75, 0.9],
    quick: { epochs: 2, finetuneEpochs: 1, ratios: [0.5, 0.8] },
    speedReps: 30,
  },
  dbn: {
    name: 'dbn', family: 'dbn', title: 'DBN 784-500-500-2000-10', arch: () => dbnArch(),
    dataset: 'mnist', dataTitle: 'MNIST', normalization: 'unit', flat: true, batch: 100, evalBatch: 500, augment: false,
    train: { epochs: 30, lr: 0.1, momentum: 0.9, nesterov: false, weightDecay: 1e-5, schedule: 'cosine', pretrainEpochs: 10 },
    finetune: { lr: 0.02, epochs: 4 },
    ratios: [0.5, 0.75, 0.9],
    quick: { epochs: 3, finetuneEpochs: 1, ratios: [0.5, 0.8], pretrainEpochs: 1 },
    speedReps: 30,
  },
  vgg: {
    name: 'vgg', family: 'vgg16', title: 'VGG-16', arch: () => vgg16Arch(),
    dataset: 'cifar10', dataTitle: 'CIFAR-10', normalization: 'channel', flat: false, batch: 128, evalBatch: 250, augment: true,
    // docs/vgg-recipes.md: one-cycle with Nesterov momentum measured best of the recipes compared
    train: { epochs: 40, lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 5e-4, schedule: 'onecycle', warmup: 0.15 },
    finetune: { lr: 0.01, epochs: 10 },
    ratios: [0.5, 0.75, 0.9],
    // an eighth-width VGG-16 on 10,000 images: the whole pipeline in minutes on a CPU
    quick: { epochs: 3, finetuneEpochs: 1, ratios: [0.5, 0.8], limit: 10000, arch: vgg16Arch(VGG16_WIDTHS.map((w) => w / 8), 64) },
    speedReps: 3,
  },
};

/** the settings of a network by its command-line name; an error names the known ones */
export function network(name: string): NetworkSettings {
  if (!(NETWORK_NAMES as readonly string[]).includes(name)) throw new Error(`unknown model '${name}' (dbn, lenet or vgg)`);
  return NETWORKS[name as NetworkName];
}

/** the datasets a `sequential` model (an imported one) may read, and the network whose settings it takes
 * there: normalisation, batch sizes, augmentation, fine-tuning */
const DATASET_NETWORK: Record<string, NetworkName> = { mnist: 'lenet', cifar10: 'vgg' };

/** the settings of the network an architecture belongs to (a merged model is still that network); a
 * `sequential` model takes those of its dataset's network, reading flat vectors where its input is one */
export function networkOf(arch: Arch): NetworkSettings {
  if (arch.model === 'sequential') {
    const name = DATASET_NETWORK[arch.dataset];
    if (!name) throw new Error(`a sequential model reads ${Object.keys(DATASET_NETWORK).join(' or ')}, not '${arch.dataset}'`);
    const base = NETWORKS[name];
    const want = base.dataset === 'mnist' ? [[1, 28, 28], [784]] : [[3, 32, 32]];
    if (!want.some((w) => w.join() === arch.input.join())) throw new Error(`the model reads ${arch.input.join(' × ')} inputs; ${arch.dataset}'s images are ${want.map((w) => w.join(' × ')).join(' or ')}`);
    return { ...base, family: 'sequential', title: `a ${arch.layers.length}-layer model`, arch: () => arch, flat: arch.input.length === 1 };
  }
  const n = NETWORK_NAMES.map((k) => NETWORKS[k]).find((s) => s.family === arch.model);
  if (!n) throw new Error(`no network settings for a model '${(arch as { model: string }).model}'`);
  return n;
}

/**
 * The paper's architecture of a network, or a variant: `widths` (every hidden width; VGG: the 13
 * convolutions and optionally the fc) or `widthScale` (every width times a factor, at least 1).
 */
export function archFor(name: NetworkName, o: { widths?: number[]; widthScale?: number } = {}): Arch {
  const base = NETWORKS[name].arch() as Exclude<Arch, { model: 'sequential' }>;
  let widths: number[] = base.model === 'vgg16' ? [...base.widths, base.fc] : [...base.widths];
  if (o.widths) {
    const ok = base.model === 'lenet5' ? [3] : base.model === 'vgg16' ? [13, 14] : [o.widths.length];
    if (!ok.includes(o.widths.length)) throw new Error(`--widths: ${name} takes ${ok.join(' or ')} widths, got ${o.widths.length}`);
    widths = base.model === 'vgg16' && o.widths.length === 13 ? [...o.widths, base.fc] : o.widths;
  }
  if (o.widthScale !== undefined) widths = widths.map((w) => Math.max(1, Math.round(w * o.widthScale!)));
  if (base.model === 'lenet5') return lenet5Arch(widths as [number, number, number]);
  if (base.model === 'vgg16') return vgg16Arch(widths.slice(0, 13), widths[13]);
  return dbnArch(widths);
}
