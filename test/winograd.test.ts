// Winograd convolution: the TypeScript reference against the direct convolution (float64: the
// algorithm itself), the native kernel against a float64 direct convolution on every 3x3 layer shape
// of VGG-16 (forward, epilogue, input gradient), under every micro-kernel the CPU has, and the choice
// of the kernel by shape.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { conv2d, nativeAddon, nativeLoadError, Rng, tensor, winogradConv3x3, winogradMatrices } from '../src/internal.js';
import type { FloatArray, NativeAddon } from '../src/internal.js';
import { needs } from './helpers.js';
import { ep, geo, outGeo } from './native-shared.js';

const S = suite('winograd');
const rng = new Rng(41);
const f32 = (n: number) => Float32Array.from({ length: n }, () => rng.uniform(-1, 1));
const empty = new Float32Array(0);

/** the direct convolution in float64: y, and the sum of |w x| of each output (the scale of its rounding) */
function direct(x: Float32Array, N: number, C: number, H: number, W: number, PH: number, PW: number, w: Float32Array, OC: number) {
  const OH = H + 2 * PH - 2, OW = W + 2 * PW - 2;
  const y = new Float64Array(N * OC * OH * OW), mag = new Float64Array(y.length);
  for (let n = 0; n < N; n++)
    for (let o = 0; o < OC; o++)
      for (let i = 0; i < OH; i++)
        for (let j = 0; j < OW; j++) {
          let s = 0, m = 0;
          for (let c = 0; c < C; c++)
            for (let kh = 0; kh < 3; kh++) {
              const ih = i - PH + kh;
              if (ih < 0 || ih >= H) continue;
              for (let kw = 0; kw < 3; kw++) {
                const iw = j - PW + kw;
                if (iw < 0 || iw >= W) continue;
                const p = w[((o * C + c) * 3 + kh) * 3 + kw] * x[((n * C + c) * H + ih) * W + iw];
                s += p;
                m += Math.abs(p);
              }
            }
          y[((n * OC + o) * OH + i) * OW + j] = s;
          mag[((n * OC + o) * OH + i) * OW + j] = m;
        }
  return { y, mag, OH, OW };
}

// the tests of the native kernel: skipped (not passed) where the addon did not load
const SN = needs(S, nativeAddon() ? null : `the native addon did not load: ${nativeLoadError()}`);

/** fn() with the addon's Winograd mode and micro-kernel put back afterwards, whatever it sets */
function restoring(a: NativeAddon, fn: () => void): void {
  const prevIsa = a.isa(), prevMode = a.winograd();
  try {
    fn();
  } finally {
    a.setIsa(prevIsa as 'avx2');
    a.setWinograd(prevMode);
  }
}

function isas(a: NativeAddon): string[] {
  const prev = a.isa();
  const ok = (['generic', 'avx2', 'avx512'] as const).filter((i) => a.setIsa(i));
  a.setIsa(prev as 'avx2');
  return ok;
}

// Rounding: the direct convolution's float32 error is at most about K * eps * sum|w x| for K taps
// summed; Winograd's transforms add and scale by constants up to 5 (B), 8 (A) and 1/24 (G) before
// and after the products, so each output picks up the rounding of those sums too. Measured over
// VGG-16's shapes and the three micro-kernels, as a fraction of sum|w x|: direct 0.2-2.5e-7, F(2x2)
// at most 7.3e-8, F(4x4) at most 3.2e-6 (about 27 float32 epsilons). The bounds below leave a
// factor 3 over those: 1e-5 for F(4x4), 1e-6 for F(2x2).
const tolerance = (m: number) => (m === 4 ? 1e-5 : 1e-6);

