// Training recipes for the paper's three networks: the data, optimizer and schedule each one trains
// with, as reusable functions (the command line and the reproduction runs call them).
import { classCounts, loadDataset } from '../../datasets/catalog.js';
import type { LoadOptions } from '../../datasets/catalog.js';
import { BatchLoader, channelStats, toTensor } from '../../datasets/loader.js';
import type { Normalization } from '../../datasets/loader.js';
import type { ImageSet } from '../../datasets/catalog.js';
import { buildModel, dbnArch, inputShape, lenet5Arch, vgg16Arch } from '../models/index.js';
import type { Arch } from '../models/index.js';
import { Linear } from '../nn/layers.js';
import { RBM } from '../nn/rbm.js';
import { SGD, cosineLr } from '../optim/index.js';
import { slice } from '../tensor/ops.js';
import { Rng } from '../tensor/rng.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Sequential } from '../nn/layers.js';
import { evaluate, fit } from './loop.js';
import { fitGpu } from './gpu.js';
import { WebGpuUnavailable } from '../backend/webgpu.js';
import type { EpochRecord } from './loop.js';

export interface RecipeOptions {
  epochs?: number;
  batchSize?: number;
  lr?: number;
  seed?: number;
  /** train on the first n training images only (quick runs, tests) */
  limit?: number;
  checkpoint?: string;
  resume?: string;
  data?: LoadOptions;
  progress?: boolean;
  log?: (line: string) => void;
  /** DBN: RBM pretraining epochs per layer */
  pretrainEpochs?: number;
  arch?: Arch;
  /** 'webgpu' trains on the GPU (src/train/gpu.ts); the CPU kernels otherwise */
  device?: 'cpu' | 'webgpu';
}

export interface RecipeResult {
  model: Sequential;
  arch: Arch;
  history: EpochRecord[];
  testAccuracy: number;
  seconds: number;
  normalization: Normalization;
  data: { train: number; test: number; classCounts: number[] };
}

/** the test accuracy fit measured after the last epoch, or a fresh evaluation where it has none */
function finalAccuracy(history: EpochRecord[], measure: () => number): number {
  const last = history[history.length - 1];
  return last && last.evalAccuracy !== null ? last.evalAccuracy : measure();
}

export function firstN(n: number | undefined, count: number): Int32Array | undefined {
  return n === undefined ? undefined : Int32Array.from({ length: Math.min(n, count) }, (_, i) => i);
}

/** train on the GPU; where no WebGPU adapter can be had, say why and train on the CPU instead */
export async function onGpuOr(gpu: () => Promise<{ history: EpochRecord[] }>, cpu: () => EpochRecord[], log?: (line: string) => void): Promise<EpochRecord[]> {
  try {
    return (await gpu()).history;
  } catch (e) {
    if (!(e instanceof WebGpuUnavailable)) throw e;
    (log ?? ((l: string) => process.stderr.write(l + '\n')))(`WebGPU is unavailable (${e.message}); training on the CPU instead`);
    return cpu();
  }
}

/** the supervised phase every recipe shares: SGD (momentum 0.9) with a cosine schedule, evaluated on
 * the test set each epoch, and the result record */
async function supervised(
  model: Sequential, arch: Arch, loader: BatchLoader, ev: { x: Tensor; y: Int32Array }, o: RecipeOptions,
  d: { epochs: number; lr: number; weightDecay: number; evalBatch?: number }, t0: number, norm: Normalization, test: ImageSet,
): Promise<RecipeResult> {
  const epochs = o.epochs ?? d.epochs;
  const lr = o.lr ?? d.lr;
  const schedule = cosineLr(lr, epochs * loader.length);
  const onCpu = () => fit(model, {
    arch, loader, optimizer: new SGD(model.parameters(), { lr, momentum: 0.9, weightDecay: d.weightDecay }), epochs, schedule, evalSet: ev,
    checkpoint: o.checkpoint, resume: o.resume, progress: o.progress, log: o.log,
  }).history;
  let history: EpochRecord[];
  if (o.device === 'webgpu') {
    if (o.resume) throw new Error('--resume is not supported with the WebGPU backend yet (its checkpoints hold no optimizer state)');
    history = await onGpuOr(() => fitGpu(model, inputShape(arch), { arch, loader, epochs, lr, momentum: 0.9, weightDecay: d.weightDecay, schedule, evalSet: ev, checkpoint: o.checkpoint, progress: o.progress, log: o.log }), onCpu, o.log);
  } else history = onCpu();
  const acc = finalAccuracy(history, () => evaluate(model, ev.x, ev.y, d.evalBatch).accuracy);
  return { model, arch, history, testAccuracy: acc, seconds: (performance.now() - t0) / 1000, normalization: norm, data: { train: loader.indices.length, test: test.count, classCounts: classCounts(test) } };
}

