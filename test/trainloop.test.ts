// The training loop and checkpoints: resuming continues exactly as an uninterrupted run; a NaN loss
// stops with a clear message and the last good checkpoint kept; every kind of bad checkpoint file
// gives a clear error without a crash or a huge allocation.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  BatchLoader, buildModel, cosineLr, fit, lenet5Arch, loadCheckpoint, loadDataset,
  Rng, saveCheckpoint, Sequential, SGD, Adam, evaluate, toTensor, TrainingDiverged, writeSafetensors, readSafetensors, tensor, crossEntropy,
  distillationLoss, distillationStep, noGrad,
} from '../src/internal.js';
import type { Arch, ImageSet, Module, Tensor } from '../src/internal.js';
import { assertThrows, smallConvNet, tempDir } from './helpers.js';

const T = suite('trainloop');
const tmp = () => tempDir('nm-ckpt-');

let mnist: ImageSet;
T.before(async () => {
  mnist = (await loadDataset('mnist')).train;
});

const arch: Arch = lenet5Arch([4, 6, 16]);
// a small network with every kind of state: conv, batch norm (running statistics), dropout (a generator)
const smallNet = (seed: number): Module => smallConvNet(seed, { dropout: true });

function run(model: Module, steps: number, opts: { checkpoint?: string; resume?: string; useAdam?: boolean }) {
  const loader = new BatchLoader(mnist, { batchSize: 32, shuffle: true, seed: 9, indices: Int32Array.from({ length: 320 }, (_, i) => i) });
  const optimizer = opts.useAdam ? new Adam(model.parameters(), { lr: 1e-3 }) : new SGD(model.parameters(), { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4 });
  return fit(model, { arch, loader, optimizer, epochs: 5, maxSteps: steps, schedule: cosineLr(0.05, 50), checkpoint: opts.checkpoint, resume: opts.resume, progress: false });
}

T('label smoothing in fit is the smoothed cross-entropy: the same weights as that loss given by hand, others than without', () => {
  const loader = () => new BatchLoader(mnist, { batchSize: 32, shuffle: true, seed: 9, indices: Int32Array.from({ length: 96 }, (_, i) => i) });
  const go = (o: { labelSmoothing?: number; loss?: (z: Tensor, x: Tensor, y: Int32Array) => Tensor }) => {
    const m = smallNet(3);
    fit(m, { arch, loader: loader(), optimizer: new SGD(m.parameters(), { lr: 0.05, momentum: 0.9 }), epochs: 1, progress: false, ...o });
    return Array.from(m.stateDict().get('10.weight')!.data);
  };
  const smooth = go({ labelSmoothing: 0.2 });
  assert.equal(smooth, go({ loss: (z, _x, y) => crossEntropy(z, y, 0.2) }));
  assert.not.equal(smooth, go({}));
  assert.equal(go({ labelSmoothing: 0 }), go({}));
});

T('train k steps, save, resume, train to N: the same weights as N uninterrupted steps (SGD and Adam)', () => {
  for (const useAdam of [false, true]) {
    const a = smallNet(1);
    run(a, 23, { useAdam });
    const dir = tmp();
    const ck = join(dir, 'ck.safetensors');
    const b = smallNet(1);
    run(b, 7, { checkpoint: ck, useAdam });
    const c = smallNet(555); // different initial weights: everything must come from the checkpoint
    const r = run(c, 23, { resume: ck, checkpoint: ck, useAdam });
    assert.is(r.steps, 23);
    const sa = a.stateDict(), sc = c.stateDict();
    for (const [k, t] of sa) assert.equal(Array.from(sc.get(k)!.data), Array.from(t.data), `${k} differs after resuming (adam=${useAdam})`);
    assert.equal(readdirSync(dir).sort(), ['ck.safetensors', 'ck.safetensors.log'], 'no temporary file is left behind');
  }
});

