// Layers against naive references, parameter naming, optimizers against their formulas, schedules,
// the models' sizes, and an RBM whose reconstruction error falls on real MNIST.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  Adam, BatchNorm2d, buildModel, Conv2d, conv2d, cosineLr, dbnArch, mlpArch, Dropout, Flatten, lenet5Arch, Linear, loadDataset, MaxPool2d, oneCycleLr, RBM,
  ReLU, Rng, Sequential, SGD, stepLr, sum, tensor, toTensor, vgg16Arch, slice, noGrad, conv2dFused, mergeModel, setBackend, batchNorm, relu, maxPool2d, InferenceSession, Sigmoid, nativeAddon, nativeLoadError,
  linear, linearActivate, sigmoid, tanh,
} from '../src/internal.js';
import type { FloatArray } from '../src/internal.js';
import { assertClose, assertThrows } from './helpers.js';

const N = suite('nn');
const rng = new Rng(77);
const rand = (shape: number[]) => tensor(Array.from({ length: shape.reduce((p, d) => p * d, 1) }, () => rng.uniform(-1, 1)), shape);

N('Linear: y = x·Wᵀ + b, and its gradients, against loops', () => {
  const l = new Linear(5, 3, { rng: new Rng(1) });
  l.bias!.data.set([0.1, -0.2, 0.3]);
  const x = rand([4, 5]);
  x.requiresGrad = true;
  const y = l.forward(x);
  const ref: number[] = [];
  for (let n = 0; n < 4; n++) for (let o = 0; o < 3; o++) {
    let s = l.bias!.data[o];
    for (let i = 0; i < 5; i++) s += x.data[n * 5 + i] * l.weight.data[o * 5 + i];
    ref.push(s);
  }
  assertClose(y.data, ref, 1e-6, 'linear forward');
  sum(y).backward();
  const gw: number[] = [];
  for (let o = 0; o < 3; o++) for (let i = 0; i < 5; i++) {
    let s = 0;
    for (let n = 0; n < 4; n++) s += x.data[n * 5 + i];
    gw.push(s);
  }
  assertClose(l.weight.grad!.data, gw, 1e-6, 'dW');
  assertClose(l.bias!.grad!.data, [4, 4, 4], 1e-6, 'db');
  const gx: number[] = [];
  for (let n = 0; n < 4; n++) for (let i = 0; i < 5; i++) {
    let s = 0;
    for (let o = 0; o < 3; o++) s += l.weight.data[o * 5 + i];
    gx.push(s);
  }
  assertClose(x.grad!.data, gx, 1e-6, 'dx');
});

N('linearActivate: act(x·Wᵀ + b) in one pass equals linear then the activation, on both backends, at every batch path; inference only', () => {
  for (const backend of ['native', 'js'] as const) {
    setBackend(backend === 'native' ? null : 'js');
    try {
      // batch 1 and 3 (bias copied ahead of the product), 50 and 300 (added after it; 300 x 500
      // shares the pass between threads), 10 outputs (the transposed product), no bias
      for (const [n, i, o] of [[1, 70, 500], [3, 33, 17], [50, 40, 10], [300, 64, 500]])
        for (const withBias of [true, false])
          for (const act of ['relu', 'sigmoid', 'tanh'] as const) {
            const x = rand([n, i]), w = rand([o, i]), b = withBias ? rand([o]) : null;
            const want = noGrad(() => ({ relu, sigmoid, tanh })[act](linear(x, w, b)));
            const got = noGrad(() => linearActivate(x, w, b, act));
            assert.equal(got.shape, [n, o]);
            assertClose(got.data, want.data, 2e-7, `${backend} ${n}x${i} -> ${o} ${act} bias ${withBias}`);
          }
    } finally {
      setBackend(null);
    }
  }
  const x = rand([2, 3]), w = rand([4, 3]);
  w.requiresGrad = true;
  assertThrows(() => linearActivate(x, w, null, 'relu'), /linearActivate: inference only \(call it under noGrad\)/);
  assertThrows(() => noGrad(() => linearActivate(x, w, null, 'gelu' as 'relu')), /linearActivate: activation must be none, relu, sigmoid, tanh, got 'gelu'/);
  assertThrows(() => noGrad(() => linearActivate(x, rand([4, 2]), null, 'relu')), /linearActivate: input \[2,3\] has 3 features but weight \[4,2\] expects 2/);
});

