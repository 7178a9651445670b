// Forward results against naive index-by-index references: GEMM in every transpose variant and edge
// size, convolution and pooling with stride and padding, broadcasting, each reduction axis, softmax,
// permute, concatenation, batch norm statistics.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  add, argmax, avgPool2d, batchNorm, cat, conv2d, div, gemmJs, gemmNaive, max, maximum, maxPool2d, mul, noGrad,
  permute, pow, relu, Rng, setConvChunk, softmax, sub, sum, tensor, Tensor, zeros, ones, matmul,
} from '../src/internal.js';
import { assertClose, rand, randShape } from './helpers.js';

const R = suite('reference');
const rng = new Rng(99);

function unravel(i: number, shape: number[]): number[] {
  const idx = new Array(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = i % shape[d];
    i = Math.floor(i / shape[d]);
  }
  return idx;
}
function ravel(idx: number[], shape: number[]): number {
  let o = 0;
  for (let d = 0; d < shape.length; d++) o = o * shape[d] + idx[d];
  return o;
}

R('gemm: all transposes, alpha, beta, offsets, leading dimensions, edge sizes', () => {
  const sizes = [1, 2, 7, 17, 33, 130];
  for (let trial = 0; trial < 24; trial++) {
    const M = sizes[rng.int(sizes.length)], N = sizes[rng.int(sizes.length)];
    const K = trial === 0 ? 300 : sizes[rng.int(sizes.length)];
    const tA = rng.random() < 0.5, tB = rng.random() < 0.5;
    const alpha = [1, -0.5, 2][rng.int(3)], beta = [0, 1, 0.25][rng.int(3)];
    const dtype = trial % 2 ? 'float32' : 'float64';
    const mk = (n: number) => (dtype === 'float32' ? new Float32Array(n) : new Float64Array(n)).map(() => rng.uniform(-1, 1));
    const aRows = tA ? K : M, aCols = tA ? M : K;
    const bRows = tB ? N : K, bCols = tB ? K : N;
    const lda = aCols + rng.int(3), ldb = bCols + rng.int(3), ldc = N + rng.int(3);
    const aOff = rng.int(5), bOff = rng.int(5), cOff = rng.int(5);
    const A = mk(aOff + aRows * lda), B = mk(bOff + bRows * ldb);
    const C1 = mk(cOff + M * ldc);
    const C2 = C1.slice();
    gemmJs(tA, tB, M, N, K, alpha, A, aOff, lda, B, bOff, ldb, beta, C1, cOff, ldc);
    gemmNaive(tA, tB, M, N, K, alpha, A, aOff, lda, B, bOff, ldb, beta, C2, cOff, ldc);
    assertClose(C1, C2, dtype === 'float32' ? 1e-5 * Math.sqrt(K) : 1e-12 * K, `gemm ${M}x${N}x${K} tA=${tA} tB=${tB} ${dtype}`);
  }
});

R('gemm: beta = 0 never reads C (NaN there does not leak); K = 0 scales C by beta', () => {
  const A = new Float32Array(6).fill(1), B = new Float32Array(6).fill(2);
  const C = new Float32Array(4).fill(NaN);
  gemmJs(false, false, 2, 2, 3, 1, A, 0, 3, B, 0, 2, 0, C, 0, 2);
  assert.equal(Array.from(C), [6, 6, 6, 6]);
  const D = new Float32Array([1, 2, 3, 4]);
  gemmJs(false, false, 2, 2, 0, 1, A, 0, 0, B, 0, 2, 0.5, D, 0, 2);
  assert.equal(Array.from(D), [0.5, 1, 1.5, 2]);
});

R('matmul equals a naive product in float32 and float64', () => {
  for (const dtype of ['float32', 'float64'] as const) {
    const a = rand(rng, [2, 5, 7], { dtype, requiresGrad: false }), b = rand(rng, [7, 3], { dtype, requiresGrad: false });
    const c = matmul(a, b);
    const ref: number[] = [];
    for (let q = 0; q < 2; q++) for (let i = 0; i < 5; i++) for (let j = 0; j < 3; j++) {
      let s = 0;
      for (let k = 0; k < 7; k++) s += a.data[q * 35 + i * 7 + k] * b.data[k * 3 + j];
      ref.push(s);
    }
    assertClose(c.data, ref, dtype === 'float32' ? 1e-6 : 1e-14, `matmul ${dtype}`);
  }
});

