// The benchmark's statistics: quantiles of the rounds' ratios and the one-line summary of the
// networks' shapes against OpenBLAS (which shapes are slower, which level within the noise).
import { spawnSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { torchIsaCaps } from '../bench/train.js';
import { median, quantile, ratioSummary } from '../bench/util.js';
import { needs } from './helpers.js';

test('quantile interpolates between order statistics, whatever the input order', () => {
  const xs = [5, 1, 4, 2, 3];
  assert.is(quantile(xs, 0), 1);
  assert.is(quantile(xs, 1), 5);
  assert.is(quantile(xs, 0.5), 3);
  assert.is(quantile(xs, 0.25), 2);
  assert.is(quantile([1, 2, 3, 4], 0.25), 1.75);
  assert.is(quantile([1, 2, 3, 4], 0.75), 3.25);
  assert.is(quantile([7], 0.75), 7);
  assert.equal(xs, [5, 1, 4, 2, 3], 'the input is not sorted in place');
  // the median of an odd count agrees with median()
  for (const ys of [[3, 9, 1], [0.97, 1.02, 0.99, 1.05, 1.01]]) assert.is(quantile(ys, 0.5), median(ys));
});

test('quantile rejects an empty list and q outside [0, 1]', () => {
  assert.throws(() => quantile([], 0.5), /empty/);
  assert.throws(() => quantile([1, 2], 1.5), /\[0, 1\].*1\.5/);
  assert.throws(() => quantile([1, 2], NaN), /\[0, 1\]/);
});

test('ratioSummary counts the level products and separates slower ones from noisy ones', () => {
  const s = ratioSummary([
    { name: 'a', ratio: 1.1, q1: 1.05, q3: 1.2, ms: 10, refMs: 11, flop: 1e9 },
    { name: 'b', ratio: 1.0, q1: 0.97, q3: 1.03, ms: 20, refMs: 20, flop: 2e9 },
    { name: 'c', ratio: 0.97, q1: 0.95, q3: 0.99, ms: 40, refMs: 38, flop: 3e9 },
    { name: 'd', ratio: 0.99, q1: 0.96, q3: 1.01, ms: 5, refMs: 5, flop: 4e9 },
    { name: 'e', ratio: 2.5, q1: 2.4, q3: 2.6, ms: 1, refMs: 2.5, flop: 5e9 },
  ]);
  assert.is(s.count, 5);
  assert.is(s.atLeastLevel, 3);
  assert.is(s.median, 1.0);
  assert.is(s.min, 0.97);
  assert.is(s.max, 2.5);
  assert.is(s.ms, 76);
  assert.is(s.refMs, 76.5);
  assert.is(s.flop, 15e9);
  assert.equal(s.slower.map((r) => r.name), ['c']);
  assert.equal(s.withinNoise.map((r) => r.name), ['d']);
});

// PyTorch (Debian's python3-torch), where installed: the caps the training benchmark passes reach
// oneDNN, whose convolution then runs its AVX2 code on a machine that has AVX-512
const torchMissing = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { encoding: 'utf8' }).status === 0 ? null : 'python3-torch is not installed';
needs(test, torchMissing)('torchIsaCaps: PyTorch capped to the native kernels\' instruction set where they run below AVX-512', () => {
  assert.equal(torchIsaCaps('avx512'), {});
  assert.equal(torchIsaCaps(undefined), {});
  const conv = 'import torch; torch.nn.functional.conv2d(torch.rand(2, 8, 16, 16), torch.rand(16, 8, 3, 3))';
  const isas = (env: Record<string, string>) => {
    const r = spawnSync('/usr/bin/python3', ['-c', conv], { encoding: 'utf8', env: { ...process.env, DNNL_VERBOSE: '1', ...env } });
    assert.is(r.status, 0, r.stderr);
    return new Set([...r.stdout.matchAll(/jit:(avx512[a-z_]*|avx2|sse41|uni)/g)].map((m) => m[1]));
  };
  const avx2 = isas(torchIsaCaps('avx2'));
  assert.ok(avx2.has('avx2') && ![...avx2].some((i) => i.startsWith('avx512')), `oneDNN ran ${[...avx2].join(', ')} with the AVX2 caps`);
  const generic = isas(torchIsaCaps('generic'));
  assert.ok(![...generic].some((i) => i === 'avx2' || i.startsWith('avx512')), `oneDNN ran ${[...generic].join(', ')} with the portable caps`);
});

test.run();
