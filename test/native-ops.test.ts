// The native addon against the TypeScript reference: batch norm, elementwise, reductions, fused bias and activation, SGD, k-means, op parity and the argument checks. Shapes include 1, 7, 17, 33, 255 and
// sizes that are not multiples of the register blocks; every micro-kernel the CPU has, one and two threads.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { conv2d, crossEntropy, jsKernels, maxPool2d, relu, sum, batchNorm, tensor, Rng } from '../src/internal.js';
import type { Tensor } from '../src/internal.js';
import { assertClose, assertThrows } from './helpers.js';
import { need, isas, onBothBackends, randomFloats } from './native-shared.js';

const S = suite('native-ops');
const rng = new Rng(31);
const f32 = randomFloats(rng);

S('batch norm forward and backward (with and without the fused ReLU), training and eval, against the reference', () => {
  const a = need();
  let zeroed = false, kept = false;
  for (const [N, C, S2] of [[4, 3, 5], [1, 2, 7], [9, 1, 1], [128, 4, 33], [3, 2, 300]]) {
    for (const [training, relu] of [[true, false], [false, false], [true, true], [false, true]]) {
      const x = f32(N * C * S2, -2, 3), gamma = f32(C, 0.5, 1.5), beta = f32(C);
      const rm1 = f32(C), rv1 = f32(C, 0.5, 2), rm2 = rm1.slice(), rv2 = rv1.slice();
      const y1 = new Float32Array(x.length), y2 = new Float32Array(x.length);
      const m1 = new Float32Array(C), m2 = new Float32Array(C), s1 = new Float32Array(C), s2 = new Float32Array(C);
      a.batchNormForward(x, N, C, S2, gamma, beta, rm1, rv1, training, 0.1, 1e-5, y1, m1, s1, relu);
      jsKernels.batchNormForward(x, N, C, S2, gamma, beta, rm2, rv2, training, 0.1, 1e-5, y2, m2, s2, relu);
      assertClose(y1, y2, 2e-5, `bn forward ${N},${C},${S2} ${training} relu ${relu}`);
      if (relu) {
        // the same as the plain forward, then max(., 0); some outputs are zeroed
        const plain = new Float32Array(x.length);
        a.batchNormForward(x, N, C, S2, gamma, beta, rm1.slice(), rv1.slice(), training, 0.1, 1e-5, plain, new Float32Array(C), new Float32Array(C), false);
        assert.ok(y1.every((v, i) => v === Math.max(plain[i], 0)), 'relu of the plain forward');
        zeroed ||= y1.some((v) => v === 0);
        kept ||= y1.some((v) => v > 0);
      }
      assertClose(rm1, rm2, 1e-6, 'running mean');
      assertClose(rv1, rv2, 1e-5, 'running var');
      const g = f32(x.length), gx1 = new Float32Array(x.length), gx2 = new Float32Array(x.length);
      const gg1 = new Float32Array(C), gg2 = new Float32Array(C), gb1 = new Float32Array(C), gb2 = new Float32Array(C);
      const mask = relu ? y2 : new Float32Array(0);
      a.batchNormBackward(x, g, N, C, S2, gamma, m2, s2, training, gx1, gg1, gb1, mask);
      jsKernels.batchNormBackward(x, g, N, C, S2, gamma, m2, s2, training, gx2, gg2, gb2, mask);
      assertClose(gx1, gx2, 5e-5, 'bn gx');
      assertClose(gg1, gg2, 2e-5 * Math.sqrt(N * S2), 'bn ggamma');
      assertClose(gb1, gb2, 2e-5 * Math.sqrt(N * S2), 'bn gbeta');
      if (relu) {
        // with beta, the mask from x by the forward's arithmetic: the same bits as reading the
        // native forward's y (which it then does not read: a y of NaN changes nothing)
        const gx4 = new Float32Array(x.length), gg4 = new Float32Array(C), gb4 = new Float32Array(C);
        const gx5 = new Float32Array(x.length), gg5 = new Float32Array(C), gb5 = new Float32Array(C);
        a.batchNormBackward(x, g, N, C, S2, gamma, m1, s1, training, gx4, gg4, gb4, y1);
        a.batchNormBackward(x, g, N, C, S2, gamma, m1, s1, training, gx5, gg5, gb5, new Float32Array(x.length).fill(NaN), beta);
        for (const [p, q, what] of [[gx4, gx5, 'gx'], [gg4, gg5, 'ggamma'], [gb4, gb5, 'gbeta']] as const) assert.ok(p.every((v, i) => Object.is(v, q[i])), `mask from x: ${what}, ${N},${C},${S2} training ${training}`);
        assertThrows(() => a.batchNormBackward(x, g, N, C, S2, gamma, m1, s1, training, gx5, gg5, gb5, y1, new Float32Array(C + 1)), /batchNormBackward: beta has \d+ elements, expected \d+/);
      }
      if (relu) {
        // the same as the plain backward of the gradient zeroed where the output is not positive
        const gm = g.map((v, i) => (y2[i] > 0 ? v : 0)), gx3 = new Float32Array(x.length), gg3 = new Float32Array(C), gb3 = new Float32Array(C);
        a.batchNormBackward(x, gm, N, C, S2, gamma, m2, s2, training, gx3, gg3, gb3, new Float32Array(0));
        assertClose(gx1, gx3, 1e-5, 'masked gx');
        assertClose(gb1, gb3, 1e-5 * Math.sqrt(N * S2), 'masked gbeta');
      }
    }
  }
  assert.ok(zeroed && kept, 'the ReLU zeroed some outputs and kept others');
});

