// The training recipes of the paper's three networks: the data, optimizer and schedule each trains
// with (defaults from ./networks.ts), as reusable functions the command and the reproduction call.
import { classCounts } from '../../datasets/catalog.js';
import type { Normalization } from '../../datasets/loader.js';
import { buildModel, inputShape } from '../models/index.js';
import type { Arch } from '../models/index.js';
import { Linear } from '../nn/layers.js';
import type { Sequential } from '../nn/layers.js';
import { RBM } from '../nn/rbm.js';
import { SGD } from '../optim/index.js';
import { slice } from '../tensor/ops.js';
import { Rng } from '../tensor/rng.js';
import type { Tensor } from '../tensor/tensor.js';
import { evaluate, fit } from '../train/loop.js';
import type { EpochRecord } from '../train/loop.js';
import { fitGpu, onGpuOr } from '../train/gpu.js';
import { NETWORKS, scheduleOf } from './networks.js';
import type { NetworkName } from './networks.js';
import { calibrationInputs, loadTask, recordedNormalization, trainLoader } from './task.js';
import type { TaskData, TaskLoadOptions } from './task.js';
import { OptionError } from '../runtime/errors.js';

export interface RecipeOptions {
  epochs?: number;
  batchSize?: number;
  lr?: number;
  seed?: number;
  /** train on the first n training images only (quick runs, tests) */
  limit?: number;
  checkpoint?: string;
  /** steps between checkpoints within an epoch (besides the one at each epoch's end) */
  checkpointEvery?: number;
  resume?: string;
  data?: TaskLoadOptions;
  progress?: boolean;
  log?: (line: string) => void;
  /** DBN: RBM pretraining epochs per layer */
  pretrainEpochs?: number;
  arch?: Arch;
  /** label smoothing of the loss (default: the network's, see ./networks.ts) */
  labelSmoothing?: number;
  /** the products' operands in training: float32 (default) or bf16 (see fit) */
  precision?: 'float32' | 'bf16';
  /** Cutout's square side in pixels (default: the network's) */
  cutout?: number;
  /** 'webgpu' trains on the GPU (src/train/gpu.ts); the CPU kernels otherwise */
  device?: 'cpu' | 'webgpu';
  /** keep an exponential moving average of the weights with this decay (see fit); it is saved in the
   * checkpoint beside the live weights, which stay the model trained */
  ema?: number;
}

export interface RecipeResult {
  model: Sequential;
  arch: Arch;
  history: EpochRecord[];
  testAccuracy: number;
  seconds: number;
  normalization: Normalization;
  data: { train: number; test: number; classCounts: number[] };
  /** the data it trained and was tested on (the reproduction reuses it rather than reading it again) */
  task: TaskData;
  /** with a moving average of the weights: its test accuracy at the end */
  averagedAccuracy?: number;
}

/** the supervised phase every recipe shares: SGD with the network's defaults and its schedule,
 * evaluated on the test set each epoch */
async function supervised(name: NetworkName, model: Sequential, arch: Arch, t: TaskData, o: RecipeOptions, t0: number): Promise<RecipeResult> {
  const d = NETWORKS[name].train;
  const labelSmoothing = o.labelSmoothing ?? d.labelSmoothing ?? 0;
  if (!(labelSmoothing >= 0 && labelSmoothing < 1)) throw new Error(`label smoothing must be in [0, 1), got ${labelSmoothing}`);
  const loader = trainLoader(t, { seed: o.seed ?? 0, limit: o.limit, batchSize: o.batchSize, cutout: o.cutout ?? d.cutout ?? 0 });
  const epochs = o.epochs ?? d.epochs;
  const lr = o.lr ?? d.lr;
  const schedule = scheduleOf(d.schedule, lr, epochs * loader.length, d.warmup);
  let averagedAccuracy: number | undefined;
  const throughKernels = () => {
    const r = fit(model, {
      arch, loader, optimizer: new SGD(model.parameters(), { lr, momentum: d.momentum, nesterov: d.nesterov, weightDecay: d.weightDecay }), epochs, schedule, evalSet: t.ev,
      checkpoint: o.checkpoint, checkpointEvery: o.checkpointEvery, resume: o.resume, progress: o.progress, log: o.log, labelSmoothing, normalization: recordedNormalization(t), precision: o.precision, ema: o.ema,
    });
    if (r.average) averagedAccuracy = r.history[r.history.length - 1]?.averagedAccuracy ?? r.average.applied(() => evaluate(model, t.ev.x, t.ev.y, t.settings.evalBatch).accuracy);
    return r.history;
  };
  let history: EpochRecord[];
  // the GPU-resident trainer (src/train/gpu.ts) keeps weights, gradients and momentum on the GPU but
  // has only the plain recipe; a resume, label smoothing, bfloat16 or weight averaging runs through the kernel interface
  // (on the GPU where the WebGPU kernels are started and forced, src/backend/webgpu-kernels.ts)
  if (o.device === 'webgpu' && !o.resume && labelSmoothing === 0 && o.precision !== 'bf16' && o.ema === undefined) {
    history = await onGpuOr(() => fitGpu(model, inputShape(arch), { arch, loader, epochs, lr, momentum: d.momentum, weightDecay: d.weightDecay, schedule, evalSet: t.ev, checkpoint: o.checkpoint, progress: o.progress, log: o.log }), throughKernels, o.log);
  } else history = throughKernels();
  const last = history[history.length - 1];
  const acc = last && last.evalAccuracy !== null ? last.evalAccuracy : evaluate(model, t.ev.x, t.ev.y, t.settings.evalBatch).accuracy;
  return { model, arch, history, testAccuracy: acc, seconds: (performance.now() - t0) / 1000, normalization: t.norm, data: { train: loader.indices.length, test: t.test.count, classCounts: classCounts(t.test) }, task: t, ...(averagedAccuracy !== undefined ? { averagedAccuracy } : {}) };
}

