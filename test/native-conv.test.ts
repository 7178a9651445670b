// The native addon against the TypeScript reference: im2col, pooling, the convolution epilogue, convolutions (direct, packed, Winograd) and their weight gradient. Shapes include 1, 7, 17, 33, 255 and
// sizes that are not multiples of the register blocks; every micro-kernel the CPU has, one and two threads.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { conv2d, jsKernels, maxPool2d, relu, Rng } from '../src/internal.js';
import type { FloatArray } from '../src/internal.js';
import { assertClose, assertThrows } from './helpers.js';
import { ep, geo, need, isas, outGeo, randomFloats } from './native-shared.js';

const S = suite('native-conv');
const rng = new Rng(31);
const f32 = randomFloats(rng);

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
          a.convForward(x, 2, geo(N, C, H, W, K, K, st, st, pad, pad, OH, OW, OC), w, ep(scale, shift, relu, pool), o1, 1);
          jsKernels.convForward(x, 2, geo(N, C, H, W, K, K, st, st, pad, pad, OH, OW, OC), w, ep(scale, shift, relu, pool), o2, 1);
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
    a.convForward(x, 0, geo(N, 2, 20, 20, 3, 3, 1, 1, 1, 1, 4, 8, 3), w, ep(new Float32Array(0), new Float32Array(0), false, 1), o1, 0);
    jsKernels.convForward(x, 0, geo(N, 2, 20, 20, 3, 3, 1, 1, 1, 1, 4, 8, 3), w, ep(new Float32Array(0), new Float32Array(0), false, 1), o2, 0);
    assertClose(o1, o2, 1e-5, `truncated output, ${N} images`);
  }
  const x = f32(2 * 3 * 6 * 6), w = f32(4 * 27), out = new Float32Array(2 * 4 * 16);
  assertThrows(() => a.convForward(x, 0, geo(2, 3, 6, 6, 3, 3, 1, 1, 0, 0, 4, 4, 4), w.subarray(1), ep(new Float32Array(0), new Float32Array(0), false, 1), out, 0), /convForward: w has 107 elements, expected 108/);
  assertThrows(() => a.convForward(x, 1, geo(2, 3, 6, 6, 3, 3, 1, 1, 0, 0, 4, 4, 4), w, ep(new Float32Array(0), new Float32Array(0), false, 1), out, 0), /convForward: x .* needs 217 elements/);
  assertThrows(() => a.convForward(x, 0, geo(2, 3, 6, 6, 3, 3, 1, 1, 0, 0, 4, 4, 4), w, ep(new Float32Array(0), new Float32Array(0), false, 1), out.subarray(1), 0), /convForward: out .* needs 128 elements/);
  assertThrows(() => a.convForward(x, 0, geo(2, 3, 6, 6, 3, 3, 1, 1, 0, 0, 4, 4, 4), w, ep(f32(3), new Float32Array(0), false, 1), out, 0), /convForward: epilogue.scale has 3 elements, expected 0 or OC = 4/);
  assertThrows(() => a.convForward(x, 0, geo(2, 3, 6, 6, 3, 3, 1, 1, 0, 0, 4, 4, 4), w, ep(new Float32Array(0), new Float32Array(0), false, 1), x, 0), /convForward: out overlaps x or w/);
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
          a.convForward(x, 0, geo(N, C, H, W, K, K, 1, 1, pad, pad, OH, OW, OC), w, ep(scale, shift, relu, pool), o1, 0, { packed: packed, width: width });
          jsKernels.convForward(x, 0, geo(N, C, H, W, K, K, 1, 1, pad, pad, OH, OW, OC), w, ep(scale, shift, relu, pool), o2, 0);
          assertClose(o1, o2, 3e-7 * CKK + 1e-6, label);
        }
        // the packed copy is what the path reads: weights packed from other values give other outputs
        // where it applies (at most 16 pixels), the same outputs where it does not; a width that is not
        // the kernels' is never read
        const other = a.packConvWeights(f32(OC * CKK), OC, CKK)!.packed;
        const plain = new Float32Array(m), viaOther = new Float32Array(m), wrongWidth = new Float32Array(m);
        a.convForward(x, 0, geo(N, C, H, W, K, K, 1, 1, pad, pad, OH, OW, OC), w, ep(none, none, false, pool), plain, 0);
        a.convForward(x, 0, geo(N, C, H, W, K, K, 1, 1, pad, pad, OH, OW, OC), w, ep(none, none, false, pool), viaOther, 0, { packed: other, width: width });
        const w2 = width === 4 ? 8 : 4;
        a.convForward(x, 0, geo(N, C, H, W, K, K, 1, 1, pad, pad, OH, OW, OC), w, ep(none, none, false, pool), wrongWidth, 0, { packed: new Float32Array(Math.ceil(OC / w2) * w2 * CKK).fill(NaN), width: w2 });
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
  assertThrows(() => a.convForward(f32(48), 0, geo(1, 3, 4, 4, 3, 3, 1, 1, 1, 1, 4, 4, 4), w, ep(none, none, false, 1), out, 0, { packed: packed.subarray(1), width: width }), /convForward: prepared.packed has \d+ elements, expected \d+/);
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
        const tile = a.winogradTile(outGeo(N, C, 3, 3, 1, 1, pad, pad, OH, OW, OC));
        const label = `${N}x${C}x${H}x${W} -> ${OC} pool${pool} ${mode} ${isa} tile ${tile}`;
        assert.is(tile === 0, mode === 'auto' && C === 8, `${label}: takes Winograd`);
        const { packed, width } = a.packConvWeights(w, OC, CKK)!;
        const plain = new Float32Array(m), viaU = new Float32Array(m), other = new Float32Array(m), wrongTile = new Float32Array(m), wrongWidth = new Float32Array(m);
        a.convForward(x, 0, geo(N, C, H, W, 3, 3, 1, 1, pad, pad, OH, OW, OC), w, ep(scale, shift, true, pool), plain, 0);
        for (const m2 of [2, 4]) {
          const u = a.winogradWeights(w, OC, C, m2)!;
          assert.is(u.tile, m2);
          assert.is(u.width, width, `${label}: transformed at the kernels' width`);
          const run = (o: Float32Array, weights: FloatArray, t: number, uw: number) => a.convForward(x, 0, geo(N, C, H, W, 3, 3, 1, 1, pad, pad, OH, OW, OC), w, ep(scale, shift, true, pool), o, 0, { packed: packed, width: width, winograd: weights, tile: t, winogradWidth: uw });
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
  const call = (weights: FloatArray, t: number, kw = 3) => a.convForward(f32(48), 0, geo(1, 3, 4, 4, 3, kw, 1, 1, 1, (kw - 1) / 2, 4, 4, 4), w.subarray(0, 4 * 3 * 3 * kw), ep(none, none, false, 1), out, 0, { packed: packed.subarray(0, Math.ceil(4 / width) * width * 9 * kw), width: width, winograd: weights, tile: t, winogradWidth: u.width });
  assertThrows(() => call(u.weights.subarray(1), 4), /convForward: prepared.winograd has \d+ elements, expected \d+/);
  assertThrows(() => call(u.weights, 3), /convForward: prepared.tile must be 2 or 4, got 3/);
  assertThrows(() => call(u.weights, 4, 1), /convForward: prepared.winograd given for a 3x1 kernel \(3x3 only\)/);
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
        const done = a.convWeightGrad(x, 3, geo(N, C, H, W, KH, KW, 1, 1, PH, PW, OH, OW, OC), g, 2, gw);
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
    const done = a.convWeightGrad(f32(2 * C * H * W), 0, geo(2, C, H, W, K, KW, S, S, P, P, OH, OW, OC), f32(2 * OC * OH * OW), 0, gw);
    assert.is(done, false, `not direct: ${[C, H, W, OC, K, KW, S, P]}`);
    assert.ok(gw.every((v) => v === 7), 'gw untouched');
    assert.is(jsKernels.convWeightGrad(f32(1), 0, geo(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1), f32(1), 0, gw), false, 'the TypeScript backend has none');
  }
  const x = f32(2 * 2 * 32 * 32), g = f32(2 * 3 * 32 * 32);
  assertThrows(() => a.convWeightGrad(x, 0, geo(2, 2, 32, 32, 3, 3, 1, 1, 1, 1, 32, 32, 3), g, 0, new Float32Array(53)), /convWeightGrad: gw has 53 elements, expected 54/);
  assertThrows(() => a.convWeightGrad(x, 0, geo(2, 2, 32, 32, 3, 3, 1, 1, 1, 1, 32, 32, 3), g.subarray(1), 0, new Float32Array(54)), /convWeightGrad: g \(1x6144, ld 6144, offset 0\) needs 6144 elements, the array has 6143/);
  assertThrows(() => a.convWeightGrad(x, 1, geo(2, 2, 32, 32, 3, 3, 1, 1, 1, 1, 32, 32, 3), g, 0, new Float32Array(54)), /convWeightGrad: x \(1x4096, ld 4096, offset 1\) needs 4097 elements/);
  assertThrows(() => a.convWeightGrad(x, 0, geo(2, 2, 32, 32, 3, 3, 1, 1, 1, 1, 33, 32, 3), f32(2 * 3 * 33 * 32), 0, new Float32Array(54)), /convWeightGrad: geometry's OH x OW 33x32 is larger than the input 32x32, padding 1,1 and kernel 3x3 give/);
  assertThrows(() => a.convWeightGrad(x, 0, geo(2, 2, 32, 32, 3, 3, 1, 1, 1, 1, 32, 32, 3), g, 0, g.subarray(0, 54)), /convWeightGrad: gw overlaps x or g/);
});

S.run();