function naiveConv(x: Tensor, w: Tensor, b: Tensor | null, s: [number, number], p: [number, number]): number[] {
  const [N, C, H, W] = x.shape, [OC, , KH, KW] = w.shape;
  const OH = Math.floor((H + 2 * p[0] - KH) / s[0]) + 1, OW = Math.floor((W + 2 * p[1] - KW) / s[1]) + 1;
  const out: number[] = [];
  for (let n = 0; n < N; n++) for (let o = 0; o < OC; o++) for (let oh = 0; oh < OH; oh++) for (let ow = 0; ow < OW; ow++) {
    let acc = b ? b.data[o] : 0;
    for (let c = 0; c < C; c++) for (let kh = 0; kh < KH; kh++) for (let kw = 0; kw < KW; kw++) {
      const ih = oh * s[0] - p[0] + kh, iw = ow * s[1] - p[1] + kw;
      if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
      acc += x.data[((n * C + c) * H + ih) * W + iw] * w.data[((o * C + c) * KH + kh) * KW + kw];
    }
    out.push(acc);
  }
  return out;
}

R('conv2d against a naive loop, with stride and padding', () => {
  for (let t = 0; t < 10; t++) {
    const N = 1 + rng.int(3), C = 1 + rng.int(4), OC = 1 + rng.int(5);
    const KH = 1 + rng.int(4), KW = 1 + rng.int(4);
    const s: [number, number] = [1 + rng.int(3), 1 + rng.int(3)];
    const p: [number, number] = [rng.int(KH), rng.int(KW)];
    const H = KH + rng.int(6), W = KW + rng.int(6);
    const dtype = t % 2 ? 'float32' : 'float64';
    const x = rand(rng, [N, C, H, W], { dtype, requiresGrad: false }), w = rand(rng, [OC, C, KH, KW], { dtype, requiresGrad: false });
    const b = t % 3 ? rand(rng, [OC], { dtype, requiresGrad: false }) : null;
    const y = conv2d(x, w, b, { stride: s, padding: p });
    assert.equal(y.shape.slice(0, 2), [N, OC]);
    assertClose(y.data, naiveConv(x, w, b, s, p), dtype === 'float32' ? 1e-5 : 1e-13, `conv2d x${JSON.stringify(x.shape)} w${JSON.stringify(w.shape)} s${s} p${p}`);
  }
});

R('conv2d in chunks of images (last chunk smaller, single-image chunks) equals the naive loop', () => {
  const x = rand(rng, [5, 2, 6, 5], { requiresGrad: false }), w = rand(rng, [3, 2, 3, 3], { requiresGrad: false }), b = rand(rng, [3], { requiresGrad: false });
  const ref = naiveConv(x, w, b, [1, 2], [1, 1]);
  const L = 6 * 3, CKK = 18;
  for (const g of [1, 2, 3, 5]) {
    const prev = setConvChunk(CKK * L * g);
    try {
      assertClose(conv2d(x, w, b, { stride: [1, 2], padding: 1 }).data, ref, 1e-13, `conv2d with ${g} images per chunk`);
    } finally {
      setConvChunk(prev);
    }
  }
});

function naivePool(x: Tensor, k: [number, number], s: [number, number], p: [number, number], kind: 'max' | 'avg'): number[] {
  const [N, C, H, W] = x.shape;
  const OH = Math.floor((H + 2 * p[0] - k[0]) / s[0]) + 1, OW = Math.floor((W + 2 * p[1] - k[1]) / s[1]) + 1;
  const out: number[] = [];
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let oh = 0; oh < OH; oh++) for (let ow = 0; ow < OW; ow++) {
    let m = -Infinity, sum = 0;
    for (let i = 0; i < k[0]; i++) for (let j = 0; j < k[1]; j++) {
      const ih = oh * s[0] - p[0] + i, iw = ow * s[1] - p[1] + j;
      if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
      const v = x.data[((n * C + c) * H + ih) * W + iw];
      m = Math.max(m, v);
      sum += v;
    }
    out.push(kind === 'max' ? m : sum / (k[0] * k[1]));
  }
  return out;
}