S('unary, binary (broadcast strides), permute and reduce against the reference', () => {
  const a = need();
  const x = f32(70000, -3, 3);
  for (const op of ['neg', 'exp', 'log', 'sqrt', 'abs', 'relu', 'sigmoid', 'tanh', 'square', 'sign', 'powScalar', 'clamp', 'affine'] as const) {
    const src = op === 'log' || op === 'sqrt' || op === 'powScalar' ? x.map(Math.abs) : x;
    const o1 = new Float32Array(src.length), o2 = new Float32Array(src.length);
    a.unary(op, src, o1, 1.5, 0.5);
    jsKernels.unary(op, src, o2, 1.5, 0.5);
    assertClose(o1, o2, 2e-6, `unary ${op}`);
  }
  // sigmoid is vectorized per instruction set: every one, in place, with NaN, infinities, -0, the tails
  const special = Float32Array.from([NaN, Infinity, -Infinity, -0, 0, 100, -100, 88, -88, 1e-8, -1e-8, 30, -30, ...f32(37, -20, 20)]);
  const prevIsa = a.isa();
  try {
    for (const isa of isas(a)) {
      a.setIsa(isa as 'avx2');
      const o1 = new Float32Array(special.length), o2 = new Float32Array(special.length), inPlace = special.slice();
      a.unary('sigmoid', special, o1, 0, 0);
      jsKernels.unary('sigmoid', special, o2, 0, 0);
      a.unary('sigmoid', inPlace, inPlace, 0, 0);
      assert.ok(Number.isNaN(o1[0]), `${isa}: sigmoid(NaN) is NaN`);
      assertClose(o1.subarray(1), o2.subarray(1), 2e-7, `${isa}: sigmoid of special values`);
      assert.equal(Array.from(inPlace.subarray(1)), Array.from(o1.subarray(1)), `${isa}: in place`);
      assert.ok(o1.subarray(1).every((v) => v >= 0 && v <= 1), `${isa}: sigmoid in [0, 1]`);
    }
  } finally {
    a.setIsa(prevIsa as 'avx2');
  }
  const oshape = [33, 7, 17, 2];
  const A = f32(33 * 17 * 2, 0.5, 2), B = f32(7 * 17 * 2);
  const as = [34, 0, 2, 1], bs = [0, 34, 2, 1];
  for (const op of ['add', 'sub', 'mul', 'div', 'pow', 'maximum', 'reluGrad', 'sigmoidGrad', 'tanhGrad', 'clampGrad', 'geMask', 'eqMask'] as const) {
    const n = oshape.reduce((p, d) => p * d, 1);
    const o1 = new Float32Array(n), o2 = new Float32Array(n);
    a.binary(op, A, as, B, bs, o1, oshape, -0.2, 0.3);
    jsKernels.binary(op, A, as, B, bs, o2, oshape, -0.2, 0.3);
    assertClose(o1, o2, 2e-6, `binary ${op}`);
  }
  // axes that merge: a dense same-shape pair (one row, split across the threads), a per-channel
  // operand against (N,C,H,W) (rows of H*W against one value each), a scalar, axes of length 1, a
  // broadcast row (strides 0 then 1), and a transposed operand that merges nothing
  const N4 = 3, C4 = 37, H4 = 29, W4 = 31, n4 = N4 * C4 * H4 * W4;
  const dense = [C4 * H4 * W4, H4 * W4, W4, 1], perC = [0, 1, 0, 0];
  const cases: [string, number[], number[], number[], number, number][] = [
    ['dense', [N4, C4, H4, W4], dense, dense, n4, n4],
    ['per channel', [N4, C4, H4, W4], dense, perC, n4, C4],
    ['channel first', [N4, C4, H4, W4], perC, dense, C4, n4],
    ['scalar', [N4, C4, H4, W4], dense, [0, 0, 0, 0], n4, 1],
    ['ones', [1, N4 * C4, 1, H4 * W4, 1], [0, H4 * W4, 0, 1, 0], [0, H4 * W4, 0, 1, 0], n4, n4],
    ['row', [N4 * C4, H4 * W4], [H4 * W4, 1], [0, 1], n4, H4 * W4],
    ['transposed', [C4 * H4, N4 * W4], [1, C4 * H4], [N4 * W4, 1], n4, n4],
  ];
  for (const [what, shp, sa, sb, la, lb] of cases) {
    const Aa = f32(la, 0.5, 2), Bb = f32(lb, -1, 1);
    for (const op of ['add', 'sub', 'mul', 'div', 'maximum', 'reluGrad', 'clampGrad', 'geMask'] as const) {
      const o1 = new Float32Array(n4), o2 = new Float32Array(n4);
      a.binary(op, Aa, sa, Bb, sb, o1, shp, -0.2, 0.3);
      jsKernels.binary(op, Aa, sa, Bb, sb, o2, shp, -0.2, 0.3);
      assertClose(o1, o2, 2e-6, `binary ${op} (${what})`);
    }
  }
  const ps = [5, 1, 7, 33], px = f32(5 * 7 * 33);
  for (const perm of [[3, 2, 1, 0], [0, 2, 1, 3], [1, 0, 3, 2], [0, 1, 2, 3]]) {
    const o1 = new Float32Array(px.length), o2 = new Float32Array(px.length);
    a.permute(px, ps, perm, o1);
    jsKernels.permute(px, ps, perm, o2);
    assertClose(o1, o2, 0, `permute ${perm}`);
  }
  for (const os of [[0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [7, 0, 1, 0], [0, 0, 33, 1]]) {
    const len = 1 + os.reduce((acc, s, d) => acc + (ps[d] - 1) * s, 0);
    for (const op of ['sum', 'max'] as const) {
      const o1 = new Float32Array(len), o2 = new Float32Array(len);
      a.reduce(op, px, ps, os, o1);
      jsKernels.reduce(op, px, ps, os, o2);
      assertClose(o1, o2, 1e-5, `reduce ${op} ${os}`);
    }
  }
  // large enough (>= 65536 elements) for the threaded sum along the last axis (rows of 3001: not a
  // multiple of 8), with a NaN in one row; a bias gradient's pattern (N, C, L) -> C, every row its
  // own output, everything into one
  const rs = [6, 5, 3001], rx = f32(6 * 5 * 3001);
  rx[2 * 3001 + 17] = NaN;
  for (const os of [[0, 1, 0], [5, 1, 0], [0, 0, 0]]) {
    const len = 1 + os.reduce((acc, s, d) => acc + (rs[d] - 1) * s, 0);
    const o1 = new Float32Array(len), o2 = new Float32Array(len);
    a.reduce('sum', rx, rs, os, o1);
    jsKernels.reduce('sum', rx, rs, os, o2);
    const nan1 = o1.map((v) => (Number.isNaN(v) ? 1 : 0)), nan2 = o2.map((v) => (Number.isNaN(v) ? 1 : 0));
    assert.equal(Array.from(nan1), Array.from(nan2), `NaN positions, reduce sum ${rs} ${os}`);
    assert.ok(nan1.some((v) => v === 1), 'the NaN reaches an output');
    assertClose(o1.map((v) => (Number.isNaN(v) ? 0 : v)), o2.map((v) => (Number.isNaN(v) ? 0 : v)), 1e-5, `reduce sum ${rs} ${os}`);
  }
});

S('biasActivate: the bias add and ReLU, sigmoid or tanh in one pass, against the reference on every build, 1 and 2 threads, one row split by columns', () => {
  const a = need();
  const prevIsa = a.isa(), prevThreads = a.threads();
  try {
    for (const isa of isas(a)) {
      a.setIsa(isa as 'avx2');
      // one row of 20,000 (the threads split its columns), 128 rows of 500 (the rows), ragged tails
      for (const [rows, cols] of [[1, 500], [1, 20000], [128, 500], [37, 33], [3, 7]]) {
        const y = f32(rows * cols, -9, 9);
        y[0] = NaN;
        y[1] = -0;
        const bias = f32(cols);
        for (const op of ['none', 'relu', 'sigmoid', 'tanh'] as const)
          for (const b of [bias, new Float32Array(0)]) {
            const ref = y.slice();
            jsKernels.biasActivate(ref, rows, cols, b, op);
            const outs: Float32Array[] = [];
            for (const threads of [1, 2]) {
              a.setThreads(threads);
              const o = y.slice();
              a.biasActivate(o, rows, cols, b, op);
              outs.push(o);
            }
            const what = `${isa} ${rows}x${cols} ${op} bias ${b.length ? 'yes' : 'no'}`;
            assert.ok(Number.isNaN(outs[0][0]), `${what}: NaN stays NaN`);
            assertClose(outs[0].subarray(1), ref.subarray(1), op === 'sigmoid' || op === 'tanh' ? 2e-7 : 0, what);
            assert.equal(Array.from(outs[1]), Array.from(outs[0]), `${what}: the same bits on 1 and 2 threads`);
            if (op === 'none' && !b.length) assert.ok(Object.is(outs[0][1], -0), `${what}: nothing added`);
          }
      }
    }
  } finally {
    a.setIsa(prevIsa as 'avx2');
    a.setThreads(prevThreads);
  }
  assertThrows(() => a.biasActivate(new Float32Array(6), 2, 4, new Float32Array(0), 'relu'), /biasActivate: y has 6 elements, expected 8/);
  assertThrows(() => a.biasActivate(new Float32Array(8), 2, 4, new Float32Array(3), 'relu'), /biasActivate: bias has 3 elements, expected 0 or cols = 4/);
  assertThrows(() => a.biasActivate(new Float32Array(8), 2, 4, new Float32Array(4), 'gelu' as 'relu'), /biasActivate: unknown op 'gelu'/);
  assertThrows(() => jsKernels.biasActivate(new Float32Array(8), 2, 4, new Float32Array(3), 'relu'), /biasActivate: bias has 3 elements, expected 0 or cols = 4/);
});

S('flipConvWeights: each kernel turned and the channels swapped, as the TypeScript loop, on 1 and 2 threads; argument checks', () => {
  const a = need();
  const threads = a.threads();
  try {
    // 512 x 512 x 3 x 3 splits between the threads (from 64K elements); 7 x 1 x 1 and 3 x 5 x 5 do not
    for (const [OC, C, kk] of [[512, 512, 9], [64, 27, 9], [7, 1, 1], [3, 5, 25], [50, 20, 25]]) {
      const w = f32(OC * C * kk);
      const want = new Float32Array(w.length);
      jsKernels.flipConvWeights(w, OC, C, kk, want);
      // the definition: out[c][o][q] = w[o][c][kk - 1 - q]
      for (const [o, c, q] of [[0, 0, 0], [OC - 1, C - 1, kk - 1], [OC >> 1, C >> 1, kk >> 1]]) assert.is(want[(c * OC + o) * kk + q], w[(o * C + c) * kk + kk - 1 - q]);
      for (const t of [1, 2]) {
        a.setThreads(t);
        const got = new Float32Array(w.length).fill(NaN);
        a.flipConvWeights(w, OC, C, kk, got);
        assert.ok(got.every((v, i) => Object.is(v, want[i])), `${OC}x${C}x${kk}, ${t} threads`);
      }
    }
  } finally {
    a.setThreads(threads);
  }
  assertThrows(() => a.flipConvWeights(new Float32Array(18), 2, 1, 9, new Float32Array(17)), /flipConvWeights: out has 17 elements, expected 18/);
  assertThrows(() => a.flipConvWeights(new Float32Array(17), 2, 1, 9, new Float32Array(18)), /flipConvWeights: w has 17 elements, expected 18/);
  assertThrows(() => a.flipConvWeights(new Float32Array(18), 2, 1.5, 9, new Float32Array(18)), /flipConvWeights: C must be an integer/);
  assertThrows(() => jsKernels.flipConvWeights(new Float32Array(18), 2, 1, 9, new Float32Array(17)), /flipConvWeights: w has 18 and out 17 elements, OC \* C \* kk is 18/);
});

S('sgdUpdate: the same bits as the TypeScript loop on every build (momentum, Nesterov, weight decay, none), threaded sizes', () => {
  const a = need();
  const prevIsa = a.isa();
  try {
    for (const isa of isas(a)) {
      a.setIsa(isa as 'avx2');
      for (const n of [1, 7, 70001]) {
        for (const [mu, nesterov, wd] of [[0.9, false, 5e-4], [0.9, true, 0.01], [0, false, 5e-4], [0, false, 0]] as const) {
          const p1 = f32(n), g = f32(n, -2, 2), v1 = mu ? f32(n, -0.1, 0.1) : new Float32Array(0);
          const p2 = p1.slice(), v2 = v1.slice();
          for (let step = 0; step < 3; step++) {
            a.sgdUpdate(p1, g, v1, 0.05, mu, wd, nesterov);
            jsKernels.sgdUpdate(p2, g, v2, 0.05, mu, wd, nesterov);
          }
          assert.ok(p1.every((x, i) => Object.is(x, p2[i])), `${isa}: p, n ${n}, mu ${mu}, nesterov ${nesterov}, wd ${wd}`);
          assert.ok(v1.every((x, i) => Object.is(x, v2[i])), `${isa}: v, n ${n}, mu ${mu}`);
          if (n > 1) assert.ok(p1.some((x, i) => x !== g[i]), 'the parameters moved');
        }
      }
    }
  } finally {
    a.setIsa(prevIsa as 'avx2');
  }
  assertThrows(() => a.sgdUpdate(new Float32Array(4), new Float32Array(3), new Float32Array(4), 0.1, 0.9, 0, false), /sgdUpdate: g has 3 elements, expected 4/);
  assertThrows(() => a.sgdUpdate(new Float32Array(4), new Float32Array(4), new Float32Array(0), 0.1, 0.9, 0, false), /sgdUpdate: v has 0 elements, expected 4/);
  assertThrows(() => a.sgdUpdate(new Float32Array(4), new Float32Array(4), new Float32Array(0), 0.1, 0.9, 0, 1 as unknown as boolean), /sgdUpdate: nesterov must be a boolean/);
});

S('pairwise distances (exact zero for duplicates) and a k-means step, sync and async', async () => {
  const a = need();
  for (const [n, m, d] of [[1, 1, 1], [17, 5, 33], [300, 64, 75], [255, 7, 1]]) {
    const X = f32(n * d, -3, 3), Y = f32(m * d, -3, 3);
    Y.set(X.subarray(0, Math.min(m, n) * d)); // duplicates: row i of Y equals row i of X
    const o1 = new Float32Array(n * m), o2 = new Float32Array(n * m);
    a.pairwiseSqDist(X, n, Y, m, d, o1);
    jsKernels.pairwiseSqDist(X, n, Y, m, d, o2);
    assertClose(o1, o2, 1e-5 * d, `pairwise ${n}x${m}x${d}`);
    for (let i = 0; i < Math.min(n, m); i++) assert.is(o1[i * m + i], 0, `duplicate row ${i} is at distance ${o1[i * m + i]}`);
    assert.ok(o1.every((v) => v >= 0));
    const o3 = new Float32Array(n * m);
    await a.pairwiseSqDistAsync(X, n, Y, m, d, o3);
    assert.equal(Array.from(o3), Array.from(o1));
  }
  const n = 1000, d = 20, k = 9;
  const X = f32(n * d), Cen = X.slice(0, k * d);
  const as1 = new Int32Array(n), as2 = new Int32Array(n), c1 = new Float32Array(k * d), c2 = new Float32Array(k * d);
  const k1 = new Int32Array(k), k2 = new Int32Array(k);
  const i1 = a.kmeansStep(X, n, d, Cen, k, as1, c1, k1);
  const i2 = jsKernels.kmeansStep(X, n, d, Cen, k, as2, c2, k2);
  assert.ok(Math.abs(i1 - i2) < 1e-4 * i2, `inertia ${i1} vs ${i2}`);
  assert.equal(Array.from(as1), Array.from(as2));
  assert.equal(Array.from(k1), Array.from(k2));
  assertClose(c1, c2, 1e-5, 'centroids');
  const as3 = new Int32Array(n), c3 = new Float32Array(k * d), k3 = new Int32Array(k);
  const i3 = await a.kmeansStepAsync(X, n, d, Cen, k, as3, c3, k3);
  assert.is(i3, i1);
  // an empty cluster keeps its centroid
  const far = Cen.slice();
  far.fill(1e3, 0, d);
  const c4 = new Float32Array(k * d), k4 = new Int32Array(k);
  a.kmeansStep(X, n, d, far, k, new Int32Array(n), c4, k4);
  assert.is(k4[0], 0);
  assert.equal(Array.from(c4.subarray(0, d)), Array.from(far.subarray(0, d)));
});

S('ops on the native backend match the TypeScript backend: conv2d, pooling, batch norm, loss, backward', () => {
  need();
  const run = () => {
    const r = new Rng(8);
    const mk = (shape: number[]) => tensor(Array.from({ length: shape.reduce((p, q) => p * q, 1) }, () => r.uniform(-1, 1)), shape, { requiresGrad: true });
    const x = mk([6, 3, 11, 9]), w = mk([8, 3, 3, 3]), b = mk([8]), gam = mk([8]), bet = mk([8]);
    const st = { runningMean: tensor(new Array(8).fill(0)), runningVar: tensor(new Array(8).fill(1)) };
    const h = maxPool2d(relu(batchNorm(conv2d(x, w, b, { padding: 1, stride: [1, 2] }), gam, bet, st, true)), 2);
    const loss = crossEntropy(h.reshape([6, -1]).slice(0, 6), [0, 1, 2, 3, 4, 5]);
    loss.backward();
    return [loss, x.grad!, w.grad!, b.grad!, gam.grad!, sum(h)] as Tensor[];
  };
  const [nat, ref] = onBothBackends(run);
  const names = ['loss', 'dx', 'dw', 'db', 'dgamma', 'sum'];
  nat.forEach((t, i) => assertClose(t.data, ref[i].data, 1e-4, names[i]));
});

S('batch norm forward and backward on planes of at least 256 pixels (the 8-chain sums) match the TypeScript backend', () => {
  need();
  for (const training of [true, false]) {
    const run = () => {
      const r = new Rng(10);
      const mk = (shape: number[], lo = -1, hi = 1) => tensor(Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => r.uniform(lo, hi)), shape, { requiresGrad: true });
      const x = mk([3, 4, 17, 19]), gam = mk([4]), bet = mk([4]);
      const st = { runningMean: tensor([0.1, -0.2, 0.3, 0]), runningVar: tensor([1, 0.5, 2, 1.5]) };
      const y = batchNorm(x, gam, bet, st, training);
      y.backward(tensor(Array.from({ length: y.size }, () => r.uniform(-1, 1)), y.shape));
      return [y, x.grad!, gam.grad!, bet.grad!, st.runningMean, st.runningVar];
    };
    const [nat, ref] = onBothBackends(run);
    ['y', 'dx', 'dgamma', 'dbeta', 'runningMean', 'runningVar'].forEach((name, i) => assertClose(nat[i].data, ref[i].data, 1e-4, `${name} training=${training}`));
  }
});

