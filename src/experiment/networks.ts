// ONE table of what each of the paper's networks trains and is evaluated on: its dataset and input
// normalisation, batch sizes, the training recipe's defaults, the fine-tuning settings, the quick
// variant of a reproduction and the merge ratios it reports. Everything else (the recipes, the tasks
// a checkpoint is evaluated on, the reproduction, the command) reads its settings from here.
import type { DatasetName } from '../../datasets/catalog.js';
import { dbnArch, inputShape, lenet5Arch, MLP_WIDTHS, mlpArch, vgg16Arch, VGG16_WIDTHS, widthsOf } from '../models/index.js';
import type { Activation, Arch } from '../models/index.js';
import type { PublishedPoint } from '../report/types.js';
import type { MergeRule } from '../compress/merge.js';
import { cosineLr, oneCycleLr } from '../optim/index.js';
import type { Schedule } from '../optim/index.js';
import { OptionError } from '../runtime/errors.js';

export type NetworkName = 'lenet' | 'dbn' | 'vgg' | 'mlp';
export const NETWORK_NAMES: readonly NetworkName[] = ['lenet', 'dbn', 'vgg', 'mlp'];
/** the paper's networks: what `reproduce all` runs */
export const PAPER_NETWORKS: readonly NetworkName[] = ['lenet', 'dbn', 'vgg'];
/** one-cycle's warm-up share of the steps where a recipe names none */
export const ONE_CYCLE_WARMUP = 0.15;
/** the learning rate over `steps` steps from `lr`: cosine to 0, or one-cycle (a linear warm-up from
 * lr/25 over `warmup` of the steps, then cosine down to lr/1e4) */
export function scheduleOf(kind: 'cosine' | 'onecycle', lr: number, steps: number, warmup = ONE_CYCLE_WARMUP): Schedule {
  return kind === 'onecycle' ? oneCycleLr(lr, steps, warmup, 25, 1e4) : cosineLr(lr, steps);
}
/** distillation's temperature and weight of the teacher's term where none are given */
export const DISTILL_DEFAULTS = { temperature: 4, weight: 0.9 } as const;

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
  /** DBN: each RBM's contrastive divergence (CD-1): learning rate, weight decay, batch, and its
   * momentum (the first for `switchAt` epochs, then the second) */
  rbm?: { lr: number; weightDecay: number; batch: number; momentum: [number, number]; switchAt: number };
  /** label smoothing of the loss (0 or absent: none) */
  labelSmoothing?: number;
  /** Cutout's square side in pixels while training (0 or absent: none; not in fine-tuning) */
  cutout?: number;
}

/** how a compressed model is fine-tuned: SGD with momentum 0.9 */
export interface FinetuneRecipe {
  epochs: number;
  lr: number;
  /** cosine from lr to 0, or one-cycle (a linear warm-up over `warmup` of the steps, then cosine down) */
  schedule: 'cosine' | 'onecycle';
  warmup?: number;
  weightDecay: number;
  /** a reproduction fine-tunes on the original's softened outputs too (distillation, temperature 4,
   * weight 0.9) */
  distill: boolean;
  /** Cutout in fine-tuning's images: a random n × n square blanked (0 or absent: none) */
  cutout?: number;
}

