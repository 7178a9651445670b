// Every op's backward against central finite differences in float64, on random shapes that include
// size 1 and odd sizes. Kinks (relu at 0, ties, clamp bounds) are skipped by gradcheck itself.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  abs, add, affine, avgPool2d, batchNorm, cast, cat, clamp, conv2d, crossEntropy, distillationLoss, div, dropout, exp, gradcheck, log,
  logSoftmax, tensor, linear, matmul, max, maximum, maxPool2d, mean, mul, neg, permute, pow, relu, reshape, Rng, sigmoid, slice,
  softmax, sqrt, square, sub, sum, take, tanh, Tensor, transpose, setConvChunk,
} from '../src/internal.js';
import { distinct, rand, randShape } from './helpers.js';

const G = suite('gradcheck');
const rng = new Rng(2024);

function check(name: string, fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[], opts = {}): void {
  const r = gradcheck(fn, inputs, opts);
  const w = r.worst;
  assert.ok(r.ok, `${name}: analytic ${w?.analytic} vs numeric ${w?.numeric} at input ${w?.input} element ${w?.index} (shapes ${inputs.map((x) => JSON.stringify(x.shape)).join(' ')})`);
  assert.ok(r.checked > 0, `${name}: no element was checked (${r.skipped} skipped)`);
}

/** a pair of broadcastable shapes: b drops leading axes and sets some axes to 1 */
function broadcastPair(): [number[], number[]] {
  const a = randShape(rng, 1 + rng.int(3));
  let b = a.map((d) => (rng.random() < 0.4 ? 1 : d));
  b = b.slice(rng.int(b.length));
  return rng.random() < 0.5 ? [a, b] : [b, a];
}

G('binary ops with broadcasting', () => {
  for (let t = 0; t < 4; t++) {
    const [sa, sb] = broadcastPair();
    check('add', add, [rand(rng, sa), rand(rng, sb)]);
    check('sub', sub, [rand(rng, sa), rand(rng, sb)]);
    check('mul', mul, [rand(rng, sa), rand(rng, sb)]);
    check('div', div, [rand(rng, sa), rand(rng, sb, { lo: 0.5, hi: 2 })]);
    check('pow (tensor exponent)', pow, [rand(rng, sa, { lo: 0.5, hi: 2 }), rand(rng, sb)]);
    check('maximum', maximum, [rand(rng, sa), rand(rng, sb)]);
  }
});

G('binary ops with a number operand', () => {
  const s = randShape(rng, 2);
  check('add number', (x) => add(x, 3), [rand(rng, s)]);
  check('number sub', (x) => sub(2, x), [rand(rng, s)]);
  check('number div', (x) => div(2, x), [rand(rng, s, { lo: 0.5, hi: 2 })]);
  check('pow scalar', (x) => pow(x, 3), [rand(rng, s)]);
  check('pow fractional', (x) => pow(x, 1.5), [rand(rng, s, { lo: 0.2, hi: 2 })]);
  check('maximum number', (x) => maximum(x, 0.1), [rand(rng, s)]);
});

G('unary ops', () => {
  for (let t = 0; t < 3; t++) {
    const s = randShape(rng, 1 + rng.int(3), [1, 2, 3, 7]);
    check('neg', neg, [rand(rng, s)]);
    check('exp', exp, [rand(rng, s)]);
    check('log', log, [rand(rng, s, { lo: 0.1, hi: 3 })]);
    check('sqrt', sqrt, [rand(rng, s, { lo: 0.1, hi: 3 })]);
    check('abs', abs, [rand(rng, s)]);
    check('square', square, [rand(rng, s)]);
    check('clamp', (x) => clamp(x, -0.5, 0.4), [rand(rng, s)]);
    check('relu', relu, [rand(rng, s)]);
    check('sigmoid', sigmoid, [rand(rng, s, { lo: -4, hi: 4 })]);
    check('tanh', tanh, [rand(rng, s, { lo: -3, hi: 3 })]);
    check('affine', (x) => affine(x, -1.5, 0.25), [rand(rng, s)]);
  }
});

