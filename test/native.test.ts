// The native addon against the TypeScript reference: every kernel on random shapes that include 1, 7,
// 17, 33, 255 and sizes that are not multiples of the register blocks, all transpose variants, every
// micro-kernel the CPU has, one and two threads; and the argument checks.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  conv2d, crossEntropy, jsKernels, maxPool2d, nativeAddon, nativeLoadError, relu, Rng, setBackend, sum, batchNorm, tensor, kernelBackend,
} from '../src/internal.js';
import type { FloatArray, NativeAddon, Tensor } from '../src/internal.js';
import { assertClose, assertThrows } from './helpers.js';

const S = suite('native');
const rng = new Rng(31);
const f32 = (n: number, lo = -1, hi = 1) => Float32Array.from({ length: n }, () => rng.uniform(lo, hi));

function need(): NativeAddon {
  const a = nativeAddon();
  if (!a) assert.unreachable(`the native addon did not load: ${nativeLoadError()}`);
  return a!;
}

function isas(a: NativeAddon): string[] {
  const prev = a.isa();
  const ok = (['generic', 'avx2', 'avx512'] as const).filter((i) => a.setIsa(i));
  a.setIsa(prev as 'avx2');
  return ok;
}

/** run() on the native backend, then on the TypeScript one (restoring the automatic choice) */
function onBothBackends<R>(run: () => R): [R, R] {
  const nat = run();
  setBackend('js');
  try {
    return [nat, run()];
  } finally {
    setBackend(null);
  }
}

S('the addon loads and serves the float32 kernels; float64 stays on TypeScript', () => {
  const a = need();
  assert.ok(a.threads() >= 1);
  assert.ok(['generic', 'avx2', 'avx512'].includes(a.isa()));
  assert.is(kernelBackend('gemm', 'float32'), 'native');
  assert.is(kernelBackend('gemm', 'float64'), 'js');
  console.log(`  (micro-kernels here: ${isas(a).join(', ')}; in use: ${a.isa()}; threads ${a.threads()})`);
});

/** C = alpha A·Bᵀ + beta C (B stored by rows) against the reference for each [M, N, K, alpha, beta],
 *  with padded leading dimensions, on every build, 1 and 2 threads; C's padding never written */
function gemmByRows(what: string, cases: number[][]): void {
  const a = need();
  const prevIsa = a.isa(), prevThreads = a.threads();
  try {
    for (const isa of isas(a)) {
      a.setIsa(isa as 'avx2');
      for (const threads of [1, 2]) {
        a.setThreads(threads);
        for (const [M, N, K, alpha, beta] of cases) {
          const lda = K + (M % 2), ldb = K + 1 + (N % 2), ldc = N + 1 + (K % 2);
          const A = f32(M * lda), B = f32(N * ldb), C = f32(M * ldc);
          const C2 = C.slice();
          a.gemm(false, true, M, N, K, alpha, A, 0, lda, B, 0, ldb, beta, C, 0, ldc);
          jsKernels.gemm(false, true, M, N, K, alpha, A, 0, lda, B, 0, ldb, beta, C2, 0, ldc);
          assertClose(C, C2, 3e-7 * K + 1e-6, `${what} ${isa} threads=${threads} ${M}x${N}x${K} alpha=${alpha} beta=${beta}`);
          for (let i = 0; i < M; i++) for (let j = N; j < ldc; j++) assert.is(C[i * ldc + j], C2[i * ldc + j], 'C outside the product');
        }
      }
    }
  } finally {
    a.setIsa(prevIsa as 'avx2');
    a.setThreads(prevThreads);
  }
}

S('gemm with at most 4 rows times B stored by rows (a linear layer at batch 1 to 4): the dot-product kernel on every build, 1 and 2 threads, ragged K and N', () => {
  // M = 5 is past the dot-product kernel's limit: the packed GEMM takes it, and must agree too
  const cases: number[][] = [];
  for (const M of [1, 2, 3, 4, 5])
    for (const [N, K] of [[1, 16], [3, 17], [4, 31], [5, 33], [130, 784], [2001, 500], [67, 2000]]) cases.push([M, N, K, M === 2 ? -0.5 : 1, M === 3 ? 0.25 : 0]);
  gemmByRows('rows', cases);
});

S('gemm with at most 16 columns, more rows and B stored by rows (a 10-class classifier at batch 128): the dot-product kernel transposed on every build, 1 and 2 threads', () => {
  // N = 17 is past the limit (the packed GEMM); M = 130 and 301 split between the threads at ragged
  // points; K = 15 is below the dot-product kernel's minimum
  gemmByRows('columns', [[5, 1, 16, 1, 1], [17, 10, 33, 1, 0], [128, 10, 2000, 1, 0], [130, 16, 500, -0.5, 0], [301, 7, 250, 1, 0.25], [64, 17, 300, 1, 0], [40, 3, 15, 1, 0]]);
});

