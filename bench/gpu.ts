// npm run bench -- gpu: the WebGPU backend. SGEMM GFLOP/s on the adapter against cuBLAS fp32 (through
// PyTorch, same machine, same run) where CUDA is there, and always against our native CPU GEMM; then
// VGG-16 training steps at batch 128 (random data) against PyTorch-CUDA. On a software adapter
// (llvmpipe) the sizes shrink and the figures only show that the path runs.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nativeAddon } from '../src/backend/native.js';
import { kernel, setBackend } from '../src/backend/registry.js';
import { startWebGpuKernels, stopWebGpuKernels } from '../src/backend/webgpu-kernels.js';
import { SGD } from '../src/optim/index.js';
import { crossEntropy } from '../src/tensor/ops.js';
import { webgpu } from '../src/backend/webgpu.js';
import { buildModel, vgg16Arch, VGG16_WIDTHS } from '../src/models/index.js';
import { Rng } from '../src/tensor/rng.js';
import { Tensor } from '../src/tensor/tensor.js';
import { loadDataset } from '../datasets/catalog.js';
import { BatchLoader, channelStats } from '../datasets/loader.js';
import { GpuModel } from '../src/train/gpu.js';
import { emit, fmt } from './util.js';
import type { BenchArgs } from './util.js';
import { envWithoutRerun } from '../src/runtime/hugepages.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function torchGpu(sizes: number[], steps: number): { gemm_gflops?: Record<string, number>; vgg_ms_per_step?: number; device?: string; why?: string } {
  const py = ['/usr/bin/python3', 'python3'].find((p) => p === 'python3' || existsSync(p))!;
  const r = spawnSync(py, [join(root, 'bench', 'torch_gpu.py'), sizes.join(','), String(steps)], { encoding: 'utf8', env: envWithoutRerun() });
  try {
    const j = JSON.parse(r.stdout.trim().split('\n').pop()!);
    return j.cuda ? j : { why: j.why };
  } catch {
    return { why: `PyTorch run failed: ${(r.stderr || '').split('\n').filter(Boolean).pop() ?? 'no output'}` };
  }
}