export interface NetworkSettings {
  /** the command-line name */
  name: NetworkName;
  /** the model family an Arch of this network names */
  family: Arch['model'];
  title: string;
  /** the paper's architecture */
  arch: () => Arch;
  dataset: DatasetName;
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
  /** the fine-tuning a reproduction (and `finetune`) uses unless told otherwise: the best measured */
  finetune: FinetuneRecipe;
  /** the merging rules a reproduction shows by default: the paper's mean, then the best measured of the
   * others (a rule that falls back to another on this network, as scaled to mean through sigmoid
   * units, is left out) */
  rules: MergeRule[];
  /** the paper's setting (`reproduce --paper`): the mean rule alone and plain fine-tuning */
  paper: { finetune: FinetuneRecipe };
  /** the merge ratios a reproduction reports */
  ratios: number[];
  /** the budgets a reproduction also reports where no ratios or budgets are asked for (fractions of the
   * parameters kept), how they are spread, and the rule whose measured sensitivity spreads them */
  budgets?: { fractions: number[]; allocate: 'uniform' | 'sensitivity'; by?: MergeRule };
  /** reproduce --quick: minutes on a CPU */
  quick: { epochs: number; finetuneEpochs: number; ratios: number[]; limit?: number; arch?: Arch; pretrainEpochs?: number };
  /** timed forward passes per measurement of the speedup at batch 128 */
  speedReps: number;
  /** published compressions of the paper's architecture on the same data, for the reports' comparison */
  published?: PublishedPoint[];
}


export const NETWORKS: Record<NetworkName, NetworkSettings> = {
  lenet: {
    name: 'lenet', family: 'lenet5', title: 'LeNet-5', arch: () => lenet5Arch(),
    dataset: 'mnist', dataTitle: 'MNIST', normalization: 'unit', flat: false, batch: 64, evalBatch: 500, augment: false,
    train: { epochs: 12, lr: 0.02, momentum: 0.9, nesterov: false, weightDecay: 5e-4, schedule: 'cosine' },
    // docs/method.md, "After fine-tuning": 8 epochs of one-cycle with distillation; refit ends nearest
    // the original at 93% removed, with the budget spread by its own measured sensitivity
    finetune: { epochs: 8, lr: 0.01, schedule: 'onecycle', weightDecay: 5e-4, distill: true },
    rules: ['mean', 'refit'],
    paper: { finetune: { epochs: 4, lr: 0.005, schedule: 'cosine', weightDecay: 5e-4, distill: false } },
    ratios: [0.5, 0.75, 0.9],
    budgets: { fractions: [0.07], allocate: 'sensitivity', by: 'refit' },
    quick: { epochs: 2, finetuneEpochs: 1, ratios: [0.5, 0.8] },
    speedReps: 30,
  },
  dbn: {
    name: 'dbn', family: 'dbn', title: 'DBN 784-500-500-2000-10', arch: () => dbnArch(),
    dataset: 'mnist', dataTitle: 'MNIST', normalization: 'unit', flat: true, batch: 100, evalBatch: 500, augment: false,
    train: {
      epochs: 30, lr: 0.1, momentum: 0.9, nesterov: false, weightDecay: 1e-5, schedule: 'cosine', pretrainEpochs: 10,
      rbm: { lr: 0.05, weightDecay: 2e-4, batch: 100, momentum: [0.5, 0.9], switchAt: 5 },
    },
    // docs/method.md, "The weight decay": 30 epochs at lr 0.3, weight decay 1e-4, distillation
    finetune: { epochs: 30, lr: 0.3, schedule: 'cosine', weightDecay: 1e-4, distill: true },
    // scaled is the mean through sigmoid units (they are not positively homogeneous)
    rules: ['mean', 'lstsq'],
    paper: { finetune: { epochs: 4, lr: 0.02, schedule: 'cosine', weightDecay: 5e-4, distill: false } },
    ratios: [0.5, 0.75, 0.9],
    quick: { epochs: 3, finetuneEpochs: 1, ratios: [0.5, 0.8], pretrainEpochs: 1 },
    speedReps: 30,
  },
  vgg: {
    name: 'vgg', family: 'vgg16', title: 'VGG-16', arch: () => vgg16Arch(),
    dataset: 'cifar10', dataTitle: 'CIFAR-10', normalization: 'channel', flat: false, batch: 128, evalBatch: 250, augment: true,
    // docs/vgg-recipes.md: one-cycle with Nesterov momentum measured best of the recipes compared
    train: { epochs: 40, lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 5e-4, schedule: 'onecycle', warmup: 0.15 },
    // docs/method.md: the full-width VGG-16 at 92.97% removed, refit, one-cycle at lr 0.05 with
    // distillation and Cutout (measured over 30 epochs; 10 here, as before, so that `reproduce all`
    // keeps its time: nine fine-tunings of the full network)
    finetune: { epochs: 10, lr: 0.05, schedule: 'onecycle', weightDecay: 5e-4, distill: true, cutout: 16 },
    rules: ['mean', 'refit'],
    paper: { finetune: { epochs: 10, lr: 0.01, schedule: 'cosine', weightDecay: 5e-4, distill: false } },
    ratios: [0.5, 0.75, 0.9],
    // an eighth-width VGG-16 on 10,000 images: the whole pipeline in minutes on a CPU
    quick: { epochs: 3, finetuneEpochs: 1, ratios: [0.5, 0.8], limit: 10000, arch: vgg16Arch(VGG16_WIDTHS.map((w) => w / 8), 64) },
    speedReps: 3,
    // structured compression of VGG-16 on (genuine) CIFAR-10 in the literature, each from an original
    // of 93.7–94.0% trained 160–300 epochs, as their papers report them
    published: [
      { method: 'CHIP (Sui et al., NeurIPS 2021)', removed: 0.873, drop: -0.0078 },
      { method: 'HRankPlus (Lin et al., 2020)', removed: 0.873, drop: -0.0086 },
      { method: 'DECORE (Alwani et al., CVPR 2022)', removed: 0.966, drop: -0.0152 },
    ],
  },
  mlp: {
    name: 'mlp', family: 'sequential', title: 'MLP 784-300-100-10', arch: () => mlpArch(),
    dataset: 'mnist', dataTitle: 'MNIST', normalization: 'unit', flat: true, batch: 100, evalBatch: 500, augment: false,
    train: { epochs: 20, lr: 0.05, momentum: 0.9, nesterov: false, weightDecay: 1e-4, schedule: 'cosine' },
    finetune: { epochs: 4, lr: 0.01, schedule: 'cosine', weightDecay: 5e-4, distill: false },
    rules: ['mean', 'lstsq'],
    paper: { finetune: { epochs: 4, lr: 0.01, schedule: 'cosine', weightDecay: 5e-4, distill: false } },
    ratios: [0.5, 0.6, 0.7, 0.8],
    quick: { epochs: 2, finetuneEpochs: 1, ratios: [0.5, 0.8] },
    speedReps: 30,
  },
};