G('reductions over every axis set, with and without keepdims', () => {
  const shapes = [[1, 3, 2], [3, 5, 1], [2, 1, 3, 2]];
  for (const s of shapes) {
    const nd = s.length;
    // every subset of axes (the empty subset means "all")
    for (let mask = 0; mask < 1 << nd; mask++) {
      const axes = [...Array(nd).keys()].filter((a) => mask & (1 << a));
      const ax = axes.length ? axes : undefined;
      for (const keep of [false, true]) {
        check(`sum ${axes} ${keep}`, (x) => sum(x, ax, keep), [rand(rng, s)]);
        check(`mean ${axes} ${keep}`, (x) => mean(x, ax, keep), [rand(rng, s)]);
        check(`max ${axes} ${keep}`, (x) => max(x, ax, keep), [distinct(rng, s)]);
      }
    }
    check('sum negative axis', (x) => sum(x, -1), [rand(rng, s)]);
  }
});

G('shape ops', () => {
  const x = () => rand(rng, [3, 1, 5]);
  check('reshape', (t) => reshape(t, [5, -1]), [x()]);
  check('permute', (t) => permute(t, [2, 0, 1]), [x()]);
  check('transpose', (t) => transpose(t, 0, 2), [x()]);
  check('transpose last two', (t) => transpose(t), [x()]);
  check('slice', (t) => slice(t, 1, 3), [x()]);
  check('slice to end', (t) => slice(t, 2), [x()]);
  check('take with repeats', (t) => take(t, [2, 0, 2]), [x()]);
  for (const axis of [0, 1, 2, -1]) {
    const s1 = [2, 3, 4];
    const s2 = [...s1];
    s2[(axis + 3) % 3] = 1;
    check(`cat axis ${axis}`, (a, b) => cat([a, b, a], axis), [rand(rng, s1), rand(rng, s2)]);
  }
  check('cast f64 -> f32 -> f64 is the identity', (t) => cast(cast(t, 'float32'), 'float64'), [rand(rng, [2, 3])], { eps: 1e-2, atol: 1e-4, rtol: 1e-4 });
});

G('matmul: 2-D, batched, broadcast batch', () => {
  for (const [M, K, N] of [[1, 1, 1], [3, 5, 2], [7, 3, 1], [1, 4, 6]]) {
    check('matmul 2-D', matmul, [rand(rng, [M, K]), rand(rng, [K, N])]);
  }
  check('matmul batched', matmul, [rand(rng, [3, 2, 5]), rand(rng, [3, 5, 3])]);
  check('matmul broadcast b', matmul, [rand(rng, [2, 3, 2, 4]), rand(rng, [4, 3])]);
  check('matmul broadcast a', matmul, [rand(rng, [3, 4]), rand(rng, [2, 4, 1])]);
  check('matmul broadcast size-1 batch', matmul, [rand(rng, [1, 3, 2]), rand(rng, [4, 2, 3])]);
});

G('linear (x·wᵀ + b) with and without bias', () => {
  for (const [N, I, O] of [[1, 1, 1], [5, 3, 7], [4, 9, 2]]) {
    check('linear', (x, w, b) => linear(x, w, b), [rand(rng, [N, I]), rand(rng, [O, I]), rand(rng, [O])]);
    check('linear no bias', (x, w) => linear(x, w), [rand(rng, [N, I]), rand(rng, [O, I])]);
  }
  // float32 on the best backend (native: a few rows take the dot-product kernel with the bias copied
  // into the output first), batch 1 to 6 against the sums written out
  for (const N of [1, 2, 3, 4, 5, 6]) {
    const I = 40, O = 70;
    const x = tensor(Float32Array.from({ length: N * I }, () => rng.uniform(-1, 1)), [N, I]);
    const w = tensor(Float32Array.from({ length: O * I }, () => rng.uniform(-1, 1)), [O, I]);
    const b = tensor(Float32Array.from({ length: O }, () => rng.uniform(-1, 1)), [O]);
    const y = linear(x, w, b).data;
    for (let n = 0; n < N; n++)
      for (let o = 0; o < O; o++) {
        let want = b.data[o];
        for (let i = 0; i < I; i++) want += x.data[n * I + i] * w.data[o * I + i];
        assert.ok(Math.abs(y[n * O + o] - want) < 1e-4, `linear float32, batch ${N}: [${n}, ${o}] ${y[n * O + o]} vs ${want}`);
      }
  }
});