S('the reference is the direct convolution, to double rounding, for F(2x2) and F(4x4), any padding and partial tiles', () => {
  for (const m of [2, 4] as const) {
    const { BT, G, AT } = winogradMatrices(m);
    assert.is(BT.length, m + 2);
    assert.is(G.length, m + 2);
    assert.is(AT.length, m);
    for (const [N, C, H, W, PH, PW, OC] of [[2, 3, 9, 7, 1, 1, 4], [1, 2, 5, 6, 0, 2, 3], [1, 1, 3, 3, 0, 0, 2], [1, 2, 2, 2, 1, 1, 1]]) {
      const x = f32(N * C * H * W), w = f32(OC * C * 9);
      const want = direct(x, N, C, H, W, PH, PW, w, OC);
      const got = winogradConv3x3(x, N, C, H, W, PH, PW, w, OC, m);
      assert.is(got.length, want.y.length);
      for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i] - want.y[i]) <= 1e-12 * (1 + want.mag[i]), `m ${m} ${[N, C, H, W, PH, PW, OC]} at ${i}: ${got[i]} vs ${want.y[i]}`);
    }
  }
  assert.throws(() => winogradConv3x3(f32(4), 1, 1, 2, 2, 0, 0, f32(9), 1, 2), /no 3x3 output/);
  assert.throws(() => winogradConv3x3(f32(5), 1, 1, 2, 2, 1, 1, f32(9), 1, 2), /x has 5 elements/);
});

// every 3x3 layer shape of VGG-16 on CIFAR-10 (C -> OC at H x H), and odd sizes with partial tiles
const shapes: [number, number, number, number][] = [
  [64, 64, 32, 32], [64, 128, 16, 16], [128, 128, 16, 16], [128, 256, 8, 8], [256, 256, 8, 8],
  [256, 512, 4, 4], [512, 512, 4, 4], [512, 512, 2, 2], [17, 24, 7, 9], [16, 20, 15, 13], [20, 16, 3, 5],
];

SN('native: every VGG-16 3x3 shape within the stated tolerance of the float64 convolution, every micro-kernel', () => {
  const a = nativeAddon()!;
  restoring(a, () => {
    a.setWinograd('on');
    for (const isa of isas(a)) {
      a.setIsa(isa as 'avx2');
      for (const [C, OC, H, W] of shapes) {
        const N = 2, x = f32(N * C * H * W), w = f32(OC * C * 9);
        const { y, mag, OH, OW } = direct(x, N, C, H, W, 1, 1, w, OC);
        const m = a.winogradTile(outGeo(N, C, 3, 3, 1, 1, 1, 1, OH, OW, OC));
        assert.is(m, OH >= 4 && OW >= 4 ? 4 : 2, `${isa} ${C}->${OC} ${H}x${W}: tile`);
        const out = new Float32Array(y.length);
        a.convForward(x, 0, geo(N, C, H, W, 3, 3, 1, 1, 1, 1, OH, OW, OC), w, ep(empty, empty, false, 1), out, 0);
        let worst = 0;
        for (let i = 0; i < y.length; i++) worst = Math.max(worst, Math.abs(out[i] - y[i]) / mag[i]);
        assert.ok(worst <= tolerance(m), `${isa} ${C}->${OC} ${H}x${W}: error ${worst} of sum|wx| (bound ${tolerance(m)})`);
        assert.ok(worst > 0 || m === 2, 'the products rounded somewhere');
      }
    }
  });
});

/** the weight gradient in float64: gw (OC,C,3,3) and the sum of |g x| of each entry */
function directWgrad(x: Float32Array, N: number, C: number, H: number, W: number, P: number, g: Float32Array, OC: number) {
  const OH = H + 2 * P - 2, OW = W + 2 * P - 2;
  const gw = new Float64Array(OC * C * 9), mag = new Float64Array(gw.length);
  for (let o = 0; o < OC; o++)
    for (let c = 0; c < C; c++)
      for (let kh = 0; kh < 3; kh++)
        for (let kw = 0; kw < 3; kw++) {
          let s = 0, m = 0;
          for (let n = 0; n < N; n++)
            for (let i = 0; i < OH; i++) {
              const ih = i - P + kh;
              if (ih < 0 || ih >= H) continue;
              const gr = ((n * OC + o) * OH + i) * OW, xr = ((n * C + c) * H + ih) * W;
              for (let j = 0; j < OW; j++) {
                const iw = j - P + kw;
                if (iw < 0 || iw >= W) continue;
                const p = g[gr + j] * x[xr + iw];
                s += p;
                m += Math.abs(p);
              }
            }
          gw[((o * C + c) * 3 + kh) * 3 + kw] = s;
          mag[((o * C + c) * 3 + kh) * 3 + kw] = m;
        }
  return { gw, mag };
}

