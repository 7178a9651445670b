// The WebGPU backend of the kernel interface: each of its kernels, called as every op calls it (host
// arrays, offsets, row strides, accumulation), gives the TypeScript backend's result; a kernel it lacks
// runs on a CPU backend; and whole training runs through the registry, autograd and fit with it
// forced, label smoothing and an exact resume included. Runs where an adapter can be had (an NVIDIA GPU
// through Vulkan, or Mesa's llvmpipe through OpenGL ES); skipped, saying why, elsewhere.
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadDataset } from '../datasets/catalog.js';
import type { ImageSet } from '../datasets/catalog.js';
import { BatchLoader } from '../datasets/loader.js';
import { jsKernels } from '../src/backend/js.js';
import { kernel, kernelBackend, setBackend } from '../src/backend/registry.js';
import type { FloatArray, Kernels } from '../src/backend/types.js';
import { startWebGpuKernels, stopWebGpuKernels } from '../src/backend/webgpu-kernels.js';
import { lenet5Arch } from '../src/models/index.js';
import { Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential } from '../src/nn/layers.js';
import { cosineLr, SGD } from '../src/optim/index.js';
import { Rng } from '../src/tensor/rng.js';
import { fit } from '../src/train/loop.js';
import { assertClose, needs, tempDir } from './helpers.js';

const K = suite('webgpu-kernels');
let why: string | null = null;
try {
  const info = startWebGpuKernels();
  console.log(`  (WebGPU kernels on ${info.description} via ${info.backend})`);
} catch (e) {
  why = (e as Error).message;
}
const need = needs(K, why);

const rand = (rng: Rng, n: number) => Float32Array.from({ length: n }, () => rng.uniform(-1, 1));
/** the WebGPU backend's kernel (forced) */
const gpu = <N extends keyof Kernels>(name: N): Kernels[N] => {
  setBackend('webgpu');
  try {
    assert.is(kernelBackend(name, 'float32'), 'webgpu', `${name} runs on the GPU`);
    return kernel(name, 'float32');
  } finally {
    setBackend(null);
  }
};

need('GEMM: transposes, offsets, row strides with gaps, alpha and beta as the TypeScript backend', () => {
  const rng = new Rng(1);
  for (const [M, N, Kd] of [[1, 1, 1], [37, 70, 19], [130, 65, 77]]) {
    for (const ta of [false, true]) for (const tb of [false, true]) {
      const lda = (ta ? M : Kd) + 2, ldb = (tb ? Kd : N) + 1, ldc = N + 3, aOff = 3, bOff = 5, cOff = 2;
      const A = rand(rng, aOff + (ta ? Kd : M) * lda), B = rand(rng, bOff + (tb ? N : Kd) * ldb), C0 = rand(rng, cOff + M * ldc);
      for (const beta of [0, -0.5]) {
        const want = C0.slice(), got = C0.slice();
        jsKernels.gemm(ta, tb, M, N, Kd, 0.75, A, aOff, lda, B, bOff, ldb, beta, want, cOff, ldc);
        gpu('gemm')(ta, tb, M, N, Kd, 0.75, A, aOff, lda, B, bOff, ldb, beta, got, cOff, ldc);
        assertClose(got, want, 1e-5, `${ta ? 'T' : 'N'}${tb ? 'T' : 'N'} ${M}x${N}x${Kd} beta ${beta}`);
      }
    }
  }
  // a long inner dimension (an adapter bounds one invocation's loop: the product goes in steps)
  for (const [ta, tb] of [[false, false], [true, true]]) {
    const M = 9, N = 7, Kd = 70000;
    const A = rand(rng, M * Kd), B = rand(rng, Kd * N), want = rand(rng, M * N), got = want.slice();
    jsKernels.gemm(ta, tb, M, N, Kd, 1, A, 0, ta ? M : Kd, B, 0, tb ? Kd : N, 0.5, want, 0, N);
    gpu('gemm')(ta, tb, M, N, Kd, 1, A, 0, ta ? M : Kd, B, 0, tb ? Kd : N, 0.5, got, 0, N);
    assertClose(got, want, 1e-4, `K = ${Kd}, ${ta ? 'T' : 'N'}${tb ? 'T' : 'N'}`);
  }
});

need('im2col into a wider matrix at an offset, col2im accumulating, the forward convolution with its epilogue', () => {
  const rng = new Rng(2);
  const G = 3, C = 2, H = 7, W = 6, k = 3, s = 2, p = 1, OH = 4, OW = 3, L = G * OH * OW, rows = C * k * k;
  const x = rand(rng, 4 + G * C * H * W);
  const want = rand(rng, 5 + rows * (L + 4)), got = want.slice();
  jsKernels.im2col(x, 4, G, C, H, W, k, k, s, s, p, p, OH, OW, want, 5, L + 4);
  gpu('im2col')(x, 4, G, C, H, W, k, k, s, s, p, p, OH, OW, got, 5, L + 4);
  assert.equal(Array.from(got), Array.from(want), 'im2col moves values: the same bits, the gaps untouched');
  const dxWant = rand(rng, 1 + G * C * H * W), dxGot = dxWant.slice();
  jsKernels.col2im(want, 5, L + 4, G, C, H, W, k, k, s, s, p, p, OH, OW, dxWant, 1);
  gpu('col2im')(want, 5, L + 4, G, C, H, W, k, k, s, s, p, p, OH, OW, dxGot, 1);
  assertClose(dxGot, dxWant, 1e-5, 'col2im adds into dx');
  const OC = 5, geometry = { N: 4, C: 3, H: 10, W: 10, OC, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, OH: 10, OW: 10 };
  const xc = rand(rng, 7 + 4 * 3 * 100), w = rand(rng, OC * 27);
  for (const epilogue of [{}, { scale: rand(rng, OC), shift: rand(rng, OC), relu: true, pool: 2 as const }]) {
    const n = epilogue.pool ? 4 * OC * 25 : 4 * OC * 100;
    const a = new Float32Array(3 + n), b = new Float32Array(3 + n);
    jsKernels.convForward(xc, 7, geometry, w, epilogue, a, 3);
    gpu('convForward')(xc, 7, geometry, w, epilogue, b, 3);
    assertClose(b, a, 1e-5, `convForward ${JSON.stringify(Object.keys(epilogue))}`);
  }
});