S('gemm: every micro-kernel, 1 and 2 threads, all transposes, alpha, beta, offsets, edge sizes', () => {
  const a = need();
  const prevIsa = a.isa(), prevThreads = a.threads();
  const sizes = [1, 7, 17, 33, 255, 2, 13, 100];
  try {
    for (const isa of isas(a)) {
      a.setIsa(isa as 'avx2');
      for (const threads of [1, 2]) {
        a.setThreads(threads);
        for (let t = 0; t < 15; t++) {
          // t = 0, 1: many row blocks and column panels; t = 2: K in two balanced blocks; t = 3: a small
          // C with a long K (split across threads); t = 4: a few hundred rows (a shared A block,
          // ragged at 300); the rest: random edge sizes
          const M = t === 0 ? 600 : t === 3 ? 20 : t === 4 ? 200 : sizes[rng.int(sizes.length)];
          const N = t === 1 ? 530 : t === 3 ? 25 : t === 4 ? 300 : sizes[rng.int(sizes.length)];
          const K = t < 3 || t === 4 ? 700 : t === 3 ? 9000 : sizes[rng.int(sizes.length)];
          const tA = rng.random() < 0.5, tB = rng.random() < 0.5;
          const alpha = [1, -0.5, 2][rng.int(3)], beta = [0, 1, 0.25][rng.int(3)];
          const lda = (tA ? M : K) + rng.int(3), ldb = (tB ? K : N) + rng.int(3), ldc = N + rng.int(3);
          const aOff = rng.int(4), bOff = rng.int(4), cOff = rng.int(4);
          const A = f32(aOff + (tA ? K : M) * lda), B = f32(bOff + (tB ? N : K) * ldb), C = f32(cOff + M * ldc);
          const C2 = C.slice();
          a.gemm(tA, tB, M, N, K, alpha, A, aOff, lda, B, bOff, ldb, beta, C, cOff, ldc);
          jsKernels.gemm(tA, tB, M, N, K, alpha, A, aOff, lda, B, bOff, ldb, beta, C2, cOff, ldc);
          assertClose(C, C2, 3e-7 * K + 1e-6, `gemm ${isa} threads=${threads} ${M}x${N}x${K} tA=${tA} tB=${tB} alpha=${alpha} beta=${beta}`);
        }
        // every transpose on shapes whose packing has ragged ends everywhere: rows not a multiple of
        // any MR, columns of a partial panel, K blocks not a multiple of the packers' 8-wide steps;
        // on 2 threads, 400 rows with K of two blocks (300) take independent row shares (each thread
        // packing op(B) itself), or column shares with a transposed B of 500 columns, 400 rows with K
        // of one block (200) the shared-B-panel split (row
        // blocks), and so do 60 rows with 3 column panels; 60 rows with 7 panels take the
        // shared-A-block split (column pieces); 4100 columns make two equal column blocks, split
        // into column shares in one K block (30), shared A blocks in two (300); 199 x 2100 on 1 thread (more rows than any build's MC) and
        // 400 x 4200 on both (each thread's column share with a transposed B) take the serial core's
        // whole-A block of more than MC rows against a wide B
        for (const [M, N, K] of [[97, 45, 203], [400, 70, 300], [400, 500, 300], [400, 70, 200], [60, 40, 1000], [60, 100, 1000], [20, 4100, 30], [20, 4100, 300], [199, 2100, 300], [400, 4200, 300]])
          for (const tA of [false, true])
            for (const tB of [false, true]) {
              const lda = (tA ? M : K) + 1, ldb = (tB ? K : N) + 2, ldc = N + 3;
              const A = f32((tA ? K : M) * lda), B = f32((tB ? N : K) * ldb), C = f32(M * ldc);
              const C2 = C.slice();
              a.gemm(tA, tB, M, N, K, 1, A, 0, lda, B, 0, ldb, 0.5, C, 0, ldc);
              jsKernels.gemm(tA, tB, M, N, K, 1, A, 0, lda, B, 0, ldb, 0.5, C2, 0, ldc);
              assertClose(C, C2, 3e-7 * K + 1e-6, `gemm ${isa} threads=${threads} ${M}x${N}x${K} tA=${tA} tB=${tB}`);
            }
      }
    }
  } finally {
    a.setIsa(prevIsa as 'avx2');
    a.setThreads(prevThreads);
  }
});

S('gemm: beta = 0 never reads C; K = 0 only scales; a NaN in A propagates', () => {
  const a = need();
  const C = new Float32Array(4).fill(NaN);
  a.gemm(false, false, 2, 2, 3, 1, new Float32Array(6).fill(1), 0, 3, new Float32Array(6).fill(2), 0, 2, 0, C, 0, 2);
  assert.equal(Array.from(C), [6, 6, 6, 6]);
  const D = new Float32Array([1, 2, 3, 4]);
  a.gemm(false, false, 2, 2, 0, 1, new Float32Array(0), 0, 1, new Float32Array(0), 0, 2, 0.5, D, 0, 2);
  assert.equal(Array.from(D), [0.5, 1, 1.5, 2]);
  const A = new Float32Array(6).fill(1);
  A[0] = NaN;
  const E = new Float32Array(4);
  a.gemm(false, false, 2, 2, 3, 1, A, 0, 3, new Float32Array(6).fill(1), 0, 2, 0, E, 0, 2);
  assert.ok(Number.isNaN(E[0]) && E[2] === 3);
});

S('gemmAsync resolves with the same result as gemm and keeps the event loop free', async () => {
  const a = need();
  const n = 300;
  const A = f32(n * n), B = f32(n * n), C1 = new Float32Array(n * n), C2 = new Float32Array(n * n);
  a.gemm(false, true, n, n, n, 1, A, 0, n, B, 0, n, 0, C1, 0, n);
  let ticks = 0;
  const timer = setInterval(() => ticks++, 0);
  await a.gemmAsync(false, true, n, n, n, 1, A, 0, n, B, 0, n, 0, C2, 0, n);
  clearInterval(timer);
  assert.equal(Array.from(C1), Array.from(C2));
});

S('gemm: the row blocks of a thread slowed by other work are taken over, and the product is the same bit for bit', async () => {
  const a = need();
  const prevThreads = a.threads();
  try {
    a.setThreads(2);
    // 1200 rows and K of 8 blocks: each thread packs op(B) itself and runs its own row blocks, then
    // takes the other's where that one is behind. Here the main thread spins beside an async product,
    // so one of the product's two threads shares a core with it
    const M = 1200, N = 400, K = 2000;
    const A = f32(M * K), B = f32(K * N), C1 = new Float32Array(M * N), C2 = new Float32Array(M * N);
    a.gemm(false, false, M, N, K, 1, A, 0, K, B, 0, N, 0, C1, 0, N);
    const ref = new Float32Array(M * N);
    jsKernels.gemm(false, false, M, N, K, 1, A, 0, K, B, 0, N, 0, ref, 0, N);
    assertClose(C1, ref, 3e-7 * K + 1e-6, 'gemm 1200x400x2000 on 2 threads');
    for (let r = 0; r < 6; r++) {
      C2.fill(NaN);
      const p = a.gemmAsync(false, false, M, N, K, 1, A, 0, K, B, 0, N, 0, C2, 0, N);
      const until = performance.now() + 10 + 10 * r;
      while (performance.now() < until);
      await p;
      for (let i = 0; i < C1.length; i++) if (!Object.is(C1[i], C2[i])) assert.unreachable(`round ${r}: C[${i}] = ${C2[i]}, alone ${C1[i]}`);
    }
  } finally {
    a.setThreads(prevThreads);
  }
});