// The weight gradient sums over images and pixels where the forward sums over channels and taps; the
// transforms are the same ones transposed. Measured on these shapes and the three micro-kernels, on
// the scale of each kernel's largest tap (below): F(4x4) at most 4.1e-6, F(2x2) at most 4.0e-7; the
// bounds leave a factor 3.5 over those
const wgradTolerance = (m: number) => (m === 4 ? 1.5e-5 : 1.5e-6);

SN("native: the weight gradient by Winograd's transforms on every VGG-16 3x3 shape, every micro-kernel", () => {
  const a = nativeAddon()!;
  restoring(a, () => {
    a.setWinograd('on');
    for (const isa of isas(a)) {
      a.setIsa(isa as 'avx2');
      for (const [C, OC, H, W] of shapes) {
        const N = 2, x = f32(N * C * H * W), g = f32(N * OC * H * W);
        const { gw, mag } = directWgrad(x, N, C, H, W, 1, g, OC);
        const m = a.winogradTile(outGeo(N, C, 3, 3, 1, 1, 1, 1, H, W, OC));
        const out = new Float32Array(gw.length).fill(Number.NaN);
        assert.ok(a.convWeightGrad(x, 0, geo(N, C, H, W, 3, 3, 1, 1, 1, 1, H, W, OC), g, 0, out), 'taken');
        let worst = 0;
        for (let i = 0; i < gw.length; i++) {
          // on the scale of the kernel's largest tap: a corner tap of a padded 2x2 map sums 1 product an
          // image where the transforms mix the whole tile's products, so a per-tap scale would measure
          // the tile's rounding against one product
          let scale = 0;
          for (let k = i - (i % 9); k < i - (i % 9) + 9; k++) scale = Math.max(scale, mag[k]);
          worst = Math.max(worst, Math.abs(out[i] - gw[i]) / scale);
        }
        assert.ok(worst <= wgradTolerance(m), `${isa} ${C}->${OC} ${H}x${W}: weight gradient error ${worst} of sum|gx| (bound ${wgradTolerance(m)})`);
      }
    }
  });
});

SN('native: the epilogue (scale, shift, ReLU, 2x2 pool, odd sizes) as the direct kernel applies it', () => {
  const a = nativeAddon()!;
  restoring(a, () => {
    for (const [C, OC, H, W] of [[16, 24, 9, 11], [32, 16, 8, 8], [16, 16, 2, 2], [16, 16, 6, 7]]) {
      for (const PH of [0, 1, 2]) {
        const N = 3, OH = H + 2 * PH - 2, OW = W + 2 * PH - 2;
        if (OH < 2 || OW < 2) continue;  // (a 2x2 map unpadded: no output, or none pooled)
        const x = f32(N * C * H * W), w = f32(OC * C * 9), scale = f32(OC), shift = f32(OC);
        for (const pool of [1, 2]) {
          for (const [sc, sh, relu] of [[scale, shift, true], [empty, shift, false], [empty, empty, false]] as const) {
            const len = N * OC * (pool === 2 ? Math.floor(OH / 2) * Math.floor(OW / 2) : OH * OW);
            const outs = (['on', 'off'] as const).map((mode) => {
              a.setWinograd(mode);
              const o = new Float32Array(len);
              a.convForward(x, 0, geo(N, C, H, W, 3, 3, 1, 1, PH, PH, OH, OW, OC), w, ep(sc, sh, relu, pool), o, 0);
              return o;
            });
            let worst = 0, big = 0;
            for (let i = 0; i < len; i++) {
              worst = Math.max(worst, Math.abs(outs[0][i] - outs[1][i]));
              big = Math.max(big, Math.abs(outs[1][i]));
              if (relu) assert.ok(outs[0][i] >= 0, 'ReLU applied');
            }
            // sum|w x| is at most C * 9 here (|w|, |x| <= 1): the F(4x4) bound on that scale
            assert.ok(worst <= 1e-5 * C * 9, `${[C, OC, H, W]} pad ${PH} pool ${pool} relu ${relu}: max difference ${worst}`);
            assert.ok(big > 0, 'a non-zero output');
          }
        }
      }
    }
  });
});