N('Conv2d, MaxPool2d, Flatten, BatchNorm2d in train and eval; names of parameters and buffers', () => {
  const c = new Conv2d(2, 3, 3, { padding: 1, rng: new Rng(2) });
  const x = rand([2, 2, 5, 5]);
  assertClose(c.forward(x).data, conv2d(x, c.weight, c.bias, { padding: 1 }).data, 0, 'Conv2d = conv2d');
  const bn = new BatchNorm2d(3);
  const net = new Sequential(c, bn, new ReLU(), new MaxPool2d(2), new Flatten(), new Linear(12, 4, { rng: new Rng(3) }));
  assert.equal(net.namedParameters().map(([n]) => n), ['0.weight', '0.bias', '1.weight', '1.bias', '5.weight', '5.bias']);
  assert.equal(net.namedBuffers().map(([n]) => n), ['1.runningMean', '1.runningVar']);
  const y = net.forward(x);
  assert.equal(y.shape, [2, 4]);
  assert.ok(bn.runningMean.data.some((v) => v !== 0), 'training mode updates running statistics');
  const before = Array.from(bn.runningMean.data);
  net.eval();
  const y1 = net.forward(x), y2 = net.forward(x);
  assert.equal(Array.from(bn.runningMean.data), before, 'eval mode leaves them alone');
  assert.equal(Array.from(y1.data), Array.from(y2.data));
  assert.is(bn.training, false);
  net.train();
  assert.is(bn.training, true);
  assert.is(net.numParameters(), 2 * 3 * 9 + 3 + 3 + 3 + 12 * 4 + 4);
});

N('Dropout: zero or scaled in training, identity in eval, seeded', () => {
  const d = new Dropout(0.5, new Rng(4));
  const x = tensor(new Array(1000).fill(1));
  const y = d.forward(x);
  const zeros = Array.from(y.data).filter((v) => v === 0).length;
  assert.ok(zeros > 400 && zeros < 600, `${zeros} zeros`);
  assert.ok(Array.from(y.data).every((v) => v === 0 || v === 2));
  d.eval();
  assert.is(d.forward(x), x);
  assertThrows(() => new Dropout(1, new Rng(1)), /Dropout: p must be in \[0, 1\)/);
});

N('models: LeNet-5 has 431,080 parameters, VGG-16 14,987,722, the DBN 784-500-500-2000-10; bad widths are refused', () => {
  assert.is(buildModel(lenet5Arch()).numParameters(), 431080);
  assert.is(buildModel(vgg16Arch()).numParameters(), 14987722);
  assert.is(buildModel(dbnArch()).numParameters(), 784 * 500 + 500 + 500 * 500 + 500 + 500 * 2000 + 2000 + 2000 * 10 + 10);
  assert.equal(buildModel(lenet5Arch([7, 9, 11])).forward(rand([2, 1, 28, 28])).shape, [2, 10]);
  assertThrows(() => buildModel(lenet5Arch([7, 0, 11] as [number, number, number])), /lenet5: widths must be 3 positive integers/);
  assertThrows(() => buildModel({ model: 'resnet' } as never), /unknown model 'resnet'/);
});

N('SGD (momentum, Nesterov, weight decay) and Adam follow their formulas', () => {
  const p = tensor([1, -2]);
  p.requiresGrad = true;
  const o = new SGD([p], { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.01 });
  p.grad = tensor([0.5, 0.5]);
  o.step();
  // g = 0.5 + 0.01 p; v = g; update = g + 0.9 v
  const g0 = [0.5 + 0.01, 0.5 - 0.02];
  const e1 = [1 - 0.1 * (g0[0] + 0.9 * g0[0]), -2 - 0.1 * (g0[1] + 0.9 * g0[1])];
  assertClose(p.data, e1, 1e-6, 'sgd step 1');
  p.grad = tensor([0.5, 0.5]);
  o.step();
  const g1 = [0.5 + 0.01 * e1[0], 0.5 + 0.01 * e1[1]];
  const v1 = [0.9 * g0[0] + g1[0], 0.9 * g0[1] + g1[1]];
  assertClose(p.data, [e1[0] - 0.1 * (g1[0] + 0.9 * v1[0]), e1[1] - 0.1 * (g1[1] + 0.9 * v1[1])], 1e-6, 'sgd step 2');
  const q = tensor([1]);
  q.requiresGrad = true;
  const a = new Adam([q], { lr: 0.01 });
  q.grad = tensor([2]);
  a.step();
  // first step of Adam moves by lr * sign(g) (bias-corrected m/sqrt(v) = g/|g|)
  assertClose(q.data, [1 - 0.01], 1e-6, 'adam step 1');
  assertThrows(() => new SGD([q], { lr: -1 }), /learning rate must be a positive number/);
  assertThrows(() => new SGD([q], { lr: 0.1, nesterov: true }), /Nesterov needs a momentum/);
});