R('max-pool and average-pool against naive loops, with stride and padding', () => {
  for (let t = 0; t < 12; t++) {
    const k: [number, number] = [1 + rng.int(3), 1 + rng.int(3)];
    const s: [number, number] = [1 + rng.int(3), 1 + rng.int(3)];
    const p: [number, number] = [rng.int(Math.floor(k[0] / 2) + 1), rng.int(Math.floor(k[1] / 2) + 1)];
    const x = rand(rng, [1 + rng.int(2), 1 + rng.int(3), k[0] + rng.int(6), k[1] + rng.int(6)], { requiresGrad: false });
    assertClose(maxPool2d(x, k, { stride: s, padding: p }).data, naivePool(x, k, s, p, 'max'), 0, 'maxPool2d');
    assertClose(avgPool2d(x, k, { stride: s, padding: p }).data, naivePool(x, k, s, p, 'avg'), 1e-14, 'avgPool2d');
  }
});

R('broadcasting binary ops against an index-by-index reference', () => {
  const fns: [string, (a: Tensor, b: Tensor) => Tensor, (x: number, y: number) => number][] = [
    ['add', add, (x, y) => x + y], ['sub', sub, (x, y) => x - y], ['mul', mul, (x, y) => x * y],
    ['div', div, (x, y) => x / y], ['maximum', maximum, (x, y) => Math.max(x, y)], ['pow', pow, (x, y) => Math.pow(Math.abs(x), y)],
  ];
  for (let t = 0; t < 20; t++) {
    const out = randShape(rng, 1 + rng.int(4), [1, 2, 3, 4]);
    const a = out.map((d) => (rng.random() < 0.3 ? 1 : d)).slice(rng.int(2));
    const b = out.map((d) => (rng.random() < 0.3 ? 1 : d)).slice(rng.int(2));
    const [name, op, ref] = fns[t % fns.length];
    const ta = name === 'pow' ? rand(rng, a, { lo: 0.5, hi: 2, requiresGrad: false }) : rand(rng, a, { requiresGrad: false });
    const tb = rand(rng, b, { requiresGrad: false });
    const y = op(ta, tb);
    const shape = y.shape;
    const expected: number[] = [];
    for (let i = 0; i < y.size; i++) {
      const idx = unravel(i, shape);
      const ia = ravel(idx.slice(shape.length - a.length).map((v, d) => (a[d] === 1 ? 0 : v)), a);
      const ib = ravel(idx.slice(shape.length - b.length).map((v, d) => (b[d] === 1 ? 0 : v)), b);
      expected.push(ref(ta.data[ia], tb.data[ib]));
    }
    assertClose(y.data, expected, 1e-14, `${name} ${JSON.stringify(a)} with ${JSON.stringify(b)}`);
  }
});

R('sum, max and argmax over each axis against a naive reference', () => {
  for (let t = 0; t < 10; t++) {
    const shape = randShape(rng, 1 + rng.int(4), [1, 2, 3, 5]);
    const x = rand(rng, shape, { requiresGrad: false });
    for (let axis = 0; axis < shape.length; axis++) {
      const outShape = shape.filter((_, d) => d !== axis);
      const n = outShape.reduce((p, d) => p * d, 1);
      const s = new Array(n).fill(0), m = new Array(n).fill(-Infinity), am = new Array(n).fill(0);
      for (let i = 0; i < x.size; i++) {
        const idx = unravel(i, shape);
        const o = ravel(idx.filter((_, d) => d !== axis), outShape);
        s[o] += x.data[i];
        if (x.data[i] > m[o]) {
          m[o] = x.data[i];
          am[o] = idx[axis];
        }
      }
      assertClose(sum(x, axis).data, s, 1e-14, `sum axis ${axis} of ${shape}`);
      assertClose(max(x, axis).data, m, 0, `max axis ${axis} of ${shape}`);
      assertClose(argmax(x, axis).data, am, 0, `argmax axis ${axis} of ${shape}`);
      assert.equal(sum(x, axis, true).shape, shape.map((d, q) => (q === axis ? 1 : d)));
    }
    assertClose([sum(x).item()], [Array.from(x.data).reduce((p, v) => p + v, 0)], 1e-14, 'sum all');
  }
});

