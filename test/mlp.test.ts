// The MLP network (any widths, relu / sigmoid / tanh) and --dataset: a model trains, merges and is
// evaluated on another dataset its input fits (Fashion-MNIST: here a small synthetic set in its IDX
// layout, as no download is possible in tests), and one whose input does not fit is refused naming both
// shapes.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { buildModel, Linear, mlpArch, Rng, Sigmoid, Tanh, ReLU, widthsOf } from '../src/internal.js';
import { cliJson, runCli, tempDir } from './helpers.js';

const M = suite('mlp');
const run = runCli, json = cliJson;

M('mlpArch: a linear layer and the activation per width, then the classes', () => {
  for (const [act, Cls] of [['relu', ReLU], ['sigmoid', Sigmoid], ['tanh', Tanh]] as const) {
    const a = mlpArch([30, 20, 10], act);
    assert.equal(widthsOf(a), [30, 20, 10]);
    const m = buildModel(a, 0);
    assert.is(m.layers.length, 7);
    assert.ok(m.layers[1] instanceof Cls && m.layers[5] instanceof Cls);
    assert.equal((m.layers[6] as Linear).weight.shape, [10, 10]);
  }
  assert.throws(() => mlpArch([30, 0]), /mlp: widths must be 2 positive integers, got \[30,0\]/);
  assert.throws(() => mlpArch([30], 'gelu' as 'relu'), /mlp: activation must be relu, sigmoid, tanh, got 'gelu'/);
});

/** IDX files of n images (28×28) whose label is which horizontal band is bright: learnable in an epoch */
function bands(dir: string, n: number, prefix: string, seed: number): void {
  const rng = new Rng(seed);
  const img = Buffer.alloc(16 + n * 784), lab = Buffer.alloc(8 + n);
  img.writeUInt32BE(2051, 0), img.writeUInt32BE(n, 4), img.writeUInt32BE(28, 8), img.writeUInt32BE(28, 12);
  lab.writeUInt32BE(2049, 0), lab.writeUInt32BE(n, 4);
  for (let i = 0; i < n; i++) {
    const c = i % 10;
    lab[8 + i] = c;
    for (let p = 0; p < 784; p++) {
      const row = Math.floor(p / 28);
      const on = row >= 2 + 2 * c && row < 4 + 2 * c;
      img[16 + i * 784 + p] = on ? 200 + Math.floor(rng.uniform(0, 55)) : Math.floor(rng.uniform(0, 60));
    }
  }
  writeFileSync(join(dir, `${prefix}-images-idx3-ubyte`), img);
  writeFileSync(join(dir, `${prefix}-labels-idx1-ubyte`), lab);
}

M('train mlp --dataset fashion-mnist reads it, records it, and merge and eval read it again; misfits are refused', () => {
  const d = tempDir('nm-mlp-');
  const data = join(d, 'fashion');
  mkdirSync(data, { recursive: true });
  bands(data, 2000, 'train', 1);
  bands(data, 500, 't10k', 2);
  const ck = join(d, 'f.safetensors');
  const t = json(run('train', 'mlp', '--widths', '40,20', '--activation', 'tanh', '--dataset', 'fashion-mnist', '--data', data, '--epochs', '2', '--checkpoint', ck, '--json'));
  assert.is(t.arch.dataset, 'fashion-mnist');
  assert.ok(t.testAccuracy > 0.9, `accuracy ${t.testAccuracy} on bands`);
  const e = json(run('eval', ck, '--data', data, '--json'));
  assert.is(e.dataset, 'fashion-mnist');
  assert.is(e.images, 500);
  assert.is(e.accuracy, t.testAccuracy);
  const m = json(run('merge', ck, '--ratio', '0.5', '--out', join(d, 'm.safetensors'), '--data', data, '--no-report', '--json'));
  assert.equal(m.units.map((u: { after: number }) => u.after), [20, 10]);
  assert.is(m.arch.dataset, 'fashion-mnist');
  assert.is(m.accuracy.before, t.testAccuracy);
  const p = json(run('prune', ck, '--ratio', '0.5', '--out', join(d, 'p.safetensors'), '--data', data, '--json'));
  assert.is(p.params.after, m.params.after);
  for (const [args, re] of [
    [['eval', ck, '--dataset', 'cifar10'], /^neuronmerge: the model reads 784 inputs; cifar10's images are 3 × 32 × 32\n$/],
    [['train', 'vgg', '--dataset', 'mnist'], /^neuronmerge: the model reads 3 × 32 × 32 inputs; mnist's images are 1 × 28 × 28 or 784\n$/],
    [['train', 'lenet', '--activation', 'tanh'], /^neuronmerge: --activation: lenet has its own activations; only mlp takes one\n$/],
    [['train', 'mlp', '--dataset', 'svhn'], /^neuronmerge: --dataset must be mnist, fashion-mnist, cifar10, got 'svhn'\n$/],
  ] as const) {
    const r = run(...args);
    assert.is(r.status, 1, args.join(' '));
    assert.match(r.stderr, re);
  }
});

M.run();
