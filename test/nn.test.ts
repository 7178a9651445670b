// Layers against naive references, parameter naming, optimizers against their formulas, schedules,
// the models' sizes, and an RBM whose reconstruction error falls on real MNIST.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  Adam, BatchNorm2d, buildModel, Conv2d, conv2d, cosineLr, dbnArch, Dropout, Flatten, lenet5Arch, Linear, loadDataset, MaxPool2d, oneCycleLr, RBM,
  ReLU, Rng, Sequential, SGD, stepLr, sum, tensor, toTensor, vgg16Arch, slice,
} from '../src/index.js';
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

N('models: LeNet-5 has 431,080 parameters, VGG-16 about 15M, the DBN 784-500-500-2000-10; bad widths are refused', () => {
  assert.is(buildModel(lenet5Arch()).numParameters(), 431080);
  const vgg = buildModel(vgg16Arch()).numParameters();
  assert.ok(vgg > 14.9e6 && vgg < 15.1e6, `vgg16 ${vgg}`);
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

N.run();
