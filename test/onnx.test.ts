// ONNX export: the file's structure (opset, dynamic batch, one node per layer, batch norms kept or
// folded), and the same logits from onnxruntime as from neuronmerge on real test images, for each
// network, original and merged (onnxruntime-node, a development dependency: skipped where missing).
import { existsSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { buildModel, dbnArch, inputShape, lenet5Arch, loadTask, mergeModel, noGrad, ONNX_OPSET, slice, toOnnx, vgg16Arch, Linear, Sequential, Tanh, Rng, saveCheckpoint } from '../src/index.js';
import type { Arch, Module, Tensor } from '../src/index.js';
import { needs, tempDir } from './helpers.js';

const { onnx } = onnxProto;
const O = suite('onnx');
const SHARED_CIFAR = join(process.cwd(), '..', 'shared', 'datasets', 'cifar-10-jpeg75', 'cifar-10-batches-bin');

let ort: typeof import('onnxruntime-node') | null = null;
try {
  ort = await import('onnxruntime-node');
} catch {
  /* counted as skipped below */
}

/** batch norms with statistics far from the identity, so that keeping and folding them both matter */
function perturbNorms(m: Sequential): void {
  for (const l of m.layers as (Module & { runningVar?: Tensor; runningMean?: Tensor; weight?: Tensor; bias?: Tensor })[]) {
    if (!l.runningVar) continue;
    l.runningVar.data.forEach((_, i, a) => (a[i] = 0.3 + (i % 7) / 5));
    l.runningMean!.data.forEach((_, i, a) => (a[i] = ((i % 5) - 2) / 10));
    l.weight!.data.forEach((_, i, a) => (a[i] = 0.5 + (i % 3) / 3));
    l.bias!.data.forEach((_, i, a) => (a[i] = ((i % 4) - 1.5) / 10));
  }
}

O('the file: opset 13, a dynamic batch axis, one operator per layer, batch norms kept or folded', () => {
  const m = buildModel(lenet5Arch(), 1);
  const f = onnx.ModelProto.decode(toOnnx(m, inputShape(lenet5Arch())));
  assert.is(Number(f.opsetImport![0].version), ONNX_OPSET);
  assert.equal(f.graph!.node!.map((n) => n.opType), ['Conv', 'MaxPool', 'Conv', 'MaxPool', 'Flatten', 'Gemm', 'Relu', 'Gemm']);
  const dims = f.graph!.input![0].type!.tensorType!.shape!.dim!;
  assert.is(dims[0].dimParam, 'batch');
  assert.equal(dims.slice(1).map((d) => Number(d.dimValue)), [1, 28, 28]);
  assert.equal(f.graph!.output![0].type!.tensorType!.shape!.dim!.slice(1).map((d) => Number(d.dimValue)), [10]);
  // the first convolution's weights, bit for bit
  const w = f.graph!.initializer!.find((t) => t.name === 'layers.0.weight')!;
  assert.equal(w.dims!.map(Number), [20, 1, 5, 5]);
  const raw = w.rawData!;
  assert.equal(Array.from(new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength))), Array.from(m.layers[0].parameters()[0].data));
  const vgg = buildModel(vgg16Arch(Array(13).fill(4), 8), 2);
  const ops = (fold: boolean) => onnx.ModelProto.decode(toOnnx(vgg, [3, 32, 32], { foldBatchNorm: fold })).graph!.node!.map((n) => n.opType);
  assert.is(ops(false).filter((o) => o === 'BatchNormalization').length, 14);
  assert.is(ops(true).filter((o) => o === 'BatchNormalization').length, 0);
  assert.is(ops(true).filter((o) => o === 'Conv').length, 13);
  class Odd extends Sequential {}
  assert.throws(() => toOnnx(new Sequential(new Linear(3, 2, { rng: new Rng(0) }), new Odd()), [3]), /layer 1 \(.*\) has no ONNX operator/);
  assert.not.throws(() => toOnnx(new Sequential(new Linear(3, 2, { rng: new Rng(0) }), new Tanh()), [3]));
});

/** the largest |ours − onnxruntime's| over the largest |ours|, and whether the predicted classes agree */
async function compare(model: Sequential, arch: Arch, x: Tensor, fold: boolean): Promise<{ rel: number; agree: boolean }> {
  model.eval();
  const ours = noGrad(() => model.forward(x)).data;
  const session = await ort!.InferenceSession.create(toOnnx(model, inputShape(arch), { foldBatchNorm: fold }));
  const theirs = (await session.run({ input: new ort!.Tensor('float32', Float32Array.from(x.data), x.shape) })).output.data as Float32Array;
  let diff = 0, big = 0, agree = true;
  const C = arch.classes;
  for (let i = 0; i < ours.length; i++) {
    diff = Math.max(diff, Math.abs(theirs[i] - ours[i]));
    big = Math.max(big, Math.abs(ours[i]));
  }
  for (let n = 0; n < ours.length / C; n++) {
    const arg = (v: ArrayLike<number>) => {
      let b = 0;
      for (let c = 1; c < C; c++) if (v[n * C + c] > v[n * C + b]) b = c;
      return b;
    };
    agree &&= arg(ours) === arg(theirs);
  }
  return { rel: diff / big, agree };
}