R('softmax rows sum to one and match exp/sum; large logits stay finite', () => {
  const x = rand(rng, [4, 6], { lo: -5, hi: 5, requiresGrad: false });
  const y = softmax(x, 1);
  for (let i = 0; i < 4; i++) {
    let z = 0;
    for (let j = 0; j < 6; j++) z += Math.exp(x.data[i * 6 + j]);
    for (let j = 0; j < 6; j++) assert.ok(Math.abs(y.data[i * 6 + j] - Math.exp(x.data[i * 6 + j]) / z) < 1e-14);
  }
  const big = softmax(tensor([[1000, 1001, 999]], undefined, { dtype: 'float32' }));
  assert.ok(Array.from(big.data).every(Number.isFinite));
  assert.ok(Math.abs(big.data[1] - 0.6652409) < 1e-5);
});

R('permute against an index-by-index reference', () => {
  for (let t = 0; t < 10; t++) {
    const shape = randShape(rng, 2 + rng.int(3), [1, 2, 3, 4]);
    const perm = Array.from(rng.permutation(shape.length));
    const x = rand(rng, shape, { requiresGrad: false });
    const y = permute(x, perm);
    const oshape = perm.map((p) => shape[p]);
    assert.equal(y.shape, oshape);
    for (let i = 0; i < y.size; i++) {
      const oi = unravel(i, oshape);
      const xi = new Array(shape.length);
      perm.forEach((p, k) => (xi[p] = oi[k]));
      assert.is(y.data[i], x.data[ravel(xi, shape)]);
    }
  }
});

R('NaN is never hidden: relu, max-pool, max, maximum and matmul pass it on', () => {
  for (const dtype of ['float32', 'float64'] as const) {
    const x = tensor([[NaN, -1], [2, 3]], undefined, { dtype });
    assert.ok(Number.isNaN(relu(x).data[0]), `relu ${dtype}`);
    assert.ok(Number.isNaN(max(x, 1).data[0]), `max ${dtype}`);
    assert.ok(Number.isNaN(maximum(x, 0).data[0]), `maximum ${dtype}`);
    assert.ok(Number.isNaN(matmul(x, x).data[1]), `matmul ${dtype}`);
    assert.ok(Number.isNaN(maxPool2d(x.reshape([1, 1, 2, 2]), 2).data[0]), `maxPool2d ${dtype}`);
  }
});

R('cat along a middle axis', () => {
  const a = tensor([[[1, 2]], [[3, 4]]]), b = tensor([[[5, 6], [7, 8]], [[9, 10], [11, 12]]]);
  assert.equal(cat([a, b], 1).toArray(), [[[1, 2], [5, 6], [7, 8]], [[3, 4], [9, 10], [11, 12]]]);
});

R('batch norm: training normalises per channel and updates running statistics; eval uses them', () => {
  const x = rand(rng, [6, 3, 2, 2], { lo: -2, hi: 5, requiresGrad: false });
  const state = { runningMean: zeros([3], { dtype: 'float64' }), runningVar: ones([3], { dtype: 'float64' }) };
  const gamma = ones([3], { dtype: 'float64' }), beta = zeros([3], { dtype: 'float64' });
  const y = noGrad(() => batchNorm(x, gamma, beta, state, true, 0.1, 1e-5));
  for (let c = 0; c < 3; c++) {
    const vals: number[] = [], ys: number[] = [];
    for (let n = 0; n < 6; n++) for (let i = 0; i < 4; i++) {
      vals.push(x.data[(n * 3 + c) * 4 + i]);
      ys.push(y.data[(n * 3 + c) * 4 + i]);
    }
    const mu = vals.reduce((p, v) => p + v, 0) / 24;
    const v = vals.reduce((p, q) => p + (q - mu) ** 2, 0) / 24;
    const ym = ys.reduce((p, q) => p + q, 0) / 24, yv = ys.reduce((p, q) => p + (q - ym) ** 2, 0) / 24;
    assert.ok(Math.abs(ym) < 1e-12 && Math.abs(yv - v / (v + 1e-5)) < 1e-9, `channel ${c}: mean ${ym} var ${yv}`);
    assert.ok(Math.abs(state.runningMean.data[c] - 0.1 * mu) < 1e-12);
    assert.ok(Math.abs(state.runningVar.data[c] - (0.9 + 0.1 * (v * 24) / 23)) < 1e-12);
  }
  const e = batchNorm(x, gamma, beta, state, false);
  const c0 = (x.data[0] - state.runningMean.data[0]) / Math.sqrt(state.runningVar.data[0] + 1e-5);
  assert.ok(Math.abs(e.data[0] - c0) < 1e-12);
});

R.run();