S('conv2d backward at stride 1 (input gradient by a convolution) on the native backend matches the TypeScript backend', () => {
  need();
  // 12-pixel rows: the native convForward runs the direct convolution; 5-pixel rows: the implicit GEMM;
  // 32x32 outputs: the weight gradient by convWeightGrad
  for (const [N, C, H, OC, k, p] of [[3, 4, 12, 6, 3, 1], [2, 5, 5, 7, 3, 2], [4, 3, 6, 5, 2, 0], [2, 3, 32, 5, 3, 1]]) {
    const run = () => {
      const r = new Rng(9);
      const mk = (shape: number[]) => tensor(Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => r.uniform(-1, 1)), shape, { requiresGrad: true });
      const x = mk([N, C, H, H]), w = mk([OC, C, k, k]), b = mk([OC]);
      const y = conv2d(x, w, b, { padding: p });
      const g = tensor(Array.from({ length: y.size }, () => r.uniform(-1, 1)), y.shape);
      y.backward(g);
      return [x.grad!, w.grad!, b.grad!, w, g];
    };
    const [nat, ref] = onBothBackends(run);
    ['dx', 'dw', 'db'].forEach((name, i) => assertClose(nat[i].data, ref[i].data, 1e-4, `${name} N${N} C${C} H${H} OC${OC} k${k} p${p}`));
    // and dx against the definition: dx[n,c,h,v] = sum over o, i, j of w[o,c,i,j] g[n,o,h+p-i,v+p-j]
    const [w, g] = [nat[3], nat[4]], O = H + 2 * p - k + 1;
    const dx = new Float64Array(N * C * H * H);
    for (let n = 0; n < N; n++)
      for (let c = 0; c < C; c++)
        for (let h = 0; h < H; h++)
          for (let v = 0; v < H; v++) {
            let acc = 0;
            for (let o = 0; o < OC; o++)
              for (let i = 0; i < k; i++)
                for (let j = 0; j < k; j++) {
                  const oh = h + p - i, ow = v + p - j;
                  if (oh >= 0 && oh < O && ow >= 0 && ow < O) acc += w.data[((o * C + c) * k + i) * k + j] * g.data[((n * OC + o) * O + oh) * O + ow];
                }
            dx[((n * C + c) * H + h) * H + v] = acc;
          }
    assertClose(nat[0].data, dx, 1e-4, `dx by definition N${N} C${C} H${H} OC${OC} k${k} p${p}`);
  }
});