function geometry() {
  const KH = 1 + rng.int(4), KW = 1 + rng.int(4), SH = 1 + rng.int(3), SW = 1 + rng.int(3);
  const PH = rng.int(KH), PW = rng.int(KW);
  const H = KH + rng.int(9), W = KW + rng.int(9), C = 1 + rng.int(5);
  const OH = Math.floor((H + 2 * PH - KH) / SH) + 1, OW = Math.floor((W + 2 * PW - KW) / SW) + 1;
  return { C, H, W, KH, KW, SH, SW, PH, PW, OH, OW };
}

S('im2col and col2im (with offsets and a wide row stride), max-pool forward and backward', () => {
  const a = need();
  for (let t = 0; t < 20; t++) {
    const g = geometry();
    const G = 1 + rng.int(4);
    const L = g.OH * g.OW, rows = g.C * g.KH * g.KW, ld = G * L + rng.int(5), off = rng.int(3);
    const x = f32(7 + G * g.C * g.H * g.W);
    const c1 = f32(off + rows * ld), c2 = c1.slice();
    a.im2col(x, 7, G, g.C, g.H, g.W, g.KH, g.KW, g.SH, g.SW, g.PH, g.PW, g.OH, g.OW, c1, off, ld);
    jsKernels.im2col(x, 7, G, g.C, g.H, g.W, g.KH, g.KW, g.SH, g.SW, g.PH, g.PW, g.OH, g.OW, c2, off, ld);
    assertClose(c1, c2, 0, `im2col G=${G} ${JSON.stringify(g)}`);
    const d1 = f32(3 + G * g.C * g.H * g.W), d2 = d1.slice();
    a.col2im(c1, off, ld, G, g.C, g.H, g.W, g.KH, g.KW, g.SH, g.SW, g.PH, g.PW, g.OH, g.OW, d1, 3);
    jsKernels.col2im(c1, off, ld, G, g.C, g.H, g.W, g.KH, g.KW, g.SH, g.SW, g.PH, g.PW, g.OH, g.OW, d2, 3);
    assertClose(d1, d2, 1e-6, 'col2im');
    // pooling needs padding <= half the kernel
    const p = { ...g, PH: rng.int(Math.floor(g.KH / 2) + 1), PW: rng.int(Math.floor(g.KW / 2) + 1) };
    p.OH = Math.floor((p.H + 2 * p.PH - p.KH) / p.SH) + 1;
    p.OW = Math.floor((p.W + 2 * p.PW - p.KW) / p.SW) + 1;
    const N = 1 + rng.int(3);
    const px = f32(N * p.C * p.H * p.W);
    const n = N * p.C * p.OH * p.OW;
    const o1 = new Float32Array(n), o2 = new Float32Array(n), i1 = new Int32Array(n), i2 = new Int32Array(n);
    a.maxPool2d(px, N, p.C, p.H, p.W, p.KH, p.KW, p.SH, p.SW, p.PH, p.PW, p.OH, p.OW, o1, i1);
    jsKernels.maxPool2d(px, N, p.C, p.H, p.W, p.KH, p.KW, p.SH, p.SW, p.PH, p.PW, p.OH, p.OW, o2, i2);
    assertClose(o1, o2, 0, 'maxPool2d');
    assert.equal(Array.from(i1), Array.from(i2));
    const gout = f32(n), g1 = new Float32Array(px.length), g2 = new Float32Array(px.length);
    a.maxPool2dBackward(gout, i1, g1);
    jsKernels.maxPool2dBackward(gout, i2, g2);
    assertClose(g1, g2, 1e-7, 'maxPool2dBackward');
  }
});

S('max-pool 2×2 stride 2 (the fast path, threaded): ties, NaNs, odd sizes, no argmax; threaded backward with overlapping windows', () => {
  const a = need();
  for (const [N, C, H, W] of [[3, 5, 7, 9], [64, 20, 24, 24], [2, 3, 2, 2], [2, 3, 6, 13]]) {
    const n = N * C * H * W;
    // values from a small set make ties common; a few NaNs must win their windows
    const x = Float32Array.from({ length: n }, (_, i) => (i % 97 === 5 ? NaN : Math.floor(rng.uniform(0, 4))));
    const OH = Math.floor(H / 2), OW = Math.floor(W / 2), m = N * C * OH * OW;
    const o1 = new Float32Array(m), o2 = new Float32Array(m), i1 = new Int32Array(m), i2 = new Int32Array(m);
    a.maxPool2d(x, N, C, H, W, 2, 2, 2, 2, 0, 0, OH, OW, o1, i1);
    jsKernels.maxPool2d(x, N, C, H, W, 2, 2, 2, 2, 0, 0, OH, OW, o2, i2);
    assert.equal(Array.from(i1), Array.from(i2), `argmax ${N}x${C}x${H}x${W}`);
    assert.equal(Array.from(o1, (v) => (v !== v ? 'NaN' : v)), Array.from(o2, (v) => (v !== v ? 'NaN' : v)));
    const o3 = new Float32Array(m);
    a.maxPool2d(x, N, C, H, W, 2, 2, 2, 2, 0, 0, OH, OW, o3, new Int32Array(0));
    assert.equal(Array.from(o3, (v) => (v !== v ? 'NaN' : v)), Array.from(o1, (v) => (v !== v ? 'NaN' : v)), 'without argmax');
  }
  // 3×3 windows with stride 1 overlap: many outputs add into one input, across the threads' ranges
  const N = 16, C = 16, H = 20, W = 20, OH = 18, OW = 18, m = N * C * OH * OW;
  const x = Float32Array.from({ length: N * C * H * W }, () => rng.uniform(-1, 1));
  const o = new Float32Array(m), arg = new Int32Array(m);
  a.maxPool2d(x, N, C, H, W, 3, 3, 1, 1, 0, 0, OH, OW, o, arg);
  const g = Float32Array.from({ length: m }, () => rng.uniform(-1, 1));
  const g1 = new Float32Array(x.length), g2 = new Float32Array(x.length);
  a.maxPool2dBackward(g, arg, g1);
  jsKernels.maxPool2dBackward(g, arg, g2);
  assertClose(g1, g2, 1e-6, 'overlapping backward');
});