N('schedules: step, cosine, one-cycle', () => {
  const s = stepLr(0.1, 10, 0.5);
  assert.is(s(0), 0.1);
  assert.is(s(9), 0.1);
  assert.is(s(10), 0.05);
  const c = cosineLr(1, 100, 0);
  assert.is(c(0), 1);
  assert.ok(Math.abs(c(50) - 0.5) < 1e-12 && Math.abs(c(100)) < 1e-12);
  const oc = oneCycleLr(1, 100, 0.3);
  assert.ok(Math.abs(oc(0) - 0.04) < 1e-12);
  assert.ok(Math.abs(oc(30) - 1) < 1e-12);
  assert.ok(oc(99) < 0.01 && oc(60) < 1 && oc(60) > oc(90));
  // a run of one step (a tiny --limit) takes its one step at the warm-up's start
  assert.is(oneCycleLr(1, 1, 0.15)(0), 0.04);
});

N('RBM: the reconstruction error falls over CD-1 training on MNIST digits', async () => {
  const { train } = await loadDataset('mnist');
  const { x } = toTensor(train, undefined, Int32Array.from({ length: 1000 }, (_, i) => i));
  const v = x.reshape([1000, 784]);
  const rbm = new RBM(784, 64, { rng: new Rng(5), lr: 0.1 });
  const errs: number[] = [];
  for (let epoch = 0; epoch < 5; epoch++) {
    let e = 0;
    for (let s = 0; s < 1000; s += 100) e += rbm.step(slice(v, s, s + 100));
    errs.push(e / 10);
  }
  assert.ok(errs[4] < 0.75 * errs[0], `reconstruction error ${errs.map((q) => q.toFixed(4)).join(' -> ')}`);
  assert.ok(errs.every(Number.isFinite));
});

/** a model's eval forward with the inference fusion on and off (NEURONMERGE_FUSE=0) */
function fusedAndPlain(m: Sequential, x: ReturnType<typeof tensor>) {
  const prev = process.env.NEURONMERGE_FUSE;
  try {
    process.env.NEURONMERGE_FUSE = '0';
    const plain = noGrad(() => m.forward(x));
    delete process.env.NEURONMERGE_FUSE;
    const fused = noGrad(() => m.forward(x));
    return { plain, fused };
  } finally {
    if (prev === undefined) delete process.env.NEURONMERGE_FUSE;
    else process.env.NEURONMERGE_FUSE = prev;
  }
}

N('inference fusion: activations between fused convolutions reuse two buffers; what a forward returns is never one of them', () => {
  const r = new Rng(8);
  // a model that ends on convolutions (its output comes straight from a fused one), one that ends on
  // a linear layer after a flatten, and chains of linear layers with activations (their outputs pass
  // through the same two buffers)
  const nets = [
    new Sequential(
      new Conv2d(2, 5, 3, { padding: 1, rng: new Rng(1) }), new ReLU(),
      new Conv2d(5, 6, 3, { padding: 1, rng: new Rng(2) }), new BatchNorm2d(6), new ReLU(), new MaxPool2d(2),
      new Conv2d(6, 4, 3, { padding: 1, rng: new Rng(3) }), new ReLU(),
      new Conv2d(4, 3, 1, { rng: new Rng(4) }),
    ),
    buildModel(vgg16Arch([4, 4, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8], 8), 3),
    buildModel(dbnArch([30, 20, 40]), 6),
    buildModel(mlpArch([24, 16], 'tanh'), 7),
    new Sequential(new Linear(784, 12, { rng: new Rng(8) }), new ReLU(), new Linear(12, 5, { rng: new Rng(9) }), new Sigmoid()),
  ];
  const shapes = [[2, 9, 10], [3, 32, 32], [784], [784], [784]];
  for (const backend of ['native', 'js'] as const) {
    setBackend(backend === 'native' ? null : 'js');
    try {
      nets.forEach((m, k) => {
        m.eval();
        const shape = shapes[k];
        const outs: ReturnType<typeof fusedAndPlain>[] = [];
        // batch sizes up and down: the buffers grow, then smaller activations take part of them
        for (const n of [3, 1, 4, 2]) {
          const x = tensor(Array.from({ length: n * shape.reduce((p, d) => p * d, 1) }, () => r.uniform(-1, 1)), [n, ...shape]);
          outs.push(fusedAndPlain(m, x));
        }
        outs.forEach(({ fused, plain }, i) => assertClose(fused.data, plain.data, 2e-5, `net ${k} on ${backend}, forward ${i}, checked after all four`));
        const buffers = new Set(outs.map((o) => o.fused.data.buffer));
        assert.is(buffers.size, outs.length, `net ${k} on ${backend}: every forward returned its own buffer`);
      });
    } finally {
      setBackend(null);
    }
  }
});