SN('conv2d: the input gradient (a convolution with the flipped kernels) and the weight gradient agree with the direct and GEMM paths', () => {
  const a = nativeAddon()!;
  // 12x12; and a 2x2 map, whose input gradient goes through GEMM and col2im unless Winograd takes it
  for (const [N, C, OC, H] of [[4, 32, 48, 12], [128, 64, 64, 2]]) restoring(a, () => {
    const x0 = f32(N * C * H * H), w0 = f32(OC * C * 9), g = f32(N * OC * H * H);
    const run = (mode: 'on' | 'off') => {
      a.setWinograd(mode);
      const x = tensor(x0, [N, C, H, H], { requiresGrad: true });
      const w = tensor(w0, [OC, C, 3, 3], { requiresGrad: true });
      conv2d(x, w, null, { padding: 1 }).backward(tensor(g, [N, OC, H, H]));
      return [x.grad!.data as Float32Array, w.grad!.data as Float32Array];
    };
    const on = run('on'), off = run('off');
    for (const k of [0, 1]) {
      let worst = 0;
      for (let i = 0; i < on[k].length; i++) worst = Math.max(worst, Math.abs(on[k][i] - off[k][i]));
      assert.ok(worst > 0, 'the two kernels differ in rounding, so both ran');
      // |g|, |x|, |w| <= 1: the input gradient sums OC*9 products, the weight gradient N*H*H
      assert.ok(worst <= 1e-5 * (k === 0 ? OC * 9 : N * H * H), `${H}x${H}: ${k === 0 ? 'input' : 'weight'} gradient: max difference ${worst}`);
    }
  });
});

SN("the weight gradient takes Winograd's transforms from fewer channels than the forward: C * OC from 2048 on maps the direct kernel takes, from 512 below", () => {
  const a = nativeAddon()!;
  // [C, OC, map, takes Winograd]: at batch 128, where the forward's rule (C * OC >= 4096) says no
  const cases: [number, number, number, boolean][] = [[32, 64, 16, true], [32, 64, 32, true], [26, 26, 8, true], [32, 32, 32, false], [16, 16, 16, false]];
  for (const [C, OC, H, takes] of cases) restoring(a, () => {
    const N = 128;
    const x0 = f32(N * C * H * H), w0 = f32(OC * C * 9), g = f32(N * OC * H * H);
    const grad = (mode: 'auto' | 'on' | 'off') => {
      a.setWinograd(mode);
      const w = tensor(w0, [OC, C, 3, 3], { requiresGrad: true });
      conv2d(tensor(x0, [N, C, H, H]), w, null, { padding: 1 }).backward(tensor(g, [N, OC, H, H]));
      return w.grad!.data;
    };
    const auto = grad('auto'), on = grad('on'), off = grad('off');
    const same = (p: FloatArray, q: FloatArray) => p.every((v, i) => Object.is(v, q[i]));
    assert.ok(!same(on, off), `${C} -> ${OC} at ${H}x${H}: the two paths round differently`);
    assert.ok(same(auto, takes ? on : off), `${C} -> ${OC} at ${H}x${H}: ${takes ? 'Winograd' : 'not Winograd'} by the rule`);
  });
});

