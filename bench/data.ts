// Data-loading benchmark: the time to assemble one training batch of 128 (MNIST; CIFAR-10 with crop and
// flip), beside the time of one LeNet-5 training step (forward, backward) at batch 128 measured in the
// same run with the engine's current backend. Target: loading under 5% of the step.
import { add, BatchLoader, channelStats, conv2d, crossEntropy, kernelBackend, loadDataset, matmul, maxPool2d, normal, relu, reshape, Rng, zeros } from '../src/internal.js';
import type { ImageSet, Tensor } from '../src/internal.js';
import { emit, fmt, measureMs } from './util.js';
import type { BenchArgs } from './util.js';

function lenetStep(rng: Rng) {
  const p = (shape: number[], fanIn: number) => normal(shape, 0, Math.sqrt(2 / fanIn), rng, { requiresGrad: true });
  const w1 = p([20, 1, 5, 5], 25), b1 = zeros([20], { requiresGrad: true });
  const w2 = p([50, 20, 5, 5], 500), b2 = zeros([50], { requiresGrad: true });
  const w3 = p([800, 500], 800), b3 = zeros([500], { requiresGrad: true });
  const w4 = p([500, 10], 500), b4 = zeros([10], { requiresGrad: true });
  return (x: Tensor, y: Int32Array) => {
    let h = maxPool2d(conv2d(x, w1, b1), 2);
    h = maxPool2d(conv2d(h, w2, b2), 2);
    const f = relu(add(matmul(reshape(h, [x.shape[0], 800]), w3), b3));
    const loss = crossEntropy(add(matmul(f, w4), b4), y);
    loss.backward();
  };
}

export async function benchData(args: BenchArgs): Promise<void> {
  const { train } = await loadDataset('mnist');
  const loader = new BatchLoader(train, { batchSize: 128, shuffle: true, seed: 1 });
  let b = 0;
  const loadMs = await measureMs('mnist batch', () => { loader.batch(0, b++ % loader.length); }, { iterations: 200 });
  const batch = loader.batch(1, 0);
  const step = lenetStep(new Rng(1));
  const stepMs = await measureMs('lenet step', () => step(batch.x, batch.y), { iterations: 3, time: 2000 });
  const backend = kernelBackend('gemm', 'float32');
  emit(args, { task: 'load-batch', dataset: 'mnist', batch: 128, ms: loadMs, reference: `lenet5-step-${backend}`, reference_ms: stepMs, fraction_of_step: loadMs / stepMs },
    `data  mnist batch 128: ${fmt(loadMs, 3)} ms; LeNet-5 step (${backend} backend) ${fmt(stepMs, 1)} ms; loading = ${fmt(100 * loadMs / stepMs, 3)}% of a step`);

  // CIFAR-10 with augmentation, where a copy is available (../shared/datasets in development and CI)
  const path = process.env.NEURONMERGE_CIFAR ?? '../shared/datasets/cifar-10-jpeg75/cifar-10-batches-bin';
  let cifar: ImageSet | null = null;
  try {
    cifar = (await loadDataset('cifar10', { path })).train;
  } catch (e) {
    if (!args.json) console.log(`data  cifar10: skipped (${(e as Error).message.split('\n')[0]})`);
  }
  if (cifar) {
    const cl = new BatchLoader(cifar, { batchSize: 128, shuffle: true, seed: 1, normalize: channelStats(cifar), augment: { padCrop: 4, flip: true } });
    let cb = 0;
    const cMs = await measureMs('cifar batch', () => { cl.batch(0, cb++ % cl.length); }, { iterations: 100 });
    emit(args, { task: 'load-batch', dataset: 'cifar10', batch: 128, augment: 'crop4+flip', ms: cMs, images_per_s: 128000 / cMs },
      `data  cifar10 batch 128 with crop+flip: ${fmt(cMs, 3)} ms (${fmt(128000 / cMs, 0)} images/s)`);
  }
}