/** LeNet-5 on MNIST: SGD with momentum 0.9, weight decay 5e-4, cosine schedule (pixels scaled to [0,1]) */
export async function trainLenet(o: RecipeOptions = {}): Promise<RecipeResult> {
  const t0 = performance.now();
  const { train, test } = await loadDataset('mnist', o.data);
  const arch = o.arch ?? lenet5Arch();
  const model = buildModel(arch, o.seed ?? 0);
  const loader = new BatchLoader(train, { batchSize: o.batchSize ?? 64, shuffle: true, seed: o.seed ?? 0, indices: firstN(o.limit, train.count) });
  return supervised(model, arch, loader, toTensor(test), o, { epochs: 12, lr: 0.02, weightDecay: 5e-4 }, t0, { mean: [0], std: [1] }, test);
}

/**
 * The DBN on MNIST: greedy layer-wise RBM pretraining (CD-1, momentum 0.5 then 0.9, weight decay
 * 2e-4), the RBMs' weights copied into the sigmoid network, then backprop fine-tuning with SGD.
 */
export async function trainDbn(o: RecipeOptions = {}): Promise<RecipeResult> {
  const t0 = performance.now();
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const { train, test } = await loadDataset('mnist', o.data);
  const arch = o.arch ?? dbnArch();
  if (arch.model !== 'dbn') throw new Error('trainDbn: arch must be a dbn');
  const model = buildModel(arch, o.seed ?? 0);
  const idx = firstN(o.limit, train.count);
  let v: Tensor = toTensor(train, undefined, idx, true).x;
  const n = v.shape[0];
  // resuming: the checkpoint holds the pretrained and partly fine-tuned weights already
  const pe = o.resume ? 0 : o.pretrainEpochs ?? 10;
  const rng = new Rng((o.seed ?? 0) + 1);
  const linears = model.layers.filter((l): l is Linear => l instanceof Linear);
  let nv = arch.inFeatures;
  for (let li = 0; pe > 0 && li < arch.widths.length; li++) {
    const nh = arch.widths[li];
    const rbm = new RBM(nv, nh, { rng, lr: 0.05, weightDecay: 2e-4 });
    const bs = 100;
    for (let e = 0; e < pe; e++) {
      const order = rng.permutation(Math.floor(n / bs));
      let err = 0;
      for (const b of order) err += rbm.step(slice(v, b * bs, (b + 1) * bs), e < 5 ? 0.5 : 0.9);
      if (o.progress !== false) log(`rbm ${li + 1}/${arch.widths.length} (${nv}-${nh}) epoch ${e + 1}/${pe}: reconstruction error ${(err / order.length).toFixed(5)}`);
    }
    linears[li].weight.data.set(rbm.W.data);
    linears[li].bias!.data.set(rbm.bh.data);
    v = rbm.hidden(v);
    nv = nh;
  }
  const loader = new BatchLoader(train, { batchSize: o.batchSize ?? 100, shuffle: true, seed: o.seed ?? 0, indices: idx, flatten: true });
  return supervised(model, arch, loader, toTensor(test, undefined, undefined, true), o, { epochs: 30, lr: 0.1, weightDecay: 1e-5 }, t0, { mean: [0], std: [1] }, test);
}

/** VGG-16 on CIFAR-10: random crop (pad 4) and flip, SGD momentum 0.9, weight decay 5e-4, cosine */
export async function trainVgg(o: RecipeOptions = {}): Promise<RecipeResult> {
  const t0 = performance.now();
  const { train, test } = await loadDataset('cifar10', o.data);
  const arch = o.arch ?? vgg16Arch();
  const model = buildModel(arch, o.seed ?? 0);
  const norm = channelStats(train);
  const loader = new BatchLoader(train, { batchSize: o.batchSize ?? 128, shuffle: true, seed: o.seed ?? 0, normalize: norm, augment: { padCrop: 4, flip: true }, indices: firstN(o.limit, train.count) });
  return supervised(model, arch, loader, toTensor(test, norm), o, { epochs: 60, lr: 0.05, weightDecay: 5e-4, evalBatch: 250 }, t0, norm, test);
}

/** the recipe of each network, by its command-line name */
export const RECIPES = { lenet: trainLenet, dbn: trainDbn, vgg: trainVgg } as const;