/** how reports name each dataset */
const DATA_TITLES: Record<DatasetName, string> = { mnist: 'MNIST', 'fashion-mnist': 'Fashion-MNIST', cifar10: 'CIFAR-10' };
/** the shapes of one sample each dataset can feed: images, or images flattened */
const DATASET_INPUTS: Record<DatasetName, number[][]> = { mnist: [[1, 28, 28], [784]], 'fashion-mnist': [[1, 28, 28], [784]], cifar10: [[3, 32, 32]] };
/** the network whose settings a `sequential` model with image inputs takes on each dataset */
const IMAGE_NETWORK: Record<DatasetName, NetworkName> = { mnist: 'lenet', 'fashion-mnist': 'lenet', cifar10: 'vgg' };

/** the dataset a model reads: its own where it names one, else its network's */
function datasetOf(arch: Arch, fallback: DatasetName): DatasetName {
  const d = arch.dataset ?? fallback;
  if (!(d in DATASET_INPUTS)) throw new Error(`unknown dataset '${d}' (known: ${Object.keys(DATASET_INPUTS).join(', ')})`);
  return d as DatasetName;
}

/** the architecture reading `dataset` instead (unchanged where none is given); an error names both
 * shapes where the model's input does not fit the dataset's images */
export function withDataset(arch: Arch, dataset?: string): Arch {
  if (dataset === undefined) return arch;
  const a = { ...arch, dataset } as Arch;
  networkOf(a);
  return a;
}

