// A moving average of the weights kept in training: its arithmetic, its place in checkpoints (a
// resumed run continues the same average to the bit, a run without one starts it where it resumes),
// bad averages in files, and `train --ema` / `export --ema` from the command.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  BatchLoader, cosineLr, fit, lenet5Arch, loadCheckpoint, loadDataset, SGD, evaluate,
} from '../src/internal.js';
import type { Arch, ImageSet, Module } from '../src/internal.js';
import { WeightAverage } from '../src/train/ema.js';
import { assertThrows, cliJson, runCli, smallConvNet, tempDir } from './helpers.js';

const E = suite('ema');
let mnist: ImageSet;
E.before(async () => {
  mnist = (await loadDataset('mnist')).train;
});

const arch: Arch = lenet5Arch([4, 6, 16]);
// convolutions, a batch norm (running statistics are averaged too) and linear layers
const smallNet = (seed: number): Module => smallConvNet(seed);
const loader = () => new BatchLoader(mnist, { batchSize: 32, shuffle: true, seed: 9, indices: Int32Array.from({ length: 320 }, (_, i) => i) });
const sgd = (m: Module) => new SGD(m.parameters(), { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4 });
const evalSet = () => ({ x: loader().batch(0, 0).x, y: loader().batch(0, 0).y });
const values = (m: Map<string, Float32Array> | Map<string, { data: ArrayLike<number> }>) => new Map([...m].map(([k, v]) => [k, Array.from('data' in v ? v.data : v)]));

E('each update moves the average towards the weights by 1 − min(decay, (1 + n)/(10 + n)); applied() lends it to the model and puts the weights back', () => {
  const m = smallNet(1);
  const w = m.stateDict().get('7.weight')!;
  const start = Array.from(w.data);
  const avg = new WeightAverage(m, 0.5, 0);
  const seen: number[][] = [];
  for (let n = 0; n < 12; n++) {
    w.data.forEach((_, i, a) => { a[i] = start[i] + n + 1; });
    const d = Math.min(0.5, (1 + n) / (10 + n));
    assert.is(avg.current, d);
    const before = Array.from(avg.values.get('7.weight')!);
    avg.update();
    const after = avg.values.get('7.weight')!;
    for (const i of [0, 17, 95]) assert.is(after[i], Math.fround(d * before[i] + (1 - d) * w.data[i]), `update ${n}, value ${i}`);
    seen.push(Array.from(after.subarray(0, 3)));
  }
  assert.is(avg.updates, 12);
  assert.equal(avg.state, { decay: 0.5, updates: 12, since: 0 });
  const live = Array.from(w.data);
  const inside = avg.applied(() => Array.from(m.stateDict().get('7.weight')!.data));
  assert.equal(inside, Array.from(avg.values.get('7.weight')!));
  assert.equal(Array.from(w.data), live, 'the live weights are back');
  assertThrows(() => avg.applied(() => { throw new Error('inside'); }), /inside/);
  assert.equal(Array.from(w.data), live, 'and back after a throw');
  assertThrows(() => new WeightAverage(m, 1, 0), /decay must lie between 0 and 1/);
});

function train(model: Module, steps: number, o: { ema?: number; checkpoint?: string; resume?: string; checkpointEvery?: number }) {
  return fit(model, { arch, loader: loader(), optimizer: sgd(model), epochs: 3, maxSteps: steps, schedule: cosineLr(0.05, 30), evalSet: evalSet(), progress: false, ...o });
}

