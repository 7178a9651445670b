// ONNX export: the file's structure (opset, dynamic batch, one node per layer, batch norms kept or
// folded), and the same logits from onnxruntime as from neuronmerge on real test images, for each
// network, original and merged (onnxruntime-node, a development dependency: skipped where missing).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { accuracyOf, buildModel, dbnArch, fromOnnx, inputShape, lenet5Arch, loadTask, mergeModel, noGrad, ONNX_OPSET, slice, toOnnx, vgg16Arch, Linear, Sequential, Tanh, Rng, saveCheckpoint } from '../src/internal.js';
import type { Arch, Module, Tensor } from '../src/internal.js';
import { cliJson, needs, runCli, tempDir } from './helpers.js';

const { onnx } = onnxProto;
const O = suite('onnx');
const SHARED_CIFAR = join(process.cwd(), '..', 'shared', 'datasets', 'cifar-10-jpeg75', 'cifar-10-batches-bin');
const FIX = join(process.cwd(), 'test', 'fixtures', 'onnx');

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

const run = runCli, json = cliJson;

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
  // finetune writes ONNX at the end; the file reads back as the fine-tuned model
  const f = json(run('finetune', join(d, 'm.onnx'), '--epochs', '1', '--limit', '200', '--out', join(d, 'f.onnx'), '--json'));
  assert.is(json(run('eval', join(d, 'f.onnx'), '--json')).accuracy, f.accuracy.after);
  assert.is(json(run('info', join(d, 'f.onnx'), '--json')).kind, 'finetuned');
  // a file that cannot be imported: one line naming the node and its operator, exit code 1
  const soft = run('eval', join(FIX, 'softmax.onnx'));
  assert.is(soft.status, 1);
  assert.match(soft.stderr, /^neuronmerge: .*softmax\.onnx: node '[^']+' \(Softmax\): not supported \(supported: [^\n]*\)\n$/);
});

O('a file neuronmerge wrote reads back as its own network (batch norms kept), by content whatever its name', () => {
  const d = tempDir('nm-onnx-own-');
  const arch = vgg16Arch([4, 4, 6, 6, 6, 6, 6, 8, 8, 8, 8, 8, 8], 10);
  const model = buildModel(arch, 3);
  perturbNorms(model);
  const a = join(d, 'v.safetensors');
  saveCheckpoint(a, { arch, model, kind: 'merged', normalization: { mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3] } });
  // kept: the recorded vgg16 again, every tensor equal
  const kept = json(run('export', a, '--out', join(d, 'v.onnx'), '--json'));
  assert.is(kept.kind, 'merged');
  const back = fromOnnx(readFileSync(join(d, 'v.onnx')), 'v.onnx', {});
  assert.is(back.arch.model, 'vgg16');
  assert.equal(back.arch, arch);
  const want = model.stateDict();
  for (const [k, t] of back.model.stateDict()) assert.equal(Array.from(t.data), Array.from(want.get(k)!.data), k);
  assert.is(back.model.stateDict().size, want.size);
  // folded: a different graph (no batch norms), so it stays a sequential model of that graph
  run('export', a, '--out', join(d, 'f.onnx'), '--fold-batch-norm');
  const folded = fromOnnx(readFileSync(join(d, 'f.onnx')), 'f.onnx', {});
  assert.is(folded.arch.model, 'sequential');
  assert.ok(folded.arch.model === 'sequential' && !folded.arch.layers.some((l) => l.op === 'batchnorm'));
  // an ONNX file under a checkpoint's name is read as ONNX, by the command too
  const copy = join(d, 'copy.safetensors');
  writeFileSync(copy, readFileSync(join(d, 'v.onnx')));
  const info = json(run('info', copy, '--json'));
  assert.is(info.kind, 'merged');
  assert.is(info.arch.model, 'vgg16');
  // a zip archive (a PyTorch .pt) under that name: said so, in one line
  writeFileSync(join(d, 'z.safetensors'), Buffer.concat([Buffer.from([0x50, 0x4b, 3, 4]), Buffer.alloc(60, 1)]));
  const z = run('info', join(d, 'z.safetensors'));
  assert.is(z.status, 1);
  assert.match(z.stderr, /^neuronmerge: .*z\.safetensors: .*a zip archive \(a PyTorch \.pt file\?\), not a safetensors file\n$/);
});