S('convolution epilogue: channel-major and image-major, scale/shift/ReLU, 2×2 pool with odd sizes and NaNs, in place; against the reference', () => {
  const a = need();
  const show = (o: Float32Array) => Array.from(o, (v) => (v !== v ? 'NaN' : Math.fround(v)));
  for (const [G, C, H, W] of [[1, 1, 1, 1], [3, 5, 7, 9], [2, 17, 24, 24], [64, 20, 24, 24], [4, 3, 2, 3]]) {
    const n = G * C * H * W;
    const x = Float32Array.from({ length: n }, (_, i) => (i % 89 === 7 ? NaN : rng.uniform(-2, 2)));
    for (const cm of [true, false]) {
      for (const pool of [1, 2]) {
        for (const [scale, shift, relu] of [[f32(C), f32(C), true], [new Float32Array(0), f32(C), false], [new Float32Array(0), new Float32Array(0), true], [f32(C), new Float32Array(0), false]] as const) {
          const m = G * C * (pool === 2 ? Math.floor(H / 2) * Math.floor(W / 2) : H * W);
          const o1 = new Float32Array(m + 3), o2 = new Float32Array(m + 3);
          const xx = new Float32Array(n + 2);
          xx.set(x, 2);
          a.convEpilogue(xx, 2, cm, G, C, H, W, scale, shift, relu, pool, o1, 3);
          jsKernels.convEpilogue(xx, 2, cm, G, C, H, W, scale, shift, relu, pool, o2, 3);
          const what = `${G}x${C}x${H}x${W} channelMajor=${cm} pool=${pool} scale=${scale.length} shift=${shift.length} relu=${relu}`;
          assert.equal(show(o1.subarray(0, 3)), [0, 0, 0], `${what}: wrote before its offset`);
          const nan1 = show(o1).map((v) => v === 'NaN'), nan2 = show(o2).map((v) => v === 'NaN');
          assert.equal(nan1, nan2, `${what}: NaNs`);
          assertClose(o1.map((v) => (v !== v ? 0 : v)), o2.map((v) => (v !== v ? 0 : v)), 1e-6, what);
          if (relu) assert.ok(o1.every((v) => !(v < 0)), `${what}: a negative value after ReLU`);
        }
      }
    }
    // in place (image-major, no pool) gives what a separate output gives
    const sc = f32(C), sh = f32(C);
    const sep = new Float32Array(n), inPlace = x.slice();
    a.convEpilogue(x, 0, false, G, C, H, W, sc, sh, true, 1, sep, 0);
    a.convEpilogue(inPlace, 0, false, G, C, H, W, sc, sh, true, 1, inPlace, 0);
    assert.equal(show(inPlace), show(sep), `in place ${G}x${C}x${H}x${W}`);
  }
  const x = f32(2 * 3 * 4 * 4);
  assertThrows(() => a.convEpilogue(x, 0, true, 2, 3, 4, 4, f32(2), new Float32Array(0), false, 1, new Float32Array(96), 0), /convEpilogue: scale has 2 elements, expected 0 or C = 3/);
  assertThrows(() => a.convEpilogue(x, 0, true, 2, 3, 4, 4, new Float32Array(0), new Float32Array(0), false, 3, new Float32Array(96), 0), /convEpilogue: pool must be an integer in \[1, 2\]/);
  assertThrows(() => a.convEpilogue(x, 0, true, 2, 3, 4, 4, new Float32Array(0), new Float32Array(0), false, 2, new Float32Array(23), 0), /convEpilogue: out .* needs 24 elements, the array has 23/);
  assertThrows(() => a.convEpilogue(x, 1, true, 2, 3, 4, 4, new Float32Array(0), new Float32Array(0), false, 1, new Float32Array(96), 0), /convEpilogue: x .* needs 97 elements/);
  assertThrows(() => a.convEpilogue(x, 0, true, 2, 3, 4, 4, new Float32Array(0), new Float32Array(0), false, 1, x, 0), /convEpilogue: out overlaps x/);
  assertThrows(() => a.convEpilogue(x, 0, false, 2, 3, 4, 4, new Float32Array(0), new Float32Array(0), false, 2, x, 0), /convEpilogue: out overlaps x/);
});