S('argument checks: wrong types and lengths, negative or huge sizes, bad strides, bad ops', () => {
  const a = need();
  const f4 = () => new Float32Array(4), f2 = () => new Float32Array(2);
  assertThrows(() => a.batchNormBackward(f4(), f4(), 2, 2, 1, f2(), f2(), f2(), true, f4(), f2(), f2(), new Float32Array(3)), /batchNormBackward: y has 3 elements, expected 4/);
  assertThrows(() => a.batchNormForward(f4(), 2, 2, 1, f2(), f2(), f2(), f2(), true, 0.1, 1e-5, f4(), f2(), f2(), 0 as unknown as boolean), /batchNormForward: relu must be a boolean/);
  const A = new Float32Array(6), B = new Float32Array(6), C = new Float32Array(4);
  assertThrows(() => a.gemm(false, false, 2, 2, 3, 1, A.subarray(0, 5), 0, 3, B, 0, 2, 0, C, 0, 2), /gemm: A \(2x3, ld 3, offset 0\) needs 6 elements, the array has 5/);
  assertThrows(() => a.gemm(false, false, 2, 2, 3, 1, A, 1, 3, B, 0, 2, 0, C, 0, 2), /gemm: A .* offset 1\) needs 7 elements/);
  assertThrows(() => a.gemm(false, false, 2, 2, 3, 1, A, 0, 2, B, 0, 2, 0, C, 0, 2), /gemm: leading dimension of A is 2, less than its 3 columns/);
  assertThrows(() => a.gemm(false, false, -1, 2, 3, 1, A, 0, 3, B, 0, 2, 0, C, 0, 2), /gemm: M must be an integer in \[0, 2147483647\], got -1/);
  assertThrows(() => a.gemm(false, false, 2 ** 40, 2, 3, 1, A, 0, 3, B, 0, 2, 0, C, 0, 2), /gemm: M must be an integer/);
  assertThrows(() => a.gemm(false, false, 2.5, 2, 3, 1, A, 0, 3, B, 0, 2, 0, C, 0, 2), /gemm: M must be an integer/);
  assertThrows(() => a.gemm(false, false, 2, 2, 3, 1, new Float64Array(6) as unknown as Float32Array, 0, 3, B, 0, 2, 0, C, 0, 2), /gemm: A must be a Float32Array/);
  assertThrows(() => (a.gemm as unknown as (...x: unknown[]) => void)(false, false, 2), /gemm: expected 16 arguments, got 3/);
  assertThrows(() => a.gemm(false, false, 2, 2, 3, 1, A, 0, 3, B, 0, 2, 0, C, 0, 3), /gemm: C \(2x2, ld 3, offset 0\) needs 5 elements, the array has 4/);
  assertThrows(() => a.im2col(new Float32Array(10), 0, 1, 1, 4, 4, 3, 3, 1, 1, 0, 0, 2, 2, new Float32Array(36), 0, 4), /im2col: x .* needs 16 elements, the array has 10/);
  assertThrows(() => a.im2col(new Float32Array(16), 0, 1, 1, 4, 4, 3, 3, 1, 1, 0, 0, 2, 2, new Float32Array(30), 0, 4), /im2col: cols \(9x4, ld 4, offset 0\) needs 36 elements/);
  assertThrows(() => a.im2col(new Float32Array(32), 0, 2, 1, 4, 4, 3, 3, 1, 1, 0, 0, 2, 2, new Float32Array(36), 0, 4), /im2col: leading dimension of cols is 4, less than its 8 columns/);
  assertThrows(() => a.col2im(new Float32Array(36), 0, 4, 3, 1, 4, 4, 3, 3, 1, 1, 0, 0, 2, 2, new Float32Array(32), 0), /col2im: leading dimension of cols is 4, less than its 12 columns/);
  assertThrows(() => a.maxPool2dBackward(new Float32Array(2), new Int32Array([0, 9]), new Float32Array(4)), /maxPool2dBackward: argmax\[1\] = 9 is outside gx \(4 elements\)/);
  assertThrows(() => a.maxPool2d(new Float32Array(16), 1, 1, 4, 4, 2, 2, 2, 2, 0, 0, 2, 2, new Float32Array(3), new Int32Array(4)), /maxPool2d: out has 3 elements, expected 4/);
  assertThrows(() => a.binary('add', new Float32Array(3), [1], new Float32Array(4), [1], new Float32Array(4), [4], 0, 0), /binary: aStrides over outShape reach beyond a \(3 elements\)/);
  assertThrows(() => a.binary('nope' as 'add', new Float32Array(1), [], new Float32Array(1), [], new Float32Array(1), [], 0, 0), /binary: unknown op 'nope'/);
  assertThrows(() => a.binary('add', new Float32Array(4), [-1], new Float32Array(4), [1], new Float32Array(4), [4], 0, 0), /binary: aStrides\[0\] = -1 is not a valid integer/);
  assertThrows(() => a.unary('exp', new Float32Array(4), new Float32Array(3), 0, 0), /unary: out has 3 elements, expected 4/);
  assertThrows(() => a.permute(new Float32Array(6), [2, 3], [0, 0], new Float32Array(6)), /permute: perm is not a permutation/);
  assertThrows(() => a.reduce('sum', new Float32Array(6), [2, 3], [1, 1], new Float32Array(2)), /reduce: outStrides over shape reach beyond out/);
  assertThrows(() => a.pairwiseSqDist(new Float32Array(5), 2, new Float32Array(6), 2, 3, new Float32Array(4)), /pairwiseSqDist: X \(2x3, ld 3, offset 0\) needs 6 elements/);
  assertThrows(() => a.kmeansStep(new Float32Array(6), 2, 3, new Float32Array(6), 2, new Int32Array(1), new Float32Array(6), new Int32Array(2)), /kmeansStep: assign has 1 elements, expected 2/);
  assertThrows(() => a.setThreads(0), /setThreads: n must be an integer in \[1, 1024\]/);
  assertThrows(() => a.setIsa('sse9' as 'avx2'), /setIsa: unknown micro-kernel 'sse9'/);
});

S.run();