G('conv2d with stride, padding, bias, odd sizes', () => {
  const cases = [
    { x: [1, 1, 5, 5], w: [1, 1, 3, 3], stride: 1, padding: 0 },
    { x: [2, 3, 5, 4], w: [4, 3, 3, 2], stride: 2, padding: 1 },
    { x: [1, 2, 7, 7], w: [3, 2, 1, 1], stride: 3, padding: 0 },
    { x: [2, 1, 4, 6], w: [2, 1, 3, 3], stride: [1, 2] as [number, number], padding: [2, 1] as [number, number] },
    // stride 1: the input gradient as a convolution with the flipped weights (padding up to K - 1,
    // here the full K - 1 on both axes of a non-square kernel), and past K - 1 (through col2im)
    { x: [2, 2, 5, 6], w: [3, 2, 3, 2], stride: 1, padding: [2, 1] as [number, number] },
    { x: [1, 2, 4, 4], w: [2, 2, 2, 2], stride: 1, padding: 2 },
  ];
  for (const c of cases) {
    const oc = c.w[0];
    check('conv2d with bias', (x, w, b) => conv2d(x, w, b, { stride: c.stride, padding: c.padding }), [rand(rng, c.x), rand(rng, c.w), rand(rng, [oc])]);
    check('conv2d no bias', (x, w) => conv2d(x, w, null, { stride: c.stride, padding: c.padding }), [rand(rng, c.x), rand(rng, c.w)]);
  }
});

G('conv2d backward in chunks of 2 images (5 images: chunks 2, 2, 1)', () => {
  const prev = setConvChunk(2 * 2 * 9 * 9);
  try {
    check('conv2d chunked', (x, w, b) => conv2d(x, w, b, { padding: 1 }), [rand(rng, [5, 2, 3, 3]), rand(rng, [3, 2, 3, 3]), rand(rng, [3])]);
  } finally {
    setConvChunk(prev);
  }
});

G('pooling with stride and padding', () => {
  const cases = [
    { x: [1, 1, 4, 4], k: 2, stride: 2, padding: 0 },
    { x: [2, 3, 5, 5], k: 3, stride: 2, padding: 1 },
    { x: [1, 2, 7, 5], k: [3, 2] as [number, number], stride: 1, padding: [1, 0] as [number, number] },
    { x: [1, 1, 1, 1], k: 1, stride: 1, padding: 0 },
  ];
  for (const c of cases) {
    check('maxPool2d', (x) => maxPool2d(x, c.k, { stride: c.stride, padding: c.padding }), [distinct(rng, c.x)]);
    check('avgPool2d', (x) => avgPool2d(x, c.k, { stride: c.stride, padding: c.padding }), [rand(rng, c.x)]);
  }
});

G('softmax and log-softmax along each axis; cross-entropy', () => {
  const s = [3, 1, 4];
  for (const axis of [0, 1, 2, -1]) {
    check(`softmax ${axis}`, (x) => softmax(x, axis), [rand(rng, s, { lo: -3, hi: 3 })]);
    check(`logSoftmax ${axis}`, (x) => logSoftmax(x, axis), [rand(rng, s, { lo: -3, hi: 3 })]);
  }
  for (const [N, C] of [[1, 1], [1, 3], [5, 7], [4, 2]]) {
    const targets = Array.from({ length: N }, () => rng.int(C));
    check('crossEntropy', (x) => crossEntropy(x, targets), [rand(rng, [N, C], { lo: -3, hi: 3 })]);
  }
});

G('cross-entropy with label smoothing: the value equals the formula from log-softmax; its gradient checks', () => {
  for (const [N, C, eps] of [[1, 3, 0.1], [5, 7, 0.2], [4, 10, 0.5], [3, 2, 0.05]]) {
    const targets = Array.from({ length: N }, () => rng.int(C));
    const z = rand(rng, [N, C], { lo: -4, hi: 4 });
    check(`crossEntropy smoothing ${eps}`, (x) => crossEntropy(x, targets, eps), [z]);
    // −mean_n Σ_c ((1 − ε)·onehot + ε/C) log p
    const lp = logSoftmax(z, 1);
    let want = 0;
    for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) want -= ((c === targets[n] ? 1 - eps : 0) + eps / C) * lp.data[n * C + c];
    want /= N;
    const got = crossEntropy(z, targets, eps).item();
    assert.ok(Math.abs(got - want) < 1e-9 * Math.max(1, Math.abs(want)), `N=${N} C=${C} eps=${eps}: ${got} vs ${want}`);
    assert.ok(got > crossEntropy(z, targets).item() * (1 - eps), 'the smoothed loss adds a positive term');
  }
  // a smoothed target is not one-hot: logits that put all mass on the label are no longer the minimum
  const sharp = new Tensor(new Float64Array([20, -20, -20]), [1, 3]);
  const soft = new Tensor(new Float64Array([3, 0, 0]), [1, 3]);
  assert.ok(crossEntropy(soft, [0], 0.2).item() < crossEntropy(sharp, [0], 0.2).item());
  assert.ok(crossEntropy(soft, [0]).item() > crossEntropy(sharp, [0]).item());
  assert.throws(() => crossEntropy(soft, [0], 1), /label smoothing must be in \[0, 1\)/);
  assert.throws(() => crossEntropy(soft, [0], -0.1), /label smoothing must be in \[0, 1\)/);
});