S('convolution forward (implicit im2col in the GEMM, every path: per image, chunks, short rows, strides, padding) with its epilogue, against the reference', () => {
  const a = need();
  const prevThreads = a.threads(), prevIsa = a.isa(), prevWinograd = a.winograd();
  try {
    // [N, C, H, W, OC, K, stride, pad, pool]: LeNet-like (pool, no pad), a large map with a GEMM worth
    // a pass per image, short output rows (explicit im2col), strided, rectangular, 1x1, a kernel wider
    // than the padded input's valid part, a long K over a small C (the GEMM splits K across threads), a strided
    // convolution without padding (gathered panels)
    const cases = [[5, 3, 12, 12, 7, 5, 1, 0, 2], [2, 16, 32, 32, 64, 3, 1, 1, 1], [3, 17, 4, 4, 33, 3, 1, 1, 1], [4, 5, 11, 9, 6, 3, 2, 1, 2],
      [2, 4, 7, 13, 5, 1, 1, 0, 1], [1, 1, 28, 28, 20, 5, 1, 0, 2], [3, 2, 3, 3, 4, 5, 1, 2, 1], [1, 512, 8, 8, 64, 3, 1, 1, 1], [3, 6, 17, 19, 9, 3, 2, 0, 1],
      // stride 1 with rows of 8 or more (and an image per thread, or at most 32 taps): the direct
      // convolution; rows of 1 (tiles across rows), 3, 5, 4, 6 vectors, channel blocks with
      // remainders, padding, odd pooled sizes
      [3, 3, 10, 21, 13, 3, 1, 1, 2], [1, 3, 6, 38, 5, 3, 1, 0, 1], [2, 1, 12, 32, 14, 3, 1, 1, 1], [2, 2, 9, 40, 7, 4, 1, 2, 1],
      // rows of 24 and 30 (with 16-float vectors: padded to 32, a part vector per row), LeNet-5's
      // merged first layer pooled, one unpooled with padding
      [3, 1, 28, 28, 10, 5, 1, 0, 2], [2, 3, 12, 30, 9, 3, 1, 1, 1],
      // one image of at most 32 taps: its blocks of output channels split between the threads (29
      // channels: a short last block), pooled (with 16-float vectors the narrow kernel below)
      [1, 3, 16, 16, 29, 3, 1, 1, 2],
      // one image on 2 threads: the GEMM paths for stride 1 (a per-image GEMM; chunks with a pool)
      [1, 48, 32, 32, 96, 3, 1, 1, 1], [1, 5, 12, 12, 7, 5, 1, 0, 2], [1, 9, 10, 10, 11, 3, 1, 1, 2],
      // 40 images of 121 pixels side by side, one K block: on 2 threads each takes a share of the
      // columns, the second starting inside an image
      [40, 3, 22, 22, 8, 3, 2, 1, 1],
      // a small map at stride 1 with at least 1e7 FLOPs an image: the explicit im2col matrix, in two
      // chunks of images (at most 16 MB each), pooled to an odd size
      [12, 1024, 7, 7, 24, 3, 1, 1, 2],
      // at most 4 output pixels in all: the transposed im2col matrix times the weights by rows (one
      // 2x2 image, pooled or not; two 1x2 images)
      [1, 32, 2, 2, 24, 3, 1, 1, 1], [1, 20, 2, 2, 12, 3, 1, 1, 2], [2, 16, 1, 2, 8, 3, 1, 1, 1],
      // at most 4 vectors of output pixels (16-64 on AVX-512, 8-32 on AVX2): the weights read in
      // place by the narrow kernel; pooled, part vectors (9, 24, 36 pixels), two images side by side,
      // channel counts past a whole number of its row tiles, split between threads
      [1, 40, 4, 4, 50, 3, 1, 1, 2], [1, 24, 6, 6, 30, 3, 1, 1, 1], [2, 20, 3, 4, 100, 3, 1, 1, 1], [1, 16, 5, 5, 16, 3, 1, 0, 1],
      // one image at stride 1 (the narrow kernel on the image's kernel-column copies): maps of more
      // than 4 vectors in groups with a part group (100, 63 pixels), 5x5 taps with and without
      // padding, 16 channels (fewer row tiles than threads on the widest tiles), 17 and 40
      [1, 24, 10, 10, 17, 5, 1, 2, 2], [1, 8, 7, 9, 40, 3, 1, 1, 1], [1, 2, 14, 14, 16, 5, 1, 0, 2], [1, 32, 16, 16, 40, 3, 1, 1, 2], [1, 64, 8, 8, 16, 3, 1, 1, 1],
      // several images on it (with 16-float vectors, rows not a multiple of 16): LeNet-5's conv2 and
      // its merged form, padding, 3 images on 2 threads
      [4, 20, 12, 12, 50, 5, 1, 0, 2], [3, 10, 12, 12, 25, 5, 1, 0, 1], [3, 8, 10, 10, 20, 3, 1, 1, 1],
      // one image of few channels on a large map: the direct kernel, its channel blocks split between
      // the threads (32x32 with 16-float vectors, 16x16 with 8; short last blocks, pooled)
      [1, 24, 32, 32, 24, 3, 1, 1, 2], [1, 16, 32, 32, 45, 3, 1, 1, 1], [1, 32, 16, 16, 19, 3, 1, 1, 2]];
    // the direct and GEMM paths; Winograd's (other rounding, its own bounds) in winograd.test.ts
    a.setWinograd('off');
    for (const [isa, threads] of [...isas(a).map((i) => [i, 2] as const), [prevIsa, 1] as const]) {
      a.setIsa(isa as 'avx2');
      a.setThreads(threads);
      for (const [N, C, H, W, OC, K, st, pad, pool] of cases) {
        const OH = Math.floor((H + 2 * pad - K) / st) + 1, OW = Math.floor((W + 2 * pad - K) / st) + 1;
        const x = f32(N * C * H * W + 2), w = f32(OC * C * K * K);
        const m = N * OC * (pool === 2 ? Math.floor(OH / 2) * Math.floor(OW / 2) : OH * OW);
        for (const [scale, shift, relu] of [[new Float32Array(0), new Float32Array(0), false], [f32(OC), f32(OC), true], [new Float32Array(0), f32(OC), false]] as const) {
          const o1 = new Float32Array(m + 1), o2 = new Float32Array(m + 1);
          a.convForward(x, 2, N, C, H, W, K, K, st, st, pad, pad, OH, OW, w, OC, scale, shift, relu, pool, o1, 1);
          jsKernels.convForward(x, 2, N, C, H, W, K, K, st, st, pad, pad, OH, OW, w, OC, scale, shift, relu, pool, o2, 1);
          assert.is(o1[0], 0, 'wrote before its offset');
          assertClose(o1, o2, 3e-7 * C * K * K + 1e-6, `${N}x${C}x${H}x${W} -> ${OC} k${K} s${st} p${pad} pool${pool} scale=${scale.length} ${isa} threads=${threads}`);
        }
      }
    }
  } finally {
    a.setIsa(prevIsa as 'avx2');
    a.setThreads(prevThreads);
    a.setWinograd(prevWinograd);
  }
  // an output smaller than the input allows (OH, OW come from the caller): the first rows and columns
  // of the full output, nothing read or written out of bounds, on the direct path (2 images) and the
  // GEMM path (1 image, 2 threads)
  for (const N of [2, 1]) {
    const x = f32(N * 2 * 20 * 20), w = f32(3 * 2 * 9);
    const o1 = new Float32Array(N * 3 * 4 * 8), o2 = new Float32Array(N * 3 * 4 * 8);
    a.convForward(x, 0, N, 2, 20, 20, 3, 3, 1, 1, 1, 1, 4, 8, w, 3, new Float32Array(0), new Float32Array(0), false, 1, o1, 0);
    jsKernels.convForward(x, 0, N, 2, 20, 20, 3, 3, 1, 1, 1, 1, 4, 8, w, 3, new Float32Array(0), new Float32Array(0), false, 1, o2, 0);
    assertClose(o1, o2, 1e-5, `truncated output, ${N} images`);
  }
  const x = f32(2 * 3 * 6 * 6), w = f32(4 * 27), out = new Float32Array(2 * 4 * 16);
  assertThrows(() => a.convForward(x, 0, 2, 3, 6, 6, 3, 3, 1, 1, 0, 0, 4, 4, w.subarray(1), 4, new Float32Array(0), new Float32Array(0), false, 1, out, 0), /convForward: w has 107 elements, expected 108/);
  assertThrows(() => a.convForward(x, 1, 2, 3, 6, 6, 3, 3, 1, 1, 0, 0, 4, 4, w, 4, new Float32Array(0), new Float32Array(0), false, 1, out, 0), /convForward: x .* needs 217 elements/);
  assertThrows(() => a.convForward(x, 0, 2, 3, 6, 6, 3, 3, 1, 1, 0, 0, 4, 4, w, 4, new Float32Array(0), new Float32Array(0), false, 1, out.subarray(1), 0), /convForward: out .* needs 128 elements/);
  assertThrows(() => a.convForward(x, 0, 2, 3, 6, 6, 3, 3, 1, 1, 0, 0, 4, 4, w, 4, f32(3), new Float32Array(0), false, 1, out, 0), /convForward: scale has 3 elements, expected 0 or OC = 4/);
  assertThrows(() => a.convForward(x, 0, 2, 3, 6, 6, 3, 3, 1, 1, 0, 0, 4, 4, w, 4, new Float32Array(0), new Float32Array(0), false, 1, x, 0), /convForward: out overlaps x or w/);
});

