// scripts/compare-speed.mjs: times an original and its compressed model in alternating rounds and
// prints the measured speedup beside the FLOPs ratio; refuses two different networks.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { archOf, buildModel, compare, dbnArch, lenet5Arch, mergeModel, modelStats, saveCheckpoint } from '../src/internal.js';
import { tempDir } from './helpers.js';

const S = suite('scripts');
const script = join(process.cwd(), 'scripts', 'compare-speed.mjs');
const run = (...args: string[]) => spawnSync(process.execPath, [script, ...args], { encoding: 'utf8', env: { ...process.env, NEURONMERGE_QUIET: '1' } });

S('compare-speed: the FLOPs ratio of the two checkpoints and a measured speedup per batch', () => {
  const dir = tempDir('nm-speed-');
  const arch = lenet5Arch();
  const original = buildModel(arch, 1), merged = buildModel(arch, 1);
  mergeModel(merged, { ratio: 0.5, nInit: 1, seed: 1 });
  const a = join(dir, 'a.safetensors'), b = join(dir, 'b.safetensors');
  saveCheckpoint(a, { arch, model: original });
  saveCheckpoint(b, { arch: archOf(merged, arch), model: merged, kind: 'merged' });
  const flops = compare(modelStats(original, [1, 28, 28]), modelStats(merged, [1, 28, 28])).flopsRatio;
  const r = run(a, b, '--batch', '1,3', '--rounds', '2');
  assert.is(r.status, 0, r.stderr);
  assert.ok(r.stdout.includes(`FLOPs ratio ${flops.toFixed(2)}x`), r.stdout);
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('batch'));
  assert.equal(lines.map((l) => Number(l.match(/^batch\s+(\d+):/)![1])), [1, 3]);
  for (const l of lines) {
    const m = l.match(/measured speedup ([\d.]+)x/);
    assert.ok(m && Number(m[1]) > 0, l);
  }
});

S('compare-speed: two different networks, or bad options, are refused before any timing', () => {
  const dir = tempDir('nm-speed-');
  const a = join(dir, 'lenet.safetensors'), b = join(dir, 'dbn.safetensors');
  saveCheckpoint(a, { arch: lenet5Arch(), model: buildModel(lenet5Arch(), 1) });
  saveCheckpoint(b, { arch: dbnArch(), model: buildModel(dbnArch(), 1) });
  const mixed = run(a, b);
  assert.is(mixed.status, 2);
  assert.match(mixed.stderr, /holds a lenet5 on 1x28x28 inputs, .*dbn\.safetensors a dbn on 784/);
  const bad = run(a, a, '--batch', '0');
  assert.is(bad.status, 2);
  assert.match(bad.stderr, /--batch takes positive integers/);
  assert.is(run(a).status, 2);
});

S.run();