SN('the kernel is chosen by shape: 3x3 at stride 1 only, with channels and tiles enough', () => {
  const a = nativeAddon()!;
  restoring(a, () => {
    a.setWinograd('auto');
    const tile = (N: number, C: number, K: number, S: number, P: number, H: number, OC: number) => a.winogradTile(outGeo(N, C, K, K, S, S, P, P, Math.floor((H + 2 * P - K) / S) + 1, Math.floor((H + 2 * P - K) / S) + 1, OC));
    // C * OC = 4096 with an image per thread: the direct kernel where it runs 16-float rows
    const direct16 = a.isa() === 'avx512';
    assert.is(tile(128, 64, 3, 1, 1, 32, 64), direct16 ? 0 : 4, 'VGG-16 conv2 at batch 128');
    assert.is(tile(128, 64, 3, 1, 1, 16, 64), direct16 ? 0 : 4, '64 -> 64 channels at 16x16, batch 128');
    assert.is(tile(128, 128, 3, 1, 1, 16, 128), 4, 'VGG-16 conv4 at batch 128');
    assert.is(tile(128, 128, 3, 1, 1, 8, 256), 4, 'VGG-16 conv5 at batch 128 (8x8)');
    assert.is(tile(128, 512, 3, 1, 1, 4, 512), 4, '4x4 maps at batch 128: 128 tiles');
    assert.is(tile(32, 512, 3, 1, 1, 4, 512), 0, '4x4 maps at batch 32: 32 tiles');
    assert.is(tile(128, 512, 3, 1, 1, 2, 512), 2, '2x2 maps at batch 128: F(2x2)');
    assert.is(tile(64, 512, 3, 1, 1, 2, 512), 0, '2x2 maps at batch 64');
    assert.is(tile(128, 3, 3, 1, 1, 32, 64), 0, 'a 3-channel first layer');
    assert.is(tile(128, 32, 3, 1, 1, 32, 32), 0, '32 -> 32 channels: GEMMs too small');
    assert.is(tile(128, 32, 3, 1, 1, 16, 64), 0, '32 -> 64 channels');
    assert.is(tile(128, 32, 3, 1, 1, 8, 128), 4, '32 -> 128 channels on 8x8 maps');
    // batch 1 on 2 threads or more: the direct kernel with its channel blocks split takes few channels
    // on large maps (the AVX2 and AVX-512 builds); with 16-float vectors the narrow kernel takes maps
    // up to 16x16 before Winograd
    const few = a.threads() > 1;
    assert.is(tile(1, 32, 3, 1, 1, 32, 32), few && a.isa() === 'generic' ? 4 : 0, 'batch 1: 32 -> 32 channels at 32x32 (64 tiles)');
    assert.is(tile(1, 64, 3, 1, 1, 32, 64), 4, 'batch 1: 64 -> 64 channels at 32x32');
    assert.is(tile(1, 64, 3, 1, 1, 16, 64), few && a.isa() !== 'avx512' ? 4 : 0, 'batch 1: 64 -> 64 channels at 16x16 (16 tiles)');
    assert.is(tile(1, 32, 3, 1, 1, 16, 64), 0, 'batch 1: 32 -> 64 channels at 16x16');
    assert.is(tile(1, 256, 3, 1, 1, 8, 256), 0, 'batch 1: an 8x8 map (4 tiles)');
    assert.is(tile(128, 1, 5, 1, 0, 28, 20), 0, "LeNet-5's conv1 (5x5)");
    assert.is(tile(128, 20, 5, 1, 0, 12, 50), 0, "LeNet-5's conv2 (5x5)");
    assert.is(tile(128, 64, 3, 2, 1, 32, 64), 0, 'stride 2');
    a.setWinograd('on');
    assert.is(tile(1, 512, 3, 1, 1, 4, 512), 4, "'on': wherever the geometry allows");
    assert.is(tile(1, 3, 3, 1, 3, 4, 8), 0, "'on': padding 3 is not supported");
    a.setWinograd('off');
    assert.is(tile(128, 64, 3, 1, 1, 32, 64), 0, "'off'");
    assert.is(a.winograd(), 'off');
    assert.throws(() => a.setWinograd('fast' as 'on'), /setWinograd: unknown mode 'fast'/);
  });
});

S.run();