S('convForward with packed weights (packConvWeights): the same output on every build, read only where it fits', () => {
  const a = need();
  const prevThreads = a.threads(), prevIsa = a.isa();
  const none = new Float32Array(0);
  try {
    // [N, C, H, W, OC, K, pad, pool]: at most 16 output pixels in all (the packed path): 4x4 (whole
    // tiles of 8 and 6 pixels, and a part tile), 2x2 pooled, 1x1 (fewer pixels than a tile), two
    // images of 2x2, 3x3 of 9 pixels, a 1x1 kernel; output channels 4, 38 and 45 (part blocks of 16 and
    // 8) and 64 split between threads; above 16 pixels (5x5: 25) the packed weights are not read
    const cases = [[1, 40, 4, 4, 45, 3, 1, 1], [1, 64, 4, 4, 64, 3, 1, 2], [1, 32, 2, 2, 38, 3, 1, 2], [1, 24, 1, 1, 20, 3, 1, 1],
      [2, 20, 2, 2, 17, 3, 1, 1], [1, 16, 3, 3, 4, 3, 1, 1], [1, 48, 4, 4, 33, 1, 0, 1], [1, 8, 5, 5, 12, 3, 1, 1]];
    for (const [isa, threads] of [...isas(a).map((i) => [i, 2] as const), [prevIsa, 1] as const]) {
      a.setIsa(isa as 'avx2');
      a.setThreads(threads);
      for (const [N, C, H, W, OC, K, pad, pool] of cases) {
        const OH = H + 2 * pad - K + 1, OW = W + 2 * pad - K + 1, CKK = C * K * K;
        const x = f32(N * C * H * W), w = f32(OC * CKK);
        const m = N * OC * (pool === 2 ? Math.floor(OH / 2) * Math.floor(OW / 2) : OH * OW);
        const { packed, width } = a.packConvWeights(w, OC, CKK)!;
        assert.is(width, isa === 'avx512' ? 16 : isa === 'avx2' ? 8 : 4, `${isa}: packed for its vector width`);
        assert.is(packed.length, Math.ceil(OC / width) * width * CKK);
        const label = `${N}x${C}x${H}x${W} -> ${OC} k${K} pool${pool} ${isa} threads=${threads}`;
        for (const [scale, shift, relu] of [[none, none, false], [f32(OC), f32(OC), true]] as const) {
          const o1 = new Float32Array(m), o2 = new Float32Array(m);
          a.convForward(x, 0, N, C, H, W, K, K, 1, 1, pad, pad, OH, OW, w, OC, scale, shift, relu, pool, o1, 0, packed, width);
          jsKernels.convForward(x, 0, N, C, H, W, K, K, 1, 1, pad, pad, OH, OW, w, OC, scale, shift, relu, pool, o2, 0);
          assertClose(o1, o2, 3e-7 * CKK + 1e-6, label);
        }
        // the packed copy is what the path reads: weights packed from other values give other outputs
        // where it applies (at most 16 pixels), the same outputs where it does not; a width that is not
        // the kernels' is never read
        const other = a.packConvWeights(f32(OC * CKK), OC, CKK)!.packed;
        const plain = new Float32Array(m), viaOther = new Float32Array(m), wrongWidth = new Float32Array(m);
        a.convForward(x, 0, N, C, H, W, K, K, 1, 1, pad, pad, OH, OW, w, OC, none, none, false, pool, plain, 0);
        a.convForward(x, 0, N, C, H, W, K, K, 1, 1, pad, pad, OH, OW, w, OC, none, none, false, pool, viaOther, 0, other, width);
        const w2 = width === 4 ? 8 : 4;
        a.convForward(x, 0, N, C, H, W, K, K, 1, 1, pad, pad, OH, OW, w, OC, none, none, false, pool, wrongWidth, 0, new Float32Array(Math.ceil(OC / w2) * w2 * CKK).fill(NaN), w2);
        assert.equal(wrongWidth, plain, `${label}: packed for another width, not read`);
        const read = N * OH * OW <= 16;
        assert.is(viaOther.some((v, i) => v !== plain[i]), read, `${label}: packed weights ${read ? '' : 'not '}read`);
      }
    }
  } finally {
    a.setIsa(prevIsa as 'avx2');
    a.setThreads(prevThreads);
  }
  const w = f32(4 * 27), out = new Float32Array(64);
  const { packed, width } = a.packConvWeights(w, 4, 27)!;
  assertThrows(() => a.convForward(f32(48), 0, 1, 3, 4, 4, 3, 3, 1, 1, 1, 1, 4, 4, w, 4, none, none, false, 1, out, 0, packed.subarray(1), width), /convForward: packed has \d+ elements, expected \d+/);
  assertThrows(() => a.packConvWeights(w, 4, 26), /packConvWeights: w has 108 elements, expected 104/);
});

