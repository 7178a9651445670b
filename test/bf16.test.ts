// bfloat16: the one rounding (round to nearest, ties to even, on a float32's bits) against a scalar
// reference written another way, bit for bit, in TypeScript and native; an inference session in
// bfloat16 against the same arithmetic done layer by layer; a merged LeNet-5 evaluated in bfloat16
// against float32.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  accuracyOf, bf16Round, buildModel, cloneModel, Conv2d, InferenceSession, jsKernels, lenet5Arch, Linear, loadTask, mergeModel, modelFromCheckpoint,
  mul, nativeAddon, nativeLoadError, noGrad, Rng, roundBf16, sum, Tensor, withProductPrecision,
} from '../src/internal.js';
import type { Sequential } from '../src/internal.js';
import { assertClose, needs } from './helpers.js';

const B = suite('bf16');
const BN = needs(B, nativeAddon() ? null : `the native addon did not load: ${nativeLoadError()}`);

/** the bfloat16 bits of the float32 with bits `u`, by comparing the dropped half with 0x8000 */
function reference(u: number): number {
  const exp = (u >>> 23) & 0xff, man = u & 0x7fffff;
  if (exp === 0xff && man !== 0) return ((u >>> 16) | 0x40) & 0xffff;
  const hi = u >>> 16, lo = u & 0xffff;
  return lo > 0x8000 || (lo === 0x8000 && (hi & 1) === 1) ? (hi + 1) & 0xffff : hi;
}

/** float32 bit patterns: the special ones, then random ones from a seeded generator */
function patterns(): Uint32Array {
  const special = [
    0x00000000, 0x80000000, 0x3f800000, 0xbf800000, // ±0, ±1
    0x3f808000, 0x3f818000, 0x3f808001, 0x3f807fff, // 1 + 2^-8 (a tie: to even, down), 1 + 3·2^-8 (a tie: up), just above and below a tie
    0x7f7fffff, 0xff7fffff, 0x7f7f8000, 0x7f7f7fff, // the largest float32 (rounds to infinity), a tie at the top (to infinity), just below it
    0x7f800000, 0xff800000, // ±infinity
    0x7fc00000, 0xffc00000, 0x7f800001, 0x7fa00000, 0xff812345, // quiet and signalling NaNs, a payload
    0x00000001, 0x80000001, 0x00008000, 0x00018000, 0x007fffff, 0x00800000, // subnormals, ties among them, the smallest normal
  ];
  const rng = new Rng(7);
  const out = new Uint32Array(special.length + 100000);
  out.set(special);
  for (let i = special.length; i < out.length; i++) out[i] = (Math.floor(rng.uniform(0, 65536)) << 16 | Math.floor(rng.uniform(0, 65536))) >>> 0;
  return out;
}

B('the rounding, bit for bit against a reference written another way: ties to even, NaN, infinity, overflow, subnormals', () => {
  const bits = patterns();
  const f = new Float32Array(bits.buffer), back = new Uint32Array(1), asF = new Float32Array(back.buffer);
  for (let i = 0; i < bits.length; i++) {
    asF[0] = bf16Round(f[i]);
    assert.is(back[0] >>> 16, reference(bits[i]), `0x${bits[i].toString(16)}`);
    assert.is(back[0] & 0xffff, 0, 'the low 16 bits zero');
  }
  // spot checks of what the reference says
  assert.is(bf16Round(1 + 2 ** -8), 1, 'a tie rounds to even (down)');
  assert.is(bf16Round(1 + 3 * 2 ** -8), 1 + 2 ** -6, 'a tie rounds to even (up)');
  assert.is(bf16Round(3.4028234663852886e38), Infinity, 'past the largest bfloat16: infinity');
  assert.ok(Number.isNaN(bf16Round(NaN)) && bf16Round(-Infinity) === -Infinity && Object.is(bf16Round(-0), -0));
  // the float64 path: rounded to float32 first
  const d = new Float64Array([1 + 2 ** -8 + 2 ** -40]), o = new Float64Array(1);
  jsKernels.roundBf16(d, o);
  assert.is(o[0], 1, 'float64 input: through float32 (the 2^-40 is lost there, then a tie)');
});

BN('native roundBf16 gives the TypeScript rounding bit for bit; in place too; a length mismatch is an error', () => {
  const a = nativeAddon()!;
  const bits = patterns(), x = new Float32Array(bits.buffer);
  const js = new Float32Array(x.length), nat = new Float32Array(x.length);
  jsKernels.roundBf16(x, js);
  a.roundBf16(x, nat);
  assert.ok(new Uint32Array(js.buffer).every((v, i) => v === new Uint32Array(nat.buffer)[i]), 'the same bits');
  const y = x.slice();
  a.roundBf16(y, y);
  assert.ok(new Uint32Array(y.buffer).every((v, i) => v === new Uint32Array(nat.buffer)[i]), 'in place');
  assert.throws(() => a.roundBf16(x, new Float32Array(3)), new RegExp(`roundBf16: out has 3 elements, expected ${x.length}`));
});