export async function benchGpu(args: BenchArgs): Promise<void> {
  let gpu;
  try {
    gpu = await webgpu();
  } catch (e) {
    console.log(`gpu: skipped (${(e as Error).message})`);
    return;
  }
  const soft = gpu.info.software;
  const sizes = soft ? [128, 256] : [1024, 2048, 4096];
  const vggScale = soft ? 1 / 16 : 1;
  const steps = soft ? 2 : 20;
  const ref = soft ? { why: 'software adapter: no CUDA comparison' } : torchGpu(sizes, steps);
  if (!args.json) console.log(`# WebGPU on ${gpu.info.description} (${gpu.info.backend}); reference: ${ref.device ? `PyTorch-CUDA on ${ref.device}` : ref.why}`);
  const rng = new Rng(1);
  const gemmCpu = kernel('gemm', 'float32');
  for (const n of sizes) {
    const a = Float32Array.from({ length: n * n }, () => rng.uniform(-1, 1)), b = Float32Array.from({ length: n * n }, () => rng.uniform(-1, 1));
    const A = gpu.upload(a), B = gpu.upload(b), C = gpu.alloc(n * n);
    const reps = Math.max(2, Math.min(200, Math.round((soft ? 2e8 : 4e11) / (2 * n ** 3))));
    // every tiling the adapter runs; the figure is the best, the others are printed beside it
    const per: Record<string, number> = {};
    for (const [name, tiling] of Object.entries(gpu.gemmTilings())) {
      gpu.gemm(false, false, n, n, n, 1, A, n, B, n, 0, C, n, 0, 0, tiling);
      await gpu.read(C, 4);
      const t0 = performance.now();
      for (let i = 0; i < reps; i++) gpu.gemm(false, false, n, n, n, 1, A, n, B, n, 0, C, n, 0, 0, tiling);
      await gpu.read(C, 4);
      per[name] = (2 * n ** 3 * reps) / ((performance.now() - t0) / 1000) / 1e9;
    }
    const gflops = Math.max(...Object.values(per));
    const tilings = Object.entries(per).map(([k, v]) => `${k} ${fmt(v, 1)}`).join(', ');
    const c = new Float32Array(n * n);
    const t = performance.now();
    gemmCpu(false, false, n, n, n, 1, a, 0, n, b, 0, n, 0, c, 0, n);
    const cpu = (2 * n ** 3) / ((performance.now() - t) / 1000) / 1e9;
    const cu = ref.gemm_gflops?.[String(n)];
    emit(args, { bench: 'gpu-gemm', n, webgpu_gflops: gflops, tilings: per, cublas_gflops: cu ?? null, ratio_vs_cublas: cu ? gflops / cu : null, cpu_gflops: cpu, adapter: gpu.info.description },
      `sgemm ${n}³: WebGPU ${fmt(gflops, 1)} GFLOP/s (tilings: ${tilings})   ${cu ? `cuBLAS fp32 ${fmt(cu, 0)} GFLOP/s, ratio ${fmt(gflops / cu, 2)}   ` : ''}native CPU ${fmt(cpu, 1)} GFLOP/s (${nativeAddon()?.threads() ?? 1} threads), ratio ${fmt(gflops / cpu, 2)}`);
    for (const x of [A, B, C]) x.destroy();
  }
  const widths = VGG16_WIDTHS.map((w) => Math.max(1, Math.round(w * vggScale)));
  const arch = vgg16Arch(widths, Math.max(1, Math.round(512 * vggScale)));
  const batch = soft ? 16 : 128;
  const gm = await GpuModel.create(buildModel(arch, 1), [3, 32, 32]);
  // real CIFAR-10 batches (crop + flip, as training) where the data is here, random ones otherwise
  let batchAt: (i: number) => { x: Tensor; y: Int32Array };
  let data = 'random data';
  try {
    const shared = join(root, '..', 'shared', 'datasets', 'cifar-10-jpeg75', 'cifar-10-batches-bin');
    const { train } = await loadDataset('cifar10', { download: false, ...(existsSync(shared) ? { path: shared } : {}) });
    const loader = new BatchLoader(train, { batchSize: batch, shuffle: true, seed: 1, normalize: channelStats(train), augment: { padCrop: 4, flip: true }, indices: Int32Array.from({ length: batch * (steps + 2) }, (_, i) => i) });
    batchAt = (i) => loader.batch(0, i);
    data = `the first ${batch * (steps + 2)} CIFAR-10 training images, crop + flip`;
  } catch {
    const x = new Tensor(Float32Array.from({ length: batch * 3 * 32 * 32 }, () => rng.random()), [batch, 3, 32, 32]);
    const y = Int32Array.from({ length: batch }, () => rng.int(10));
    batchAt = () => ({ x, y });
  }
  for (let i = 0; i < 2; i++) {
    const b = batchAt(i);
    await gm.trainStep(b.x, b.y, { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
  }
  const t = performance.now();
  for (let i = 0; i < steps; i++) {
    const b = batchAt(i + 2);
    await gm.trainStep(b.x, b.y, { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
  }
  const ms = (performance.now() - t) / steps;
  const tm = vggScale === 1 ? ref.vgg_ms_per_step : undefined;
  const epoch = (ms * Math.ceil(50000 / batch)) / 1000;
  emit(args, { bench: 'gpu-vgg16', widthScale: vggScale, batch, data, ms_per_step: ms, epoch_s_estimate: epoch, torch_ms_per_step: tm ?? null, ratio_vs_torch: tm ? ms / tm : null },
    `VGG-16${vggScale === 1 ? '' : ` (widths ×${vggScale})`} training step, batch ${batch}, ${data} (loading included): ${fmt(ms, 1)} ms (an epoch of 50,000 images ≈ ${fmt(epoch, 0)} s)${tm ? `   PyTorch-CUDA ${fmt(tm, 1)} ms, ratio ${fmt(ms / tm, 2)}` : ''}`);
  // the same steps through the kernel interface and the autograd: the WebGPU kernels forced (each call
  // an upload and a read back), then the native CPU kernels
  const viaKernels = (backend: string | null) => {
    setBackend(backend);
    try {
      const model = buildModel(arch, 1);
      const opt = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
      const step = (i: number) => {
        const b = batchAt(i);
        opt.zeroGrad();
        crossEntropy(model.forward(b.x), b.y).backward();
        opt.step();
      };
      step(0);
      const t0 = performance.now();
      for (let i = 0; i < steps; i++) step(i + 1);
      return (performance.now() - t0) / steps;
    } finally {
      setBackend(null);
    }
  };
  startWebGpuKernels();
  const kms = viaKernels('webgpu'), cms = viaKernels(null);
  emit(args, { bench: 'gpu-vgg16-kernels', widthScale: vggScale, batch, ms_per_step: kms, resident_ms_per_step: ms, ratio_vs_resident: kms / ms, cpu_ms_per_step: cms, ratio_vs_cpu: kms / cms },
    `the same step through the kernel interface on the WebGPU kernels: ${fmt(kms, 1)} ms, ${fmt(kms / ms, 2)}× the GPU-resident trainer's; native CPU kernels ${fmt(cms, 1)} ms, ratio ${fmt(kms / cms, 2)}`);
  await stopWebGpuKernels();
}
