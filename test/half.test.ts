// Half precision as a storage format: the float16 rounding itself, checkpoints whose weights are stored
// in float16, and `export --float16`, which writes one only when the test accuracy holds.
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { fromHalfBits, roundHalf, toHalf, toHalfBits, fromHalf } from '../src/tensor/half.js';
import { Rng } from '../src/tensor/rng.js';
import { loadCheckpoint, readSafetensors, saveCheckpoint } from '../src/train/checkpoint.js';
import { buildModel, lenet5Arch } from '../src/models/index.js';
import { exportCheckpoint } from '../src/experiment/export.js';
import { cliJson, needs, runCli, snapshot, tempDir } from './helpers.js';

const H = suite('half');

H('every float16 value reads back to itself; the special values keep their meaning', () => {
  for (let h = 0; h < 0x10000; h++) {
    const v = fromHalfBits(h);
    if (Number.isNaN(v)) {
      assert.ok((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0, `bits ${h.toString(16)} read as NaN`);
      assert.ok(Number.isNaN(fromHalfBits(toHalfBits(v))));
      continue;
    }
    assert.is(toHalfBits(v), h, `bits ${h.toString(16)} (${v})`);
  }
  assert.is(fromHalfBits(0x7bff), 65504);
  assert.is(fromHalfBits(0x0001), 2 ** -24);
  assert.is(fromHalfBits(0x0400), 2 ** -14);
  assert.is(fromHalfBits(0x3c00), 1);
  assert.is(fromHalfBits(0xc000), -2);
  assert.is(toHalfBits(-0), 0x8000);
  assert.is(toHalfBits(Infinity), 0x7c00);
  assert.is(toHalfBits(-Infinity), 0xfc00);
});

H('float32 values round to the nearest float16, ties to even, overflow to infinity, underflow to zero', () => {
  // the ties and edges, worked by hand
  assert.is(toHalfBits(1 + 2 ** -11), 0x3c00, 'halfway between 1 and the next: down to the even 1');
  assert.is(toHalfBits(1 + 3 * 2 ** -11), 0x3c02, 'halfway between odd and even: up to the even');
  assert.is(toHalfBits(65519), 0x7bff, 'below the halfway point past 65504 stays finite');
  assert.is(toHalfBits(65520), 0x7c00, 'the halfway point past 65504 rounds to infinity');
  assert.is(toHalfBits(2 ** -25), 0, 'half the smallest subnormal: down to the even zero');
  assert.is(toHalfBits(-(2 ** -25) * 1.0001), 0x8001, 'just past it: the smallest subnormal, sign kept');
  assert.is(toHalfBits(3 * 2 ** -25), 0x0002, 'between subnormals 1 and 2: up to the even 2');
  assert.is(toHalfBits(2 ** -14 - 2 ** -26), 0x0400, 'rounding up from the largest subnormal reaches the smallest normal');
  // random values over every range: the chosen float16 is at least as near as both its neighbours,
  // and on a tie it is the even one
  const rng = new Rng(7);
  for (let i = 0; i < 20000; i++) {
    const x = Math.fround((rng.random() < 0.5 ? -1 : 1) * 2 ** (rng.random() * 44 - 28) * (1 + rng.random()));
    const h = toHalfBits(x);
    const v = fromHalfBits(h);
    if (Math.abs(x) >= 65520) {
      assert.is(v, Math.sign(x) * Infinity, `${x}`);
      continue;
    }
    const mag = h & 0x7fff;
    const d = Math.abs(x - v);
    for (const n of [mag - 1, mag + 1]) {
      if (n < 0 || n > 0x7bff) continue;
      const dn = Math.abs(Math.abs(x) - fromHalfBits(n));
      assert.ok(d <= dn, `${x} -> ${v}: ${fromHalfBits(n)} is nearer`);
      if (d === dn) assert.is(mag & 1, 0, `${x}: a tie goes to the even neighbour`);
    }
    if (v !== 0) assert.is(Math.sign(v), Math.sign(x));
  }
  const xs = new Float32Array([0.1, -3.3, 1e-6, 70000]);
  assert.equal([...roundHalf(xs)], [...fromHalf(toHalf(xs))]);
  assert.equal([...roundHalf(xs)].map((v) => v === fromHalfBits(toHalfBits(v))), [true, true, true, true]);
});

H('a float16 checkpoint stores the weight tensors in half precision, the rest in float32, and reads back their rounding', () => {
  const d = tempDir('nm-half-');
  const arch = lenet5Arch([6, 8, 20]);
  const model = buildModel(arch, 3);
  const f32 = join(d, 'a.safetensors'), f16 = join(d, 'a16.safetensors');
  saveCheckpoint(f32, { arch, model });
  saveCheckpoint(f16, { arch, model, weights: 'float16' });
  const header = readSafetensors(f16);
  const raw = JSON.parse(readFileSync(f16).subarray(8, 8 + Number(readFileSync(f16).readBigUInt64LE())).toString('utf8'));
  let halfValues = 0, total = 0;
  for (const [k, t] of model.stateDict()) {
    total += t.size;
    const dtype = raw['model.' + k].dtype;
    assert.is(dtype, t.shape.length >= 2 ? 'F16' : 'F32', k);
    const back = header.tensors.get('model.' + k)!.data;
    const want = t.shape.length >= 2 ? roundHalf(t.data as Float32Array) : t.data;
    assert.ok(back instanceof Float32Array, k);
    assert.equal([...back], [...want], `${k}: read back as the float16 rounding`);
    if (t.shape.length >= 2) halfValues += t.size;
  }
  assert.ok(halfValues > 0.95 * total);
  assert.ok(statSync(f16).size < 0.55 * statSync(f32).size, `${statSync(f16).size} against ${statSync(f32).size} bytes`);
  const c = loadCheckpoint(f16);
  assert.is(c.kind, 'original');
  assert.equal(c.arch, arch);
  // a weight past float16's range: refused, naming the tensor, and the file already there kept
  const before = snapshot(d);
  const w = model.stateDict().get('2.weight')!;
  w.data[5] = 70000;
  assert.throws(() => saveCheckpoint(f16, { arch, model, weights: 'float16' }), (e: Error) => e.message === `${f16}: tensor 'model.2.weight' holds 70000 at index 5, past float16's range (±65504); write it as float32`);
  assert.equal(snapshot(d), before);
  // a corrupt F16 tensor (its byte count not two a value) is refused on reading
  const bytes = readFileSync(f16);
  const n = Number(bytes.readBigUInt64LE());
  const h = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
  h['model.0.weight'].data_offsets[1] -= 2;
  let json = JSON.stringify(h);
  json += ' '.repeat(n - json.length);
  writeFileSync(join(d, 'bad.safetensors'), Buffer.concat([bytes.subarray(0, 8), Buffer.from(json), bytes.subarray(8 + n)]));
  assert.throws(() => readSafetensors(join(d, 'bad.safetensors')), /tensor 'model\.0\.weight' of shape \[6,1,5,5\] needs 300 bytes, its offsets give 298/);
});

const ORIGINAL = join('models', 'lenet5.safetensors');

needs(H, existsSync(ORIGINAL) ? null : `${ORIGINAL} is missing`)('export --float16: the shipped LeNet-5 at half the bytes, its accuracy measured before and after; a change past --tolerance writes nothing', async () => {
  const d = tempDir('nm-half-');
  const out = join(d, 'lenet5-f16.safetensors');
  const r = cliJson(runCli('export', ORIGINAL, '--out', out, '--float16', '--json'));
  assert.is(r.format, 'safetensors');
  assert.is(r.weights, 'float16');
  assert.is(r.kind, 'original');
  assert.is(r.accuracy.images, 10000);
  assert.ok(Math.abs(r.accuracy.float16 - r.accuracy.float32) <= 0.0005, JSON.stringify(r.accuracy));
  assert.is(r.bytes, statSync(out).size);
  assert.ok(r.bytes < 0.51 * statSync(ORIGINAL).size, `${r.bytes} bytes`);
  const e = cliJson(runCli('eval', out, '--json'));
  assert.is(e.accuracy, r.accuracy.float16, 'the written file evaluates to the accuracy measured before writing it');
  assert.is(e.kind, 'original');
  assert.is(e.params, 431080);
  // float32: the model alone, no optimizer or generator state; the same accuracy to the bit
  const plain = join(d, 'lenet5.safetensors');
  const p = cliJson(runCli('export', ORIGINAL, '--out', plain, '--json'));
  assert.is(p.weights, 'float32');
  const c = loadCheckpoint(plain);
  assert.is(c.optimizer, null);
  assert.equal(c.rngs, []);
  assert.equal([...c.state.get('5.weight')!.data.subarray(0, 50)], [...loadCheckpoint(ORIGINAL).state.get('5.weight')!.data.subarray(0, 50)]);
  assert.is(cliJson(runCli('eval', plain, '--json')).accuracy, r.accuracy.float32);

  // a model float16 cannot hold: the first convolution's weights (and bias) scaled down by 2^22, the
  // next layer's weights up by 2^14 and its bias down by 2^8, the next weights up by 2^8. ReLU and max
  // pooling pass powers of two through exactly, so in float32 it computes the original's logits times
  // 1 (the same accuracy); in float16 the first weights fall among the subnormals, a few steps apart.
  const src = loadCheckpoint(ORIGINAL);
  const model = buildModel(src.arch, 0);
  model.loadStateDict(src.state);
  const s = model.stateDict();
  const scale = (k: string, f: number) => s.get(k)!.data.forEach((v, i, a) => { a[i] = v * f; });
  scale('0.weight', 2 ** -22); scale('0.bias', 2 ** -22); scale('2.weight', 2 ** 14); scale('2.bias', 2 ** -8); scale('5.weight', 2 ** 8);
  const fragile = join(d, 'fragile.safetensors');
  saveCheckpoint(fragile, { arch: src.arch, model, kind: 'original', train: src.train ?? undefined });
  const loose = await exportCheckpoint(fragile, join(d, 'loose.safetensors'), { float16: true, tolerance: 1 });
  assert.is(loose.accuracy!.float32, r.accuracy.float32, 'the rescaled model computes what the original does in float32');
  const change = Math.abs(loose.accuracy!.float16 - loose.accuracy!.float32);
  assert.ok(100 * change > 0.1, `float16 costs it ${100 * change} points`);
  const before = snapshot(d);
  const refused = runCli('export', fragile, '--out', join(d, 'tight.safetensors'), '--float16');
  assert.is(refused.status, 1);
  assert.match(refused.stderr, new RegExp(`^neuronmerge: ${fragile.replace(/[.]/g, '\\.')}: with float16 weights the test accuracy moves from ${(100 * loose.accuracy!.float32).toFixed(2)}% to ${(100 * loose.accuracy!.float16).toFixed(2)}% \\(-[\\d.]+ points, more than the 0\\.05 allowed\\); nothing written\\. Export it as float32\\n$`, 'm'));
  assert.equal(snapshot(d), before, 'nothing written');
  // options that do not go together
  assert.match(runCli('export', ORIGINAL, '--out', join(d, 'x.onnx'), '--float16').stderr, /^neuronmerge: --float16 stores a checkpoint's weights in half precision: it needs --format safetensors \(or --out ending in \.safetensors\)\n$/);
  assert.match(runCli('export', ORIGINAL, '--out', join(d, 'x.safetensors'), '--fold-batch-norm').stderr, /^neuronmerge: --fold-batch-norm applies to ONNX only/);
  assert.match(runCli('export', ORIGINAL, '--out', join(d, 'x.safetensors'), '--float16', '--tolerance', '-1').stderr, /--tolerance/);
  assert.equal(snapshot(d), before);
});

H.run();