N('inference fusion: conv (+BN +ReLU +2x2 pool) in one op gives the layers\u2019 output, on both backends, for odd sizes, strides, merged models', () => {
  const r = new Rng(5);
  const randomStats = (m: Sequential) => {
    for (const l of m.layers) {
      if (l instanceof BatchNorm2d) {
        for (let i = 0; i < l.weight.size; i++) {
          l.runningMean.data[i] = r.uniform(-0.5, 0.5);
          l.runningVar.data[i] = r.uniform(0.3, 2);
          l.weight.data[i] = r.uniform(-1.5, 1.5);  // negative gammas: the max-pool must follow the affine
          l.bias.data[i] = r.uniform(-0.5, 0.5);
        }
      }
      if (l instanceof Conv2d && l.bias) for (let i = 0; i < l.bias.size; i++) l.bias.data[i] = r.uniform(-0.5, 0.5);
    }
  };
  const nets = () => [
    // every pattern: conv+BN+ReLU+pool, conv+ReLU (no BN), conv+BN (no ReLU) then a pool of an odd map,
    // a strided conv without bias, a bare conv, a pool that is not 2x2
    new Sequential(
      new Conv2d(3, 6, 3, { padding: 1, rng: new Rng(1) }), new BatchNorm2d(6), new ReLU(), new MaxPool2d(2),
      new Conv2d(6, 5, 3, { rng: new Rng(2) }), new ReLU(),
      new Conv2d(5, 7, 2, { rng: new Rng(3), bias: false, stride: 2 }), new BatchNorm2d(7), new MaxPool2d(2),
      new Conv2d(7, 4, 1, { rng: new Rng(4), bias: false }), new MaxPool2d(2, 1), new Flatten(), new Linear(4, 3, { rng: new Rng(5) }),
    ),
    buildModel(vgg16Arch([4, 4, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8], 8), 3),
    buildModel(lenet5Arch(), 4),
    // linear layers followed by sigmoid, tanh and ReLU (activated in place)
    buildModel(dbnArch([30, 20, 40]), 6),
    buildModel(mlpArch([24, 16], 'tanh'), 7),
  ];
  const inputs = [[2, 3, 23, 23], [3, 3, 32, 32], [3, 1, 28, 28], [4, 784], [2, 784]];
  for (const backend of ['native', 'js'] as const) {
    setBackend(backend === 'native' ? null : 'js');
    try {
      nets().forEach((m, k) => {
        randomStats(m);
        m.eval();
        const x = tensor(Array.from({ length: inputs[k].reduce((p, d) => p * d, 1) }, () => r.uniform(-1, 1)), inputs[k]);
        const { plain, fused } = fusedAndPlain(m, x);
        assert.equal(fused.shape, plain.shape);
        assertClose(fused.data, plain.data, 2e-5, `net ${k} on ${backend}`);
        if (k > 0) {
          mergeModel(m, { ratio: 0.5, nInit: 1, seed: 1 });
          m.eval();
          const after = fusedAndPlain(m, x);
          assertClose(after.fused.data, after.plain.data, 2e-5, `merged net ${k} on ${backend}`);
        }
        // in training mode (batch statistics) nothing is fused: the two paths are the same code
        m.train();
        const t = fusedAndPlain(m, x);
        assert.equal(Array.from(t.fused.data), Array.from(t.plain.data), `net ${k} in training mode`);
      });
    } finally {
      setBackend(null);
    }
  }
});