/** the settings of the network an architecture belongs to (a merged model is still that network), on
 * the dataset it reads; a `sequential` model (an imported one, an MLP) takes the MLP's settings where
 * its input is flat and those of its dataset's image network otherwise */
export function networkOf(arch: Arch): NetworkSettings {
  const base = arch.model === 'sequential'
    ? NETWORKS[arch.input.length === 1 ? 'mlp' : IMAGE_NETWORK[datasetOf(arch, 'mnist')]]
    : NETWORK_NAMES.map((k) => NETWORKS[k]).find((s) => s.family === arch.model);
  if (!base) throw new Error(`no network settings for a model '${(arch as { model: string }).model}'`);
  const dataset = datasetOf(arch, base.dataset);
  const input = inputShape(arch);
  if (!DATASET_INPUTS[dataset].some((w) => w.join() === input.join())) throw new Error(`the model reads ${input.join(' × ')} inputs; ${dataset}'s images are ${DATASET_INPUTS[dataset].map((w) => w.join(' × ')).join(' or ')}`);
  const settings = dataset === base.dataset ? base : { ...base, dataset, dataTitle: DATA_TITLES[dataset] };
  if (arch.model !== 'sequential' || base.name === 'mlp') return base.name === 'mlp' ? { ...settings, title: `MLP ${[input[0], ...widthsOf(arch), arch.classes].join('-')}` } : settings;
  return { ...settings, family: 'sequential', title: `a ${arch.layers.length}-layer model`, arch: () => arch, flat: input.length === 1 };
}

/** the settings of a network by its command-line name; an error names the known ones */
export function network(name: string): NetworkSettings {
  if (!(NETWORK_NAMES as readonly string[]).includes(name)) throw new Error(`unknown model '${name}' (${NETWORK_NAMES.join(', ')})`);
  return NETWORKS[name as NetworkName];
}


/**
 * The paper's architecture of a network, or a variant: `widths` (every hidden width; VGG: the 13
 * convolutions and optionally the fc) or `widthScale` (every width times a factor, at least 1).
 */
export function archFor(name: NetworkName, o: { widths?: number[]; widthScale?: number; activation?: Activation; dataset?: string } = {}): Arch {
  if (o.activation !== undefined && name !== 'mlp') throw new OptionError(`{activation}: ${name} has its own activations; only mlp takes one`);
  if (name === 'mlp') {
    let widths = o.widths ?? [...MLP_WIDTHS];
    if (o.widthScale !== undefined) widths = widths.map((w) => Math.max(1, Math.round(w * o.widthScale!)));
    return mlpArch(widths, o.activation ?? 'relu', o.dataset ?? 'mnist');
  }
  return withDataset(paperArch(name, o), o.dataset);
}

function paperArch(name: NetworkName, o: { widths?: number[]; widthScale?: number }): Arch {
  const base = NETWORKS[name].arch() as Exclude<Arch, { model: 'sequential' }>;
  let widths: number[] = base.model === 'vgg16' ? [...base.widths, base.fc] : [...base.widths];
  if (o.widths) {
    const ok = base.model === 'lenet5' ? [3] : base.model === 'vgg16' ? [13, 14] : [o.widths.length];
    if (!ok.includes(o.widths.length)) throw new OptionError(`{widths}: ${name} takes ${ok.join(' or ')} widths, got ${o.widths.length}`);
    widths = base.model === 'vgg16' && o.widths.length === 13 ? [...o.widths, base.fc] : o.widths;
  }
  if (o.widthScale !== undefined) widths = widths.map((w) => Math.max(1, Math.round(w * o.widthScale!)));
  if (base.model === 'lenet5') return lenet5Arch(widths as [number, number, number]);
  if (base.model === 'vgg16') return vgg16Arch(widths.slice(0, 13), widths[13]);
  return dbnArch(widths);
}