const needOrt = needs(O, ort ? null : 'onnxruntime-node is not installed (npm ci)');

needOrt('LeNet-5 and the DBN, original and merged at 0.5: onnxruntime gives our logits on 256 MNIST test digits (max relative difference 1e-4)', async () => {
  for (const arch of [lenet5Arch(), dbnArch()]) {
    const task = await loadTask(arch);
    const x = slice(task.ev.x, 0, 256);
    const m = buildModel(arch, 3);
    const merged = buildModel(arch, 3);
    mergeModel(merged, { ratio: 0.5, seed: 0, nInit: 1 });
    for (const [what, model] of [['original', m], ['merged', merged]] as const) {
      const r = await compare(model, arch, x, false);
      assert.ok(r.rel <= 1e-4, `${arch.model} ${what}: ${r.rel}`);
      assert.ok(r.agree, `${arch.model} ${what}: a predicted class differs`);
    }
  }
});

needs(O, !ort ? 'onnxruntime-node is not installed (npm ci)' : existsSync(SHARED_CIFAR) ? null : `${SHARED_CIFAR} is missing`)('VGG-16 (an eighth wide), original and merged, batch norms kept and folded: onnxruntime gives our logits on 64 CIFAR-10 test images', async () => {
  const arch = vgg16Arch(Array(13).fill(8).map((w, i) => w * (1 + (i >> 2))), 32);
  const task = await loadTask(arch, { path: SHARED_CIFAR });
  const x = slice(task.ev.x, 0, 64);
  const m = buildModel(arch, 5);
  perturbNorms(m);
  const merged = buildModel(arch, 5);
  merged.loadStateDict(m.stateDict());
  mergeModel(merged, { ratio: 0.5, seed: 0, nInit: 1 });
  for (const [what, model] of [['original', m], ['merged', merged]] as const) {
    for (const fold of [false, true]) {
      const r = await compare(model, arch, x, fold);
      assert.ok(r.rel <= 1e-4, `vgg16 ${what}${fold ? ' folded' : ''}: ${r.rel}`);
      assert.ok(r.agree, `vgg16 ${what}${fold ? ' folded' : ''}: a predicted class differs`);
    }
  }
});

const bin = join(process.cwd(), 'dist', 'src', 'cli', 'index.js');
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });

O('the command: export, merge and prune to .onnx, and one-line errors', () => {
  const d = tempDir('nm-onnx-');
  const a = join(d, 'a.safetensors');
  saveCheckpoint(a, { arch: lenet5Arch([6, 8, 20]), model: buildModel(lenet5Arch([6, 8, 20]), 1) });
  const e = run('export', a, '--out', join(d, 'a.onnx'), '--json');
  assert.is(e.status, 0, e.stderr);
  const info = JSON.parse(e.stdout);
  assert.is(info.kind, 'original');
  assert.match(info.input, /pixels \/ 255/);
  const file = onnx.ModelProto.decode(readFileSync(join(d, 'a.onnx')));
  assert.is(file.graph!.node!.length, 8);
  assert.equal(JSON.parse(file.metadataProps!.find((p) => p.key === 'neuronmerge.arch')!.value!).widths, [6, 8, 20]);
  const m = run('merge', a, '--ratio', '0.5', '--out', join(d, 'm.onnx'), '--no-eval', '--no-report', '--json');
  assert.is(m.status, 0, m.stderr);
  assert.is(JSON.parse(m.stdout).format, 'onnx');
  const merged = onnx.ModelProto.decode(readFileSync(join(d, 'm.onnx')));
  assert.equal(merged.graph!.initializer!.find((t) => t.name === 'layers.0.weight')!.dims!.map(Number), [3, 1, 5, 5]);
  assert.is(merged.metadataProps!.find((p) => p.key === 'neuronmerge.kind')!.value, 'merged');
  const p = run('prune', a, '--ratio', '0.5', '--out', join(d, 'p.bin'), '--format', 'onnx', '--no-eval', '--json');
  assert.is(p.status, 0, p.stderr);
  assert.equal(onnx.ModelProto.decode(readFileSync(join(d, 'p.bin'))).graph!.node!.map((n) => n.opType)[0], 'Conv');
  const same = run('export', a, '--out', a);
  assert.is(same.status, 1);
  assert.match(same.stderr, /^neuronmerge: --out .*a\.safetensors: is also the input/);
  const missing = run('export', join(d, 'none.safetensors'), '--out', join(d, 'n.onnx'));
  assert.match(missing.stderr, /^neuronmerge: .*none\.safetensors: cannot read \(ENOENT\)\n$/);
  assert.ok(!existsSync(join(d, 'n.onnx')));
  assert.match(run('merge', a, '--ratio', '0.5', '--out', join(d, 'x.onnx'), '--format', 'tflite').stderr, /--format must be safetensors, onnx, got 'tflite'/);
});

O.run();