N('InferenceSession: the output of model.forward in eval mode, the convolutions\' weights packed once (native), a replaced layer noticed', () => {
  const r = new Rng(12);
  const arr = (n: number) => Float32Array.from({ length: n }, () => r.uniform(-1, 1));
  // VGG-16 at widths not a multiple of a vector: its 4x4 maps at batch 1 and its 2x2 maps at batch 1
  // to 4 take the packed path
  const m = buildModel(vgg16Arch([8, 8, 12, 12, 20, 20, 20, 24, 24, 24, 40, 40, 40], 10), 3);
  for (const l of m.layers) {
    if (!(l instanceof BatchNorm2d)) continue;
    l.runningMean.data.set(arr(l.weight.size).map((v) => v * 0.3));
    l.runningVar.data.set(arr(l.weight.size).map((v) => 1 + 0.5 * v));
  }
  m.eval();
  for (const backend of ['native', 'js'] as const) {
    setBackend(backend === 'native' ? null : 'js');
    try {
      const s = new InferenceSession(m);
      assert.is(s.packedLayers, backend === 'native' ? 13 : 0, `${backend}: convolutions packed`);
      for (const [n, hw] of [[1, 32], [2, 32], [3, 32], [5, 32]]) {
        const x = tensor(arr(n * 3 * hw * hw), [n, 3, hw, hw]);
        const want = noGrad(() => m.forward(x));
        const got = s.run(x);
        assert.equal(got.shape, want.shape);
        assertClose(got.data, want.data, 2e-5, `${backend}: batch ${n}, ${hw}x${hw}`);
      }
    } finally {
      setBackend(null);
    }
  }
  // the session computes with its copy: weights changed in place after it was made are not seen on
  // the packed path (batch 1: the last six convolutions), a convolution replaced is
  const s = new InferenceSession(m);
  const x = tensor(arr(3 * 32 * 32), [1, 3, 32, 32]);
  const before = s.run(x).data.slice();
  let last = -1;
  m.layers.forEach((l, i) => {
    if (l instanceof Conv2d) last = i;
  });
  const conv = m.layers[last] as Conv2d;
  conv.weight.data.set(arr(conv.weight.size));
  assertClose(s.run(x).data, before, 1e-6, 'in-place change: the packed copy');
  const fresh = new Conv2d(conv.weight.shape[1], conv.weight.shape[0], 3, { padding: 1, rng: new Rng(9) });
  m.replace(last, fresh);
  assertClose(s.run(x).data, noGrad(() => m.forward(x)).data, 2e-5, 'replaced layer: read as it lies');
  assert.ok(s.run(x).data.some((v, i) => Math.abs(v - before[i]) > 1e-4), 'the replaced layer changed the output');
  m.train();
  assertThrows(() => s.run(x), /InferenceSession.run: the model is in training mode; call model.eval\(\) first/);
});

N('InferenceSession: the weights transformed for Winograd once, at the first run that takes it; the same bits as model.forward', () => {
  const r = new Rng(14);
  const arr = (n: number) => Float32Array.from({ length: n }, () => r.uniform(-1, 1));
  // 64 -> 96 and 96 -> 96 channels on 16x16 maps at batch 16: F(4x4) where auto measured it faster
  const m = buildModel(vgg16Arch([16, 64, 96, 96, 32, 32, 32, 16, 16, 16, 16, 16, 16], 10), 5);
  m.eval();
  const s = new InferenceSession(m);
  assert.is(s.winogradLayers, 0, 'nothing transformed before a run');
  const x = tensor(arr(16 * 3 * 32 * 32), [16, 3, 32, 32]);
  const want = noGrad(() => m.forward(x));
  const got = s.run(x);
  assert.ok(got.data.every((v, i) => Object.is(v, want.data[i])), 'the same bits as the forward');
  if (!nativeAddon()) assert.unreachable(`the native addon did not load: ${nativeLoadError()}`);
  assert.ok(s.winogradLayers >= 2, `${s.winogradLayers} layers transformed`);
  const n = s.winogradLayers;
  assert.ok(s.run(x).data.every((v, i) => Object.is(v, want.data[i])), 'a second run');
  assert.is(s.winogradLayers, n);
  // the copy: weights changed in place are not seen by this session; a new one sees them
  // (the 96 -> 96 layer on 16x16 maps: one the session transformed)
  const conv = m.layers.find((l) => l instanceof Conv2d && l.weight.shape[0] === 96 && l.weight.shape[1] === 96) as Conv2d;
  conv.weight.data.set(arr(conv.weight.size));
  assert.ok(s.run(x).data.every((v, i) => Object.is(v, want.data[i])), 'in-place change: the transformed copy');
  const fresh = noGrad(() => m.forward(x));
  assert.ok(new InferenceSession(m).run(x).data.every((v, i) => Object.is(v, fresh.data[i])), 'a new session');
  assert.ok(fresh.data.some((v, i) => v !== want.data[i]));
});