E('fit --ema: stopped and resumed, the average and the weights are the unbroken run\'s bits; each epoch tests both', () => {
  const a = smallNet(1);
  const whole = train(a, 25, { ema: 0.9 });
  assert.ok(whole.average);
  assert.is(whole.average!.updates, 25);
  assert.is(whole.history.length, 2);
  for (const h of whole.history) assert.type(h.averagedAccuracy, 'number');
  // an epoch's averaged figures are the average's own accuracy and loss, not the live weights'
  const m20 = smallNet(1);
  const r20 = train(m20, 20, { ema: 0.9 });
  const ev = evalSet();
  const own = r20.average!.applied(() => evaluate(m20, ev.x, ev.y));
  assert.is(r20.history[1].averagedAccuracy, own.accuracy);
  assert.is(r20.history[1].averagedLoss, own.loss);
  assert.not.equal(own.loss, evaluate(m20, ev.x, ev.y).loss);
  const dir = tempDir('nm-ema-');
  const ck = join(dir, 'ck.safetensors');
  const b = smallNet(1);
  train(b, 13, { ema: 0.9, checkpoint: ck, checkpointEvery: 4 });
  const c = smallNet(555);
  const again = train(c, 25, { resume: ck, checkpoint: ck }); // the decay comes from the checkpoint
  assert.equal(values(again.average!.values), values(whole.average!.values), 'the average continues exactly');
  assert.equal(values(c.stateDict()), values(a.stateDict()), 'the weights too');
  assert.equal(again.average!.state, { decay: 0.9, updates: 25, since: 0 });
  const saved = loadCheckpoint(ck);
  assert.equal(saved.average!.state, { decay: 0.9, updates: 25, since: 0 });
  assert.equal(values(saved.average!.values), values(whole.average!.values));
  assert.not.equal(values(saved.average!.values).get('7.weight'), values(saved.state).get('7.weight'), 'the average is not the weights');
  // a resume asking for another decay is refused
  assertThrows(() => train(smallNet(2), 30, { resume: ck, ema: 0.99 }), /its weights are averaged with decay 0\.9; resume it with that decay, not 0\.99/);
  // a run without an average, resumed with one, starts it at the step it resumes from
  const plain = join(dir, 'plain.safetensors');
  train(smallNet(1), 10, { checkpoint: plain });
  assert.is(loadCheckpoint(plain).average, null);
  const lines: string[] = [];
  const m3 = smallNet(3);
  const late = fit(m3, { arch, loader: loader(), optimizer: sgd(m3), epochs: 3, maxSteps: 25, schedule: cosineLr(0.05, 30), resume: plain, ema: 0.9, log: (l) => lines.push(l) });
  assert.equal(late.average!.state, { decay: 0.9, updates: 15, since: 10 });
  assert.ok(lines.includes('averaging the weights from step 10 on (decay 0.9)'), lines.join('\n'));
});

E('a checkpoint whose average is malformed is refused, naming the file and what is wrong', () => {
  const dir = tempDir('nm-ema-');
  const ck = join(dir, 'ck.safetensors');
  train(smallNet(1), 4, { ema: 0.9, checkpoint: ck });
  const bytes = readFileSync(ck);
  const n = Number(bytes.readBigUInt64LE());
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
  const rewrite = (name: string, edit: (h: any) => void) => {
    const h = JSON.parse(JSON.stringify(header));
    edit(h);
    let json = JSON.stringify(h);
    assert.ok(json.length <= n);
    json += ' '.repeat(n - json.length);
    const p = join(dir, name);
    writeFileSync(p, Buffer.concat([bytes.subarray(0, 8), Buffer.from(json), bytes.subarray(8 + n)]));
    return p;
  };
  const decay = rewrite('decay.safetensors', (h) => { h.__metadata__.ema = JSON.stringify({ decay: 1.5, updates: 4, since: 0 }); });
  assertThrows(() => loadCheckpoint(decay), /decay\.safetensors: metadata field 'ema' must give the average's decay \(between 0 and 1\), updates and starting step/);
  const missing = rewrite('missing.safetensors', (h) => { h['ema.7.bias'] = undefined; });
  assertThrows(() => loadCheckpoint(missing), /missing\.safetensors: the averaged weights \(ema\.\*\) do not match the model's: '7\.bias' is missing/);
  const bare = rewrite('bare.safetensors', (h) => { delete h.__metadata__.ema; });
  assertThrows(() => loadCheckpoint(bare), /bare\.safetensors: metadata field 'ema' must give/);
});

E('train --ema and export --ema: the averaged model written as a model of its own evaluates to the last epoch\'s averaged figure', () => {
  const dir = tempDir('nm-ema-');
  const ck = join(dir, 'a.safetensors');
  const t = cliJson(runCli('train', 'lenet', '--widths', '6,12,40', '--epochs', '2', '--limit', '1000', '--ema', '0.95', '--checkpoint', ck, '--json'));
  assert.type(t.averagedAccuracy, 'number');
  assert.is(t.averagedAccuracy, t.history[1].averagedAccuracy);
  const out = join(dir, 'avg.safetensors');
  const x = cliJson(runCli('export', ck, '--ema', '--out', out, '--json'));
  assert.equal(x.averaged, { decay: 0.95, updates: 32, since: 0 });
  const e = cliJson(runCli('eval', out, '--json'));
  assert.is(e.accuracy, t.averagedAccuracy, 'eval of the exported average');
  assert.is(cliJson(runCli('eval', ck, '--json')).accuracy, t.testAccuracy, 'the checkpoint itself is still the live weights');
  assert.match(runCli('info', ck).stdout, /^lenet5 \(original; its weights averaged over 32 steps beside them\): /);
  assert.is(loadCheckpoint(out).average, null);
  const none = runCli('export', out, '--ema', '--out', join(dir, 'b.safetensors'));
  assert.is(none.status, 1);
  assert.match(none.stderr, /^neuronmerge: --ema: .*avg\.safetensors holds no moving average of its weights \(training keeps one where asked to average them\)\n$/);
  assert.match(runCli('train', 'lenet', '--ema', '1').stderr, /--ema/);
});

E.run();