T('a run killed mid-epoch resumes from its last step checkpoint to the same bits as an uninterrupted run, and says how far it is', () => {
  const steps = 25; // 10 batches an epoch: the crash comes in the second epoch
  const a = smallNet(1);
  run(a, steps, {});
  const dir = tmp();
  const ck = join(dir, 'ck.safetensors');
  // a loader that fails at step 15 (epoch 2, batch 5), as a killed process would stop: after the step-12 checkpoint
  const loader = new BatchLoader(mnist, { batchSize: 32, shuffle: true, seed: 9, indices: Int32Array.from({ length: 320 }, (_, i) => i) });
  let calls = 0;
  const crashing = Object.create(loader, { batch: { value: (e: number, b: number) => {
    if (++calls === 15) throw new Error('killed');
    return loader.batch(e, b);
  } } }) as BatchLoader;
  const b = smallNet(1);
  const sgd = (m: Module) => new SGD(m.parameters(), { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4 });
  const lines: string[] = [];
  assertThrows(() => fit(b, { arch, loader: crashing, optimizer: sgd(b), epochs: 5, schedule: cosineLr(0.05, 50), checkpoint: ck, checkpointEvery: 4, log: (l) => lines.push(l) }), /killed/);
  const saved = loadCheckpoint(ck).train!;
  assert.equal([saved.epoch, saved.batch, saved.step], [1, 2, 12]);
  assert.ok(saved.cpuSeconds! > 0 && saved.seconds! > 0, 'time spent is kept');
  const c = smallNet(555);
  const resumed: string[] = [];
  const r = fit(c, { arch, loader, optimizer: sgd(c), epochs: 5, maxSteps: steps, schedule: cosineLr(0.05, 50), checkpoint: ck, resume: ck, log: (l) => resumed.push(l) });
  assert.is(r.steps, steps);
  for (const [k, t] of a.stateDict()) assert.equal(Array.from(c.stateDict().get(k)!.data), Array.from(t.data), `${k} differs after the crash and resume`);
  assert.match(resumed[0], new RegExp(`^resuming ${ck.replace(/[.]/g, '\\.')}: epoch 2 of 5, batch 2 of 10 done \\(step 12 of 50\\); \\d+ s of CPU time and \\d+ s so far; about \\d+ (s|min \\d+ s) left at [\\d.]+ s a step$`));
  const logFile = readFileSync(`${ck}.log`, 'utf8').trim().split('\n');
  assert.ok(logFile.some((l) => / epoch 1\/5: loss /.test(l)), 'the first run\'s epoch line is in the log');
  assert.ok(logFile.some((l) => / resuming /.test(l)), 'the resume is in the log');
  assert.ok(logFile.every((l) => /^\d{4}-\d\d-\d\dT[\d:.]+Z /.test(l)), 'every line is timestamped');
});

T('a checkpoint loads into the right architecture only; the error names the tensor and shapes', () => {
  const dir = tmp();
  const path = join(dir, 'lenet.safetensors');
  const m = buildModel(lenet5Arch(), 1);
  saveCheckpoint(path, { arch: lenet5Arch(), model: m });
  const c = loadCheckpoint(path);
  const m2 = buildModel(c.arch, 2);
  m2.loadStateDict(c.state);
  assert.equal(Array.from(m2.parameters()[0].data), Array.from(m.parameters()[0].data));
  const narrow = buildModel(lenet5Arch([10, 50, 500]), 3);
  assertThrows(() => narrow.loadStateDict(c.state, path), /lenet\.safetensors does not fit this model: 0\.weight has shape \[20,1,5,5\], the model has \[10,1,5,5\]/);
  const vgg = smallNet(1);
  assertThrows(() => vgg.loadStateDict(c.state, path), /does not fit this model: missing .*unexpected/);
});