G('distillation loss: its value equals the formula built from other ops; its gradient checks', () => {
  for (const [N, C, T, alpha] of [[1, 3, 1, 0.5], [5, 7, 4, 0.9], [4, 2, 2, 0], [3, 10, 3, 1]]) {
    const targets = Array.from({ length: N }, () => rng.int(C));
    const teacher = rand(rng, [N, C], { lo: -4, hi: 4, requiresGrad: false });
    const student = rand(rng, [N, C], { lo: -3, hi: 3 });
    check(`distillationLoss T=${T} a=${alpha}`, (x) => distillationLoss(x, teacher, targets, T, alpha), [student]);
    // (1 - a)·CE + a·T²·mean_n Σ_c p_t (log p_t - log p_s), all at temperature T
    const pt = softmax(mul(teacher, 1 / T), 1);
    const kl = div(sum(mul(pt, sub(logSoftmax(mul(teacher, 1 / T), 1), logSoftmax(mul(student, 1 / T), 1)))), N);
    const want = add(mul(crossEntropy(student, targets), 1 - alpha), mul(kl, alpha * T * T)).item();
    const got = distillationLoss(student, teacher, targets, T, alpha).item();
    assert.ok(Math.abs(got - want) < 1e-9 * Math.max(1, Math.abs(want)), `T=${T} a=${alpha}: ${got} vs ${want}`);
  }
  // a student that equals its teacher: the soft term is zero, only the hard one is left
  const z = rand(rng, [3, 4], { requiresGrad: false });
  assert.ok(Math.abs(distillationLoss(z, z, [0, 1, 2], 3, 1).item()) < 1e-12);
  assert.throws(() => distillationLoss(z, rand(rng, [3, 5]), [0, 1, 2], 3, 0.5), /teacher logits \[3,5\] do not match the student's \[3,4\]/);
  assert.throws(() => distillationLoss(z, z, [0, 1, 2], 0, 0.5), /temperature must be positive/);
});

G('dropout with a fixed mask', () => {
  const s = [4, 5];
  check('dropout', (x) => dropout(x, 0.3, true, new Rng(7)), [rand(rng, s)]);
  check('dropout eval is identity', (x) => mul(dropout(x, 0.3, false, new Rng(7)), 1), [rand(rng, s)]);
});

G('batch norm 1-D and 2-D, train and eval', () => {
  for (const shape of [[5, 3], [3, 2, 3, 1], [2, 1, 2, 3], [4, 7]]) {
    const C = shape[1];
    for (const training of [true, false]) {
      const state = () => ({ runningMean: rand(rng, [C], { requiresGrad: false }), runningVar: rand(rng, [C], { lo: 0.5, hi: 2, requiresGrad: false }) });
      const st = state();
      // the running statistics change in training; give every evaluation the same starting state
      const m0 = st.runningMean.clone(), v0 = st.runningVar.clone();
      check(`batchNorm ${shape} ${training}`, (x, g, b) => {
        st.runningMean.data.set(m0.data);
        st.runningVar.data.set(v0.data);
        return batchNorm(x, g, b, st, training, 0.1, 1e-5);
      }, [rand(rng, shape), rand(rng, [C], { lo: 0.5, hi: 1.5 }), rand(rng, [C])]);
    }
  }
});

G('composite: a small network end to end', () => {
  const x = rand(rng, [3, 4], { requiresGrad: false });
  check('mlp', (w1, b1, w2) => crossEntropy(matmul(tanh(add(matmul(x, w1), b1)), w2), [0, 2, 1]), [rand(rng, [4, 5]), rand(rng, [5]), rand(rng, [5, 3])]);
});

G.run();