N("InferenceSession: each batch norm folded into its convolution once, at the first run: the bits of a fresh fold, close to model.forward; a statistic swapped for another array noticed", () => {
  if (!nativeAddon()) assert.unreachable(`the native addon did not load: ${nativeLoadError()}`);
  const r = new Rng(16);
  const arr = (n: number) => Float32Array.from({ length: n }, () => r.uniform(-1, 1));
  const m = buildModel(vgg16Arch([8, 8, 12, 12, 20, 20, 20, 24, 24, 24, 40, 40, 40], 10), 7);
  const bns = m.layers.filter((l): l is BatchNorm2d => l instanceof BatchNorm2d);
  for (const l of bns) {
    l.runningMean.data.set(arr(l.weight.size).map((v) => v * 0.3));
    l.runningVar.data.set(arr(l.weight.size).map((v) => 1 + 0.5 * v));
  }
  m.eval();
  const s = new InferenceSession(m);
  const same = (p: FloatArray, q: FloatArray) => p.every((v, i) => Object.is(v, q[i]));
  for (const n of [1, 4]) {
    const x = tensor(arr(n * 3 * 32 * 32), [n, 3, 32, 32]);
    const first = s.run(x).data.slice();
    assertClose(first, noGrad(() => m.forward(x)).data, 2e-5, `batch ${n}: model.forward`);
    // later runs read the fold of the first: the bits of a session that folds afresh
    assert.ok(same(s.run(x).data, first), `batch ${n}: a second run`);
    assert.ok(same(new InferenceSession(m).run(x).data, first), `batch ${n}: a new session`);
  }
  const x = tensor(arr(3 * 32 * 32), [1, 3, 32, 32]);
  const before = s.run(x).data.slice();
  // in place: the session's fold, as for its weights
  const bn = bns[bns.length - 1];
  bn.runningVar.data.set(bn.runningVar.data.map((v) => v * 4));
  assert.ok(same(s.run(x).data, before), 'statistics changed in place: the fold of the first run');
  // swapped for another array (as loading a checkpoint into new tensors would): folded again
  bn.runningVar = tensor(bn.runningVar.data.slice());
  const now = s.run(x).data.slice();
  assert.ok(same(now, new InferenceSession(m).run(x).data), 'a swapped array: folded again, the bits of a new session');
  assert.ok(now.some((v, i) => v !== before[i]), 'the new statistics changed the output');
});