function archOrDefault(name: NetworkName, o: RecipeOptions): Arch {
  const arch = o.arch ?? NETWORKS[name].arch();
  if (arch.model !== NETWORKS[name].family) throw new Error(`${name} recipe: the architecture is a ${arch.model}, not a ${NETWORKS[name].family}`);
  return arch;
}

/** a network trained by the supervised phase alone, from its initialisation */
function plainRecipe(name: NetworkName): (o?: RecipeOptions) => Promise<RecipeResult> {
  return async (o: RecipeOptions = {}) => {
    const t0 = performance.now();
    const arch = archOrDefault(name, o);
    const t = await loadTask(arch, o.data);
    return supervised(name, buildModel(arch, o.seed ?? 0), arch, t, o, t0);
  };
}

/** LeNet-5 on MNIST: SGD with momentum 0.9, weight decay 5e-4, cosine schedule (pixels scaled to [0,1]) */
export const trainLenet = plainRecipe('lenet');

/**
 * The DBN on MNIST: greedy layer-wise RBM pretraining (CD-1, momentum 0.5 then 0.9, weight decay
 * 2e-4), the RBMs' weights copied into the sigmoid network, then backprop fine-tuning with SGD.
 */
export async function trainDbn(o: RecipeOptions = {}): Promise<RecipeResult> {
  const t0 = performance.now();
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const arch = archOrDefault('dbn', o);
  if (arch.model !== 'dbn') throw new Error('trainDbn: arch must be a dbn');
  const t = await loadTask(arch, o.data);
  const model = buildModel(arch, o.seed ?? 0);
  let v: Tensor = calibrationInputs(t, o.limit ?? t.train.count);
  const n = v.shape[0];
  // resuming: the checkpoint holds the pretrained and partly fine-tuned weights already
  const d = NETWORKS.dbn.train, r = d.rbm!;
  const pe = o.resume ? 0 : o.pretrainEpochs ?? d.pretrainEpochs ?? 10;
  const rng = new Rng((o.seed ?? 0) + 1);
  const linears = model.layers.filter((l): l is Linear => l instanceof Linear);
  let nv = arch.inFeatures;
  for (let li = 0; pe > 0 && li < arch.widths.length; li++) {
    const nh = arch.widths[li];
    const rbm = new RBM(nv, nh, { rng, lr: r.lr, weightDecay: r.weightDecay });
    const bs = r.batch;
    for (let e = 0; e < pe; e++) {
      const order = rng.permutation(Math.floor(n / bs));
      let err = 0;
      for (const b of order) err += rbm.step(slice(v, b * bs, (b + 1) * bs), e < r.switchAt ? r.momentum[0] : r.momentum[1]);
      if (o.progress !== false) log(`rbm ${li + 1}/${arch.widths.length} (${nv}-${nh}) epoch ${e + 1}/${pe}: reconstruction error ${(err / order.length).toFixed(5)}`);
    }
    linears[li].weight.data.set(rbm.W.data);
    linears[li].bias!.data.set(rbm.bh.data);
    v = rbm.hidden(v);
    nv = nh;
  }
  return supervised('dbn', model, arch, t, o, t0);
}

/** VGG-16 on CIFAR-10: random crop (pad 4) and flip; SGD with Nesterov momentum 0.9, weight decay 5e-4,
 * a one-cycle schedule peaking at 0.1 after 15% of the steps, 40 epochs (./networks.ts) */
export const trainVgg = plainRecipe('vgg');

/** an MLP (any widths and activation; ./networks.ts) on flat images: SGD with momentum 0.9, weight decay
 * 1e-4, cosine schedule from 0.05, 20 epochs */
export const trainMlp = plainRecipe('mlp');

/** the recipe of each network, by its command-line name */
export const RECIPES: Record<NetworkName, (o?: RecipeOptions) => Promise<RecipeResult>> = { lenet: trainLenet, dbn: trainDbn, vgg: trainVgg, mlp: trainMlp };