/** the bfloat16 arithmetic layer by layer: weights rounded in a copy, each convolution's and linear
 *  layer's input rounded, no fusion */
function byLayers(model: Sequential, x: Tensor): Tensor {
  const m = buildModel(lenet5Arch(), 0);
  m.loadStateDict(model.stateDict());
  for (const l of m.layers) if (l instanceof Conv2d || l instanceof Linear) l.weight.data = roundBf16(l.weight).data;
  m.eval();
  return noGrad(() => {
    let h = x;
    for (const l of m.layers) h = l.forward(l instanceof Conv2d || l instanceof Linear ? roundBf16(h) : h);
    return h;
  });
}

B('an inference session in bfloat16: the same as rounding by hand layer by layer; the model\'s weights untouched; float32 sessions unchanged', () => {
  const model = buildModel(lenet5Arch(), 3);
  model.eval();
  const rng = new Rng(5);
  const x = new Tensor(Float32Array.from({ length: 4 * 784 }, () => rng.uniform(0, 1)), [4, 1, 28, 28]);
  const before = model.layers.flatMap((l) => (l instanceof Conv2d || l instanceof Linear ? [l.weight.data.slice()] : []));
  const s16 = new InferenceSession(model, { precision: 'bf16' });
  const y16 = s16.run(x);
  assert.is(s16.precision, 'bf16');
  assertClose(y16.data, byLayers(model, x).data, 1e-5, 'session against layer by layer');
  const y32 = new InferenceSession(model).run(x);
  assertClose(y32.data, noGrad(() => model.forward(x)).data, 1e-5, 'float32 session');
  let diff = 0;
  for (let i = 0; i < y16.size; i++) diff = Math.max(diff, Math.abs(y16.data[i] - y32.data[i]));
  assert.ok(diff > 1e-4 && diff < 0.1, `bfloat16 moves the logits a little: ${diff}`);
  const after = model.layers.flatMap((l) => (l instanceof Conv2d || l instanceof Linear ? [l.weight.data] : []));
  after.forEach((w, i) => assert.equal(w, before[i], 'the model keeps its float32 weights'));
  assert.throws(() => new InferenceSession(model, { precision: 'fp16' as 'bf16' }), /InferenceSession: precision must be 'float32' or 'bf16', got 'fp16'/);
});

B('LeNet-5 and its merged form evaluated in bfloat16: within 0.1 points of float32 on the MNIST test set', async () => {
  const { model, arch } = modelFromCheckpoint('models/lenet5.safetensors');
  const task = await loadTask(arch);
  const merged = cloneModel(model, arch);
  mergeModel(merged, { ratio: 0.5, seed: 0 });
  for (const [name, m] of [['original', model], ['merged', merged]] as const) {
    const a32 = accuracyOf(m, task).accuracy, a16 = accuracyOf(m, task, { precision: 'bf16' }).accuracy;
    console.log(`  ${name}: float32 ${(100 * a32).toFixed(2)}%, bfloat16 ${(100 * a16).toFixed(2)}%`);
    assert.ok(Math.abs(a16 - a32) <= 0.001, `${name}: ${a16} against ${a32}`);
  }
});

B('training in bfloat16: a linear layer\'s gradients are the products of the rounded operands and the rounded output gradient; the master weights stay float32', () => {
  const rng = new Rng(11);
  const f = (n: number) => Float32Array.from({ length: n }, () => rng.uniform(-1, 1));
  const layer = new Linear(5, 3, { rng: new Rng(2) });
  const w0 = layer.weight.data.slice();
  const x = new Tensor(f(4 * 5), [4, 5]), c = new Tensor(f(4 * 3), [4, 3]);
  const y = withProductPrecision('bf16', () => layer.forward(x));
  withProductPrecision('bf16', () => sum(mul(y, c)).backward());
  const r = (t: Tensor) => roundBf16(t).data;
  const xr = r(x), wr = r(layer.weight), cr = r(c);
  // y = xr · wrᵀ + b (the bias in float32); gw = crᵀ · xr
  const want = new Float32Array(4 * 3), gw = new Float32Array(3 * 5);
  for (let n = 0; n < 4; n++) for (let o = 0; o < 3; o++) {
    let s = layer.bias!.data[o];
    for (let i = 0; i < 5; i++) s += xr[n * 5 + i] * wr[o * 5 + i];
    want[n * 3 + o] = s;
    for (let i = 0; i < 5; i++) gw[o * 5 + i] += cr[n * 3 + o] * xr[n * 5 + i];
  }
  assertClose(y.data, want, 1e-6, 'the forward of rounded operands');
  assertClose(layer.weight.grad!.data, gw, 1e-6, 'the weight gradient of rounded operands');
  assert.equal(layer.weight.data, w0, 'the master weights untouched by the forward');
  // float32 outside: the same layer, no rounding
  const y32 = layer.forward(x);
  assert.ok(y32.data.some((v, i) => v !== y.data[i]), 'float32 differs');
  assert.throws(() => withProductPrecision('fp16' as 'bf16', () => 0), /withProductPrecision: precision must be 'float32' or 'bf16', got 'fp16'/);
});

B.run();