S('convForward with the weights transformed by winogradWeights: the same bits on every build, read only where that tile runs', () => {
  const a = need();
  const prevIsa = a.isa(), prevMode = a.winograd();
  const none = new Float32Array(0);
  try {
    // [N, C, H, W, OC, pad, pool, mode]: F(4x4) at 8x8 and 16x16 (auto: 64 tiles, C*OC 4096 and 8192),
    // F(2x2) on 2x2 maps (on), an odd map with a part tile (on), and a shape auto leaves to other kernels
    const cases = [[16, 64, 8, 8, 64, 1, 2, 'auto'], [4, 64, 16, 16, 128, 1, 1, 'auto'], [8, 32, 2, 2, 40, 1, 1, 'on'], [2, 24, 7, 7, 20, 1, 1, 'on'], [1, 8, 5, 5, 12, 1, 1, 'auto']] as const;
    for (const isa of isas(a)) {
      a.setIsa(isa as 'avx2');
      for (const [N, C, H, W, OC, pad, pool, mode] of cases) {
        a.setWinograd(mode);
        const OH = H + 2 * pad - 2, OW = W + 2 * pad - 2, CKK = C * 9;
        const x = f32(N * C * H * W), w = f32(OC * CKK), scale = f32(OC), shift = f32(OC);
        const m = N * OC * (pool === 2 ? (OH / 2) * (OW / 2) : OH * OW);
        const tile = a.winogradTile(N, C, 3, 3, 1, 1, pad, pad, OH, OW, OC);
        const label = `${N}x${C}x${H}x${W} -> ${OC} pool${pool} ${mode} ${isa} tile ${tile}`;
        assert.is(tile === 0, mode === 'auto' && C === 8, `${label}: takes Winograd`);
        const { packed, width } = a.packConvWeights(w, OC, CKK)!;
        const plain = new Float32Array(m), viaU = new Float32Array(m), other = new Float32Array(m), wrongTile = new Float32Array(m), wrongWidth = new Float32Array(m);
        a.convForward(x, 0, N, C, H, W, 3, 3, 1, 1, pad, pad, OH, OW, w, OC, scale, shift, true, pool, plain, 0);
        for (const m2 of [2, 4]) {
          const u = a.winogradWeights(w, OC, C, m2)!;
          assert.is(u.tile, m2);
          assert.is(u.width, width, `${label}: transformed at the kernels' width`);
          const run = (o: Float32Array, weights: FloatArray, t: number, uw: number) => a.convForward(x, 0, N, C, H, W, 3, 3, 1, 1, pad, pad, OH, OW, w, OC, scale, shift, true, pool, o, 0, packed, width, weights, t, uw);
          if (m2 === tile) {
            run(viaU, u.weights, m2, u.width);
            assert.ok(viaU.every((v, i) => Object.is(v, plain[i])), `${label}: the transformed copy gives the same bits`);
            // it is what the call reads: a copy transformed from other weights changes the output
            run(other, a.winogradWeights(f32(OC * CKK), OC, C, m2)!.weights, m2, u.width);
            assert.ok(other.some((v, i) => v !== plain[i]), `${label}: the copy is read`);
            // another vector width: never read
            const w2 = u.width === 4 ? 8 : 4;
            run(wrongWidth, new Float32Array(u.weights.length).fill(NaN), m2, w2);
            assert.equal(wrongWidth, plain, `${label}: a copy for another width is not read`);
          } else {
            run(wrongTile, new Float32Array(u.weights.length).fill(NaN), m2, u.width);
            assert.equal(wrongTile, plain, `${label}: a copy for tile ${m2} is not read`);
          }
        }
      }
    }
  } finally {
    a.setIsa(prevIsa as 'avx2');
    a.setWinograd(prevMode);
  }
  const w = f32(4 * 27), out = new Float32Array(64);
  const { packed, width } = a.packConvWeights(w, 4, 27)!;
  const u = a.winogradWeights(w, 4, 3, 4)!;
  const call = (weights: FloatArray, t: number, kw = 3) => a.convForward(f32(48), 0, 1, 3, 4, 4, 3, kw, 1, 1, 1, (kw - 1) / 2, 4, 4, w.subarray(0, 4 * 3 * 3 * kw), 4, none, none, false, 1, out, 0, packed.subarray(0, Math.ceil(4 / width) * width * 9 * kw), width, weights, t, u.width);
  assertThrows(() => call(u.weights.subarray(1), 4), /convForward: winograd has \d+ elements, expected \d+/);
  assertThrows(() => call(u.weights, 3), /convForward: winogradTile must be 2 or 4, got 3/);
  assertThrows(() => call(u.weights, 4, 1), /convForward: winograd weights given for a 3x1 kernel \(3x3 only\)/);
  assertThrows(() => a.winogradWeights(w, 4, 3, 3), /winogradWeights: m must be 2 or 4, got 3/);
  assertThrows(() => a.winogradWeights(w, 4, 2, 4), /winogradWeights: w has 108 elements, expected 72/);
});

