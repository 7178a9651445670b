// A reproduction that fine-tunes every compressed model with several seeds: each seed starts from the
// same compressed weights, the report gives each seed's accuracy, their mean and standard deviation; the
// first seed's fine-tuning is the one a run without seeds makes; each seed is a piece of its own.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadCheckpoint } from '../src/internal.js';
import { reproduce, reproducePiece, reproducePlan } from '../src/experiment/reproduce.js';
import type { ReproduceOptions } from '../src/experiment/reproduce.js';
import type { FinetuneSeeds, Report } from '../src/report/types.js';
import { tempDir } from './helpers.js';

const T = suite('seeds');
const dir = tempDir('nm-seeds-');
const bin = join(process.cwd(), 'dist', 'src', 'cli', 'index.js');
const orig = join(dir, 'orig.safetensors');
const trained = spawnSync(process.execPath, [bin, 'train', 'lenet', '--widths', '6,12,40', '--epochs', '1', '--limit', '1000', '--checkpoint', orig], { encoding: 'utf8' });
if (trained.status !== 0) throw new Error(trained.stderr);

const settings = (out: string, more: Partial<ReproduceOptions> = {}): ReproduceOptions => ({
  checkpoint: orig, epochs: 1, limit: 600, finetuneEpochs: 1, ratios: [0.6], rules: ['mean'], out, log: () => {}, command: 'reproduce lenet (test)', ...more,
});

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sampleStd = (xs: number[]) => Math.sqrt(xs.reduce((a, b) => a + (b - mean(xs)) ** 2, 0) / (xs.length - 1));

let seeded: Report;
let single: Report;

T.before(async () => {
  seeded = await reproduce('lenet', settings(join(dir, 'seeded'), { finetuneSeeds: [0, 1, 2] }));
  single = await reproduce('lenet', settings(join(dir, 'single')));
});

T('each seed\'s accuracy, their mean and standard deviation are in the report, for the merged and the pruned model', () => {
  const x = seeded.results[0];
  assert.equal(seeded.finetuneSeeds, [0, 1, 2]);
  const check = (f: FinetuneSeeds | undefined, headline: number, what: string) => {
    assert.ok(f, what);
    assert.equal(f!.seeds, [0, 1, 2], what);
    assert.is(f!.accuracy.length, 3, what);
    assert.ok(Math.abs(mean(f!.accuracy) - headline) < 1e-12, `${what}: the headline is the seeds' mean`);
    assert.ok(Math.abs(sampleStd(f!.accuracy) - f!.std) < 1e-12, `${what}: the sample standard deviation`);
    assert.is(f!.min, Math.min(...f!.accuracy));
    assert.is(f!.max, Math.max(...f!.accuracy));
  };
  check(x.seeds?.finetuned, x.accuracy.finetuned, 'merged');
  check(x.seeds?.prunedFinetuned, x.accuracy.prunedFinetuned, 'pruned');
  assert.equal(x.merges![0].seeds, x.seeds!.finetuned);
  // before fine-tuning nothing depends on the seeds
  assert.is(x.accuracy.merged, single.results[0].accuracy.merged);
  assert.is(x.accuracy.pruned, single.results[0].accuracy.pruned);
  const md = readFileSync(join(dir, 'seeded', 'report.md'), 'utf8');
  assert.match(md, '## Fine-tuning seeds');
  assert.match(md, `${(100 * x.accuracy.finetuned).toFixed(2)}% ± ${(100 * x.seeds!.finetuned.std).toFixed(2)}`);
  assert.match(readFileSync(join(dir, 'seeded', 'report.html'), 'utf8'), `${(100 * x.accuracy.prunedFinetuned).toFixed(2)}% ± ${(100 * x.seeds!.prunedFinetuned.std).toFixed(2)}`);
  // a run without seeds reports none
  assert.is(single.results[0].seeds, undefined);
  assert.is(single.finetuneSeeds, undefined);
});

T('the first seed is the fine-tuning a run without seeds makes; the others are other fine-tunings of the same weights', () => {
  const x = seeded.results[0], y = single.results[0];
  assert.is(x.seeds!.finetuned.accuracy[0], y.accuracy.finetuned);
  assert.is(x.seeds!.prunedFinetuned.accuracy[0], y.accuracy.prunedFinetuned);
  const work = join(dir, 'seeded', 'work');
  const tuned = (name: string) => readdirSync(work).filter((f) => f.startsWith(`ratio-0.6-${name}-seed`) && f.endsWith('.safetensors')).sort();
  assert.is(tuned('mean').length, 3);
  assert.is(tuned('pruned').length, 3);
  const weights = tuned('mean').map((f) => Array.from(loadCheckpoint(join(work, f)).state.get('0.weight')!.data));
  assert.not.equal(weights[0], weights[1], 'seeds 0 and 1 fine-tune differently');
  assert.not.equal(weights[1], weights[2], 'seeds 1 and 2 fine-tune differently');
  // the model kept for the user is the first seed's
  const kept = loadCheckpoint(join(dir, 'seeded', x.models!.merged)).state.get('0.weight')!.data;
  assert.equal(Array.from(kept), weights[0]);
});

T('each seed is a piece of its own; the run afterwards reuses them', async () => {
  const out = join(dir, 'pieces');
  const o = settings(out, { finetuneSeeds: [0, 1, 2] });
  const ids = reproducePlan('lenet', o).map((p) => p.id);
  const tunings = ['mean', 'pruned'].flatMap((n) => [0, 1, 2].map((s) => `ratio-0.6-${n}-seed${s}`));
  assert.equal(ids, ['original', ...tunings, 'report']);
  for (const id of ids.slice(0, -1)) await reproducePiece('lenet', o, id);
  const lines: string[] = [];
  const r = await reproduce('lenet', { ...o, log: (l) => lines.push(l) });
  assert.is(lines.filter((l) => /: its 1 epoch done before .*; reusing it$/.test(l)).length, 6, lines.join('\n'));
  assert.equal(r.results[0].seeds, seeded.results[0].seeds);
});

T('a run with another merge seed and the same fine-tuning seed reuses nothing of this one', async () => {
  const lines: string[] = [];
  await reproduce('lenet', settings(join(dir, 'seeded'), { seed: 1, finetuneSeeds: [0, 2], log: (l) => lines.push(l) }));
  assert.not.ok(lines.some((l) => /continuing from|reusing it/.test(l)), lines.join('\n'));
});

T('seeds that cannot make a spread are refused before any work', async () => {
  const out = join(dir, 'refused');
  const cases: [Partial<ReproduceOptions>, RegExp][] = [
    [{ finetuneSeeds: [1, 1] }, /finetuneSeeds lists a seed twice \(1, 1\)/],
    [{ finetuneSeeds: [] }, /finetuneSeeds lists no seed/],
    [{ finetuneSeeds: [0, 1.5] }, /finetuneSeeds must list whole numbers 0 or more, got 1\.5/],
    [{ finetuneSeeds: [0, 1], finetuneEpochs: 0 }, /finetuneSeeds asks for several fine-tunings, but finetuneEpochs is 0/],
  ];
  for (const [more, message] of cases) {
    const e = await reproduce('lenet', settings(out, more)).then(() => null, (err: Error) => err);
    assert.ok(e, JSON.stringify(more));
    assert.match(e!.message, message);
  }
  assert.not.ok(readdirSync(dir).includes('refused'), 'nothing written');
});

T.run();