O.run();

// ---- import: files made by PyTorch (test/fixtures/onnx/make.py), and bad files ----
const I = suite('onnx import');
const expected = JSON.parse(readFileSync(join(FIX, 'expected.json'), 'utf8')) as { cnn: { accuracy: number; logits: number[][] }; mlp: { logits: number[][] } };

/** the largest |a − b| over the largest |b| */
function relDiff(a: ArrayLike<number>, b: number[]): number {
  let d = 0, m = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / m;
}

I('PyTorch\'s CNN (Conv, MaxPool, Pad, AveragePool, Flatten, Gemm, BatchNormalization, Dropout) and MLP (Reshape, MatMul + Add, Tanh, Sigmoid): PyTorch\'s logits, and the CNN\'s test accuracy', async () => {
  const cnn = fromOnnx(readFileSync(join(FIX, 'cnn.onnx')), 'cnn.onnx');
  assert.is(cnn.arch.model, 'sequential');
  assert.equal(cnn.arch.model === 'sequential' && cnn.arch.layers.map((l) => l.op), ['conv', 'relu', 'maxpool', 'conv', 'relu', 'avgpool', 'flatten', 'linear', 'batchnorm', 'relu', 'linear']);
  const task = await loadTask(cnn.arch);
  cnn.model.eval();
  const x = slice(task.ev.x, 0, 16);
  assert.ok(relDiff(noGrad(() => cnn.model.forward(x)).data, expected.cnn.logits.flat()) <= 1e-4, 'cnn logits');
  assert.ok(Math.abs(accuracyOf(cnn.model, task).accuracy - expected.cnn.accuracy) < 1e-4, 'the accuracy PyTorch measured');
  const mlp = fromOnnx(readFileSync(join(FIX, 'mlp.onnx')), 'mlp.onnx');
  assert.equal(mlp.arch.model === 'sequential' && mlp.arch.layers.map((l) => l.op), ['flatten', 'linear', 'tanh', 'linear', 'sigmoid', 'linear']);
  mlp.model.eval();
  assert.ok(relDiff(noGrad(() => mlp.model.forward(x)).data, expected.mlp.logits.flat()) <= 1e-4, 'mlp logits');
  // an imported model merges, and exports again
  mergeModel(mlp.model, { ratio: 0.5, seed: 0, nInit: 1 });
  assert.equal(onnx.ModelProto.decode(toOnnx(mlp.model, [1, 28, 28])).graph!.initializer!.find((t) => t.name === 'layers.1.weight')!.dims!.map(Number), [12, 784]);
});