S('convWeightGrad (the direct weight gradient) against im2col + gemm: kernel widths 1-6, padding, short channel blocks, every micro-kernel, 1 and 2 threads; refuses (touching nothing) where it does not apply', () => {
  const a = need();
  const prevThreads = a.threads(), prevIsa = a.isa();
  // the reference: per image, the im2col matrix times the image's output gradient (as conv2d's fallback)
  const reference = (x: Float32Array, N: number, C: number, H: number, W: number, K: number, KW: number, P: number, PW: number, OH: number, OW: number, g: Float32Array, OC: number) => {
    const L = OH * OW, CKK = C * K * KW, cols = new Float32Array(CKK * L), gw = new Float32Array(OC * CKK);
    for (let n = 0; n < N; n++) {
      jsKernels.im2col(x, n * C * H * W, 1, C, H, W, K, KW, 1, 1, P, PW, OH, OW, cols, 0, L);
      jsKernels.gemm(false, true, OC, CKK, L, 1, g, n * OC * L, L, cols, 0, L, 1, gw, 0, CKK);
    }
    return gw;
  };
  const prevWinograd = a.winograd();
  // the direct kernel itself, also where Winograd's transforms would take the weight gradient
  a.setWinograd('off');
  try {
    // [N, C, H, W, OC, KH, KW, PH, PW]: 32x32 maps (3x3, 1x1, 5x5 with padding 2, 6 wide), a first
    // layer of 24x24 outputs (25 taps), 16x16 with few channels, rectangular, OC not a multiple of
    // the channel block, one image (2 threads on channel blocks); 120 -> 64 channels, whose
    // accumulators on one thread (16 blocks x 120 channels x 3 rows x 12 vectors) pass the kernel's
    // 2 MB and go in two groups of input channels
    const cases = [[3, 2, 32, 32, 5, 3, 3, 1, 1], [2, 4, 32, 32, 13, 1, 1, 0, 0], [2, 3, 32, 32, 7, 5, 5, 2, 2], [2, 2, 33, 37, 3, 2, 6, 0, 0],
      [3, 1, 28, 28, 20, 5, 5, 0, 0], [2, 5, 16, 16, 9, 3, 3, 1, 1], [2, 3, 16, 64, 6, 3, 3, 1, 1], [1, 3, 32, 32, 11, 3, 3, 1, 1], [1, 120, 32, 32, 64, 3, 3, 1, 1]];
    for (const [isa, threads] of [...isas(a).map((i) => [i, 2] as const), [prevIsa, 1] as const]) {
      a.setIsa(isa as 'avx2');
      a.setThreads(threads);
      for (const [N, C, H, W, OC, KH, KW, PH, PW] of cases) {
        const OH = H + 2 * PH - KH + 1, OW = W + 2 * PW - KW + 1;
        const x = f32(N * C * H * W + 3), g = f32(N * OC * OH * OW + 2);
        const gw = f32(OC * C * KH * KW);  // garbage: must be overwritten
        const done = a.convWeightGrad(x, 3, N, C, H, W, KH, KW, 1, 1, PH, PW, OH, OW, g, 2, OC, gw);
        assert.ok(done, `${isa}: direct for ${[N, C, H, W, OC, KH, KW, PH, PW]}`);
        const ref = reference(x.subarray(3), N, C, H, W, KH, KW, PH, PW, OH, OW, g.subarray(2), OC);
        assertClose(gw, ref, 2e-5, `${isa} ${threads}t: gw ${[N, C, H, W, OC, KH, KW, PH, PW]}`);
      }
    }
  } finally {
    a.setIsa(prevIsa as 'avx2');
    a.setThreads(prevThreads);
    a.setWinograd(prevWinograd);
  }
  // not applicable: stride 2, rows not of whole vectors, a kernel 7 wide, small maps of many channels
  for (const [C, H, W, OC, K, KW, S, P] of [[2, 32, 32, 4, 3, 3, 2, 1], [2, 30, 30, 4, 3, 3, 1, 0], [2, 32, 38, 4, 3, 7, 1, 0], [64, 8, 8, 64, 3, 3, 1, 1]]) {
    const OH = Math.floor((H + 2 * P - K) / S) + 1, OW = Math.floor((W + 2 * P - KW) / S) + 1;
    const gw = new Float32Array(OC * C * K * KW).fill(7);
    const done = a.convWeightGrad(f32(2 * C * H * W), 0, 2, C, H, W, K, KW, S, S, P, P, OH, OW, f32(2 * OC * OH * OW), 0, OC, gw);
    assert.is(done, false, `not direct: ${[C, H, W, OC, K, KW, S, P]}`);
    assert.ok(gw.every((v) => v === 7), 'gw untouched');
    assert.is(jsKernels.convWeightGrad(f32(1), 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, f32(1), 0, 1, gw), false, 'the TypeScript backend has none');
  }
  const x = f32(2 * 2 * 32 * 32), g = f32(2 * 3 * 32 * 32);
  assertThrows(() => a.convWeightGrad(x, 0, 2, 2, 32, 32, 3, 3, 1, 1, 1, 1, 32, 32, g, 0, 3, new Float32Array(53)), /convWeightGrad: gw has 53 elements, expected 54/);
  assertThrows(() => a.convWeightGrad(x, 0, 2, 2, 32, 32, 3, 3, 1, 1, 1, 1, 32, 32, g.subarray(1), 0, 3, new Float32Array(54)), /convWeightGrad: g \(1x6144, ld 6144, offset 0\) needs 6144 elements, the array has 6143/);
  assertThrows(() => a.convWeightGrad(x, 1, 2, 2, 32, 32, 3, 3, 1, 1, 1, 1, 32, 32, g, 0, 3, new Float32Array(54)), /convWeightGrad: x \(1x4096, ld 4096, offset 1\) needs 4097 elements/);
  assertThrows(() => a.convWeightGrad(x, 0, 2, 2, 32, 32, 3, 3, 1, 1, 1, 1, 33, 32, f32(2 * 3 * 33 * 32), 0, 3, new Float32Array(54)), /convWeightGrad: OH x OW is larger than the input, padding and kernel give/);
  assertThrows(() => a.convWeightGrad(x, 0, 2, 2, 32, 32, 3, 3, 1, 1, 1, 1, 32, 32, g, 0, 3, g.subarray(0, 54)), /convWeightGrad: gw overlaps x or g/);
});

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