T('bad, truncated or lying safetensors files: clear errors, no crash, no huge allocation', () => {
  const dir = tmp();
  const good = join(dir, 'good.safetensors');
  writeSafetensors(good, new Map([['a', tensor([1, 2, 3])], ['b', tensor([[4, 5]])]]), { note: 'x' });
  const r = readSafetensors(good);
  assert.equal(Array.from(r.tensors.get('b')!.data), [4, 5]);
  assert.is(r.metadata.note, 'x');
  const bytes = readFileSync(good);
  const hlen = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + hlen).toString());
  const variant = (name: string, mutate: (h: Record<string, any>) => void, data = bytes.subarray(8 + hlen)) => {
    const h = JSON.parse(JSON.stringify(header));
    mutate(h);
    const hb = Buffer.from(JSON.stringify(h));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(hb.length));
    const p = join(dir, name);
    writeFileSync(p, Buffer.concat([len, hb, data]));
    return p;
  };
  const cases: [string, RegExp][] = [
    [(() => { const p = join(dir, 'short'); writeFileSync(p, Buffer.from([1, 2, 3])); return p; })(), /short: 3 bytes is too short/],
    [(() => { const p = join(dir, 'huge'); const b = Buffer.alloc(16); b.writeBigUInt64LE(2n ** 62n); writeFileSync(p, b); return p; })(), /huge: header length 4611686018427387904 is larger than the file/],
    [(() => { const p = join(dir, 'trunc'); writeFileSync(p, bytes.subarray(0, bytes.length - 6)); return p; })(), /trunc: tensor 'b' data_offsets \[12, 20\] lie outside the 14 data bytes/],
    [(() => { const p = join(dir, 'notjson'); const b = Buffer.concat([Buffer.alloc(8), Buffer.from('{nope')]); b.writeBigUInt64LE(5n); writeFileSync(p, b); return p; })(), /notjson: header is not valid JSON/],
    [variant('dtype', (h) => { h.a.dtype = 'I64'; }), /dtype: tensor 'a' has dtype "I64"; only F16, F32 and F64/],
    [variant('shape', (h) => { h.a.shape = [-3]; }), /shape: tensor 'a' has an invalid shape \[-3\]/],
    [variant('lying', (h) => { h.a.shape = [5]; }), /lying: tensor 'a' of shape \[5\] needs 20 bytes, its offsets give 12/],
    [variant('overlap', (h) => { h.b.data_offsets = [4, 12]; h.b.shape = [2]; }), /overlap: tensors 'a' and 'b' overlap/],
    [variant('offsets', (h) => { h.a.data_offsets = [0, 'x']; }), /offsets: tensor 'a' has invalid data_offsets/],
    [variant('meta', (h) => { h.__metadata__ = { n: 5 }; }), /meta: __metadata__ must map names to strings/],
  ];
  for (const [p, re] of cases) assertThrows(() => readSafetensors(p), re);
  assertThrows(() => loadCheckpoint(good), /good\.safetensors: not a neuronmerge checkpoint/);
  assertThrows(() => readSafetensors(join(dir, 'missing')), /missing: cannot read \(ENOENT\)/);
});

T('a NaN loss stops training with a clear message; the last good checkpoint stays loadable', () => {
  const dir = tmp();
  const ck = join(dir, 'ck.safetensors');
  const model = smallNet(3);
  const loader = new BatchLoader(mnist, { batchSize: 32, shuffle: true, seed: 1, indices: Int32Array.from({ length: 64 }, (_, i) => i) });
  const optimizer = new SGD(model.parameters(), { lr: 0.01 });
  fit(model, { arch, loader, optimizer, epochs: 1, checkpoint: ck, progress: false });
  const good = readFileSync(ck);
  model.parameters()[0].data[0] = NaN; // a poisoned weight: the next loss is NaN
  let msg = '';
  try {
    fit(model, { arch, loader, optimizer, epochs: 1, checkpoint: ck, progress: false });
  } catch (e) {
    assert.instance(e, TrainingDiverged);
    msg = (e as Error).message;
  }
  assert.match(msg, /the loss became NaN at epoch 1, batch 1 \(step 1\)/);
  assert.match(msg, /the last good checkpoint is .*ck\.safetensors/);
  assert.ok(readFileSync(ck).equals(good), 'the last good checkpoint was overwritten');
  const c = loadCheckpoint(ck);
  assert.is(c.train!.epoch, 1);
});