I('bad files: one line naming the node and its operator, or the field at fault', () => {
  const bad = (bytes: Uint8Array, re: RegExp) => assert.throws(() => fromOnnx(bytes, 'f.onnx'), (e: Error) => re.test(e.message) && !e.message.includes('\n'));
  bad(readFileSync(join(FIX, 'softmax.onnx')), /^f\.onnx: node '[^']*' \(Softmax\): not supported \(supported: Conv, /);
  bad(readFileSync(join(FIX, 'residual.onnx')), /^f\.onnx: node '[^']*' \(Add\): adds '[^']+', an earlier layer's output \(a branch, as in a residual block\); only a chain of layers can be imported$/);
  const good = readFileSync(join(FIX, 'cnn.onnx'));
  bad(good.subarray(0, good.length >> 1), /^f\.onnx: not a readable ONNX model/);
  const edit = (f: (m: InstanceType<typeof onnx.ModelProto>) => void) => {
    const m = onnx.ModelProto.decode(good);
    f(m);
    return onnx.ModelProto.encode(m).finish();
  };
  // the first convolution's weight removed from the initializers
  const conv = onnx.ModelProto.decode(good).graph!.node![0];
  bad(edit((m) => (m.graph!.initializer = m.graph!.initializer!.filter((t) => t.name !== conv.input![1]))), new RegExp(`^f\\.onnx: node '${conv.name}' \\(Conv\\): weight '${conv.input![1]}' is not an initializer`));
  // the last Gemm's weight one column short: its in-features no longer match the layer before
  const gemm = onnx.ModelProto.decode(good).graph!.node!.filter((n) => n.opType === 'Gemm').pop()!;
  bad(edit((m) => {
    const t = m.graph!.initializer!.find((x) => x.name === gemm.input![1])!;
    t.dims = [10, 31];
    t.rawData = t.rawData!.subarray(0, 4 * 310);
  }), new RegExp(`^f\\.onnx: node '${gemm.name}' \\(Gemm\\): reads 31 features, gets 32`));
  // raw data shorter than the shape says
  bad(edit((m) => {
    const t = m.graph!.initializer!.find((x) => x.name === gemm.input![1])!;
    t.rawData = t.rawData!.subarray(0, 12);
  }), /^f\.onnx: initializer '[^']+' holds 12 bytes, its shape \[10, 32\] needs 1280/);
  // an input of no known dataset
  bad(edit((m) => (m.graph!.input![0].type!.tensorType!.shape!.dim![2].dimValue = 30)), /^f\.onnx: no dataset known for inputs of 1 × 30 × 28; give dataset$/);
});

needs(I, ort ? null : 'onnxruntime-node is not installed (npm ci)')('a PyTorch CNN merged at 0.5 by one command and exported: onnxruntime\'s test accuracy is the one neuronmerge reported', async () => {
  const d = tempDir('nm-onnx-import-');
  const out = join(d, 'merged.onnx');
  const r = run('merge', join(FIX, 'cnn.onnx'), '--ratio', '0.5', '--out', out, '--no-report', '--json');
  assert.is(r.status, 0, r.stderr);
  const res = JSON.parse(r.stdout);
  assert.ok(Math.abs(res.accuracy.before - expected.cnn.accuracy) < 1e-4, 'neuronmerge measures the original as PyTorch did');
  assert.equal(res.units.map((u: { after: number }) => u.after), [4, 8, 16]);
  const task = await loadTask(lenet5Arch());
  const session = await ort!.InferenceSession.create(readFileSync(out));
  let right = 0;
  const N = task.ev.y.length, B = 1000, D = 784;
  for (let i = 0; i < N; i += B) {
    const n = Math.min(B, N - i);
    const y = (await session.run({ input: new ort!.Tensor('float32', Float32Array.from(task.ev.x.data.subarray(i * D, (i + n) * D)), [n, 1, 28, 28]) })).output.data as Float32Array;
    for (let k = 0; k < n; k++) {
      let best = 0;
      for (let c = 1; c < 10; c++) if (y[k * 10 + c] > y[k * 10 + best]) best = c;
      if (best === task.ev.y[i + k]) right++;
    }
  }
  assert.ok(Math.abs(right / N - res.accuracy.after) < 1e-4, `onnxruntime ${right / N} vs neuronmerge ${res.accuracy.after}`);
  // the imported model saved as a checkpoint reads back as the same model
  const ck = join(d, 'merged.safetensors');
  const r2 = json(run('merge', join(FIX, 'cnn.onnx'), '--ratio', '0.5', '--out', ck, '--no-report', '--json'));
  assert.is(r2.arch.model, 'sequential');
  assert.is(json(run('eval', ck, '--json')).accuracy, res.accuracy.after);
});

I.run();