N('batch norm + ReLU fused (Sequential, training and eval with a graph): the same bits as the two layers, forward and backward, on both backends', () => {
  const prevFuse = process.env.NEURONMERGE_FUSE;
  try {
    for (const backend of ['js', null] as const) {
      setBackend(backend);
      for (const training of [true, false]) {
        const run = (fuse: boolean) => {
          if (fuse) delete process.env.NEURONMERGE_FUSE;
          else process.env.NEURONMERGE_FUSE = '0';
          const r = new Rng(5);
          const net = new Sequential(new Conv2d(3, 6, 3, { rng: r, padding: 1 }), new BatchNorm2d(6), new ReLU(), new Flatten(), new Linear(6 * 5 * 5, 4, { rng: r }), new BatchNorm2d(4), new ReLU());
          net.train(training);
          const bn = net.layers[1] as BatchNorm2d;
          bn.weight.data.set([1, -0.5, 2, 0.7, 1.3, -1]);
          bn.bias.data.set([0.1, 0.2, -0.3, 0, 0.5, -0.1]);
          const xr = new Rng(9);
          const x = tensor(Array.from({ length: 4 * 3 * 5 * 5 }, () => xr.uniform(-1, 1)), [4, 3, 5, 5], { requiresGrad: true });
          const y = net.forward(x);
          const op = y.node?.op;
          const gy = tensor(Array.from({ length: y.size }, () => xr.uniform(-1, 1)), y.shape);
          y.backward(gy);
          return { y: Array.from(y.data), gx: Array.from(x.grad!.data), grads: net.parameters().map((p) => Array.from(p.grad!.data)), rm: Array.from(bn.runningMean.data), op };
        };
        const fused = run(true), plain = run(false);
        const what = `${backend ?? 'default'} backend, ${training ? 'training' : 'eval'}`;
        assert.is(fused.op, 'batchNormRelu', 'the fused op ran');
        assert.is(plain.op, 'relu', 'NEURONMERGE_FUSE=0: the layers ran');
        assert.equal(fused.y, plain.y, `output, ${what}`);
        assert.ok(fused.y.some((v) => v === 0) && fused.y.some((v) => v > 0), 'the ReLU cut some outputs');
        assert.equal(fused.gx, plain.gx, `input gradient, ${what}`);
        assert.equal(fused.grads, plain.grads, `parameter gradients, ${what}`);
        assert.equal(fused.rm, plain.rm, `running mean, ${what}`);
      }
    }
  } finally {
    setBackend(null);
    if (prevFuse === undefined) delete process.env.NEURONMERGE_FUSE;
    else process.env.NEURONMERGE_FUSE = prevFuse;
  }
  // the op itself: relu(batchNorm(x)) as one node, in float32 and float64 (the TypeScript backend)
  for (const dtype of ['float32', 'float64'] as const) {
    const x = tensor(rand([3, 2, 4]).data, [3, 2, 4], { dtype, requiresGrad: true });
    const t = (v: number[]) => tensor(v, [2], { dtype });
    const fusedOut = batchNorm(x, t([1, 2]), t([0, -0.1]), { runningMean: t([0, 0]), runningVar: t([1, 1]) }, true, 0.1, 1e-5, true);
    const plainOut = relu(batchNorm(x, t([1, 2]), t([0, -0.1]), { runningMean: t([0, 0]), runningVar: t([1, 1]) }, true));
    assert.equal(Array.from(fusedOut.data), Array.from(plainOut.data), `${dtype}: forward`);
    assert.ok(fusedOut.data.some((v) => v === 0) && fusedOut.data.some((v) => v > 0), `${dtype}: both sides of the ReLU`);
    const gy = tensor(rand([3, 2, 4]).data, [3, 2, 4], { dtype });
    fusedOut.backward(gy);
    const g1 = Array.from(x.grad!.data);
    x.zeroGrad();
    plainOut.backward(gy);
    assert.equal(g1, Array.from(x.grad!.data), `${dtype}: backward`);
  }
});

N('conv2dFused equals conv2d -> affine -> relu -> maxPool2d; refuses a graph, a wrong scale length', () => {
  const x = rand([3, 4, 9, 10]), w = rand([5, 4, 3, 3]), b = rand([5]), g = rand([5]), be = rand([5]);
  const st = { runningMean: rand([5]), runningVar: tensor(Array.from({ length: 5 }, () => rng.uniform(0.5, 2))) };
  const ref = noGrad(() => maxPool2d(relu(batchNorm(conv2d(x, w, b, { padding: 1 }), g, be, st, false)), 2));
  const scale = new Float32Array(5), shift = new Float32Array(5);
  for (let c = 0; c < 5; c++) {
    scale[c] = g.data[c] / Math.sqrt(st.runningVar.data[c] + 1e-5);
    shift[c] = be.data[c] + (b.data[c] - st.runningMean.data[c]) * scale[c];
  }
  const out = noGrad(() => conv2dFused(x, w, { padding: 1 }, { scale, shift, relu: true, pool: 2 }));
  assert.equal(out.shape, [3, 5, 4, 5]);
  assertClose(out.data, ref.data, 1e-5, 'fused vs ops');
  const wg = rand([5, 4, 3, 3]);
  wg.requiresGrad = true;
  assertThrows(() => conv2dFused(x, wg, {}, {}), /conv2dFused: inference only \(call it under noGrad\)/);
  assertThrows(() => noGrad(() => conv2dFused(x, w, {}, { scale: new Float32Array(4) })), /conv2dFused: scale has 4 entries, the weight \[5,4,3,3\] has 5 output channels/);
});

N.run();
