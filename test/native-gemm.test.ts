// The native addon against the TypeScript reference: GEMM (every micro-kernel, transposes, threads, the async form and work stealing), and the addon loading. Shapes include 1, 7, 17, 33, 255 and
// sizes that are not multiples of the register blocks; every micro-kernel the CPU has, one and two threads.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { jsKernels, kernelBackend, Rng } from '../src/internal.js';
import { assertClose } from './helpers.js';
import { need, isas, randomFloats } from './native-shared.js';

const S = suite('native-gemm');
const rng = new Rng(31);
const f32 = randomFloats(rng);

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

S.run();