T('evaluate: LeNet-5 trained on 2,048 digits scores well on 1,000 held-out ones; train mode is restored', () => {
  const model = buildModel(lenet5Arch(), 4);
  const loader = new BatchLoader(mnist, { batchSize: 64, shuffle: true, seed: 2, indices: Int32Array.from({ length: 2048 }, (_, i) => i) });
  fit(model, { arch: lenet5Arch(), loader, optimizer: new SGD(model.parameters(), { lr: 0.01, momentum: 0.9 }), epochs: 3, progress: false });
  const { x, y } = toTensor(mnist, undefined, Int32Array.from({ length: 1000 }, (_, i) => 50000 + i));
  const r = evaluate(model, x, y, 256);
  assert.ok(r.accuracy > 0.85, `accuracy ${r.accuracy}`);
  assert.is(model.training, true);
});

T('evaluate with test-time flips: the mean of each image\'s and its mirror\'s probabilities, by hand; vectors refused', () => {
  const net = smallNet(11);
  const rng = new Rng(4);
  const N = 40, C = 1, H = 28, W = 28;
  const x = tensor(Float32Array.from({ length: N * C * H * W }, () => rng.uniform(0, 1)), [N, C, H, W]);
  const y = Int32Array.from({ length: N }, () => Math.floor(rng.uniform(0, 10)));
  const flipped = new Float32Array(N * C * H * W);
  for (let n = 0; n < N; n++) for (let i = 0; i < H; i++) for (let j = 0; j < W; j++) flipped[(n * H + i) * W + j] = x.data[(n * H + i) * W + (W - 1 - j)];
  net.eval();
  const probs = (t: Tensor) => {
    const z = noGrad(() => net.forward(t)).data;
    return Array.from({ length: N }, (_, n) => {
      const row = Array.from(z.subarray(n * 10, n * 10 + 10)), m = Math.max(...row), e = row.map((v) => Math.exp(v - m)), s = e.reduce((a, b) => a + b, 0);
      return e.map((v) => v / s);
    });
  };
  const a = probs(x), b = probs(tensor(flipped, [N, C, H, W]));
  let correct = 0, loss = 0;
  for (let n = 0; n < N; n++) {
    const p = a[n].map((v, c) => 0.5 * (v + b[n][c]));
    if (p.indexOf(Math.max(...p)) === y[n]) correct++;
    loss -= Math.log(p[y[n]]);
  }
  net.train(true);
  const r = evaluate(net, x, y, 16, { tta: 'flip' });
  assert.is(r.accuracy, correct / N);
  assert.ok(Math.abs(r.loss - loss / N) < 1e-5, `${r.loss} vs ${loss / N}`);
  assert.ok(net.training, 'train mode restored');
  const plain = evaluate(net, x, y, 16);
  assert.ok(Math.abs(plain.loss - r.loss) > 1e-4, 'the mirror images change the figures');
  assertThrows(() => evaluate(net, tensor(new Float32Array(4 * 784), [4, 784]), y.subarray(0, 4), 16, { tta: 'flip' }), /test-time flips mirror images \(N, C, H, W\); these inputs have shape \[4, 784\]/);
});

T('distillationStep: the loss from the teacher forward in eval mode, the same bits; the teacher put in eval mode', () => {
  const teacher = smallNet(3) as Sequential, student = smallNet(4) as Sequential;
  teacher.train();
  const { x, y } = toTensor(mnist, undefined, Int32Array.from({ length: 40 }, (_, i) => i));
  const step = distillationStep(teacher, 4, 0.9);
  assert.is(teacher.training, false);
  const logits = student.forward(x);
  const got = step(logits, x, y).item();
  const want = distillationLoss(logits, noGrad(() => teacher.forward(x)), y, 4, 0.9).item();
  assert.is(got, want);
  // a different teacher gives a different loss (the teacher's outputs do reach it)
  const other = distillationStep(smallNet(5) as Sequential, 4, 0.9)(logits, x, y).item();
  assert.is.not(other, got);
});

T.run();