need('elementwise, broadcasting, reductions, permutation, argmax and softmax as the TypeScript backend', () => {
  const rng = new Rng(3);
  const x = rand(rng, 6 * 5 * 4);
  const same = (name: string, run: (k: Partial<Kernels>, out: FloatArray) => void, n: number, tol = 1e-6) => {
    const a = new Float32Array(n), b = new Float32Array(n);
    run(jsKernels, a);
    run({ [name]: gpu(name as keyof Kernels) } as Partial<Kernels>, b);
    assertClose(b, a, tol, name);
  };
  for (const op of ['relu', 'sigmoid', 'tanh', 'exp', 'affine'] as const) same('unary', (k, out) => k.unary!(op, x, out, 0.5, -0.25), x.length, 1e-5);
  const row = rand(rng, 4);
  same('binary', (k, out) => k.binary!('mul', x, [20, 4, 1], row, [0, 0, 1], out, [6, 5, 4], 0, 0), x.length);
  same('binary', (k, out) => k.binary!('reluGrad', x, [1], x.map((v) => -v), [1], out, [x.length], 0, 0), x.length);
  same('reduce', (k, out) => k.reduce!('sum', x, [6, 5, 4], [4, 0, 1], out), 24, 1e-5);
  same('reduce', (k, out) => k.reduce!('max', x, [6, 5, 4], [0, 0, 0], out), 1);
  // a convolution's bias gradient: each channel sums 18,432 values
  const big = rand(rng, 32 * 4 * 24 * 24);
  same('reduce', (k, out) => k.reduce!('sum', big, [32, 4, 24, 24], [0, 1, 0, 0], out), 4, 1e-4);
  same('permute', (k, out) => k.permute!(x, [6, 5, 4], [2, 0, 1], out), x.length);
  same('softmax', (k, out) => k.softmax!(x, 6, 5, 4, out, false), x.length, 1e-5);
  same('softmax', (k, out) => k.softmax!(x, 6, 5, 4, out, true), x.length, 1e-5);
  const y = new Float32Array(x.length);
  jsKernels.softmax(x, 6, 5, 4, y, false);
  same('softmaxBackward', (k, out) => k.softmaxBackward!(y, x, 6, 5, 4, out, false), x.length, 1e-5);
  const ia = new Int32Array(24), ib = new Int32Array(24);
  jsKernels.argmax(x, 6, 5, 4, ia);
  gpu('argmax')(x, 6, 5, 4, ib);
  assert.equal(Array.from(ib), Array.from(ia));
});

need('a kernel the GPU backend lacks runs on a CPU backend; float64 never reaches the GPU', () => {
  setBackend('webgpu');
  try {
    assert.is.not(kernelBackend('batchNormForward', 'float32'), 'webgpu');
    assert.is.not(kernelBackend('sgdUpdate', 'float32'), 'webgpu');
    assert.is.not(kernelBackend('gemm', 'float64'), 'webgpu');
  } finally {
    setBackend(null);
  }
});

let mnist: ImageSet;
K.before(async () => {
  mnist = (await loadDataset('mnist')).train;
});

const net = (seed: number) => {
  const rng = new Rng(seed);
  return new Sequential(new Conv2d(1, 4, 5, { rng }), new ReLU(), new MaxPool2d(2), new Conv2d(4, 6, 5, { rng }), new MaxPool2d(2), new Flatten(), new Linear(96, 16, { rng }), new ReLU(), new Linear(16, 10, { rng }));
};
/** `steps` steps of SGD with label smoothing, the kernels of `backend` */
const train = (backend: string | null, model: Sequential, steps: number, o: { checkpoint?: string; resume?: string } = {}) => {
  setBackend(backend);
  try {
    const loader = new BatchLoader(mnist, { batchSize: 32, shuffle: true, seed: 9, indices: Int32Array.from({ length: 256 }, (_, i) => i) });
    return fit(model, { arch: lenet5Arch([4, 6, 16]), loader, optimizer: new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 }), epochs: 2, maxSteps: steps, schedule: cosineLr(0.05, 16), labelSmoothing: 0.1, progress: false, ...o });
  } finally {
    setBackend(null);
  }
};

need('training through fit on the GPU kernels: label smoothing, the CPU\'s weights within rounding, an exact resume', () => {
  const onGpu = net(1), onCpu = net(1);
  train('webgpu', onGpu, 12);
  train(null, onCpu, 12);
  const a = onGpu.stateDict(), b = onCpu.stateDict();
  for (const [name, t] of b) assertClose(a.get(name)!.data, t.data, 1e-5, `${name} after 12 steps`);
  // stopped after 5 steps and resumed to 12: the bits of the unbroken run on the same kernels
  const ck = join(tempDir('nm-webgpu-'), 'ck.safetensors');
  train('webgpu', net(1), 5, { checkpoint: ck });
  const resumed = net(77);
  const r = train('webgpu', resumed, 12, { resume: ck, checkpoint: ck });
  assert.is(r.steps, 12);
  for (const [name, t] of a) assert.equal(Array.from(resumed.stateDict().get(name)!.data), Array.from(t.data), `${name} after resuming`);
});

K.after(() => stopWebGpuKernels());

K.run();
